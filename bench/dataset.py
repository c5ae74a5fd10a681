"""The benchmark's dataset, at the scale DESIGN.md names: an organisation of 39 establishments,
200 establishments of 20 other organisations, 12,000 practitioners, and opening rules that give
about 15 million slots over 26 weeks. Written in bulk (the directory services validate row by
row, which is right for imports and too slow here); the public-site channel and the slots go
through Créneau's own services, as in production."""

import random
from dataclasses import dataclass
from datetime import time, timedelta

from django.db import transaction
from django.utils import timezone

from creneau.agenda.models import AvailabilityRule
from creneau.channels.models import Channel
from creneau.channels.services import organisation_public_site_ensure
from creneau.directory.identifiers import finess_with_key, rpps_with_key
from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)
from creneau.directory.text import fold


@dataclass(frozen=True)
class Scale:
    name: str
    own_establishments: int
    other_organisations: int
    establishments_per_other: int
    practitioners: int
    specialties: int

    def as_dict(self) -> dict:
        return self.__dict__.copy()


SCALES = {
    "national": Scale("national", 39, 20, 10, 12_000, 30),
    "regional": Scale("regional", 39, 5, 10, 3_000, 30),
    "small": Scale("small", 39, 2, 10, 1_200, 30),
}
# Three weekly half-days of three hours, first consultations (30 min) and follow-ups (20 min)
# offered over the same periods (15 slots a half-day), and every other week a fourth: about
# 52 slots a practitioner a week, 15 million for 12,000 practitioners over 26 weeks.
_HALF_DAYS = [(time(9), time(12)), (time(14), time(17))]
_DAYS = ["MO", "TU", "WE", "TH", "FR"]


def _slug(n: int) -> str:
    return f"specialty-{n:02d}"


@transaction.atomic
def dataset_create(scale: Scale, *, seed: int = 20261129) -> Channel:
    rng = random.Random(seed)
    specialties = Specialty.objects.bulk_create(
        Specialty(code=_slug(n), label_fr=f"Spécialité {n}", label_en=f"Specialty {n}")
        for n in range(scale.specialties)
    )
    own = Organisation.objects.create(
        name="Assistance publique (banc d'essai)", short_name="AP", is_public=True, runs_hub=True
    )
    others = Organisation.objects.bulk_create(
        Organisation(name=f"Groupe privé {n}", short_name=f"GP{n}")
        for n in range(scale.other_organisations)
    )
    counter = 0

    def establishment(organisation: Organisation) -> Establishment:
        nonlocal counter
        counter += 1
        return Establishment(
            organisation=organisation,
            finess=finess_with_key(f"75{counter:06d}"),
            name=f"Établissement {counter}",
            postcode=f"75{rng.randint(1, 20):03d}",
            city="Paris",
            latitude=48.82 + rng.random() * 0.08,
            longitude=2.25 + rng.random() * 0.17,
        )

    hospitals = Establishment.objects.bulk_create(
        [establishment(own) for _ in range(scale.own_establishments)]
        + [establishment(other) for other in others for _ in range(scale.establishments_per_other)]
    )
    departments = Department.objects.bulk_create(
        Department(establishment=hospital, code=specialty.code, name=specialty.label_fr)
        for hospital in hospitals
        for specialty in rng.sample(specialties, 10)
    )
    visit_types = VisitType.objects.bulk_create(
        VisitType(
            organisation=organisation,
            code=f"{specialty.code}-{kind}",
            specialty=specialty,
            label_fr=f"{kind} {specialty.label_fr}",
            label_en=f"{kind} {specialty.label_en}",
            duration_minutes=minutes,
            new_patients_allowed=kind == "first",
        )
        for organisation in [own, *others]
        for specialty in specialties
        for kind, minutes in (("first", 30), ("follow-up", 20))
    )
    by_key = {(v.organisation_id, v.specialty_id, v.duration_minutes): v for v in visit_types}
    practitioners = Practitioner.objects.bulk_create(
        Practitioner(
            rpps=rpps_with_key(f"2{n:09d}"),
            first_name=f"Prénom{n}",
            last_name=f"Nom{n}",
            search_name=fold(f"Nom{n} Prénom{n}"),
        )
        for n in range(scale.practitioners)
    )
    # Three practitioners in five work for the organisation, the rest elsewhere.
    own_departments = [d for d in departments if d.establishment.organisation_id == own.pk]
    other_departments = [d for d in departments if d.establishment.organisation_id != own.pk]
    placed = [
        rng.choice(own_departments if rng.random() < 0.6 else other_departments)
        for _ in practitioners
    ]
    roles = PractitionerRole.objects.bulk_create(
        PractitionerRole(
            practitioner=practitioner, establishment=department.establishment, department=department
        )
        for practitioner, department in zip(practitioners, placed, strict=True)
    )
    specialty_of = {s.code: s for s in specialties}
    PractitionerRole.specialties.through.objects.bulk_create(
        PractitionerRole.specialties.through(
            practitionerrole=role, specialty=specialty_of[department.code]
        )
        for role, department in zip(roles, placed, strict=True)
    )
    today = timezone.localdate()
    monday = today - timedelta(days=today.weekday())
    rules, links = [], []
    for role, department in zip(roles, placed, strict=True):
        organisation_id = department.establishment.organisation_id
        specialty = specialty_of[department.code]
        offered = [by_key[(organisation_id, specialty.pk, m)] for m in (30, 20)]
        days = rng.sample(_DAYS, 4)
        for number, day in enumerate(days):
            opens, closes = rng.choice(_HALF_DAYS)
            rule = AvailabilityRule(
                practitioner_role=role,
                recurrence=f"FREQ=WEEKLY;INTERVAL={2 if number == 3 else 1};BYDAY={day}",
                starts_on=monday,
                start_time=opens,
                end_time=closes,
            )
            rules.append(rule)
            links += [(rule, visit_type) for visit_type in offered]
    AvailabilityRule.objects.bulk_create(rules, batch_size=5000)
    AvailabilityRule.visit_types.through.objects.bulk_create(
        (
            AvailabilityRule.visit_types.through(availabilityrule=rule, visittype=visit_type)
            for rule, visit_type in links
        ),
        batch_size=10_000,
    )
    return organisation_public_site_ensure(organisation=own, via="bench")
