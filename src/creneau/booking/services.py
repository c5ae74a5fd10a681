"""Every change to bookings: holds, appointments, moves, cancellations, the waiting list.

The booking invariants (DESIGN.md 1-5) hold here and in the database together:
- capacity: a slot is taken by one conditional UPDATE (``booked + held < capacity``) that the
  database evaluates under the row's lock, and the slot's CHECK constraints refuse any excess;
- overlap: on PostgreSQL the exclusion constraint of booking migration 0002; on SQLite every
  write transaction is BEGIN IMMEDIATE (settings), so the check made here cannot interleave;
- perimeter: re-checked in the same transaction as the write, whatever the caller showed before.
"""

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import Slot
from creneau.agenda.queries import offerable_slots, unblocked
from creneau.booking import federated
from creneau.booking.models import (
    ACTIVE_STATUSES,
    PARIS,
    Appointment,
    AppointmentEvent,
    Hold,
    WaitingListEntry,
    WaitingListOffer,
    paris_midnight,
)
from creneau.booking.patients import PatientDetails
from creneau.channels.models import Channel
from creneau.channels.queries import ChannelScope, QuotaExceeded, channel_scope_for_key
from creneau.directory.models import Establishment, Practitioner, VisitType
from creneau.errors import DomainError
from creneau.ledger import payloads
from creneau.ledger.services import entry_append
from creneau.notify.quiet import next_waking, waking_deadline
from creneau.notify.services import (
    appointment_messages_queue,
    appointment_status_reported,
    offer_messages_queue,
)
from creneau.operations import metrics
from creneau.sealing import seal

NO_OVERLAP_CONSTRAINT = "booking_appointment_no_overlap"
MAX_SLOT_LENGTH = timedelta(minutes=480)  # VisitType.duration_minutes and slot_minutes bound
# The first key of PostgreSQL's two-key advisory locks: Créneau's practitioners' time.
_LOCK_SPACE = 0x43524E
# ... and the holds of one visitor, or of one channel, against their cap.
_HOLDER_SPACE = 0x43524F
_CHANNEL_SPACE = 0x435250


class BookingError(DomainError):
    status = 409


def _slot_taken() -> BookingError:
    return BookingError("slot_taken", _("This slot has just been taken. Please choose another."))


def new_token() -> str:
    """A manage token: 128 random bits (22 characters, short enough for a link in one SMS, and
    far beyond guessing, the more so behind the per-client limits). The database keeps its
    hash, to find and check it, and a sealed copy, for the links in later messages."""
    return secrets.token_urlsafe(16)


def _patient_record(patient: PatientDetails, reason: str, token: str) -> dict:
    return {
        "patient_last_name": patient.last_name,
        "patient_first_name": patient.first_name,
        "patient_birth_date": patient.birth_date,
        "patient_phone": patient.phone,
        "patient_no_phone_reason": patient.no_phone_reason,
        "patient_email": patient.email,
        "patient_language": patient.language,
        "reason": reason.strip()[:500],
        "manage_token_hash": token_hash(token),
        "sealed_token": seal(token),
    }


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str | None, stored_hash: str) -> bool:
    return bool(token) and secrets.compare_digest(token_hash(token or ""), stored_hash)


# ---------------------------------------------------------------------------------------------
# Taking and giving back places


def _check_bookable(scope: ChannelScope, slot: Slot, now: datetime) -> None:
    from creneau.booking.search_sql import booking_checks

    inside, stale, reserved = booking_checks(scope, slot, now)
    if not inside:
        error = BookingError(
            "out_of_perimeter",
            _("This slot is outside what this channel may book."),
            status=403,
        )
        error.refusal = {
            **_scope_fields(scope),
            "slot": slot.public_id,
            **payloads.place(slot),
        }
        raise error
    if not slot.is_offered or not slot.bookable_from <= now < slot.bookable_until:
        raise BookingError(
            "slot_unavailable", _("This slot can no longer be booked online."), status=409
        )
    if stale:
        raise BookingError(
            "agenda_unavailable",
            _(
                "This practitioner's agenda cannot be read at the moment: the slot cannot be "
                "booked online. Please try again later or call the hospital."
            ),
            status=503,
        )
    if reserved and not scope.sees_reserved_visits:
        raise BookingError(
            "slot_reserved",
            _("This slot is reserved to the regulators of the SAS: it opens only from their link."),
            status=403,
        )


def _scope_fields(scope: ChannelScope) -> dict:
    fields = {"channel": scope.channel.public_id, "perimeter_version": scope.version.public_id}
    if scope.operator is not None:
        fields["operator"] = scope.operator.public_id
    return fields


def _actor(scope: ChannelScope | None) -> dict:
    """Who acts, for an appointment's event: the operator, its API client, its agent; or the
    staff member at a hospital desk."""
    if scope is None:
        return {}
    if scope.contract is None:
        return {"by": scope.agent} if scope.agent is not None else {}
    return {
        "operator_id": scope.contract.operator_id,
        "api_client": scope.api_client,
        "by": scope.agent,
    }


