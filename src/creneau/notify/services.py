"""Messages to patients: queued by the booking services in their own transaction (a rolled-back
booking leaves no message, a committed one always has its own), then sent by the worker.

Each message row is the truth about its delivery. A worker claims it with a conditional update
(``sending``, a lease, one more attempt) committed before it calls the gateway, and records the
outcome after; a worker killed in between leaves the lease to run out, and the message is taken
again with the same idempotency key. Failures are retried with growing delays; a message past its
use (the appointment has begun or changed, the offer has expired) is given up, never sent late."""

import logging
import smtplib
from datetime import UTC, datetime, timedelta
from email.mime.text import MIMEText

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource
from creneau.booking.models import Appointment, WaitingListOffer
from creneau.booking.patients import sms_reachable
from creneau.errors import DomainError
from creneau.notify.backends import DeliveryError, Sent, sms_backend
from creneau.notify.calendars import WRITTEN_KINDS, write_booking
from creneau.notify.calendars import useful_until as calendar_useful_until
from creneau.notify.his import SENT_KINDS as HIS_KINDS
from creneau.notify.his import send_siu
from creneau.notify.his import useful_until as his_useful_until
from creneau.notify.models import Message
from creneau.notify.platforms import FEEDBACK_KINDS, feedback_platform, send_feedback
from creneau.notify.quiet import next_waking, waking_time_for
from creneau.notify.texts import Rendered, render

logger = logging.getLogger("creneau.notify")

# Minutes to wait after each failed attempt; the last delay repeats until the attempts run out.
BACKOFF_MINUTES = (1, 5, 15, 60, 180)
FEEDBACK_DAYS = 30
# Media whose messages about one appointment must arrive in the order of its changes.
ORDERED_MEDIA = (Message.Medium.FHIR, Message.Medium.CALENDAR, Message.Medium.HIS)
PENDING = (Message.Status.QUEUED, Message.Status.FAILED)


class NotifyError(DomainError):
    pass


def _media(record) -> list[str]:
    """ "sms" when the patient's phone may receive texts (a mobile of the regions served: the
    booking rules require one, but a record may be older than the rule), "email" when the
    patient gave an address."""
    media = ["sms"] if sms_reachable(record.patient_phone) else []
    return [*media, "email"] if record.patient_email else media


def _enqueue(messages: list[Message]) -> None:
    """One job for messages due together (the SMS and the e-mail of one change)."""
    from creneau.notify.tasks import deliver_messages

    task = deliver_messages
    due = messages[0].send_after
    if due > timezone.now():
        task = task.using(run_after=due)
    task.enqueue([message.pk for message in messages])


def _create(**fields) -> list[Message]:
    record = fields["appointment"] or fields["offer"].entry
    messages = [
        Message(medium=medium, next_attempt_at=fields["send_after"], **fields)
        for medium in _media(record)
    ]
    if fields["appointment"] is not None:
        messages += _feedback(fields["appointment"], fields["kind"], fields["send_after"])
        messages += _calendar_write(fields["appointment"], fields["kind"], fields["send_after"])
        messages += _his_write(fields["appointment"], fields["kind"], fields["send_after"])
    messages = Message.objects.bulk_create(messages)
    if messages:
        _enqueue(messages)
    return messages


def _feedback(appointment: Appointment, kind: str, now: datetime) -> list[Message]:
    """The report of this change to the SAS platform that brought the booking, if it asks for
    them (INT_R03); kept for a month whatever the appointment's time, since a no-show or a
    visit done is reported after it."""
    if (
        kind not in FEEDBACK_KINDS
        or appointment.operator_id is None  # only platforms under contract report
        or feedback_platform(appointment) is None
    ):
        return []
    until = max(now, appointment.starts_at) + timedelta(days=FEEDBACK_DAYS)
    return [_ordered(Message.Medium.FHIR, appointment, kind, now, until)]


def _agenda_kind(appointment: Appointment) -> str | None:
    """The kind of the practitioner's external agenda, if any: read once per appointment
    whatever the number of messages a change queues (a booking: its confirmation, its
    reminder)."""
    role = appointment.practitioner_role_id
    cached = appointment.__dict__.get("_creneau_agenda_kind")
    if cached is None or cached[0] != role:
        kind = (
            AgendaSource.objects.filter(practitioner_role_id=role)
            .values_list("kind", flat=True)
            .first()
        )
        cached = appointment.__dict__["_creneau_agenda_kind"] = (role, kind)
    return cached[1]


