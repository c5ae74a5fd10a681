"""IHE ITI Scheduling (IHE/ITI.Scheduling, STANDARDS.md §3) for other agenda systems that book
into the hub: $find (ITI-115) proposes appointments on free slots, never on held time; $hold
(ITI-116) keeps one; $book (ITI-117) books it, cancels it (the same resource, status
cancelled) or moves it (the same resource on another slot); ITI-118 finds the caller's own
appointments. Behind OAuth2 client credentials bound to a contract, as the operators' JSON API:
the same perimeter, quotas, holds cap, idempotency keys and ledger entries, through the same
booking services."""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.parameters import Parameters as FhirParameters
from fhir.resources.R4B.patient import Patient as FhirPatient
from pydantic import ValidationError

from creneau.agenda.models import Slot
from creneau.agenda.queries import offerable_slots
from creneau.booking import queries, services
from creneau.booking.models import PARIS, Appointment, Hold
from creneau.booking.patients import Contact, PatientDetails, patient_details_clean
from creneau.channels.queries import ChannelScope
from creneau.dates import instant_in_range
from creneau.directory.national import IDNPS_SYSTEM
from creneau.fhir import resources
from creneau.fhir.resources import rpps_from_token
from creneau.fhir.responses import FhirError
from creneau.fhir.rows import SlotRow, slot_rows
from creneau.fhir.search import token

MAX_FIND = 100
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
STATUS_REASON = "http://hl7.org/fhir/StructureDefinition/appointment-cancellationReason"
# Créneau's appointment statuses as FHIR's.
FHIR_STATUS = {
    "booked": "booked",
    "arrived": "arrived",
    "done": "fulfilled",
    "no_show": "noshow",
    "cancelled_patient": "cancelled",
    "cancelled_staff": "cancelled",
    "cancelled_operator": "cancelled",
}


def appointment_system() -> str:
    return resources.fhir_base() + "/NamingSystem/appointment"


def invalid(code: str, message: str, status: int = 400) -> FhirError:
    return FhirError(code, message, status=status)


def checked_shape(resource: dict, model, where: str) -> None:
    """Every element sent has FHIR's type (fhir.resources' R4B models): a 400 naming the first
    that has not. An element left out is for the operation to require, not the shape."""
    try:
        model.model_validate(resource)
    except ValidationError as error:
        wrong = [e for e in error.errors() if e["type"] != "missing"]
        if wrong:
            # FHIRPath's way: Parameters.parameter[1].resource.name[0]
            element = where + "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in wrong[0]["loc"]
            )
            raise invalid(
                "invalid_element",
                _("%(element)s is not valid FHIR: %(why)s")
                % {"element": element, "why": wrong[0]["msg"][:120]},
            ) from None
    except (TypeError, ValueError, RecursionError) as error:
        raise invalid(
            "invalid_element", _("%(element)s is not valid FHIR.") % {"element": where}
        ) from error


# ---------------------------------------------------------------------------------------------
# Parameters in


