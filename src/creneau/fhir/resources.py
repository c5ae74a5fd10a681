"""Créneau's directory and slots as FHIR R4 resources, with the French identifiers
(STANDARDS.md §1): a practitioner by the ANS national identifier "8" + RPPS, an establishment
or legal entity by "1" + FINESS, both typed with fr-v2-0203.

Every builder leaves out what it does not know rather than write an empty element (FHIR R4
§2.6.2: an element present has a value)."""

from datetime import UTC, datetime

from django.conf import settings

from creneau.agenda.models import Slot
from creneau.directory.models import (
    Department,
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)
from creneau.directory.national import (
    finess_identifier,
    rpps_identifier,
)

TRE_R38 = (
    "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
)
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def fhir_base() -> str:
    return settings.CRENEAU_PUBLIC_URL.rstrip("/") + "/fhir"


def specialty_system() -> str:
    """The hub's own specialty codes (``cardiology``), beside the national TRE_R38 ones."""
    return fhir_base() + "/CodeSystem/specialty"


def visit_type_system() -> str:
    """The hub's visit types (``neurosurgery-first``): what a Slot's serviceType names."""
    return fhir_base() + "/CodeSystem/visit-type"


def department_system() -> str:
    return fhir_base() + "/NamingSystem/department"


def instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def practitioner_identifier(practitioner: Practitioner) -> dict:
    return rpps_identifier(practitioner.rpps)


def rpps_from_token(value: str) -> str:
    """An RPPS number from a search token's value: "8" + RPPS (the national identifier) or the
    RPPS alone."""
    value = value.strip()
    return value[1:] if len(value) == 12 and value.startswith("8") else value


def finess_from_token(value: str) -> str:
    value = value.strip()
    return value[1:] if len(value) == 10 and value.startswith("1") else value


def reference(kind: str, public_id: str) -> dict:
    return {"reference": f"{kind}/{public_id}"}


def specialty_concept(specialty: Specialty) -> dict:
    coding = [{"system": specialty_system(), "code": specialty.code, "display": specialty.label_fr}]
    if specialty.ordinal_code:
        coding.insert(0, {"system": TRE_R38, "code": specialty.ordinal_code})
    return {"coding": coding, "text": specialty.label_fr}


def visit_type_concept(visit_type: VisitType) -> dict:
    return {
        "coding": [
            {"system": visit_type_system(), "code": visit_type.code, "display": visit_type.label_fr}
        ],
        "text": visit_type.label_fr,
    }


def _address(establishment: Establishment) -> dict:
    address: dict = {"use": "work", "type": "physical"}
    if establishment.address:
        address["line"] = [establishment.address]
    address["city"] = establishment.city
    if establishment.postcode:
        address["postalCode"] = establishment.postcode
    address["country"] = "FR"
    return address


def phone(raw: str) -> str:
    """A French number in the international form the SAS asks for (+33…)."""
    digits = "".join(c for c in raw if c.isdigit() or c == "+")
    if digits.startswith("0") and len(digits) == 10:
        return "+33" + digits[1:]
    return digits


def organization(organisation: Organisation) -> dict:
    resource: dict = {"resourceType": "Organization", "id": organisation.public_id}
    if organisation.finess_ej:
        resource["identifier"] = [finess_identifier(organisation.finess_ej)]
    resource["active"] = True
    resource["name"] = organisation.name
    if organisation.short_name:
        resource["alias"] = [organisation.short_name]
    if organisation.website:
        resource["telecom"] = [{"system": "url", "value": organisation.website}]
    return resource


def location(establishment: Establishment) -> dict:
    resource: dict = {
        "resourceType": "Location",
        "id": establishment.public_id,
        "identifier": [finess_identifier(establishment.finess)],
        "status": "active" if establishment.is_active else "inactive",
        "name": establishment.name,
    }
    if establishment.phone:
        resource["telecom"] = [{"system": "phone", "value": phone(establishment.phone)}]
    resource["address"] = _address(establishment)
    if establishment.latitude is not None and establishment.longitude is not None:
        resource["position"] = {
            "latitude": establishment.latitude,
            "longitude": establishment.longitude,
        }
    resource["managingOrganization"] = reference(
        "Organization", establishment.organisation.public_id
    )
    return resource


def healthcare_service(department: Department) -> dict:
    establishment = department.establishment
    return {
        "resourceType": "HealthcareService",
        "id": department.public_id,
        "identifier": [
            {"system": department_system(), "value": f"{establishment.finess}/{department.code}"}
        ],
        "active": True,
        "providedBy": reference("Organization", establishment.organisation.public_id),
        "location": [reference("Location", establishment.public_id)],
        "name": department.name,
    }


def human_name(practitioner: Practitioner) -> dict:
    name: dict = {"use": "official", "family": practitioner.last_name}
    if practitioner.first_name:
        name["given"] = [practitioner.first_name]
    if practitioner.title:
        name["prefix"] = [practitioner.title]
    return name


def practitioner_resource(practitioner: Practitioner) -> dict:
    return {
        "resourceType": "Practitioner",
        "id": practitioner.public_id,
        "identifier": [practitioner_identifier(practitioner)],
        "active": True,
        "name": [human_name(practitioner)],
    }


def practitioner_role(role: PractitionerRole) -> dict:
    resource: dict = {
        "resourceType": "PractitionerRole",
        "id": role.public_id,
        "active": role.is_active,
        "practitioner": reference("Practitioner", role.practitioner.public_id),
        "organization": reference("Organization", role.establishment.organisation.public_id),
        "location": [reference("Location", role.establishment.public_id)],
    }
    if role.department_id:
        resource["healthcareService"] = [reference("HealthcareService", role.department.public_id)]
    specialties = list(role.specialties.all())
    if specialties:
        resource["specialty"] = [specialty_concept(s) for s in specialties]
    return resource


def schedule(role: PractitionerRole) -> dict:
    """One Schedule per practitioner role (per place of consultation), named by the role's id:
    its actors are the practitioner and the role."""
    resource: dict = {
        "resourceType": "Schedule",
        "id": role.public_id,
        "active": role.is_active,
        "actor": [
            reference("Practitioner", role.practitioner.public_id),
            reference("PractitionerRole", role.public_id),
        ],
    }
    specialties = list(role.specialties.all())
    if specialties:
        resource["specialty"] = [specialty_concept(s) for s in specialties]
    return resource


def slot(slot: Slot) -> dict:
    return {
        "resourceType": "Slot",
        "id": slot.public_id,
        "serviceType": [visit_type_concept(slot.visit_type)],
        "specialty": [specialty_concept(slot.specialty)],
        "appointmentType": {"coding": [{"system": V2_0276, "code": "ROUTINE"}]},
        "schedule": reference("Schedule", slot.practitioner_role.public_id),
        "status": "free",
        "start": instant(slot.starts_at),
        "end": instant(slot.ends_at),
    }
