"""The SAS agenda publisher (ANS guide ans.fhir.fr.sas, INT_R01): the free slots of 1 to 25
practitioners as a ``BundleAgregateur`` searchset, each resource in the guide's profile, shaped
like its example ``Bundle-ExampleBundlePSIndiv.json`` (vectors/sas): a Slot (match), then the
first time they appear its Schedule, Practitioner and PractitionerRole (include), the
PractitionerRole carrying its Location contained.

Each slot says who may see it (``meta.security``, TRE_R314): PUBLIC unless the platform's
settings reserve its visit to health professionals (PRO) or regulators (SNP); its ``comment``
is the signed link that books it through the SAS's channel."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from creneau.agenda.models import Slot
from creneau.booking.links import LinkMaker
from creneau.channels.models import Platform, PlatformVisibility
from creneau.channels.queries import ChannelScope
from creneau.directory.models import PractitionerRole
from creneau.fhir import resources
from creneau.fhir.rows import SlotRow

PROFILE = "http://sas.fr/fhir/StructureDefinition/"
TRE_R314 = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
LOCATION_IDENTIFIER_TYPE = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
MAX_PRACTITIONERS = 25


def for_regulators(found: QuerySet[Slot], platform: Platform | None) -> QuerySet[Slot]:
    """What the SAS publishes: the visits open to new patients (a regulator sends a patient
    the practitioner has not seen; a follow-up is the practitioner's own business), and the
    visits the platform's settings reserve to professionals or regulators."""
    reserved = PlatformVisibility.objects.filter(platform=platform).values("visit_type_id")
    return found.filter(Q(visit_type__new_patients_allowed=True) | Q(visit_type_id__in=reserved))


def _meta(profile: str, **more) -> dict:
    return {"profile": [PROFILE + profile], **more}


def visibility(platform: Platform | None) -> dict[int, list[str]]:
    """Visit type id → its TRE_R314 codes, for the visits the platform reserves."""
    if platform is None:
        return {}
    return {
        row.visit_type_id: row.codes for row in PlatformVisibility.objects.filter(platform=platform)
    }


class _SlotParts:
    """What slots share, made once per answer: a SAS answer holds thousands of slots of a few
    visit types, specialties and schedules (the same dicts are written again by json)."""

    def __init__(self, reserved: dict[int, list[str]]) -> None:
        self.reserved = reserved
        self.metas: dict[int, dict] = {}
        self.services: dict[int, list] = {}
        self.specialties: dict[int, list] = {}
        self.schedules: dict[int, dict] = {}
        self.appointment_type = {"coding": [{"system": resources.V2_0276, "code": "ROUTINE"}]}

    def meta(self, slot: SlotRow) -> dict:
        found = self.metas.get(slot.visit_type_id)
        if found is None:
            codes = self.reserved.get(slot.visit_type_id, ["PUBLIC"])
            found = _meta(
                "FrSlotAgregateur",
                security=[{"system": TRE_R314, "code": code} for code in codes],
            )
            self.metas[slot.visit_type_id] = found
        return found

    def service(self, slot: SlotRow) -> list:
        found = self.services.get(slot.visit_type_id)
        if found is None:
            # On site (v3-ActCode AMB), and what the visit is, in words.
            found = [
                {"coding": [{"system": resources.V3_ACT_CODE, "code": "AMB"}]},
                {"text": slot.visit_type.label_fr},
            ]
            self.services[slot.visit_type_id] = found
        return found

    def specialty(self, slot: SlotRow) -> list:
        key = slot.specialty.pk
        found = self.specialties.get(key)
        if found is None:
            concept: dict = {"text": slot.specialty.label_fr}
            if slot.specialty.ordinal_code:
                concept["coding"] = [
                    {"system": resources.TRE_R38, "code": slot.specialty.ordinal_code}
                ]
            found = self.specialties[key] = [concept]
        return found

    def schedule(self, slot: SlotRow) -> dict:
        role = slot.practitioner_role
        found = self.schedules.get(role.pk)
        if found is None:
            found = self.schedules[role.pk] = resources.reference("Schedule", role.public_id)
        return found


def _slot(slot: SlotRow, parts: _SlotParts, link: str) -> dict:
    return {
        "resourceType": "Slot",
        "id": slot.public_id,
        "meta": parts.meta(slot),
        "serviceType": parts.service(slot),
        "specialty": parts.specialty(slot),
        "appointmentType": parts.appointment_type,
        "schedule": parts.schedule(slot),
        "status": "free",
        "start": resources.instant(slot.starts_at),
        "end": resources.instant(slot.ends_at),
        "comment": link,
    }


def _schedule(role: PractitionerRole) -> dict:
    return {
        "resourceType": "Schedule",
        "id": role.public_id,
        "meta": _meta("FrScheduleAgregateur"),
        "actor": [
            resources.reference("Practitioner", role.practitioner.public_id),
            resources.reference("PractitionerRole", role.public_id),
        ],
    }


def _practitioner(role: PractitionerRole) -> dict:
    practitioner = role.practitioner
    name: dict = {"family": practitioner.last_name}
    if practitioner.first_name:
        name["given"] = [practitioner.first_name]
    return {
        "resourceType": "Practitioner",
        "id": practitioner.public_id,
        "meta": _meta("FrPractitionerAgregateur"),
        "identifier": [resources.practitioner_identifier(practitioner)],
        "name": [name],
    }


def _location(role: PractitionerRole) -> dict:
    place = role.establishment
    address: dict = {"line": [place.address or place.name], "city": place.city}
    if place.postcode:
        address["postalCode"] = place.postcode
    location: dict = {
        "resourceType": "Location",
        "id": "location",
        "meta": _meta("FrLocationAgregateur"),
        "identifier": [
            {
                "type": {"coding": [{"system": LOCATION_IDENTIFIER_TYPE, "code": "INTRN"}]},
                "system": resources.fhir_base() + "/NamingSystem/location",
                "value": place.public_id,
            }
        ],
        "name": place.name,
    }
    location["address"] = address
    return location


def _role(role: PractitionerRole) -> dict:
    resource: dict = {
        "resourceType": "PractitionerRole",
        "id": role.public_id,
        "meta": _meta("FrPractitionerRoleExerciceAgregateur"),
        "contained": [_location(role)],
        "practitioner": resources.reference("Practitioner", role.practitioner.public_id),
        "organization": {"identifier": resources.finess_identifier(role.establishment.finess)},
        "location": [{"reference": "#location"}],
    }
    if role.establishment.phone:
        # Where the regulator calls about the appointment: the establishment's switchboard.
        resource["telecom"] = [
            {"system": "phone", "value": resources.phone(role.establishment.phone)}
        ]
    return resource


_MATCH, _INCLUDE = {"mode": "match"}, {"mode": "include"}


def _entry(base: str, resource: dict, mode: dict) -> dict:
    return {
        "fullUrl": f"{base}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": mode,
    }


def sas_entries(
    *,
    scope: ChannelScope,
    platform: Platform | None,
    slots: Iterable[SlotRow],
    now: datetime,
) -> list[dict]:
    parts = _SlotParts(visibility(platform))
    valid_for = timedelta(hours=platform.link_hours if platform else 72)
    link_for = LinkMaker(channel=scope.channel, valid_for=valid_for, now=now)
    base = resources.fhir_base()
    entries: list[dict] = []
    roles_seen: set[int] = set()
    practitioners_seen: set[int] = set()
    for slot in slots:
        entries.append(_entry(base, _slot(slot, parts, link_for(slot)), _MATCH))
        role = slot.practitioner_role
        if role.pk in roles_seen:
            continue
        roles_seen.add(role.pk)
        entries.append(_entry(base, _schedule(role), _INCLUDE))
        if role.practitioner_id not in practitioners_seen:
            practitioners_seen.add(role.practitioner_id)
            entries.append(_entry(base, _practitioner(role), _INCLUDE))
        entries.append(_entry(base, _role(role), _INCLUDE))
    return entries