def _ledger(kind: str, appointment: Appointment, scope: ChannelScope | None, now, **more) -> str:
    """The ledger entry of a change to an appointment, in the change's transaction; its public
    id (the patient's receipt, kept on the appointment for a booking or a move). A change made
    through another channel than the booking's names the booking's channel too."""
    fields = _scope_fields(scope) if scope else {"channel": appointment.channel.public_id}
    if scope is not None and appointment.channel_id != scope.channel.pk:
        more["booked_via"] = appointment.channel.public_id
    entry = entry_append(
        kind=kind,
        payload={
            **fields,
            "appointment": appointment.public_id,
            "slot": appointment.slot.public_id if appointment.slot_id else "",
            **payloads.place(appointment),
            **more,
        },
        now=now,
    )
    return entry.public_id


def offer_record(
    *,
    scope: ChannelScope,
    slots,
    query: dict[str, models.Model | list[models.Model] | None],
    via: str = "",
) -> None:
    """The ledger's record of a search served to a channel: what was asked, and every slot
    offered (by public identifiers). One INSERT, whatever the number of slots.

    The criteria are objects of the directory, recorded by their public identifiers (a
    specialty by its code): the ledger is public and append-only, so free text typed in a
    search (a name, which may be a patient's, a phone number) never enters it.

    ``via`` names a publishing interface (fhir, sas, smart): those answer with hundreds or
    thousands of slots, thousands of times an hour, so their offers are recorded by place
    (establishment, department, practitioner) with the number of slots and the SHA-256 of their
    sorted ids, which the verifier checks against the perimeter as it does single slots."""
    criteria = {}
    for name, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        if not all(isinstance(item, models.Model) for item in values):
            raise TypeError(f"offer_record: {name} must be a directory object, not text")
        ids = [getattr(item, "public_id", None) or item.code for item in values]
        criteria[name] = ids if isinstance(value, list | tuple) else ids[0]
    payload: dict = {**_scope_fields(scope), "query": criteria}
    if via:
        payload["via"] = via
        payload["places"] = _places(slots)
    else:
        payload["slots"] = [{"slot": slot.public_id, **_place(slot)} for slot in slots]
    entry_append(kind="offer", payload=payload)


def _place(slot) -> dict:
    """A slot's place for the ledger: already found by the API's search (search_sql.Found has
    it), or read from the slot and its directory rows."""
    place = getattr(slot, "place", None)
    return place if place is not None else payloads.place(slot)


def _places(slots) -> list[dict]:
    grouped: dict[tuple, list[str]] = {}
    for slot in slots:
        place = _place(slot)
        grouped.setdefault((place["finess"], place["department"], place["rpps"]), []).append(
            slot.public_id
        )
    return [
        {
            "finess": finess,
            "department": department,
            "rpps": rpps,
            "slots": len(ids),
            "slots_sha256": hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest(),
        }
        for (finess, department, rpps), ids in sorted(grouped.items())
    ]


def _reclaim_expired_holds(slot_id: int, now: datetime) -> int:
    """Void the expired holds of a slot and give their places back, in the caller's
    transaction. Nothing else ever needs to run for an expired hold (invariant 3)."""
    count = Hold.objects.filter(
        slot_id=slot_id, status=Hold.Status.ACTIVE, expires_at__lte=now
    ).update(status=Hold.Status.RELEASED)
    if count:
        Slot.objects.filter(pk=slot_id).update(held=F("held") - count)
    return count


def _take_place(slot: Slot, now: datetime, *, hold_until: datetime | None = None) -> bool:
    """One conditional UPDATE: the database grants the place or not, under the row's lock.
    The caller holds the practitioner's lock, so no hold over the same time can come between
    this check of ``blocked_until`` and its commit."""
    free = Slot.objects.filter(
        unblocked(now),
        pk=slot.pk,
        is_offered=True,
        overlaps=0,
        booked__lt=F("capacity") - F("held"),
    )
    if hold_until is None:
        change = {"booked": F("booked") + 1}
    else:
        change = {
            "held": F("held") + 1,
            "held_until": Greatest(Coalesce("held_until", Value(hold_until)), Value(hold_until)),
        }
    if free.update(**change):
        return True
    # Full, unless some of its holds have expired: void them and try once more.
    return bool(_reclaim_expired_holds(slot.pk, now) and free.update(**change))


def _lock_practitioners(*practitioner_ids: int) -> None:
    """Serialise the writes that change a practitioner's time (book, move, cancel).

    Each of them updates its own slot and the practitioner's other slots over the same time,
    so two of them on the same practitioner could lock those rows in opposite orders and
    deadlock. A transaction-scoped advisory lock per practitioner, taken first and in id
    order, gives every such write one order. SQLite needs none: BEGIN IMMEDIATE already lets
    one writer in at a time."""
    _advisory_locks(_LOCK_SPACE, sorted(set(practitioner_ids)))


def _advisory_locks(space: int, keys: list[int]) -> None:
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for key in keys:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [space, key])


def _lock_holder(client: str, channel_id: int) -> None:
    """Serialise the holds of one visitor (or of one operator's channel) so that counting them
    against their cap and taking one more cannot interleave: without it, thirty concurrent
    requests all count the same two holds and all pass. Taken after the practitioner's lock,
    always, so the two kinds of lock are never taken in opposite orders."""
    if client:
        key = int.from_bytes(hashlib.sha256(client.encode()).digest()[:4], "big", signed=True)
        _advisory_locks(_HOLDER_SPACE, [key])
    else:
        _advisory_locks(_CHANNEL_SPACE, [channel_id])


