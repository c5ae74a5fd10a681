"""Search, holds, appointments and the waiting list over HTTP. Each handler: validate, load
through an access function, call one service, serialise."""

import json
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Literal

from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema
from ninja.responses import NinjaJSONEncoder

from creneau.agenda.models import Slot
from creneau.booking import idempotency, operators, queries, search_sql, services, waiting_room
from creneau.booking.models import Appointment, WaitingListEntry, paris_midnight
from creneau.booking.patients import contact_for, patient_details_clean
from creneau.booking.queries import PARIS
from creneau.booking.throttling import client_key, throttle, throttle_phone
from creneau.channels import queries as directory
from creneau.channels.api import ChannelOut, channel_out
from creneau.channels.queries import ChannelScope, channel_scope_for_request
from creneau.dates import ApiDay
from creneau.directory.models import Specialty
from creneau.errors import DomainError
from creneau.ledger.services import receipt

router = Router(tags=["booking"])

TOKEN_HEADER = "X-Manage-Token"  # noqa: S105 (a header name, not a secret)
IDEMPOTENCY_HEADER = "Idempotency-Key"


# ---------------------------------------------------------------------------------------------
# Schemas


class NamedRef(Schema):
    id: str
    name: str


class EstablishmentRef(Schema):
    id: str
    finess: str
    name: str
    city: str


class PractitionerRef(Schema):
    id: str
    rpps: str
    display_name: str


class VisitTypeRef(Schema):
    id: str
    code: str
    label: str
    duration_minutes: int
    preparation: str


class SlotOut(Schema):
    id: str
    starts_at: datetime = Field(description="UTC")
    ends_at: datetime = Field(description="UTC")
    local_starts_at: datetime = Field(description="the same instant in Europe/Paris time")
    places_left: int
    visit_type: VisitTypeRef
    practitioner: PractitionerRef
    establishment: EstablishmentRef
    department: str | None
    distance_km: float | None = None