def _calendar_write(appointment: Appointment, kind: str, now: datetime) -> list[Message]:
    """The change written into the practitioner's CalDAV calendar, if that is their agenda."""
    if kind not in WRITTEN_KINDS or _agenda_kind(appointment) != AgendaSource.Kind.CALDAV:
        return []
    until = calendar_useful_until(appointment, now)
    return [_ordered(Message.Medium.CALENDAR, appointment, kind, now, until)]


def _his_write(appointment: Appointment, kind: str, now: datetime) -> list[Message]:
    """The change sent to the hospital information system, if it keeps the practitioner's
    agenda."""
    if kind not in HIS_KINDS or _agenda_kind(appointment) != AgendaSource.Kind.HIS:
        return []
    until = his_useful_until(appointment, now)
    return [_ordered(Message.Medium.HIS, appointment, kind, now, until)]


def _ordered(medium: object, appointment: Appointment, kind: str, now: datetime, until) -> Message:
    """A message of one of the ORDERED_MEDIA about a change of ``appointment``, due now."""
    return Message(
        medium=medium,
        kind=kind,
        appointment=appointment,
        offer=None,
        context={},
        send_after=now,
        next_attempt_at=now,
        useful_until=until,
    )


def conflicts_report(*, slot_ids: list[int], source: str, now: datetime | None = None) -> int:
    """Tell the practitioner and their department's secretaries (staff.queries.people_to_tell)
    of each appointment booked in slots that their external agenda (``source``, its kind's
    name) now says are busy: the appointment stays, someone must decide. One e-mail each,
    naming the appointment by its reference, never the patient. Called once per slot, when it
    stops being offered."""
    from creneau.staff.queries import people_to_tell

    now = now or timezone.now()
    appointments = Appointment.objects.filter(
        slot_id__in=slot_ids, status=Appointment.Status.BOOKED, starts_at__gt=now
    ).select_related("practitioner_role")
    messages = [
        Message(
            medium=Message.Medium.EMAIL,
            kind=Message.Kind.CONFLICT,
            appointment=appointment,
            offer=None,
            recipient=person.email,
            context={"source": source},
            send_after=now,
            next_attempt_at=now,
            useful_until=appointment.starts_at,
        )
        for appointment in appointments
        for person in people_to_tell(appointment.practitioner_role)
    ]
    if messages:
        _enqueue(Message.objects.bulk_create(messages))
    return len(messages)


def appointment_status_reported(
    *, appointment: Appointment, status: str, now: datetime | None = None
) -> list[Message]:
    """A no-show or a visit done: nothing to tell the patient, but the platform that brought
    the booking is told. Called inside the change's transaction."""
    now = now or timezone.now()
    if status not in ("no_show", "done"):
        return []
    messages = Message.objects.bulk_create(
        _feedback(appointment, status, now) + _his_write(appointment, status, now)
    )
    if messages:
        _enqueue(messages)
    return messages


def reminder_time(appointment: Appointment) -> datetime | None:
    """The visit type's hours before the appointment, counted on the local clock: a reminder
    48 hours before a Monday 09:00 comes on Saturday at 09:00 on both sides of a clock change."""
    hours = appointment.visit_type.reminder_hours
    if hours is None:
        hours = settings.CRENEAU_REMINDER_HOURS
    if not hours:
        return None
    local = timezone.localtime(appointment.starts_at, appointment.establishment.zone)
    return (local - timedelta(hours=hours)).astimezone(UTC)


def _reminders_reschedule(appointment: Appointment, now: datetime, *, new: bool) -> None:
    if not new:  # a new appointment has no reminder yet
        Message.objects.filter(
            appointment=appointment, kind=Message.Kind.REMINDER, status__in=PENDING
        ).update(status=Message.Status.GIVEN_UP, answer="superseded", lease_until=None)
    if appointment.status != Appointment.Status.BOOKED:
        return
    due = reminder_time(appointment)
    lead = timedelta(minutes=settings.CRENEAU_REMINDER_MIN_LEAD_MINUTES)
    if due is not None and due > now:
        # A reminder due in the night comes in the morning, or the evening before if the
        # morning is too close to the appointment.
        due = waking_time_for(due, latest=appointment.starts_at - lead, now=now)
    else:
        due = None  # the booking is made inside the reminder's window
    if due is not None:
        _create(
            appointment=appointment,
            offer=None,
            kind=Message.Kind.REMINDER,
            send_after=due,
            useful_until=appointment.starts_at - lead,
        )