def _overlapping_other_slots(practitioner_id: int, starts_at, ends_at, slot_id: int | None):
    found = Slot.objects.filter(
        practitioner_id=practitioner_id,
        starts_at__lt=ends_at,
        ends_at__gt=starts_at,
        # No slot lasts longer than the longest visit (8 hours): this bound keeps the index
        # scan to the hours around the appointment instead of the practitioner's whole agenda.
        starts_at__gt=starts_at - MAX_SLOT_LENGTH,
    )
    return found.exclude(pk=slot_id) if slot_id else found


def _block_time(slot: Slot, until: datetime) -> None:
    """A hold keeps the practitioner's time, not only its slot: the other slots over the same
    time leave search and cannot be taken until ``until`` (or until the hold ends first)."""
    _overlapping_other_slots(slot.practitioner_id, slot.starts_at, slot.ends_at, slot.pk).update(
        blocked_until=Greatest(Coalesce("blocked_until", Value(until)), Value(until))
    )


def _unblock_time(slot: Slot, now: datetime) -> None:
    """A hold ended early (used or given back): each slot over its time is blocked only as
    long as the live holds still overlapping it, if any."""
    still_held = (
        Hold.objects.filter(
            status=Hold.Status.ACTIVE,
            expires_at__gt=now,
            slot__practitioner_id=slot.practitioner_id,
            slot__starts_at__lt=OuterRef("ends_at"),
            slot__ends_at__gt=OuterRef("starts_at"),
        )
        .exclude(slot_id=OuterRef("pk"))
        .order_by("-expires_at")
        .values("expires_at")[:1]
    )
    _overlapping_other_slots(slot.practitioner_id, slot.starts_at, slot.ends_at, slot.pk).filter(
        blocked_until__gt=now
    ).update(blocked_until=Subquery(still_held))


def _hold_place(slot: Slot, now: datetime, expires_at: datetime) -> bool:
    """Take a place of ``slot`` for a hold and keep the practitioner's time over it; the
    caller holds the practitioner's lock."""
    if not _take_place(slot, now, hold_until=expires_at):
        return False
    _block_time(slot, expires_at)
    return True


def _occupy_time(appointment: Appointment) -> None:
    """Mark the practitioner busy: other slots over the same time stop being free."""
    if connection.vendor != "postgresql":
        # SQLite: the write lock of BEGIN IMMEDIATE is held, so this check and the insert
        # that follows cannot interleave with another booking.
        clash = (
            Appointment.objects.filter(
                practitioner_id=appointment.practitioner_id,
                status__in=ACTIVE_STATUSES,
                starts_at__lt=appointment.ends_at,
                ends_at__gt=appointment.starts_at,
            )
            .exclude(pk=appointment.pk)
            .exclude(slot_id=appointment.slot_id)
        )
        if clash.exists():
            raise _slot_taken()
    _overlapping_other_slots(
        appointment.practitioner_id, appointment.starts_at, appointment.ends_at, appointment.slot_id
    ).update(overlaps=F("overlaps") + 1)


def _free_time(appointment: Appointment) -> None:
    _overlapping_other_slots(
        appointment.practitioner_id, appointment.starts_at, appointment.ends_at, appointment.slot_id
    ).filter(overlaps__gt=0).update(overlaps=F("overlaps") - 1)
    if appointment.slot_id:
        Slot.objects.filter(pk=appointment.slot_id, booked__gt=0).update(booked=F("booked") - 1)


def _consume_hold(hold: Hold, now: datetime) -> None:
    used = Hold.objects.filter(pk=hold.pk, status=Hold.Status.ACTIVE, expires_at__gt=now).update(
        status=Hold.Status.CONSUMED
    )
    if not used:
        hold.refresh_from_db(fields=["status"])
        if hold.status == Hold.Status.CONSUMED:
            raise BookingError("hold_used", _("This hold has already been used for a booking."))
        raise hold_expired_error()
    Slot.objects.filter(pk=hold.slot_id).update(held=F("held") - 1, booked=F("booked") + 1)
    # The appointment occupies the time from now on (``overlaps``); the hold no longer does.
    _unblock_time(hold.slot, now)


def _use_up_lapsed_hold(hold: Hold, now: datetime) -> None:
    """A hold that expired or was given back is marked used by the booking its form made: an
    expired hold still counted in its slot's ``held`` gives that place back first. A live hold
    is booked through, never replaced."""
    if Hold.objects.filter(pk=hold.pk, status=Hold.Status.ACTIVE, expires_at__lte=now).update(
        status=Hold.Status.CONSUMED
    ):
        Slot.objects.filter(pk=hold.slot_id).update(held=F("held") - 1)
    elif not Hold.objects.filter(pk=hold.pk, status=Hold.Status.RELEASED).update(
        status=Hold.Status.CONSUMED
    ):
        raise BookingError(
            "hold_used", _("This hold has already been used for a booking."), status=410
        )
    hold.status = Hold.Status.CONSUMED


def hold_expired_error() -> BookingError:
    return BookingError(
        "hold_expired",
        _(
            "The slot was kept for you for a limited time, which has passed. Please choose "
            "a slot again."
        ),
        status=410,
    )


