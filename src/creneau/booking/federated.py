"""Booking a slot of a remote agenda (a practitioner whose agenda is another system's FHIR
server): the remote is the practitioner's agenda, so a place is taken there before here.

In order: the place is held here (so two patients of this hub never both reach the remote),
then held there (IHE ``$hold``), then booked there (``$book``), then confirmed here. If the
remote refuses, the slot is given back here and leaves search (409 ``slot_taken_remotely``); if
it does not answer, the patient is told to try later (503 ``agenda_unavailable``); either way
nothing is booked on either side and the refusal goes to the ledger (``error.refusal``, written
by the view once the refused change has rolled back). Cancellations and moves go through the
remote the same way, the remote first."""

import contextlib
from datetime import datetime
from functools import partial

from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource, Slot
from creneau.agenda.sources.fhir_agenda import FhirAgenda, RemoteRefused, RemoteUnavailable
from creneau.booking.models import Appointment, Hold
from creneau.booking.patients import PatientDetails
from creneau.errors import DomainError
from creneau.fhir import resources
from creneau.ledger import payloads

# How long the hub keeps a place while it books it through the remote, when the caller came
# without a hold of its own.
BOOKING_HOLD_MINUTES = 2


def is_remote(slot: Slot) -> bool:
    return slot.source == Slot.Source.FHIR


def _fhir_source(slot: Slot) -> AgendaSource | None:
    return AgendaSource.objects.filter(
        practitioner_role_id=slot.practitioner_role_id, kind=AgendaSource.Kind.FHIR
    ).first()


def _remote(slot: Slot) -> FhirAgenda:
    source = _fhir_source(slot)
    if source is None:
        raise RemoteUnavailable(
            "remote_not_configured", _("This practitioner's remote agenda is no longer set.")
        )
    return FhirAgenda(source)


def refusal(error: DomainError, slot: Slot, scope) -> DomainError:
    """The patient's answer for a remote's refusal or silence, carrying its ledger entry."""
    from creneau.booking.services import BookingError, _scope_fields

    if isinstance(error, RemoteRefused):
        answer = BookingError(
            "slot_taken_remotely",
            _(
                "This slot has just been taken in the practitioner's own agenda. Please "
                "choose another one."
            ),
            status=409,
        )
    else:
        answer = BookingError(
            "agenda_unavailable",
            _(
                "This practitioner's agenda cannot be reached at the moment: nothing was "
                "booked. Please try again later or call the hospital."
            ),
            status=503,
        )
    if isinstance(error, RemoteRefused):
        # The remote gave the place to someone else: it leaves search here (once the refused
        # booking has rolled back) until the next sync deletes it.
        answer.aftermath = partial(_withdraw, slot.pk)
    answer.refusal = {
        **(_scope_fields(scope) if scope is not None else {}),
        "slot": slot.public_id,
        **payloads.place(slot),
        "remote": error.code,
    }
    return answer


def _withdraw(slot_id: int) -> None:
    Slot.objects.filter(pk=slot_id, booked=0).update(is_offered=False)


def hold_remote(hold: Hold, scope) -> Hold:
    """Hold the remote slot for a hold just taken here; the local hold goes if it cannot."""
    from creneau.booking.services import hold_release

    slot = hold.slot
    try:
        remote = _remote(slot)
        if remote.rest:
            return hold  # nothing to hold there: the booking takes the slot at once
        hold.external_id = remote.hold(slot.external_id)
    except (RemoteRefused, RemoteUnavailable) as error:
        hold_release(hold=hold, remote=False)
        raise refusal(error, slot, scope) from error
    Hold.objects.filter(pk=hold.pk).update(external_id=hold.external_id)
    return hold


def release_remote(hold: Hold) -> None:
    """Give the remote hold back (it would expire there anyway: a failure is not the
    patient's concern)."""
    if not hold.external_id:
        return
    with contextlib.suppress(RemoteRefused, RemoteUnavailable):
        _remote(hold.slot).cancel(hold.external_id)