def appointment_messages_queue(
    *,
    appointment: Appointment,
    kind: str,
    context: dict | None = None,
    now: datetime | None = None,
    notice: bool = False,
) -> list[Message]:
    """Queue what a change to an appointment says to its patient (by SMS, and by e-mail when
    they gave one), and set its reminder again. Called inside the change's transaction.
    ``notice``: the hospital's own change (staff moved or cancelled it), which waits out the
    quiet hours unless it would then come too late; what the patient or the caller has just
    done is told at once."""
    now = now or timezone.now()
    send = now
    if notice:
        lead = timedelta(minutes=settings.CRENEAU_REMINDER_MIN_LEAD_MINUTES)
        morning = next_waking(now)
        if morning < appointment.starts_at - lead:
            send = morning
    with transaction.atomic(savepoint=False):
        messages = _create(
            appointment=appointment,
            offer=None,
            kind=kind,
            context=context or {},
            send_after=send,
            useful_until=appointment.starts_at,
        )
        _reminders_reschedule(appointment, now, new=kind == Message.Kind.CONFIRMATION)
    return messages


def offer_messages_queue(*, offer: WaitingListOffer, now: datetime | None = None) -> list[Message]:
    now = now or timezone.now()
    with transaction.atomic(savepoint=False):
        return _create(
            appointment=None,
            offer=offer,
            kind=Message.Kind.OFFER,
            context={},
            send_after=next_waking(now),
            useful_until=offer.expires_at,
        )


def message_resend(*, message: Message, now: datetime | None = None) -> Message:
    """Staff ask for a message to go again: a new message of the same kind, with its own key,
    so the record of the first stays as it was."""
    now = now or timezone.now()
    if message.useful_until <= now:
        raise NotifyError(
            "no_longer_useful", _("This message is past its use: it can no longer be sent.")
        )
    with transaction.atomic():
        copy = Message.objects.create(
            kind=message.kind,
            medium=message.medium,
            appointment=message.appointment,
            offer=message.offer,
            context=message.context,
            send_after=now,
            next_attempt_at=now,
            useful_until=message.useful_until,
        )
        _enqueue([copy])
    return copy


# ---------------------------------------------------------------------------------------------
# Delivery


def _due(now: datetime) -> Q:
    """Waiting for its (next) attempt, or held by a worker whose lease has run out."""
    return Q(status__in=PENDING, next_attempt_at__lte=now) | Q(
        status=Message.Status.SENDING, lease_until__lte=now
    )


def _claim(message_id: int, now: datetime) -> bool:
    lease = timedelta(seconds=settings.CRENEAU_MESSAGE_LEASE_SECONDS)
    claimed = Message.objects.filter(_due(now), pk=message_id).update(
        status=Message.Status.SENDING, attempts=F("attempts") + 1, lease_until=now + lease
    )
    return bool(claimed)


def _why_useless(message: Message, now: datetime) -> str:
    if message.useful_until <= now:
        return "too late: no longer useful"
    if message.medium in ORDERED_MEDIA:
        return ""  # every change is written, whatever came after it
    if message.appointment is not None:
        if message.kind == Message.Kind.CANCELLED:
            return ""
        if message.appointment.status != Appointment.Status.BOOKED:
            return "appointment no longer booked"
        return ""
    if message.offer is not None and message.offer.status != WaitingListOffer.Status.PENDING:
        return "offer no longer open"
    return ""


def _earlier_report_pending(message: Message) -> bool:
    """A platform hears an appointment's changes in their order: the booking's POST before
    the cancellation's PUT, whatever retries the first needed."""
    return (
        message.medium in ORDERED_MEDIA
        and Message.objects.filter(
            appointment_id=message.appointment_id,
            medium=message.medium,
            pk__lt=message.pk,
            status__in=[*PENDING, Message.Status.SENDING],
        ).exists()
    )


def _last_etag(message: Message) -> str:
    """The ETag the calendar gave the event at its last write (for If-Match)."""
    return (
        Message.objects.filter(
            appointment_id=message.appointment_id,
            medium=Message.Medium.CALENDAR,
            status=Message.Status.SENT,
            pk__lt=message.pk,
        )
        .order_by("-pk")
        .values_list("provider_reference", flat=True)
        .first()
        or ""
    )


def _send(message: Message, text: Rendered | None) -> Sent:
    if message.medium == Message.Medium.FHIR:
        return send_feedback(message.appointment, message.kind, message.idempotency_key)
    if message.medium == Message.Medium.CALENDAR:
        return write_booking(message.appointment, message.kind, etag=_last_etag(message))
    if message.medium == Message.Medium.HIS:
        return send_siu(message.appointment, message.kind, message.idempotency_key)
    assert text is not None
    record = message.appointment or message.offer.entry
    if message.medium == Message.Medium.SMS:
        return sms_backend().send(
            to=record.patient_phone, text=text.sms, key=message.idempotency_key
        )
    return _send_email(message, text, message.recipient or record.patient_email)