def _book_place(scope: ChannelScope, slot: Slot, hold: Hold | None, now: datetime) -> None:
    """Take one place of ``slot`` for a booking: the caller's own hold, or a free place."""
    _check_bookable(scope, slot, now)
    if hold is not None:
        if hold.channel_id != scope.channel.pk:
            raise BookingError("hold_not_found", _("No such hold."), status=404)
        _consume_hold(hold, now)
    elif not _take_place(slot, now):
        raise _slot_taken()


def _translate_overlap(error: IntegrityError) -> BookingError:
    if NO_OVERLAP_CONSTRAINT in str(error):
        return _slot_taken()
    raise error


# ---------------------------------------------------------------------------------------------
# Holds


def hold_create(
    *,
    scope: ChannelScope,
    slot: Slot,
    minutes: int | None = None,
    purpose: str = "booking",  # Hold.Purpose
    client: str = "",
    referral: dict | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    remote: bool = True,
) -> Hold:
    """Keep a place, and the practitioner's time over it, while the patient types. ``client``
    (a keyed hash of the visitor's address) caps how many places one visitor keeps at once; an
    operator's contract caps its channel's holds at once and per day. ``until`` bounds the hold
    by what opened it (a platform's signed link ends its authority at its expiry). A slot of a
    remote agenda is held there too (unless ``remote`` is false: a move holds only here)."""
    held = _hold_here(scope, slot, minutes, purpose, client, referral, until, now)
    if remote and federated.is_remote(slot):
        federated.hold_remote(held, scope)
    return held


def _hold_here(scope, slot, minutes, purpose, client, referral, until, now) -> Hold:
    now = now or timezone.now()
    minutes = minutes or settings.CRENEAU_HOLD_MINUTES
    expires_at = min(now + timedelta(minutes=minutes), slot.bookable_until)
    if until is not None:
        expires_at = min(expires_at, until)
    with transaction.atomic():
        _check_bookable(scope, slot, now)
        _lock_practitioners(slot.practitioner_id)
        _lock_holder(client, scope.channel.pk)
        if client:
            # A visitor, also one who came by a platform's link: their own caps, never the
            # contract's, which bound the operator's software (visitors cannot lock it out).
            _check_visitor_holds(client, now)
        else:
            _check_contract_holds(scope, now)
        if not _hold_place(slot, now, expires_at):
            raise _slot_taken()
        return Hold.objects.create(
            slot=slot,
            channel=scope.channel,
            expires_at=expires_at,
            purpose=purpose,
            client=client,
            referral=referral or {},
        )


def _paris_today(now: datetime) -> datetime:
    """When the Paris day of ``now`` began: where an operator's daily quotas start."""
    return paris_midnight(timezone.localtime(now, PARIS).date())


def _live_holds(now: datetime, **holder):
    return Hold.objects.filter(status=Hold.Status.ACTIVE, expires_at__gt=now, **holder)


def _check_visitor_holds(client: str, now: datetime) -> None:
    cap = settings.CRENEAU_HOLDS_PER_VISITOR
    kept = _live_holds(now, client=client).count() if cap else 0
    if cap and kept >= cap:
        raise BookingError(
            "too_many_holds",
            _(
                "You are already keeping %(count)s slots. Finish or give up one of those "
                "bookings first, or wait a few minutes."
            )
            % {"count": kept},
            status=429,
        )


def _check_contract_holds(scope: ChannelScope, now: datetime) -> None:
    """An operator keeps at most its contract's holds at once, and takes at most twice its
    daily bookings in holds a day (one per booking and as many given up): a platform allowed
    to book cannot empty a specialty from search by holding and renewing its slots. Only its
    software's holds count (no visitor's address): visitors who arrive by its links are
    counted as visitors."""
    contract = scope.contract
    if contract is None:
        return
    live = _live_holds(now, channel=scope.channel).filter(client="")
    if contract.holds_at_once and live.count() >= contract.holds_at_once:
        first_end = live.order_by("expires_at").values_list("expires_at", flat=True).first()
        raise QuotaExceeded(
            _(
                "This channel already keeps %(limit)s slots on hold, its contract's limit. "
                "Book or release one of them first."
            )
            % {"limit": contract.holds_at_once},
            retry_after=max(1, int(((first_end or now) - now).total_seconds())),
            code="holds_limit_reached",
        )
    if contract.bookings_per_day:
        today = _paris_today(now)
        taken = Hold.objects.filter(channel=scope.channel, client="", created_at__gte=today).count()
        if taken >= 2 * contract.bookings_per_day:
            raise QuotaExceeded(
                _("This channel has taken its %(limit)s holds of the day.")
                % {"limit": 2 * contract.bookings_per_day},
                retry_after=int((today + timedelta(days=1) - now).total_seconds()),
                code="holds_quota_exceeded",
            )


def holds_clean(*, now: datetime | None = None, keep_days: int = 2) -> tuple[int, int]:
    """Tidy holds for the worker: void the expired ones (their places were already free to
    search; this brings the slots' counters down), and delete ended booking holds older than
    ``keep_days``. Returns (voided, deleted)."""
    now = now or timezone.now()
    voided = 0
    expired = Hold.objects.filter(status=Hold.Status.ACTIVE, expires_at__lte=now)
    for slot_id in expired.values_list("slot_id", flat=True).distinct()[:5000]:
        with transaction.atomic():
            voided += _reclaim_expired_holds(slot_id, now)
    deleted, _counts = Hold.objects.filter(
        purpose=Hold.Purpose.BOOKING,
        status__in=[Hold.Status.RELEASED, Hold.Status.CONSUMED],
        expires_at__lt=now - timedelta(days=keep_days),
    ).delete()
    return voided, deleted


