"""A patient's personal data (RGPD): what Créneau holds about them and who looked at it, as one
document; its erasure on request; and the purge of every identity a set time after the
appointment. Erasing keeps the records for the anonymous statistics (when, what, which channel,
what happened) and takes away who: names, phone, e-mail, reason, the birth date but its year,
and the patient's link."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import TruncYear
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.booking.models import (
    Appointment,
    AppointmentEvent,
    IdempotencyKey,
    WaitingListEntry,
)
from creneau.booking.operators import CallerCriteria
from creneau.directory.text import fold
from creneau.errors import DomainError
from creneau.notify.models import Message
from creneau.staff.access_log import patient_data_view_record
from creneau.staff.models import PatientDataView

ERASED = {
    "patient_last_name": "",
    "patient_first_name": "",
    "patient_phone": "",
    "patient_no_phone_reason": "",
    "patient_email": "",
    "reason": "",
    "manage_token_hash": "",
    "sealed_token": "",
}


# An appointment also holds the identifier a partner gave for its patient (an INS, an IPP).
APPOINTMENT_ERASED = {**ERASED, "partner_patient_id": ""}


@dataclass
class PatientRecords:
    appointments: list[Appointment]
    waiting: list[WaitingListEntry]


def patient_records_find(criteria: CallerCriteria) -> PatientRecords:
    """Every record of one patient: same birth date and phone, same last name in any case or
    accents (the identity they gave when booking)."""
    wanted = fold(criteria.last_name)

    def same(records: QuerySet) -> list:
        found = records.filter(
            patient_birth_date=criteria.birth_date,
            patient_phone=criteria.phone,
            identity_erased_at__isnull=True,
        )
        return [r for r in found if fold(r.patient_last_name) == wanted]

    return PatientRecords(
        appointments=same(
            Appointment.objects.select_related(
                "visit_type", "practitioner", "establishment", "channel", "operator"
            ).order_by("starts_at", "pk")
        ),
        waiting=same(
            WaitingListEntry.objects.select_related("visit_type", "channel").order_by(
                "created_at", "pk"
            )
        ),
    )


def _moment(value: datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def patient_data_export(*, criteria: CallerCriteria, now: datetime | None = None) -> dict:
    """What Créneau holds about the patient, and every view of it in the access log, as a
    JSON-ready document; the export itself goes to the access log."""
    records = patient_records_find(criteria)
    appointments = records.appointments
    first = appointments[0] if appointments else (records.waiting or [None])[0]
    events: dict[int, list] = {}
    for event in AppointmentEvent.objects.filter(appointment__in=appointments).order_by("at"):
        events.setdefault(event.appointment_id, []).append(
            {"at": _moment(event.at), "action": event.action, "status": event.status}
        )
    messages: dict[int, list] = {}
    for message in Message.objects.filter(appointment__in=appointments).order_by("send_after"):
        messages.setdefault(message.appointment_id, []).append(
            {"kind": message.kind, "medium": message.medium, "status": message.status}
        )
    views = (
        PatientDataView.objects.filter(appointments__in=appointments)
        .select_related("user", "operator", "api_client")
        .distinct()
        .order_by("at", "pk")
    )
    document = {
        "patient": {
            "last_name": first.patient_last_name if first else criteria.last_name,
            "first_name": first.patient_first_name if first else "",
            "birth_date": criteria.birth_date.isoformat(),
            "phone": criteria.phone,
            "emails": sorted(
                {r.patient_email for r in [*appointments, *records.waiting] if r.patient_email}
            ),
        },
        "appointments": [
            {
                "id": a.public_id,
                "starts_at": _moment(a.starts_at),
                "ends_at": _moment(a.ends_at),
                "status": a.status,
                "visit": a.visit_type.label,
                "practitioner": a.practitioner.display_name,
                "establishment": a.establishment.name,
                "booked_through": a.channel.name,
                "operator": a.operator.name if a.operator_id else None,
                "booked_at": _moment(a.created_at),
                "reason": a.reason,
                "language": a.patient_language,
                "cancel_reason": a.cancel_reason,
                "partner_patient_id": a.partner_patient_id or None,
                "events": events.get(a.pk, []),
                "messages": messages.get(a.pk, []),
            }
            for a in appointments
        ],
        "waiting_list": [
            {
                "id": entry.public_id,
                "visit": entry.visit_type.label,
                "before": _moment(entry.before),
                "status": entry.status,
                "joined_at": _moment(entry.created_at),
            }
            for entry in records.waiting
        ],
        "views": [
            {
                "at": _moment(view.at),
                "who": view.who,
                "page": str(view.get_kind_display()),
                "what": view.subject,
            }
            for view in views
        ],
    }
    patient_data_view_record(
        kind=PatientDataView.Kind.EXPORT,
        subject="personal data export",
        appointments=appointments,
        now=now,
    )
    return document


class ErasureRefused(DomainError):
    status = 409


def _erase(records: QuerySet, now: datetime) -> int:
    """The identities of ``records`` taken away. On SQLite, ``secure_delete`` (settings) zeroes
    what is overwritten and the write-ahead log is checkpointed and truncated after the commit,
    so that the files keep no copy."""
    fields = APPOINTMENT_ERASED if records.model is Appointment else ERASED
    erased = records.update(
        **fields, patient_birth_date=TruncYear("patient_birth_date"), identity_erased_at=now
    )
    if erased and connection.vendor == "sqlite":
        transaction.on_commit(_sqlite_files_cleared)
    return erased


def _sqlite_files_cleared() -> None:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@transaction.atomic
def patient_data_erase(*, criteria: CallerCriteria, now: datetime | None = None) -> int:
    """Erase the patient's identity from every record, on their request. Refused while an
    appointment of theirs is still to come: it is cancelled first (the patient is told), or
    kept until it has taken place."""
    now = now or timezone.now()
    records = patient_records_find(criteria)
    coming = [
        a for a in records.appointments if a.status == Appointment.Status.BOOKED and a.ends_at > now
    ]
    if coming:
        raise ErasureRefused(
            "appointment_to_come",
            _(
                "The patient has %(count)s appointment(s) still to come (%(ids)s): cancel them "
                "first, or erase after they have taken place."
            )
            % {"count": len(coming), "ids": ", ".join(a.public_id for a in coming)},
        )
    # The answers kept for an Idempotency-Key that booked them copy the identity (names,
    # reason, identifier): gone with it. (The nightly purge needs not: they live 48 hours.)
    answered = Q(pk__in=[])
    for appointment in records.appointments:
        answered |= Q(response_body__icontains=appointment.public_id)
    IdempotencyKey.objects.filter(answered).delete()
    erased = _erase(Appointment.objects.filter(pk__in=[a.pk for a in records.appointments]), now)
    WaitingListEntry.objects.filter(
        pk__in=[e.pk for e in records.waiting], status=WaitingListEntry.Status.WAITING
    ).update(status=WaitingListEntry.Status.CANCELLED)
    erased += _erase(WaitingListEntry.objects.filter(pk__in=[e.pk for e in records.waiting]), now)
    return erased


@transaction.atomic
def patient_data_purge(*, now: datetime | None = None, days: int | None = None) -> int:
    """Erase the identities of appointments that ended more than ``days`` ago (the setting
    CRENEAU_PATIENT_DATA_DAYS by default), and of waiting-list entries closed or past that
    long ago. Run each night."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.CRENEAU_PATIENT_DATA_DAYS if days is None else days)
    erased = _erase(
        Appointment.objects.filter(ends_at__lt=cutoff, identity_erased_at__isnull=True), now
    )
    erased += _erase(
        WaitingListEntry.objects.filter(before__lt=cutoff, identity_erased_at__isnull=True).exclude(
            status__in=[WaitingListEntry.Status.WAITING, WaitingListEntry.Status.OFFERED]
        ),
        now,
    )
    return erased