@dataclass
class Parameters:
    """A FHIR Parameters resource (POST) or the query string (GET), by name."""

    values: dict[str, list[Any]]

    @classmethod
    def from_request(cls, request: HttpRequest) -> "Parameters":
        if request.method == "GET":
            return cls({name: request.GET.getlist(name) for name in request.GET})
        try:
            body = json.loads(request.body or b"null")
        except ValueError as error:
            raise invalid("invalid_json", _("The body is not JSON.")) from error
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise invalid("parameters_expected", _("Send a FHIR Parameters resource."))
        checked_shape(body, FhirParameters, "Parameters")
        values: dict[str, list[Any]] = {}
        for parameter in body.get("parameter") or []:
            if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                raise invalid("parameters_expected", _("Each parameter needs a name."))
            value = parameter.get("resource")
            if value is None:
                value = next((v for k, v in parameter.items() if k.startswith("value")), None)
            values.setdefault(parameter["name"], []).append(value)
        return cls(values)

    @classmethod
    def from_resource(cls, request: HttpRequest, *, expect_id: str | None) -> "Parameters":
        """FHIR REST: the body is the Appointment itself, its patient a contained Patient; on
        update, its id is the address's."""
        try:
            resource = json.loads(request.body or b"null")
        except ValueError as error:
            raise invalid("invalid_json", _("The body is not JSON.")) from error
        if not isinstance(resource, dict) or resource.get("resourceType") != "Appointment":
            raise invalid("appointment_required", _("Send an Appointment resource."))
        checked_shape(resource, FhirAppointment, "Appointment")
        if expect_id is None and resource.get("id"):
            raise invalid("id_not_allowed", _("A created Appointment has no id yet."))
        if expect_id is not None and resource.get("id") != expect_id:
            raise invalid("id_mismatch", _("The Appointment's id must be the address's."))
        contained = [
            r
            for r in resource.get("contained") or []
            if isinstance(r, dict) and r.get("resourceType") == "Patient"
        ]
        values: dict[str, list[Any]] = {"appointment-resource": [resource]}
        if contained:
            values["patient-resource"] = contained[:1]
        return cls(values)

    def first(self, name: str) -> Any:
        found = self.values.get(name) or [None]
        return found[0]

    def text(self, name: str) -> str | None:
        """A code, a string, a Coding or a CodeableConcept, read as its code."""
        value = self.first(name)
        if isinstance(value, dict):
            coding = value.get("coding") or [value]
            value = coding[0].get("code") if coding and isinstance(coding[0], dict) else None
        return str(value).strip() if value not in (None, "") else None

    def reference_id(self, name: str, kind: str) -> str | None:
        value = self.first(name)
        if isinstance(value, dict):
            value = value.get("reference")
        if not value:
            return None
        parts = str(value).rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] != kind:
            raise invalid(
                "invalid_reference",
                _("%(name)s must refer to a %(kind)s.") % {"name": name, "kind": kind},
            )
        return parts[-1]

    def instant(self, name: str, *, end: bool = False) -> datetime:
        value = self.first(name)
        if not value:
            raise invalid(
                "parameter_required", _("The parameter %(name)s is required.") % {"name": name}
            )
        try:
            if len(str(value)) == 10:
                day = date.fromisoformat(str(value))
                moment = datetime.combine(day + timedelta(days=int(end)), time(), tzinfo=PARIS)
            else:
                moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, OverflowError) as error:
            raise invalid(
                "invalid_date",
                _("%(name)s is not a FHIR date or dateTime.") % {"name": name},
            ) from error
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=PARIS)
        if not instant_in_range(moment):
            raise invalid("invalid_date", _("%(name)s is too far from today.") % {"name": name})
        return moment

    def count(self) -> int:
        raw = self.first("_count")
        try:
            count = int(raw) if raw is not None else 20
        except (TypeError, ValueError):
            count = -1
        if not 1 <= count <= MAX_FIND:
            raise invalid(
                "invalid_parameter",
                _("_count must be a whole number from 1 to %(max)s.") % {"max": MAX_FIND},
            )
        return count


# ---------------------------------------------------------------------------------------------
# Appointments out


def _participants(role, practitioner, establishment) -> list[dict]:
    return [
        {
            "actor": {
                **resources.reference("Practitioner", practitioner.public_id),
                "display": practitioner.display_name,
            },
            "required": "required",
            "status": "accepted",
        },
        {
            "actor": {
                **resources.reference("Location", establishment.public_id),
                "display": establishment.name,
            },
            "required": "required",
            "status": "accepted",
        },
    ]


def proposed(slot: SlotRow) -> dict:
    return {
        "resourceType": "Appointment",
        "status": "proposed",
        "serviceType": [resources.visit_type_concept(slot.visit_type)],
        "specialty": [resources.specialty_concept(slot.specialty)],
        "appointmentType": {"coding": [{"system": resources.V2_0276, "code": "ROUTINE"}]},
        "start": resources.instant(slot.starts_at),
        "end": resources.instant(slot.ends_at),
        "slot": [resources.reference("Slot", slot.public_id)],
        "participant": _participants(slot.practitioner_role, slot.practitioner, slot.establishment),
    }


def pending(hold: Hold) -> dict:
    slot = hold.slot
    return {
        **proposed(
            SlotRow(
                public_id=slot.public_id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                capacity=slot.capacity,
                booked=slot.booked,
                visit_type_id=slot.visit_type_id,
                practitioner_role=slot.practitioner_role,
                visit_type=slot.visit_type,
                specialty=slot.specialty,
            )
        ),
        "id": hold.public_id,
        "status": "pending",
        "requestedPeriod": [
            {"start": resources.instant(hold.created_at), "end": resources.instant(hold.expires_at)}
        ],
    }