def hold_release(*, hold: Hold, now: datetime | None = None, remote: bool = True) -> None:
    """Give a hold back before it expires (the patient chose another slot)."""
    if remote and hold.external_id:
        federated.release_remote(hold)
    with transaction.atomic():
        _lock_practitioners(hold.slot.practitioner_id)
        if Hold.objects.filter(pk=hold.pk, status=Hold.Status.ACTIVE).update(
            status=Hold.Status.RELEASED
        ):
            Slot.objects.filter(pk=hold.slot_id).update(held=F("held") - 1)
            _unblock_time(hold.slot, now or timezone.now())
        hold.status = Hold.Status.RELEASED


# ---------------------------------------------------------------------------------------------
# Appointments


@dataclass(frozen=True)
class Booked:
    appointment: Appointment
    manage_token: str


def _check_daily_quota(scope: ChannelScope, now: datetime) -> None:
    """An operator's contract caps its bookings per day (Paris time)."""
    contract = scope.contract
    if contract is None or not contract.bookings_per_day:
        return
    today = _paris_today(now)
    made = Appointment.objects.filter(channel=scope.channel, created_at__gte=today).count()
    if made >= contract.bookings_per_day:
        tomorrow = today + timedelta(days=1)
        raise QuotaExceeded(
            _("This channel has made its %(limit)s bookings of the day.")
            % {"limit": contract.bookings_per_day},
            retry_after=int((tomorrow - now).total_seconds()),
        )


def _share_loaded(slot: Slot, appointment: Appointment) -> None:
    """Give the appointment what the caller already loaded with the slot (its visit type,
    establishment, practitioner), rather than read them again for its messages."""
    for name in ("visit_type", "establishment", "practitioner", "practitioner_role"):
        field = Slot._meta.get_field(name)
        if field.is_cached(slot):
            setattr(appointment, name, getattr(slot, name))


def appointment_book(
    *,
    scope: ChannelScope,
    patient: PatientDetails,
    slot: Slot | None = None,
    hold: Hold | None = None,
    reason: str = "",
    referral: dict | None = None,
    partner_patient_id: str = "",
    replaces: Hold | None = None,
    now: datetime | None = None,
) -> Booked:
    """Book a slot, directly or through the caller's hold, for the patient. ``referral`` (by
    default the hold's) is what a platform's link said of where the patient came from.
    ``replaces`` is the lapsed hold whose form the patient filled in: used up by this booking,
    in its transaction, so that one form books once. A slot of a remote agenda is booked there
    first (booking.federated)."""
    now = now or timezone.now()
    _check_daily_quota(scope, now)
    if hold is not None:
        slot = hold.slot
        if referral is None:
            referral = hold.referral
    assert slot is not None
    book = partial(
        _book_here,
        scope=scope,
        patient=patient,
        slot=slot,
        reason=reason,
        referral=referral,
        partner_patient_id=partner_patient_id,
        replaces=replaces,
        now=now,
    )
    if federated.is_remote(slot):
        _check_bookable(scope, slot, now)
        return federated.appointment_book(
            scope=scope,
            patient=patient,
            slot=slot,
            hold=hold,
            now=now,
            book_here=book,
        )
    return book(hold=hold)


def _book_here(
    *,
    scope,
    patient,
    slot,
    hold,
    reason,
    referral,
    partner_patient_id,
    replaces,
    now,
    external_id="",
) -> Booked:
    token = new_token()
    try:
        with transaction.atomic():
            # The perimeter is checked again at booking even from a hold: it may have been
            # narrowed since the hold was taken.
            _lock_practitioners(slot.practitioner_id)
            if replaces is not None:
                _use_up_lapsed_hold(replaces, now)
            _book_place(scope, slot, hold, now)
            appointment = Appointment(
                slot=slot,
                practitioner_role_id=slot.practitioner_role_id,
                practitioner_id=slot.practitioner_id,
                establishment_id=slot.establishment_id,
                visit_type_id=slot.visit_type_id,
                starts_at=slot.starts_at,
                ends_at=slot.ends_at,
                channel=scope.channel,
                perimeter_version=scope.version,
                operator=scope.operator,
                agent=scope.agent,
                api_client=scope.api_client,
                referral=referral or {},
                partner_patient_id=partner_patient_id[:200],
                external_id=external_id,
                **_patient_record(patient, reason, token),
            )
            _share_loaded(slot, appointment)
            # The entry first: the appointment is written once, with its receipt.
            appointment.ledger_entry = _ledger("booking", appointment, scope, now)
            appointment.save(force_insert=True)
            _occupy_time(appointment)
            AppointmentEvent.objects.create(
                appointment=appointment,
                action=AppointmentEvent.Action.BOOKED,
                status=appointment.status,
                channel=scope.channel,
                **_actor(scope),
            )
            appointment_messages_queue(appointment=appointment, kind="confirmation", now=now)
            kind = scope.channel.kind
            transaction.on_commit(lambda: metrics.BOOKINGS.labels(kind).inc())
    except IntegrityError as error:
        raise _translate_overlap(error) from error
    return Booked(appointment=appointment, manage_token=token)


