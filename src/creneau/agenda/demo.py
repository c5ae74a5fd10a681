"""Opening hours for the demo network, from a fixed seed, and the slots they give."""

import random
from collections import defaultdict
from datetime import datetime, time, timedelta

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


def demo_calendar_role() -> PractitionerRole:
    """The demo practitioner whose agenda is a calendar: the first neurosurgeon of the
    Pitié-Salpêtrière, the one the demo widget shows first."""
    return (
        PractitionerRole.objects.filter(
            establishment__name="Hôpital de la Pitié-Salpêtrière",
            specialties__code="neurosurgery",
        )
        .select_related("establishment", "practitioner")
        .order_by("pk")
        .first()
    )


def demo_calendar_ics(role: PractitionerRole, now) -> bytes:
    """The practitioner's own calendar, as their calendar application would publish it: a
    weekly staff meeting over the first hour of their consultation half-day (but next week), a
    congress two weeks ahead (all day), and a reminder that blocks nothing (transparent)."""
    rule = role.availability_rules.filter(is_active=True).order_by("pk").first()
    if rule is None:
        return b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Creneau//demo//FR\r\nEND:VCALENDAR\r\n"
    day = rule.recurrence.split("BYDAY=")[-1][:2]
    weekday = _DAYS.index(day) if day in _DAYS else 0
    today = timezone.localdate(now)
    first = today + timedelta(days=(weekday - today.weekday()) % 7)
    skipped = first + timedelta(weeks=1)
    congress = first + timedelta(weeks=2)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")

    def local(day, at: time) -> str:
        return f"{day:%Y%m%d}T{at:%H%M%S}"

    end_meeting = (datetime.combine(first, rule.start_time) + timedelta(hours=1)).time()
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Creneau//demo calendar//FR",
        "BEGIN:VEVENT",
        "UID:staff-meeting@demo.creneau",
        f"DTSTAMP:{stamp}",
        "SUMMARY:Réunion de service",
        f"DTSTART;TZID=Europe/Paris:{local(first, rule.start_time)}",
        f"DTEND;TZID=Europe/Paris:{local(first, end_meeting)}",
        f"RRULE:FREQ=WEEKLY;BYDAY={_DAYS[weekday]}",
        f"EXDATE;TZID=Europe/Paris:{local(skipped, rule.start_time)}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:congress@demo.creneau",
        f"DTSTAMP:{stamp}",
        "SUMMARY:Congrès de neurochirurgie",
        f"DTSTART;VALUE=DATE:{congress:%Y%m%d}",
        f"DTEND;VALUE=DATE:{congress + timedelta(days=1):%Y%m%d}",
        "END:VEVENT",
        "BEGIN:VEVENT",
        "UID:reminder@demo.creneau",
        f"DTSTAMP:{stamp}",
        "SUMMARY:Rappel : relire les IRM",
        f"DTSTART;TZID=Europe/Paris:{local(skipped, rule.start_time)}",
        f"DTEND;TZID=Europe/Paris:{local(skipped, end_meeting)}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()
