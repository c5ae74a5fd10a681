"""Opening hours for the demo network, from a fixed seed, and the slots they give."""

import random
from collections import defaultdict
from datetime import time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from creneau.agenda.models import AvailabilityRule
from creneau.agenda.services import GenerationReport, slots_generate
from creneau.directory.models import PractitionerRole, VisitType

SEED = 20261129
_DAYS = ["MO", "TU", "WE", "TH", "FR"]
_PERIODS = [(time(9), time(12)), (time(14), time(17)), (time(8, 30), time(11, 30))]


@transaction.atomic
def demo_agenda_load(*, horizon_weeks: int | None = None) -> GenerationReport:
    """Each practitioner role opens one weekly half-day for first consultations and the
    specialty's particular visits, and every other week a shorter one for follow-ups; travel
    medicine runs group vaccination sessions of six places per slot."""
    rng = random.Random(SEED)
    visit_types: dict[tuple[int, int], list[VisitType]] = defaultdict(list)
    for visit_type in VisitType.objects.filter(is_active=True).order_by("code"):
        visit_types[(visit_type.organisation_id, visit_type.specialty_id)].append(visit_type)
    # Rules start on the Monday of this week so that "every other week" has a fixed phase.
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    roles = (
        PractitionerRole.objects.filter(is_active=True)
        .select_related("establishment")
        .prefetch_related("specialties")
        .order_by("pk")
    )
    through = AvailabilityRule.visit_types.through
    links = []
    for role in roles:
        offered = [
            visit_type
            for specialty in role.specialties.all()
            for visit_type in visit_types[(role.establishment.organisation_id, specialty.pk)]
        ]
        follow_ups = [v for v in offered if v.code.endswith("-follow-up")]
        firsts = [v for v in offered if v not in follow_ups]
        if not firsts:
            continue
        day, other_day = rng.sample(_DAYS, 2)
        opens, closes = rng.choice(_PERIODS)
        group = [v for v in firsts if v.code.endswith("yellow-fever")]
        rule = AvailabilityRule.objects.create(
            practitioner_role=role,
            label="Consultations",
            recurrence=f"FREQ=WEEKLY;BYDAY={day}",
            starts_on=monday,
            start_time=opens,
            end_time=closes,
        )
        links += [through(availabilityrule=rule, visittype=v) for v in firsts if v not in group]
        if group:
            vaccination = AvailabilityRule.objects.create(
                practitioner_role=role,
                label="Séance de vaccination",
                recurrence="FREQ=MONTHLY;BYDAY=1WE",
                starts_on=monday,
                start_time=time(14),
                end_time=time(16),
                capacity=6,
            )
            links += [through(availabilityrule=vaccination, visittype=v) for v in group]
        if follow_ups:
            rule = AvailabilityRule.objects.create(
                practitioner_role=role,
                label="Suivis",
                recurrence=f"FREQ=WEEKLY;INTERVAL=2;BYDAY={other_day}",
                starts_on=monday,
                start_time=time(14) if opens < time(12) else time(9),
                end_time=time(16) if opens < time(12) else time(11),
            )
            links += [through(availabilityrule=rule, visittype=v) for v in follow_ups]
    through.objects.bulk_create(links, batch_size=2000)
    return slots_generate(horizon_weeks=horizon_weeks or settings.CRENEAU_HORIZON_WEEKS)