def appointment_cancel(
    *,
    appointment: Appointment,
    channel_scope: ChannelScope | None = None,
    by_staff: bool = False,
    reason: str = "",
    user=None,
    suggestions: Sequence[datetime] = (),
    now: datetime | None = None,
) -> Appointment:
    """Cancel; the place goes back to search, or first to the waiting list. When the hospital
    cancels, ``suggestions`` are the nearest free times it offers the patient instead."""
    now = now or timezone.now()
    operator = channel_scope.operator if channel_scope is not None else None
    if by_staff:
        status, by = Appointment.Status.CANCELLED_BY_STAFF, "hospital"
        if not reason.strip():
            raise BookingError(
                "reason_required",
                _("Say why the hospital cancels: the patient is told."),
                status=422,
            )
    elif operator is not None:
        status, by = Appointment.Status.CANCELLED_BY_OPERATOR, "operator"
    else:
        status, by = Appointment.Status.CANCELLED_BY_PATIENT, "patient"
    if not by_staff and appointment.starts_at <= now:
        raise BookingError("too_late", _("An appointment that has begun cannot be cancelled."))
    if appointment.external_id:
        federated.appointment_cancel(appointment, reason=reason.strip(), scope=channel_scope)
    with transaction.atomic():
        _lock_practitioners(appointment.practitioner_id)
        changed = Appointment.objects.filter(
            pk=appointment.pk, status=Appointment.Status.BOOKED
        ).update(
            status=status, cancelled_at=now, cancel_reason=reason.strip()[:300], updated_at=now
        )
        if not changed:
            raise BookingError(
                "not_cancellable",
                _("This appointment is no longer booked: it cannot be cancelled."),
            )
        appointment.refresh_from_db()
        _free_time(appointment)
        AppointmentEvent.objects.create(
            appointment=appointment,
            action=AppointmentEvent.Action.CANCELLED,
            status=status,
            channel_id=channel_scope.channel.pk if channel_scope else appointment.channel_id,
            **{"by": user, **_actor(channel_scope)},
        )
        # The patient's receipt is now the cancellation's entry, not the booking's or move's.
        appointment.ledger_entry = _ledger("cancel", appointment, channel_scope, now, by=by)
        Appointment.objects.filter(pk=appointment.pk).update(ledger_entry=appointment.ledger_entry)
        # Who cancelled and why, for the patient's messages (the ledger holds neither name
        # nor free text).
        told: dict[str, object] = {"by": by, "reason": reason.strip()[:200]}
        if operator is not None:
            told["operator"] = operator.name
        if by_staff and suggestions:
            told["nearest"] = [moment.isoformat() for moment in suggestions[:3]]
        appointment_messages_queue(
            appointment=appointment, kind="cancelled", context=told, now=now, notice=by_staff
        )
        if appointment.slot_id:
            waiting_list_offer_slot(slot_id=appointment.slot_id, now=now)
    return appointment


