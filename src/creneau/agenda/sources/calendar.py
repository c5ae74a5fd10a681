"""An iCalendar feed as an agenda source (RFC 5545; busy time as CalDAV defines it, RFC 4791
§7.10): a VEVENT is busy unless TRANSP:TRANSPARENT or STATUS:CANCELLED (TENTATIVE counts as
busy); a VFREEBUSY's FREEBUSY periods are busy when their FBTYPE is BUSY (the default),
BUSY-TENTATIVE or BUSY-UNAVAILABLE. Recurrences (RRULE, RDATE, EXDATE, RECURRENCE-ID
overrides) are expanded by ``recurring-ical-events``; an all-day event covers its whole days and
a floating time is read in the establishment's zone."""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource
from creneau.errors import DomainError
from creneau.outgoing import OutgoingError, request

BUSY_TYPES = {"BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"}


class CalendarInvalid(DomainError):
    status = 422


@dataclass
class Busy:
    """What a source says is busy, merged and sorted; ``unchanged`` when the server said 304.
    A CalDAV source also gives its objects as they now stand, and its new sync-token."""

    intervals: list[tuple[datetime, datetime]] = field(default_factory=list)
    etag: str = ""
    unchanged: bool = False
    objects: dict[str, str] | None = None
    sync_token: str = ""


def _instant(value, zone: ZoneInfo, *, end: bool = False) -> datetime:
    """A DATE (whole local day), a floating DATE-TIME (local) or an aware one, as aware."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=zone)
    raise CalendarInvalid("calendar_invalid", _("A date in the calendar is not a date."))


def merged(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _event_busy(event) -> bool:
    uid = str(event.get("UID", ""))
    if uid.startswith("appointment-") and uid.endswith("@creneau"):
        # The hub's own booking, written back into the calendar: its time is the booking's,
        # not busy time that would take the booked slot away.
        return False
    if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
        return False
    return str(event.get("STATUS", "CONFIRMED")).upper() != "CANCELLED"


def busy_from_ics(data: bytes, *, zone: ZoneInfo, start: datetime, end: datetime) -> list:
    """The busy intervals of an iCalendar document between ``start`` and ``end``; a document
    that cannot be read is refused by name (CalendarInvalid), whatever the parser trips on:
    icalendar and recurring-ical-events raise many kinds of errors on malformed input (a doubled
    TZID, a period that is a list), and a feed is anybody's text."""
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except Exception as error:
        raise CalendarInvalid(
            "calendar_invalid",
            _("The calendar is not valid iCalendar: %(error)s") % {"error": str(error)[:200]},
        ) from error
    if getattr(calendar, "name", None) != "VCALENDAR":
        raise CalendarInvalid("calendar_invalid", _("The document is not a VCALENDAR."))
    try:
        intervals = _events_busy(calendar, zone, start, end) + _freebusy(calendar, zone)
    except CalendarInvalid:
        raise
    except Exception as error:
        raise CalendarInvalid(
            "calendar_invalid",
            _("The calendar's events cannot be read: %(error)s") % {"error": str(error)[:200]},
        ) from error
    return [(max(a, start), min(b, end)) for a, b in merged(intervals) if b > start and a < end]


def _events_busy(calendar, zone: ZoneInfo, start: datetime, end: datetime) -> list:
    intervals = []
    for event in recurring_ical_events.of(calendar).between(start, end):
        if event.name != "VEVENT" or not _event_busy(event):
            continue
        starts = event.get("DTSTART")
        if starts is None:
            continue
        first = _instant(starts.dt, zone)
        if event.get("DTEND") is not None:
            last = _instant(event["DTEND"].dt, zone)
        elif event.get("DURATION") is not None:
            last = first + event["DURATION"].dt
        elif not isinstance(starts.dt, datetime):
            last = first + timedelta(days=1)  # an all-day event without an end: one day
        else:
            last = first
        if last > first:
            intervals.append((first, last))
    return intervals


def _freebusy(calendar, zone: ZoneInfo) -> list:
    intervals = []
    for freebusy in calendar.walk("VFREEBUSY"):
        periods = freebusy.get("FREEBUSY") or []
        for prop in periods if isinstance(periods, list) else [periods]:
            if str(prop.params.get("FBTYPE", "BUSY")).upper() not in BUSY_TYPES:
                continue
            # One FREEBUSY line may hold several periods: icalendar gives each as a vPeriod
            # (or, in older versions, a list of them under ``dts``).
            for period in getattr(prop, "dts", None) or [prop]:
                first, second = period.dt
                first = _instant(first, zone)
                last = first + second if isinstance(second, timedelta) else _instant(second, zone)
                intervals.append((first, last))
    return intervals


def busy(source: AgendaSource, *, now: datetime, until: datetime, conditional: bool = True) -> Busy:
    headers = {"Accept": "text/calendar"}
    if conditional and source.etag:
        headers["If-None-Match"] = source.etag
    fetched = request(source.url, headers=headers)
    if fetched.status == 304:
        return Busy(unchanged=True, etag=source.etag)
    if fetched.status != 200:
        raise OutgoingError(
            "source_error",
            _("The calendar server answered %(status)s.") % {"status": fetched.status},
        )
    zone = source.practitioner_role.establishment.zone
    return Busy(
        intervals=busy_from_ics(fetched.body, zone=zone, start=now, end=until),
        etag=fetched.etag,
    )


def test(source: AgendaSource, *, now: datetime) -> str:
    found = busy(source, now=now, until=now + timedelta(weeks=2), conditional=False)
    return _("The calendar answers: %(count)s busy periods in the next two weeks.") % {
        "count": len(found.intervals)
    }