def booked(appointment: Appointment) -> dict:
    resource: dict = {
        "resourceType": "Appointment",
        "id": appointment.public_id,
        "identifier": [{"system": appointment_system(), "value": appointment.public_id}],
        "status": FHIR_STATUS.get(appointment.status, "booked"),
        "serviceType": [resources.visit_type_concept(appointment.visit_type)],
        "start": resources.instant(appointment.starts_at),
        "end": resources.instant(appointment.ends_at),
        "created": resources.instant(appointment.created_at),
        "participant": _participants(
            appointment.practitioner_role, appointment.practitioner, appointment.establishment
        ),
    }
    if appointment.slot_id:
        resource["slot"] = [resources.reference("Slot", appointment.slot.public_id)]
    if appointment.partner_patient_id:
        system, _bar, value = appointment.partner_patient_id.rpartition("|")
        identifier = {"system": system, "value": value} if system else {"value": value}
        resource["participant"].append(
            {
                "type": [{"coding": [{"system": PARTICIPATION_TYPE, "code": "SBJ"}]}],
                "actor": {"identifier": identifier},
                "status": "accepted",
            }
        )
    if appointment.cancel_reason:
        resource["cancelationReason"] = {"text": appointment.cancel_reason}
    return resource


def bundle(resources_out: list[dict], mode: str = "match") -> dict:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources_out),
        **(
            {"entry": [{"resource": r, "search": {"mode": mode}} for r in resources_out]}
            if resources_out
            else {}
        ),
    }


# ---------------------------------------------------------------------------------------------
# ITI-115 $find


def find(scope: ChannelScope, parameters: Parameters, now: datetime) -> list[SlotRow]:
    start = parameters.instant("start")
    end = parameters.instant("end", end=True)
    if end <= start or end - start > timedelta(days=366):
        raise invalid("invalid_period", _("end must follow start, within a year."))
    found = offerable_slots(scope, now).filter(starts_at__gte=max(start, now), starts_at__lt=end)
    specialty = parameters.text("specialty")
    if specialty:
        found = found.filter(Q(specialty__code=specialty) | Q(specialty__ordinal_code=specialty))
    visit = parameters.text("visit-type") or parameters.text("service-type")
    if visit:
        found = found.filter(visit_type__code=visit)
    practitioner = parameters.first("practitioner")
    if practitioner:
        found = found.filter(_practitioner_condition(practitioner))
    organization = parameters.reference_id("organization", "Organization")
    if organization:
        found = found.filter(establishment__organisation__public_id=organization)
    location = parameters.reference_id("location-reference", "Location")
    if location:
        found = found.filter(establishment__public_id=location)
    rows = slot_rows(found.order_by("starts_at", "public_id")[: parameters.count()])
    services.offer_record(scope=scope, slots=rows, query={}, via="ihe")
    return rows


def _practitioner_condition(value: Any) -> Q:
    """A reference (Practitioner/ID), or an identifier (system|8RPPS, 8RPPS, RPPS)."""
    if isinstance(value, dict):
        if value.get("reference"):
            return Q(practitioner__public_id=str(value["reference"]).rstrip("/").split("/")[-1])
        identifier = value.get("identifier") or value
        value = f"{identifier.get('system', '')}|{identifier.get('value', '')}"
    parsed = token(str(value))
    if parsed.system in (IDNPS_SYSTEM, ""):
        return Q(practitioner__rpps=rpps_from_token(parsed.code))
    if "/" in parsed.code:
        return Q(practitioner__public_id=parsed.code.rstrip("/").split("/")[-1])
    return Q(practitioner__rpps=rpps_from_token(parsed.code)) | Q(
        practitioner__public_id=parsed.code
    )


# ---------------------------------------------------------------------------------------------
# ITI-116 $hold and ITI-117 $book


def _appointment_in(parameters: Parameters) -> dict:
    resource = parameters.first("appointment-resource") or parameters.first("appointment")
    if not isinstance(resource, dict) or resource.get("resourceType") != "Appointment":
        raise invalid(
            "appointment_required",
            _("Send the Appointment as the parameter appointment-resource."),
        )
    checked_shape(resource, FhirAppointment, "Appointment")
    return resource


def _slot_of(resource: dict) -> Slot:
    slots = resource.get("slot") or []
    reference = slots[0].get("reference", "") if slots and isinstance(slots[0], dict) else ""
    if not reference.startswith("Slot/"):
        raise invalid("slot_required", _("The Appointment must name its slot (Slot/ID)."))
    return queries.slot_by_id(reference.removeprefix("Slot/"))


def hold(scope: ChannelScope, parameters: Parameters) -> Hold:
    scope.require("book")
    return services.hold_create(scope=scope, slot=_slot_of(_appointment_in(parameters)))