def appointment_reschedule(
    *,
    appointment: Appointment,
    scope: ChannelScope,
    slot: Slot | None = None,
    hold: Hold | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move to another slot of the same visit type: the new place is taken and the old one
    freed in one transaction, or nothing changes."""
    now = now or timezone.now()
    if hold is not None:
        slot = hold.slot
    assert slot is not None
    if appointment.status != Appointment.Status.BOOKED or appointment.starts_at <= now:
        raise BookingError("not_movable", _("This appointment can no longer be moved."))
    if slot.visit_type_id != appointment.visit_type_id:
        raise BookingError(
            "visit_type_mismatch",
            _("An appointment moves only to a slot of the same visit type."),
            status=422,
        )
    if slot.pk == appointment.slot_id:
        raise BookingError("same_slot", _("The appointment is already in this slot."), status=422)
    if appointment.external_id and federated.is_remote(slot):
        # The new place is kept here, then the remote appointment moves, then this one.
        if hold is None:
            hold = hold_create(scope=scope, slot=slot, minutes=2, now=now, remote=False)
        elif hold.external_id:
            federated.release_remote(hold)
        old_slot = appointment.slot
        federated.appointment_move(appointment, hold=hold, scope=scope)
        try:
            return _move_here(appointment, scope, slot, hold, now)
        except Exception:
            federated.move_back(appointment, old_slot)
            raise
    return _move_here(appointment, scope, slot, hold, now)


def _move_here(appointment, scope, slot, hold, now) -> Appointment:
    try:
        with transaction.atomic():
            _lock_practitioners(appointment.practitioner_id, slot.practitioner_id)
            if not Appointment.objects.filter(
                pk=appointment.pk, status=Appointment.Status.BOOKED
            ).exists():
                raise BookingError("not_movable", _("This appointment can no longer be moved."))
            _book_place(scope, slot, hold, now)
            _free_time(appointment)
            old_slot_id, previous = appointment.slot_id, appointment.starts_at
            old_slot_public = appointment.slot.public_id if appointment.slot_id else ""
            appointment.slot = slot
            appointment.practitioner_role_id = slot.practitioner_role_id
            appointment.practitioner_id = slot.practitioner_id
            appointment.establishment_id = slot.establishment_id
            appointment.starts_at = slot.starts_at
            appointment.ends_at = slot.ends_at
            _share_loaded(slot, appointment)
            appointment.ledger_entry = _ledger(
                "move", appointment, scope, now, from_slot=old_slot_public
            )
            appointment.save()
            _occupy_time(appointment)
            AppointmentEvent.objects.create(
                appointment=appointment,
                action=AppointmentEvent.Action.MOVED,
                status=appointment.status,
                channel=scope.channel,
                previous_starts_at=previous,
                **_actor(scope),
            )
            appointment_messages_queue(
                appointment=appointment,
                kind="moved",
                context={"previous_starts_at": previous.isoformat()},
                now=now,
                # Moved by the hospital (its desk or staff), not by the patient or a caller.
                notice=scope.channel.kind == Channel.Kind.DESK,
            )
            if old_slot_id:
                waiting_list_offer_slot(slot_id=old_slot_id, now=now)
    except IntegrityError as error:
        raise _translate_overlap(error) from error
    return appointment


_STAFF_TRANSITIONS = {
    Appointment.Status.ARRIVED: {Appointment.Status.BOOKED},
    Appointment.Status.NO_SHOW: {Appointment.Status.BOOKED},
    Appointment.Status.DONE: {Appointment.Status.BOOKED, Appointment.Status.ARRIVED},
}


def appointment_status_set(
    *,
    appointment: Appointment,
    status: str,
    channel_scope: ChannelScope | None = None,
    user=None,
) -> Appointment:
    """A secretary marks an arrival, a no-show, or a visit done."""
    allowed = _STAFF_TRANSITIONS.get(Appointment.Status(status))
    if allowed is None:
        raise BookingError("invalid_status", _("This status cannot be set by hand."), status=422)
    with transaction.atomic():
        if not Appointment.objects.filter(pk=appointment.pk, status__in=allowed).update(
            status=status, updated_at=timezone.now()
        ):
            raise BookingError(
                "invalid_transition", _("The appointment's current status does not allow this.")
            )
        appointment.refresh_from_db()
        AppointmentEvent.objects.create(
            appointment=appointment,
            action=AppointmentEvent.Action.STATUS,
            status=status,
            channel_id=channel_scope.channel.pk if channel_scope else appointment.channel_id,
            by=user,
        )
        appointment_status_reported(appointment=appointment, status=status)
    return appointment


# ---------------------------------------------------------------------------------------------
# Waiting list


@dataclass(frozen=True)
class Joined:
    entry: WaitingListEntry
    manage_token: str


def waiting_list_join(
    *,
    scope: ChannelScope,
    visit_type: VisitType,
    before: datetime,
    patient: PatientDetails,
    establishment: Establishment | None = None,
    practitioner: Practitioner | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Joined:
    now = now or timezone.now()
    if before <= now:
        raise BookingError("invalid_date", _("The date must be in the future."), status=422)
    token = new_token()
    with transaction.atomic():
        entry = WaitingListEntry.objects.create(
            channel=scope.channel,
            visit_type=visit_type,
            establishment=establishment,
            practitioner=practitioner,
            before=before,
            **_patient_record(patient, reason, token),
        )
    return Joined(entry=entry, manage_token=token)


def _entries_for(slot: Slot, now: datetime):
    return (
        WaitingListEntry.objects.filter(
            status=WaitingListEntry.Status.WAITING,
            visit_type_id=slot.visit_type_id,
            before__gt=slot.starts_at,
        )
        .filter(Q(establishment__isnull=True) | Q(establishment_id=slot.establishment_id))
        .filter(Q(practitioner__isnull=True) | Q(practitioner_id=slot.practitioner_id))
        .exclude(offers__hold__slot_id=slot.pk)
        .select_related("channel__perimeter")
        .order_by("created_at", "pk")
    )


def waiting_list_offer_slot(
    *, slot_id: int, now: datetime | None = None
) -> WaitingListOffer | None:
    """Offer a freed slot to the first waiting patient it suits, in order of registration, with
    an exclusive hold; a patient who was already offered this slot is passed over. The slot is
    read here, once, as the caller's transaction has left it."""
    now = now or timezone.now()
    slot = Slot.objects.get(pk=slot_id)
    if not slot.is_offered or slot.bookable_until <= now:
        return None
    with transaction.atomic():
        _lock_practitioners(slot.practitioner_id)
        for entry in _entries_for(slot, now)[:50]:
            try:
                scope = channel_scope_for_key(entry.channel.key)
            except DomainError:
                continue
            if not scope.practitioner_roles().filter(pk=slot.practitioner_role_id).exists():
                continue
            # The offer's window counts waking hours only: made in the night, it goes out in
            # the morning and its two hours start then (notify.quiet).
            expires_at = min(
                waking_deadline(now, settings.CRENEAU_OFFER_MINUTES), slot.bookable_until
            )
            if next_waking(now) >= expires_at:
                return None  # no waking time left to offer it in: the slot stays free to all
            if not _hold_place(slot, now, expires_at):
                return None
            hold = Hold.objects.create(
                slot=slot, channel=scope.channel, expires_at=expires_at, purpose=Hold.Purpose.OFFER
            )
            entry.status = WaitingListEntry.Status.OFFERED
            entry.save(update_fields=["status"])
            offer = WaitingListOffer.objects.create(entry=entry, hold=hold, expires_at=expires_at)
            offer_messages_queue(offer=offer, now=now)
            return offer
    return None


def _pending_offer(entry: WaitingListEntry) -> WaitingListOffer:
    offer = (
        entry.offers.filter(status=WaitingListOffer.Status.PENDING)
        .select_related("hold__slot")
        .first()
    )
    if offer is None:
        raise BookingError("no_offer", _("There is no pending offer for this request."), status=404)
    return offer


def waiting_list_accept(
    *, entry: WaitingListEntry, scope: ChannelScope, now: datetime | None = None
) -> Booked:
    """The patient takes the slot offered: it becomes their appointment."""
    now = now or timezone.now()
    with transaction.atomic():
        offer = _pending_offer(entry)
        if offer.expires_at <= now:
            raise BookingError(
                "offer_expired",
                _("This offer has expired and went to the next patient."),
                status=410,
            )
        patient = PatientDetails(
            last_name=entry.patient_last_name,
            first_name=entry.patient_first_name,
            birth_date=entry.patient_birth_date,
            phone=entry.patient_phone,
            email=entry.patient_email,
            language=entry.patient_language,
            no_phone_reason=entry.patient_no_phone_reason,
        )
        booked = appointment_book(
            scope=scope, patient=patient, hold=offer.hold, reason=entry.reason, now=now
        )
        offer.status = WaitingListOffer.Status.ACCEPTED
        offer.save(update_fields=["status"])
        entry.status = WaitingListEntry.Status.SATISFIED
        entry.appointment = booked.appointment
        entry.save(update_fields=["status", "appointment"])
    return booked


def waiting_list_decline(*, entry: WaitingListEntry, now: datetime | None = None) -> None:
    """The patient does not want the slot offered: it goes to the next patient at once, and
    this patient keeps their place in the list."""
    with transaction.atomic():
        offer = _pending_offer(entry)
        _close_offer(offer, "declined", now or timezone.now())


def waiting_list_cancel(*, entry: WaitingListEntry, now: datetime | None = None) -> None:
    with transaction.atomic():
        offer = entry.offers.filter(status=WaitingListOffer.Status.PENDING).first()
        if offer is not None:
            _close_offer(offer, "declined", now or timezone.now())
        WaitingListEntry.objects.filter(
            pk=entry.pk,
            status__in=[WaitingListEntry.Status.WAITING, WaitingListEntry.Status.OFFERED],
        ).update(status=WaitingListEntry.Status.CANCELLED)
        entry.refresh_from_db()


def _close_offer(offer: WaitingListOffer, status: str, now: datetime) -> None:
    offer.status = status
    offer.save(update_fields=["status"])
    hold_release(hold=offer.hold)
    # The entry goes back to waiting (or is closed if its date has passed); the update is
    # conditional on what the database holds, not on a copy the caller may have kept.
    WaitingListEntry.objects.filter(
        pk=offer.entry_id, status=WaitingListEntry.Status.OFFERED, before__gt=now
    ).update(status=WaitingListEntry.Status.WAITING)
    WaitingListEntry.objects.filter(
        pk=offer.entry_id, status=WaitingListEntry.Status.OFFERED
    ).update(status=WaitingListEntry.Status.EXPIRED)
    waiting_list_offer_slot(slot_id=offer.hold.slot_id, now=now)


def waiting_list_match(*, now: datetime | None = None) -> int:
    """Offer new availability to waiting patients: each waiting entry, in order of
    registration, gets the earliest free slot that suits it, if there is one. Entries whose
    date has passed are closed."""
    now = now or timezone.now()
    WaitingListEntry.objects.filter(status=WaitingListEntry.Status.WAITING, before__lte=now).update(
        status=WaitingListEntry.Status.EXPIRED
    )
    offered = 0
    waiting = WaitingListEntry.objects.filter(status=WaitingListEntry.Status.WAITING)
    for entry in waiting.select_related("channel").order_by("created_at", "pk")[:1000]:
        try:
            scope = channel_scope_for_key(entry.channel.key)
        except DomainError:
            continue
        candidates = offerable_slots(scope, now).filter(
            visit_type_id=entry.visit_type_id, starts_at__gte=now, starts_at__lt=entry.before
        )
        if entry.establishment_id:
            candidates = candidates.filter(establishment_id=entry.establishment_id)
        if entry.practitioner_id:
            candidates = candidates.filter(practitioner_id=entry.practitioner_id)
        slot = candidates.exclude(holds__offer__entry=entry).order_by("starts_at").first()
        if slot is not None and waiting_list_offer_slot(slot_id=slot.pk, now=now) is not None:
            offered += 1
    return offered


def waiting_list_offers_expire(*, now: datetime | None = None) -> int:
    """Pass every offer left unanswered past its expiry to the next patient. The slot is free
    again for search the moment the offer expires (its hold expires with it); this step only
    hands it on, so it can run whenever convenient."""
    now = now or timezone.now()
    count = 0
    for offer in WaitingListOffer.objects.filter(
        status=WaitingListOffer.Status.PENDING, expires_at__lte=now
    ).select_related("hold__slot", "entry")[:500]:
        with transaction.atomic():
            _close_offer(offer, "expired", now)
        count += 1
    return count