def _send_email(message: Message, text: Rendered, to: str) -> Sent:
    from creneau.booking.calendar import appointment_ics

    email = EmailMessage(
        subject=text.subject,
        body=text.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        headers={"Message-ID": f"<{message.idempotency_key}@creneau>"},
    )
    if message.appointment_id and message.kind not in (
        Message.Kind.REMINDER,
        Message.Kind.CONFLICT,  # to the staff: the patient's invitation is not theirs
    ):
        appointment = message.appointment
        ics = appointment_ics(appointment, organizer=settings.DEFAULT_FROM_EMAIL)
        # The same rule as the calendar's METHOD: an appointment no longer active is cancelled.
        method = "REQUEST" if appointment.is_active else "CANCEL"
        part = MIMEText(ics.decode(), "calendar", "utf-8")
        part.set_param("method", method)
        part.add_header("Content-Disposition", "attachment", filename="invitation.ics")
        email.attach(part)
    try:
        get_connection(fail_silently=False).send_messages([email])
    except smtplib.SMTPRecipientsRefused as error:
        raise DeliveryError(f"recipient refused: {_codes(error)}", retry=False) from None
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(f"{error.smtp_code}", retry=error.smtp_code < 500) from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"no answer: {type(error).__name__}", retry=True) from None
    return Sent(reference=f"<{message.idempotency_key}@creneau>", answer="250 accepted")


def _codes(error: smtplib.SMTPRecipientsRefused) -> str:
    return " ".join(str(code) for code, _text in error.recipients.values())


def _record(message: Message, **fields) -> None:
    Message.objects.filter(pk=message.pk).update(lease_until=None, **fields)


def message_deliver(*, message_id: int, now: datetime | None = None) -> str | None:
    """Send one message if it is due and no other worker holds it; its status afterwards, or
    None when there was nothing to do."""
    now = now or timezone.now()
    if not _claim(message_id, now):
        return None
    message = Message.objects.select_related(
        "appointment__practitioner",
        "appointment__establishment",
        "appointment__visit_type",
        "offer__entry",
        "offer__hold__slot__practitioner",
        "offer__hold__slot__establishment",
        "offer__hold__slot__visit_type",
    ).get(pk=message_id)
    why = _why_useless(message, now)
    if why:
        _record(message, status=Message.Status.GIVEN_UP, answer=why)
        logger.info(
            "message %s (%s, %s) given up: %s", message.public_id, message.kind, message.medium, why
        )
        return "given_up"
    if _earlier_report_pending(message):
        # Not an attempt: back in the queue until the earlier change has gone.
        _record(
            message,
            status=Message.Status.QUEUED,
            attempts=F("attempts") - 1,
            next_attempt_at=now + timedelta(seconds=30),
        )
        return "waiting"
    try:
        sent = _send(message, None if message.medium in ORDERED_MEDIA else render(message))
    except DeliveryError as error:
        last = message.attempts >= settings.CRENEAU_MESSAGE_MAX_ATTEMPTS or not error.retry
        delay = BACKOFF_MINUTES[min(message.attempts, len(BACKOFF_MINUTES)) - 1]
        status = "given_up" if last else "failed"
        _record(
            message,
            status=status,
            answer=error.answer,
            next_attempt_at=timezone.now() + timedelta(minutes=delay),
        )
        logger.warning(
            "message %s (%s, %s) attempt %d failed: %s%s",
            message.public_id,
            message.kind,
            message.medium,
            message.attempts,
            error.answer[:200],
            "; given up" if last else f"; next try in {delay} min",
        )
        return status
    _record(
        message,
        status=Message.Status.SENT,
        sent_at=timezone.now(),
        provider_reference=sent.reference[:200],
        answer=sent.answer[:500],
    )
    logger.info("message %s (%s, %s) sent", message.public_id, message.kind, message.medium)
    if message.medium in ORDERED_MEDIA:
        # The changes that waited behind this one may go now.
        Message.objects.filter(
            appointment_id=message.appointment_id,
            medium=message.medium,
            pk__gt=message.pk,
            status=Message.Status.QUEUED,
        ).update(next_attempt_at=timezone.now())
    return "sent"


def messages_due(*, now: datetime | None = None, limit: int = 200) -> list[int]:
    now = now or timezone.now()
    return list(
        Message.objects.filter(_due(now))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def messages_sweep(*, now: datetime | None = None) -> int:
    """Send every message that is due and not held: those whose job was lost with a killed
    worker, retries whose delay has passed, reminders that fell due while no worker ran."""
    sent = 0
    for message_id in messages_due(now=now):
        if message_deliver(message_id=message_id) is not None:
            sent += 1
    return sent
