"""The demo network, generated from a fixed seed through the same services as an import."""

import random
from dataclasses import dataclass

from django.db import transaction

from creneau.directory import demo_data as data
from creneau.directory import services
from creneau.directory.identifiers import finess_with_key, rpps_with_key
from creneau.directory.models import Establishment, Organisation, Specialty

SEED = 20260401
PRACTITIONERS = 800
SECOND_ROLE_SHARE = 0.08

# How many specialties a hospital of each profile hosts, and how many practitioners it draws.
_PROFILE_SPECIALTIES = {"general": (13, 18), "paediatric": (5, 8), "geriatric": (2, 4)}
_PROFILE_WEIGHT = {"general": 3.0, "paediatric": 2.5, "geriatric": 1.0, "private": 1.2}


@dataclass
class DemoNetwork:
    organisation: Organisation
    hospitals: list[Establishment]
    private_establishments: list[Establishment]


def _finess(department_code: str, counter: int) -> str:
    # Synthetic numbers: the département of the address, "09", a counter, and a valid key.
    return finess_with_key(f"{department_code}09{counter:04d}")


def _phone(counter: int) -> str:
    # The range ARCEP keeps for fiction (01 99 00 00 00 to 01 99 99 99 99): no real line.
    return f"01 99 00 {counter // 100:02d} {counter % 100:02d}"


@transaction.atomic
def demo_directory_load() -> DemoNetwork:
    rng = random.Random(SEED)
    specialties = {
        code: services.specialty_upsert(
            code=code, label_fr=fr, label_en=en, ordinal_code=data.ORDINAL_CODES.get(code, "")
        )[0]
        for code, fr, en, _profiles in data.SPECIALTIES
    }
    aphp, _ = services.organisation_upsert(is_public=True, runs_hub=True, **data.APHP)

    departments: list[tuple[Establishment, Specialty, str]] = []  # with the profile
    hospitals = []
    for counter, (name, address, postcode, city, lat, lon, profile) in enumerate(
        data.APHP_HOSPITALS, start=1
    ):
        hospital, _ = services.establishment_upsert(
            finess=_finess(postcode[:2], counter),
            organisation=aphp,
            name=name,
            address=address,
            postcode=postcode,
            city=city,
            latitude=lat,
            longitude=lon,
            phone=_phone(counter),
        )
        hospitals.append(hospital)
        candidates = [code for code, _fr, _en, profiles in data.SPECIALTIES if profile in profiles]
        low, high = _PROFILE_SPECIALTIES[profile]
        chosen = rng.sample(candidates, min(len(candidates), rng.randint(low, high)))
        if name in data.NEUROSURGERY_HOSPITALS:
            chosen.append("neurosurgery")
        departments += [(hospital, specialties[code], profile) for code in sorted(chosen)]

    private = []
    counter = 100
    for group in data.PRIVATE_GROUPS:
        organisation, _ = services.organisation_upsert(
            finess_ej=finess_with_key(group["finess_ej"]),
            name=group["name"],
            short_name=group["short_name"],
        )
        for name, address, postcode, city, lat, lon in group["establishments"]:
            counter += 1
            clinic, _ = services.establishment_upsert(
                finess=_finess(postcode[:2], counter),
                organisation=organisation,
                name=name,
                address=address,
                postcode=postcode,
                city=city,
                latitude=lat,
                longitude=lon,
                phone=_phone(counter),
            )
            private.append(clinic)
            chosen = ["neurosurgery", *rng.sample(data.PRIVATE_SPECIALTIES[1:], 4)]
            departments += [(clinic, specialties[code], "private") for code in sorted(chosen)]
        _visit_types(organisation, [specialties[code] for code in data.PRIVATE_SPECIALTIES])
    _visit_types(aphp, list(specialties.values()))

    department_rows = {}
    for establishment, specialty, _profile in departments:
        department_rows[(establishment.pk, specialty.pk)] = services.department_upsert(
            establishment=establishment,
            code=specialty.code,
            name=f"Service de {specialty.label_fr[0].lower()}{specialty.label_fr[1:]}",
        )[0]

    # Every department gets one practitioner, the rest are spread by the hospital's size.
    weights = [_PROFILE_WEIGHT[profile] for _e, _s, profile in departments]
    placements = list(departments) + rng.choices(
        departments, weights, k=PRACTITIONERS - len(departments)
    )
    for number, (establishment, specialty, _profile) in enumerate(placements, start=1):
        practitioner, _ = services.practitioner_upsert(
            rpps=rpps_with_key(f"1099{number:06d}"),
            title="Pr" if rng.random() < 0.15 else "Dr",
            first_name=rng.choice(data.FIRST_NAMES),
            last_name=rng.choice(data.LAST_NAMES),
        )
        roles = [(establishment, specialty)]
        if rng.random() < SECOND_ROLE_SHARE:
            elsewhere = [
                (e, s)
                for e, s, _p in departments
                if s == specialty and e != establishment and e.organisation_id == aphp.pk
            ]
            if elsewhere:
                roles.append(rng.choice(elsewhere))
        for where, what in roles:
            services.practitioner_role_upsert(
                practitioner=practitioner,
                establishment=where,
                department=department_rows[(where.pk, what.pk)],
                specialties=[what],
            )
    return DemoNetwork(organisation=aphp, hospitals=hospitals, private_establishments=private)


def _visit_types(organisation: Organisation, specialties: list[Specialty]) -> None:
    for specialty in specialties:
        for suffix, fr, en, minutes, new_patients in data.COMMON_VISIT_TYPES:
            services.visit_type_upsert(
                organisation=organisation,
                code=f"{specialty.code}-{suffix}",
                specialty=specialty,
                label_fr=f"{fr} — {specialty.label_fr}",
                label_en=f"{en} — {specialty.label_en}",
                duration_minutes=minutes,
                new_patients_allowed=new_patients,
            )
    wanted = {specialty.code: specialty for specialty in specialties}
    for code, suffix, fr, en, minutes, new_patients, prep_fr, prep_en in data.SPECIAL_VISIT_TYPES:
        if code in wanted:
            services.visit_type_upsert(
                organisation=organisation,
                code=f"{code}-{suffix}",
                specialty=wanted[code],
                label_fr=fr,
                label_en=en,
                duration_minutes=minutes,
                new_patients_allowed=new_patients,
                preparation_fr=prep_fr,
                preparation_en=prep_en,
            )