def _patient(parameters: Parameters) -> tuple[PatientDetails, str]:
    """The Patient resource's name, birth date, phone, e-mail and language; its identifier."""
    patient = parameters.first("patient-resource") or parameters.first("patient")
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise invalid("patient_required", _("Send the Patient as the parameter patient-resource."))
    checked_shape(patient, FhirPatient, "Patient")
    name = (patient.get("name") or [{}])[0]
    telecom = patient.get("telecom") or []
    phone = next((t.get("value", "") for t in telecom if t.get("system") == "phone"), "")
    email = next((t.get("value", "") for t in telecom if t.get("system") == "email"), "")
    language = next(
        (
            coding.get("code", "")
            for item in patient.get("communication") or []
            for coding in (item.get("language") or {}).get("coding") or []
        ),
        "fr",
    )
    try:
        birth = date.fromisoformat(patient.get("birthDate") or "")
    except ValueError:
        birth = None
    if birth is None:
        raise invalid("invalid_patient", _("The Patient's birthDate is required."), status=422)
    details = patient_details_clean(
        last_name=name.get("family") or "",
        first_name=" ".join(name.get("given") or []),
        birth_date=birth,
        phone=phone,
        email=email,
        language=language,
        contact=Contact.PARTNER,
    )
    identifier = (patient.get("identifier") or [{}])[0]
    kept = (
        f"{identifier.get('system', '')}|{identifier.get('value')}"
        if identifier.get("value")
        else ""
    )
    return details, kept


def own_appointments(scope: ChannelScope) -> QuerySet[Appointment]:
    """What the caller booked, inside its perimeter: nobody else's."""
    return queries.with_details(
        Appointment.objects.filter(
            channel=scope.channel,
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
        )
    ).select_related("slot")


def book(scope: ChannelScope, parameters: Parameters) -> tuple[int, dict]:
    resource = _appointment_in(parameters)
    status, resource_id = resource.get("status"), resource.get("id")
    existing = (
        own_appointments(scope).filter(public_id=resource_id).first() if resource_id else None
    )
    if existing is not None:
        if status == "cancelled":
            scope.require("cancel")
            services.appointment_cancel(
                appointment=existing,
                channel_scope=scope,
                reason=(resource.get("cancelationReason") or {}).get("text", ""),
            )
        else:
            slot = _slot_of(resource)
            if slot.pk == existing.slot_id:
                raise invalid(
                    "same_slot", _("The appointment is already in this slot."), status=422
                )
            scope.require("move")
            services.appointment_reschedule(appointment=existing, scope=scope, slot=slot)
        return 200, booked(own_appointments(scope).get(pk=existing.pk))
    scope.require("book")
    held = (
        Hold.objects.select_related("slot")
        .filter(public_id=resource_id, channel=scope.channel)
        .first()
        if resource_id
        else None
    )
    if status == "cancelled":
        if held is None:
            raise invalid(
                "not_found",
                _("No appointment or hold %(id)s here.") % {"id": str(resource_id)[:40]},
                status=404,
            )
        services.hold_release(hold=held)
        return 200, {**pending(held), "status": "cancelled"}
    details, partner_patient_id = _patient(parameters)
    made = services.appointment_book(
        scope=scope,
        patient=details,
        slot=None if held else _slot_of(resource),
        hold=held,
        partner_patient_id=partner_patient_id,
    )
    return 201, booked(own_appointments(scope).get(pk=made.appointment.pk))


# ---------------------------------------------------------------------------------------------
# ITI-118 search


def search(scope: ChannelScope, request: HttpRequest) -> list[dict]:
    found = own_appointments(scope).order_by("starts_at", "pk")
    for raw in request.GET.getlist("date"):
        prefix, text = (raw[:2], raw[2:]) if raw[:2].isalpha() else ("eq", raw)
        lookup = {"ge": "gte", "gt": "gt", "le": "lte", "lt": "lt", "eq": "date"}.get(prefix)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            lookup = None
        if lookup is None:
            raise invalid("invalid_date", _("date takes ge, gt, le, lt or eq and a FHIR date."))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=PARIS)
        if not instant_in_range(moment):
            raise invalid("invalid_date", _("%(name)s is too far from today.") % {"name": "date"})
        found = found.filter(
            **{f"starts_at__{lookup}": moment.date() if lookup == "date" else moment}
        )
    for raw in request.GET.getlist("patient.identifier"):
        parsed = token(raw)
        if parsed.system is None:
            found = found.filter(partner_patient_id__endswith=f"|{parsed.code}")
        else:
            found = found.filter(partner_patient_id=f"{parsed.system}|{parsed.code}")
    for name in ("_id", "identifier"):
        for raw in request.GET.getlist(name):
            found = found.filter(public_id=token(raw).code)
    statuses = request.GET.getlist("status")
    if statuses:
        wanted = {s for raw in statuses for s in raw.split(",")}
        found = found.filter(
            status__in=[ours for ours, theirs in FHIR_STATUS.items() if theirs in wanted]
        )
    return [booked(appointment) for appointment in found[:500]]
