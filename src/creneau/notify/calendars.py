"""Writing a practitioner's bookings into their CalDAV calendar (RFC 4791 §5.3.2): each
booking, move and cancellation, by the worker as the patients' messages are (claimed with a
lease, retried with back-off, in order, exactly once). The event sits at a stable address named
after the appointment, created with ``If-None-Match: *`` and changed or deleted with
``If-Match`` on the ETag the calendar gave; it carries the visit, the place and the
appointment's reference, and the patient's name only when the calendar is the hospital's."""

import base64
from datetime import timedelta

from django.utils import timezone
from icalendar import Calendar

from creneau.agenda.models import AgendaSource
from creneau.booking.calendar import PRODUCT_ID, practitioner_event
from creneau.booking.models import Appointment
from creneau.notify.backends import DeliveryError, Sent
from creneau.outgoing import OutgoingError, request
from creneau.sealing import unseal

WRITTEN_KINDS = frozenset({"confirmation", "moved", "cancelled"})


def caldav_source(appointment: Appointment) -> AgendaSource | None:
    return AgendaSource.objects.filter(
        practitioner_role_id=appointment.practitioner_role_id, kind=AgendaSource.Kind.CALDAV
    ).first()


def event_ics(appointment: Appointment, *, names: bool) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add_component(practitioner_event(appointment, names=names, now=timezone.now()))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _headers(source: AgendaSource) -> dict[str, str]:
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    password = unseal(source.sealed_secret)
    if source.username or password:
        pair = f"{source.username}:{password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return headers


def write_booking(appointment: Appointment, kind: str, *, etag: str) -> Sent:
    """PUT (booking, move) or DELETE (cancellation) the appointment's event; the ETag the
    calendar answered comes back as the reference, for the next change's If-Match."""
    source = caldav_source(appointment)
    if source is None:
        raise DeliveryError("the practitioner's agenda is no longer a CalDAV calendar", retry=False)
    url = f"{source.url.rstrip('/')}/creneau-{appointment.public_id}.ics"
    headers = _headers(source)
    if kind == "cancelled":
        method, body = "DELETE", None
    else:
        method, body = "PUT", event_ics(appointment, names=source.hosted_by_hospital)
    if kind == "confirmation":
        headers["If-None-Match"] = "*"
    elif etag:
        headers["If-Match"] = etag
    try:
        answer = request(url, method=method, body=body, headers=headers)
    except OutgoingError as error:
        raise DeliveryError(f"{method} {error.code}: {error.message}", retry=True) from None
    status = answer.status
    if kind == "confirmation" and status == 412:
        # Already there: a retry of a PUT whose answer was lost.
        return Sent(reference=etag, answer="412 already written")
    if kind == "cancelled" and status == 404:
        return Sent(reference="", answer="404 already gone")
    if status >= 400:
        retry = status >= 500 or status in (408, 429)
        raise DeliveryError(f"{method} {status}", retry=retry)
    return Sent(reference=answer.etag[:200], answer=f"{method} {status}")


def useful_until(appointment: Appointment, now):
    return max(now, appointment.ends_at) + timedelta(days=1)
