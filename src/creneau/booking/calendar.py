"""An appointment as an iCalendar event (RFC 5545), for "add to my calendar" and, later, the
invitations attached to messages: the same UID throughout, a SEQUENCE that grows with each
move, and the event's time given in Europe/Paris with its VTIMEZONE, so that calendars show the
right hour on both sides of a daylight-saving change."""

from django.utils import timezone
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from creneau.booking.models import PARIS, Appointment, AppointmentEvent

PRODUCT_ID = "-//Créneau//Appointment booking hub//FR"


def appointment_uid(appointment: Appointment) -> str:
    return f"appointment-{appointment.public_id}@creneau"


def appointment_ics(
    appointment: Appointment, *, manage_url: str = "", organizer: str = ""
) -> bytes:
    """The event as a file to add (METHOD:PUBLISH), or, given the organizer's address, as an
    invitation sent to the patient (RFC 6047 iMIP: METHOD:REQUEST, then CANCEL, with ORGANIZER
    and ATTENDEE) that updates or removes the same event in their calendar."""
    sequence = appointment.events.filter(action=AppointmentEvent.Action.MOVED).count()
    cancelled = not appointment.is_active
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    if cancelled:
        calendar.add("method", "CANCEL")
    else:
        calendar.add("method", "REQUEST" if organizer else "PUBLISH")
    event = Event()
    if organizer:
        event.add("organizer", f"mailto:{organizer}")
        if appointment.patient_email:
            event.add(
                "attendee",
                f"mailto:{appointment.patient_email}",
                parameters={"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "ACCEPTED", "RSVP": "FALSE"},
            )
    event.add("uid", appointment_uid(appointment))
    event.add("sequence", sequence + (1 if cancelled else 0))
    event.add("dtstamp", timezone.now())
    event.add("dtstart", timezone.localtime(appointment.starts_at, PARIS))
    event.add("dtend", timezone.localtime(appointment.ends_at, PARIS))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    place = appointment.establishment
    event.add(
        "summary",
        _("%(visit)s with %(practitioner)s")
        % {
            "visit": appointment.visit_type.label,
            "practitioner": appointment.practitioner.display_name,
        },
    )
    event.add("location", f"{place.name}, {place.address}, {place.postcode} {place.city}")
    lines = [appointment.visit_type.preparation]
    if manage_url:
        lines.append(_("See, move or cancel: %(url)s") % {"url": manage_url})
    event.add("description", "\n\n".join(line for line in lines if line))
    if manage_url:
        event.add("url", manage_url)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


def practitioner_feed_ics(*, role_id: int, names: bool, now) -> bytes:
    """A practitioner's bookings as a calendar they subscribe to (their calendar is read-only
    to the hub): the coming ones and the past month's, cancelled ones as CANCELLED so that the
    calendar drops them. The patient's name only when the calendar is the hospital's."""
    from datetime import timedelta

    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", _("Créneau bookings"))
    since = now - timedelta(days=30)
    found = Appointment.objects.filter(
        practitioner_role_id=role_id, ends_at__gte=since
    ).select_related("visit_type", "establishment")
    for appointment in found.order_by("starts_at"):
        calendar.add_component(practitioner_event(appointment, names=names, now=now))
    calendar.add_missing_timezones()
    return calendar.to_ical()


def practitioner_event(appointment: Appointment, *, names: bool, now) -> Event:
    """The appointment as an event of the practitioner's own calendar (their feed of bookings,
    or written into their CalDAV calendar): the visit, the place and the appointment's
    reference; the patient's name only when ``names`` (a calendar the hospital hosts)."""
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("dtstamp", now)
    event.add("dtstart", timezone.localtime(appointment.starts_at, PARIS))
    event.add("dtend", timezone.localtime(appointment.ends_at, PARIS))
    event.add("status", "CONFIRMED" if appointment.is_active else "CANCELLED")
    summary = appointment.visit_type.label
    if names:
        summary += f" — {appointment.patient_last_name.upper()} {appointment.patient_first_name}"
    event.add("summary", summary)
    place = appointment.establishment
    event.add("location", f"{place.name}, {place.address}, {place.postcode} {place.city}")
    event.add("description", _("Créneau appointment %(id)s") % {"id": appointment.public_id})
    return event