def _hold_system() -> str:
    return resources.fhir_base() + "/NamingSystem/hold"


def _patient_resource(patient: PatientDetails, hold: Hold) -> dict:
    telecom = [{"system": "phone", "value": patient.phone}] if patient.phone else []
    if patient.email:
        telecom.append({"system": "email", "value": patient.email})
    return {
        "resourceType": "Patient",
        # The hub's reference for the booking: the remote finds it by it (ITI-118).
        "identifier": [{"system": _hold_system(), "value": hold.public_id}],
        "name": [{"family": patient.last_name, "given": patient.first_name.split()}],
        "birthDate": patient.birth_date.isoformat(),
        "telecom": telecom,
        "communication": [{"language": {"coding": [{"code": patient.language or "fr"}]}}],
    }


def appointment_book(
    *, scope, patient: PatientDetails, slot: Slot, hold: Hold | None, book_here, now: datetime
):
    """Book ``slot`` through its remote agenda, then here with ``book_here(hold=…,
    external_id=…)`` (the local booking, which consumes the hold)."""
    from creneau.booking.services import hold_create, hold_release

    own_hold = hold is None
    if hold is None:
        hold = hold_create(scope=scope, slot=slot, minutes=BOOKING_HOLD_MINUTES, now=now)
    elif not hold.external_id:
        hold_remote(hold, scope)
    remote = _remote(slot)
    try:
        external_id = remote.book(
            remote_hold=hold.external_id,
            remote_slot=slot.external_id,
            patient=_patient_resource(patient, hold),
            key=f"creneau-{hold.public_id}",
        )
    except (RemoteRefused, RemoteUnavailable) as error:
        if isinstance(error, RemoteUnavailable):
            # The answer may have been lost after the remote booked: undo what it booked for
            # this hold, so that nothing stays booked there that is not booked here.
            with contextlib.suppress(RemoteRefused, RemoteUnavailable):
                remote.cancel_booked_for(_hold_system(), hold.public_id)
        if own_hold or isinstance(error, RemoteRefused):
            hold_release(hold=hold)
        raise refusal(error, slot, scope) from error
    try:
        return book_here(hold=hold, external_id=external_id)
    except Exception:
        # Booked there but not here (the perimeter narrowed meanwhile, a quota): undone there.
        with contextlib.suppress(RemoteRefused, RemoteUnavailable):
            remote.cancel(external_id, reason="not confirmed by the hub")
        raise


def appointment_cancel(appointment: Appointment, *, reason: str, scope) -> None:
    """Cancel at the remote first: if it cannot be reached, nothing changes here either."""
    if not appointment.external_id or appointment.slot_id is None:
        return
    slot = appointment.slot
    if appointment.status != Appointment.Status.BOOKED:
        return  # the local cancellation refuses it, with its own message
    source = _fhir_source(slot)
    if source is None:
        return  # the practitioner left that agenda: nobody there to tell
    try:
        FhirAgenda(source).cancel(appointment.external_id, reason=reason)
    except (RemoteRefused, RemoteUnavailable) as error:
        raise refusal(error, slot, scope) from error


def appointment_move(appointment: Appointment, *, hold: Hold, scope) -> None:
    """Move the remote appointment to the held slot's remote slot, before the hub does."""
    slot = hold.slot
    try:
        _remote(slot).move(appointment.external_id, slot.external_id)
    except (RemoteRefused, RemoteUnavailable) as error:
        from creneau.booking.services import hold_release

        hold_release(hold=hold, remote=False)
        raise refusal(error, slot, scope) from error


def move_back(appointment: Appointment, old_slot: Slot) -> None:
    """The remote appointment back to its slot when the move failed here (best effort: the
    remote then shows what the hub shows)."""
    with contextlib.suppress(RemoteRefused, RemoteUnavailable):
        _remote(old_slot).move(appointment.external_id, old_slot.external_id)