class SlotPage(Schema):
    channel: ChannelOut
    items: list[SlotOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class DayOut(Schema):
    date: date
    slots: list[SlotOut]


class AvailabilityOut(Schema):
    practitioner: PractitionerRef
    week_start: date
    days: list[DayOut]
    next_available: SlotOut | None


class SlotFilters(Schema):
    visit_type: str | None = Field(None, description="a visit type id or code")
    specialty: str | None = Field(
        None, description="a specialty code (new-patient visits)", examples=["neurosurgery"]
    )
    establishment: str | None = Field(None, description="an establishment id or FINESS")
    practitioner: str | None = Field(None, description="a practitioner id or RPPS")
    from_date: ApiDay | None = Field(None, description="first day, Paris time")
    to_date: ApiDay | None = Field(None, description="last day, Paris time, included")
    time_of_day: Literal["morning", "afternoon"] | None = None
    from_time: time | None = Field(None, description="local time, HH:MM")
    to_time: time | None = Field(None, description="local time, HH:MM")
    near: str | None = Field(
        None, description="latitude,longitude", pattern=r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?$"
    )
    within_km: float | None = Field(None, gt=0, le=1000)
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = None


class AvailabilityFilters(Schema):
    week: ApiDay | None = Field(None, description="any day of the week wanted; default this week")
    visit_type: str | None = None
    establishment: str | None = None


class HoldIn(Schema):
    slot: str


class HoldOut(Schema):
    id: str
    slot: SlotOut
    expires_at: datetime
    expires_in_seconds: int


class PatientIn(Schema):
    last_name: str = Field(max_length=100)
    first_name: str = Field(max_length=100)
    birth_date: date
    phone: str = Field(
        "",
        max_length=30,
        description="any valid number, mobile or landline, of any country; text messages go "
        "only to mobiles of the regions the hub serves. Empty only for a call centre's or the "
        "desk's caller without a phone, with no_phone_reason",
    )
    email: str = Field("", max_length=254)
    language: Literal["fr", "en"] | None = None
    no_phone_reason: str = Field("", max_length=200)


class AppointmentIn(Schema):
    slot: str | None = Field(None, description="book this slot directly")
    hold: str | None = Field(None, description="or book through this hold")
    patient: PatientIn
    reason: str = Field("", max_length=500)


class LedgerReceipt(Schema):
    entry: str
    index: int | None


class OperatorRef(Schema):
    id: str
    name: str


class AppointmentOut(Schema):
    id: str
    status: str
    starts_at: datetime
    ends_at: datetime
    local_starts_at: datetime
    visit_type: VisitTypeRef
    practitioner: PractitionerRef
    establishment: EstablishmentRef
    patient_last_name: str
    patient_first_name: str
    reason: str
    operator: OperatorRef | None = Field(
        None, description="the operator company that booked it, if one did"
    )
    manage_token: str | None = Field(
        None, description="given once, at booking: keep it to see, move or cancel"
    )
    ledger: LedgerReceipt | None = Field(
        None,
        description="the transparency ledger's entry of the booking (or its last move): anyone "
        "checks it at /ledger/entry/{entry}; index is null until the log has sequenced it",
    )


class CancelIn(Schema):
    reason: str = Field("", max_length=300)


class RescheduleIn(Schema):
    slot: str | None = None
    hold: str | None = None


class WaitingListIn(Schema):
    visit_type: str
    before: date = Field(description="a slot is wanted before this day (Paris time)")
    establishment: str | None = None
    practitioner: str | None = None
    patient: PatientIn
    reason: str = Field("", max_length=500)


class OfferOut(Schema):
    id: str
    expires_at: datetime
    slot: SlotOut


class WaitingListOut(Schema):
    id: str
    status: str
    visit_type: VisitTypeRef
    before: date
    offer: OfferOut | None
    manage_token: str | None = None


class ErrorOut(Schema):
    code: str
    message: str


# ---------------------------------------------------------------------------------------------
# Serialisation


def _local(moment: datetime) -> datetime:
    return timezone.localtime(moment, PARIS)


def _visit_type(visit_type) -> dict:
    return {
        "id": visit_type.public_id,
        "code": visit_type.code,
        "label": visit_type.label,
        "duration_minutes": visit_type.duration_minutes,
        "preparation": visit_type.preparation,
    }


def _practitioner(practitioner) -> dict:
    return {
        "id": practitioner.public_id,
        "rpps": practitioner.rpps,
        "display_name": practitioner.display_name,
    }


def _establishment(establishment) -> dict:
    return {
        "id": establishment.public_id,
        "finess": establishment.finess,
        "name": establishment.name,
        "city": establishment.city,
    }


def _slot(slot: Slot, now: datetime, distance: float | None = None) -> dict:
    holds = slot.held if slot.held_until and slot.held_until > now else 0
    role = slot.practitioner_role
    return {
        "id": slot.public_id,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "local_starts_at": _local(slot.starts_at),
        "places_left": max(0, slot.capacity - slot.booked - holds),
        "visit_type": _visit_type(slot.visit_type),
        "practitioner": _practitioner(slot.practitioner),
        "establishment": _establishment(slot.establishment),
        "department": role.department.name if role.department_id else None,
        "distance_km": round(distance, 1) if distance is not None else None,
    }


def _appointment(appointment: Appointment, token: str | None = None) -> dict:
    return {
        "id": appointment.public_id,
        "status": appointment.status,
        "starts_at": appointment.starts_at,
        "ends_at": appointment.ends_at,
        "local_starts_at": _local(appointment.starts_at),
        "visit_type": _visit_type(appointment.visit_type),
        "practitioner": _practitioner(appointment.practitioner),
        "establishment": _establishment(appointment.establishment),
        "patient_last_name": appointment.patient_last_name,
        "patient_first_name": appointment.patient_first_name,
        "reason": appointment.reason,
        "operator": (
            {"id": appointment.operator.public_id, "name": appointment.operator.name}
            if appointment.operator_id
            else None
        ),
        "manage_token": token,
        "ledger": {"entry": appointment.ledger_entry, "index": None}
        if appointment.ledger_entry
        else None,
    }


def _entry(entry: WaitingListEntry, token: str | None = None) -> dict:
    offer = entry.offers.filter(status="pending").select_related("hold__slot").first()
    now = timezone.now()
    return {
        "id": entry.public_id,
        "status": entry.status,
        "visit_type": _visit_type(entry.visit_type),
        "before": _local(entry.before).date(),
        "offer": (
            {
                "id": offer.public_id,
                "expires_at": offer.expires_at,
                "slot": _slot(_full_slot(offer.hold.slot_id), now),
            }
            if offer
            else None
        ),
        "manage_token": token,
    }


def _full_slot(slot_id: int) -> Slot:
    return Slot.objects.select_related(
        "practitioner", "establishment", "visit_type", "practitioner_role__department"
    ).get(pk=slot_id)


def _json(request: HttpRequest, status: int, body: dict) -> HttpResponse:
    from creneau.api import api

    return api.create_response(request, body, status=status)


# ---------------------------------------------------------------------------------------------
# Resolving what the caller names, inside its scope


def _resolve_visit_type(scope: ChannelScope, ident: str):
    # Codes are unique per organisation: the channel's own organisation answers first, with
    # one look-up of its unique key; another organisation's visit type (or one named by its
    # id) must be offered in the perimeter.
    found = (
        search_sql.visit_type_by_code(scope.channel.organisation_id, ident)
        or directory.visit_types_in_scope(scope).filter(Q(public_id=ident) | Q(code=ident)).first()
    )
    if found is None:
        raise DomainError(
            "visit_type_not_found",
            _("No visit type %(id)s is offered in this channel.") % {"id": ident[:60]},
            status=404,
        )
    return found


def _resolve_establishment(scope: ChannelScope, ident: str | None):
    if not ident:
        return None
    found = directory.establishments_in_scope(scope, ident=ident).first()
    if found is None:
        raise DomainError(
            "establishment_not_found",
            _("No establishment %(id)s in this channel's perimeter.") % {"id": ident[:60]},
            status=404,
        )
    return found


def _resolve_practitioner(scope: ChannelScope, ident: str | None):
    if not ident:
        return None
    found = directory.practitioners_in_scope(scope, ident=ident).first()
    if found is None:
        raise DomainError(
            "practitioner_not_found",
            _("No practitioner %(id)s in this channel's perimeter.") % {"id": ident[:60]},
            status=404,
        )
    return found


def _patient(scope: ChannelScope, patient: PatientIn):
    return patient_details_clean(
        last_name=patient.last_name,
        first_name=patient.first_name,
        birth_date=patient.birth_date,
        phone=patient.phone,
        email=patient.email,
        language=patient.language or get_language() or "fr",
        contact=contact_for(scope.channel.kind),
        no_phone_reason=patient.no_phone_reason,
    )


def _limit(request: HttpRequest, scope: ChannelScope, action: str) -> None:
    """The per-address limits guard the doors open to anyone; an operator's channel answers to
    its contract's quotas instead (its calls come from a few servers, for many callers)."""
    if scope.contract is None:
        throttle(request, action)


def _access(request: HttpRequest, scope: ChannelScope, appointment_id: str) -> Appointment:
    """The appointment named in the address, for the holder of its manage token or, without
    one, for the operator whose channel may reach it; the same 404 for anything else."""
    token = request.headers.get(TOKEN_HEADER)
    if token or scope.contract is None:
        return queries.access_appointment(public_id=appointment_id, token=token)
    scope.require("read")
    return operators.access_appointment_for_operator(scope=scope, public_id=appointment_id)


def _slot_or_hold(scope: ChannelScope, slot: str | None, hold: str | None):
    if bool(slot) == bool(hold):
        raise DomainError(
            "slot_or_hold_required", _("Give either a slot or a hold, not both."), status=422
        )
    if hold:
        return None, queries.access_hold(scope=scope, public_id=hold)
    return queries.slot_by_id(slot or ""), None


def _with_receipt(body):
    """The ledger index, once the booking's transaction has committed (the sequencer runs
    outside it, so that bookings never wait on one another for the log)."""
    if isinstance(body, dict) and body.get("ledger"):
        body = {**body, "ledger": receipt(body["ledger"]["entry"])}
    return body


def _idempotency_client(request: HttpRequest, scope: ChannelScope) -> str:
    """Whose Idempotency-Key this is: the operator's API client or agent, else the browser's
    address (as a keyed hash: patients have no account)."""
    if scope.api_client is not None:
        return f"api:{scope.api_client.pk}"
    if scope.agent is not None:
        return f"agent:{scope.agent.pk}"
    return f"addr:{client_key(request)}"


def _idempotent(
    request: HttpRequest, scope: ChannelScope, run: Callable[[], tuple[int, dict]]
) -> HttpResponse:
    """Run a retryable write under the request's Idempotency-Key, if it has one."""
    status, body, replayed = idempotency.idempotent(
        channel=scope.channel,
        client=_idempotency_client(request, scope),
        key=request.headers.get(IDEMPOTENCY_HEADER),
        fingerprint=idempotency.request_fingerprint(
            request.method or "", request.path, request.body
        ),
        run=run,
    )
    response = _json(request, status, _with_receipt(body))
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return response


# ---------------------------------------------------------------------------------------------
# Endpoints


@router.get("/slots", response=SlotPage, summary="Earliest free slots")
def slots_list(request: HttpRequest, filters: Query[SlotFilters]):
    """Free slots inside the channel's perimeter, earliest first, for a visit type or a
    specialty. Page through with `next_cursor`."""
    scope = channel_scope_for_request(request)
    specialty = None
    if filters.specialty:
        specialty = Specialty.objects.filter(code=filters.specialty).first()
        if specialty is None:
            raise DomainError(
                "specialty_not_found",
                _("No specialty %(code)s.") % {"code": filters.specialty[:60]},
                status=404,
            )
    from_minute, to_minute = None, None
    if filters.time_of_day == "morning":
        to_minute = 12 * 60
    elif filters.time_of_day == "afternoon":
        from_minute = 12 * 60
    if filters.from_time:
        from_minute = filters.from_time.hour * 60 + filters.from_time.minute
    if filters.to_time:
        to_minute = filters.to_time.hour * 60 + filters.to_time.minute
    near = None
    if filters.near:
        latitude, longitude = (float(x) for x in filters.near.split(","))
        near = queries.Near(latitude=latitude, longitude=longitude, within_km=filters.within_km)
    elif filters.within_km is not None:
        raise DomainError(
            "near_required", _("within_km needs near=latitude,longitude."), status=422
        )
    scope.require("search")
    waiting_room.admit(request, scope, search=True)
    now = timezone.now()
    visit_type = _resolve_visit_type(scope, filters.visit_type) if filters.visit_type else None
    query = queries.SlotQuery(
        visit_type=visit_type,
        specialty=specialty,
        establishment=_resolve_establishment(scope, filters.establishment),
        practitioner=_resolve_practitioner(scope, filters.practitioner),
        starts_after=(paris_midnight(filters.from_date) if filters.from_date else None),
        starts_before=(
            paris_midnight(filters.to_date + timedelta(days=1)) if filters.to_date else None
        ),
        from_minute=from_minute,
        to_minute=to_minute,
        near=near,
        cursor=filters.cursor,
    )
    queries.require_criteria(query)
    distances, within = queries.distances_near(scope, near)
    found, next_cursor = search_sql.search(
        scope, query, now=now, limit=filters.limit, establishment_ids=within
    )
    services.offer_record(
        scope=scope, slots=found, query={"visit_type": visit_type, "specialty": specialty}
    )
    waiting_room.searched(request, scope, first_page=not filters.cursor, found=bool(found))
    body = {
        "channel": channel_out(scope),
        "items": [
            {
                "id": slot.public_id,
                "starts_at": slot.starts_at,
                "ends_at": slot.ends_at,
                "local_starts_at": _local(slot.starts_at),
                "places_left": slot.places_left,
                "visit_type": slot.visit_type,
                "practitioner": slot.practitioner,
                "establishment": slot.establishment,
                "department": slot.department,
                "distance_km": (
                    round(distances[slot.establishment_id], 1)
                    if near and slot.establishment_id in distances
                    else None
                ),
            }
            for slot in found
        ],
        "next_cursor": next_cursor,
    }
    # Built here to the SlotPage schema (tests/booking/test_search_sql.py validates it): the
    # search is the hub's busiest answer, and validating twenty slots again cost a fifth of it.
    return HttpResponse(
        json.dumps(body, cls=NinjaJSONEncoder), content_type="application/json; charset=utf-8"
    )


@router.get(
    "/practitioners/{practitioner_id}/availability",
    response=AvailabilityOut,
    summary="A practitioner's week",
)
def practitioner_availability(
    request: HttpRequest, practitioner_id: str, filters: Query[AvailabilityFilters]
):
    """One practitioner's free slots by day over a week, for a slot picker."""
    scope = channel_scope_for_request(request)
    scope.require("search")
    practitioner = _resolve_practitioner(scope, practitioner_id)
    now = timezone.now()
    visit_type = _resolve_visit_type(scope, filters.visit_type) if filters.visit_type else None
    week = queries.practitioner_availability(
        scope,
        practitioner=practitioner,
        week_start=filters.week,
        visit_type=visit_type,
        establishment=_resolve_establishment(scope, filters.establishment),
        now=now,
    )
    roles = {role.pk: role for role in practitioner.visible_roles}
    for _day, slots in week.days:
        for slot in slots:
            slot.practitioner, slot.practitioner_role = (
                practitioner,
                roles[slot.practitioner_role_id],
            )
    following = week.next_available
    if following is not None:
        following.practitioner = practitioner
        following.practitioner_role = roles[following.practitioner_role_id]
    offered = [slot for _day, slots in week.days for slot in slots]
    services.offer_record(
        scope=scope,
        slots=offered + ([following] if following else []),
        query={"practitioner": practitioner, "visit_type": visit_type},
    )
    return {
        "practitioner": _practitioner(practitioner),
        "week_start": week.week_start,
        "days": [
            {"date": day, "slots": [_slot(slot, now) for slot in slots]} for day, slots in week.days
        ],
        "next_available": _slot(following, now) if following else None,
    }


@router.post("/holds", response={201: HoldOut}, summary="Keep a slot while the patient types")
def hold_create(request: HttpRequest, payload: HoldIn):
    scope = channel_scope_for_request(request)
    scope.require("book")
    waiting_room.admit(request, scope)
    _limit(request, scope, "hold")
    slot = queries.slot_by_id(payload.slot)
    hold = services.hold_create(
        scope=scope, slot=slot, client=client_key(request) if scope.contract is None else ""
    )
    now = timezone.now()
    body = {
        "id": hold.public_id,
        "slot": _slot(_full_slot(slot.pk), now),
        "expires_at": hold.expires_at,
        "expires_in_seconds": max(0, int((hold.expires_at - now).total_seconds())),
    }
    return _json(request, 201, body)


@router.delete("/holds/{hold_id}", response={204: None}, summary="Give a hold back")
def hold_release(request: HttpRequest, hold_id: str):
    scope = channel_scope_for_request(request)
    services.hold_release(hold=queries.access_hold(scope=scope, public_id=hold_id))
    return HttpResponse(status=204)


@router.post(
    "/appointments",
    response={201: AppointmentOut, 403: ErrorOut, 409: ErrorOut, 410: ErrorOut, 422: ErrorOut},
    summary="Book",
)
def appointment_book(request: HttpRequest, payload: AppointmentIn):
    """Book a slot, directly or through a hold. Send an `Idempotency-Key` header to make
    retries safe. The answer's `manage_token` is shown once: it opens the appointment."""
    scope = channel_scope_for_request(request)
    scope.require("book")
    waiting_room.admit(request, scope)
    _limit(request, scope, "book")

    def run():
        slot, hold = _slot_or_hold(scope, payload.slot, payload.hold)
        patient = _patient(scope, payload.patient)
        throttle_phone(patient.phone)
        booked = services.appointment_book(
            scope=scope,
            patient=patient,
            slot=slot,
            hold=hold,
            reason=payload.reason,
        )
        # The slot carries what the answer shows: no need to read the appointment back.
        booked_slot = slot or hold.slot
        appointment = booked.appointment
        appointment.practitioner = booked_slot.practitioner
        appointment.establishment = booked_slot.establishment
        appointment.visit_type = booked_slot.visit_type
        return 201, _appointment(appointment, booked.manage_token)

    return _idempotent(request, scope, run)


@router.get("/appointments/{appointment_id}", response=AppointmentOut, summary="See")
def appointment_detail(request: HttpRequest, appointment_id: str):
    """The appointment, for the holder of its manage token (header `X-Manage-Token`), or for
    the operator that booked it or found it by a caller's look-up (its bearer token)."""
    scope = channel_scope_for_request(request)
    appointment = _access(request, scope, appointment_id)
    if scope.contract is not None and not request.headers.get(TOKEN_HEADER):
        operators.operator_list_record(scope, [appointment], one=True)
    return _with_receipt(_appointment(appointment))


@router.post("/appointments/{appointment_id}/cancel", response=AppointmentOut, summary="Cancel")
def appointment_cancel(request: HttpRequest, appointment_id: str, payload: CancelIn):
    scope = channel_scope_for_request(request)
    scope.require("cancel")
    appointment = _access(request, scope, appointment_id)

    def run():
        services.appointment_cancel(
            appointment=appointment, channel_scope=scope, reason=payload.reason
        )
        return 200, _appointment(appointment)

    return _idempotent(request, scope, run)


@router.post("/appointments/{appointment_id}/reschedule", response=AppointmentOut, summary="Move")
def appointment_reschedule(request: HttpRequest, appointment_id: str, payload: RescheduleIn):
    """Move to another slot of the same visit type, atomically."""
    scope = channel_scope_for_request(request)
    scope.require("move")
    appointment = _access(request, scope, appointment_id)

    def run():
        slot, hold = _slot_or_hold(scope, payload.slot, payload.hold)
        services.appointment_reschedule(appointment=appointment, scope=scope, slot=slot, hold=hold)
        return 200, _appointment(_access(request, scope, appointment_id))

    return _idempotent(request, scope, run)


@router.post("/waiting-list", response={201: WaitingListOut}, summary="Join the waiting list")
def waiting_list_join(request: HttpRequest, payload: WaitingListIn):
    scope = channel_scope_for_request(request)
    scope.require("book")
    _limit(request, scope, "wait")

    def run():
        joined = services.waiting_list_join(
            scope=scope,
            visit_type=_resolve_visit_type(scope, payload.visit_type),
            before=paris_midnight(payload.before),
            patient=_patient(scope, payload.patient),
            establishment=_resolve_establishment(scope, payload.establishment),
            practitioner=_resolve_practitioner(scope, payload.practitioner),
            reason=payload.reason,
        )
        return 201, _entry(joined.entry, joined.manage_token)

    return _idempotent(request, scope, run)


def _waiting_entry(request: HttpRequest, entry_id: str) -> WaitingListEntry:
    return queries.access_waiting_list_entry(
        public_id=entry_id, token=request.headers.get(TOKEN_HEADER)
    )


@router.get("/waiting-list/{entry_id}", response=WaitingListOut, summary="A waiting-list request")
def waiting_list_detail(request: HttpRequest, entry_id: str):
    """The request and, when a slot was freed for it, the offer and until when it stands."""
    return _entry(_waiting_entry(request, entry_id))


@router.post(
    "/waiting-list/{entry_id}/accept", response={201: AppointmentOut}, summary="Take the offer"
)
def waiting_list_accept(request: HttpRequest, entry_id: str):
    scope = channel_scope_for_request(request)
    entry = _waiting_entry(request, entry_id)

    def run():
        booked = services.waiting_list_accept(entry=entry, scope=scope)
        appointment = queries.access_appointment(
            public_id=booked.appointment.public_id, token=booked.manage_token
        )
        return 201, _appointment(appointment, booked.manage_token)

    return _idempotent(request, scope, run)


@router.post("/waiting-list/{entry_id}/decline", response=WaitingListOut, summary="Pass")
def waiting_list_decline(request: HttpRequest, entry_id: str):
    entry = _waiting_entry(request, entry_id)
    services.waiting_list_decline(entry=entry)
    entry.refresh_from_db()
    return _entry(entry)


@router.post("/waiting-list/{entry_id}/cancel", response=WaitingListOut, summary="Leave")
def waiting_list_cancel(request: HttpRequest, entry_id: str):
    entry = _waiting_entry(request, entry_id)
    services.waiting_list_cancel(entry=entry)
    return _entry(entry)
