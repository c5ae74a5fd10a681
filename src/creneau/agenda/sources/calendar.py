"""An iCalendar feed as an agenda source (RFC 5545; busy time as CalDAV defines it, RFC 4791
§7.10): a VEVENT is busy unless TRANSP:TRANSPARENT or STATUS:CANCELLED (TENTATIVE counts as
busy); a VFREEBUSY's FREEBUSY periods are busy when their FBTYPE is BUSY (the default),
BUSY-TENTATIVE or BUSY-UNAVAILABLE. Recurrences (RRULE, RDATE, EXDATE, RECURRENCE-ID
overrides) are expanded by ``recurring-ical-events``; an all-day event covers its whole days and
a floating time is read in the establishment's zone.

A feed is anybody's text, and one line can ask for a billion occurrences (``FREQ=SECONDLY``):
the work is bounded before anything is expanded. Each rule's occurrences are counted from its
own terms (frequency, interval, BY* lists, COUNT, UNTIL): more than
``MAX_OCCURRENCES_PER_EVENT`` in the horizon, or more than ``MAX_ITERATIONS_PER_EVENT`` from
its start (the recurrence library walks them all), and the calendar is refused by name; so is
a calendar whose occurrences in all pass ``MAX_OCCURRENCES``, or whose reading passes
``CRENEAU_AGENDA_TIME_BUDGET_SECONDS``. A refused calendar changes nothing stored. Busy times
closer than the shortest visit (5 minutes) are merged: no slot fits between them."""

import math
import time as clock
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events
from django.conf import settings
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource
from creneau.errors import DomainError
from creneau.outgoing import OutgoingError, request

BUSY_TYPES = {"BUSY", "BUSY-TENTATIVE", "BUSY-UNAVAILABLE"}
MAX_OCCURRENCES_PER_EVENT = 5_000  # an hourly event over 26 weeks is 4,368
MAX_ITERATIONS_PER_EVENT = 200_000
MAX_OCCURRENCES = 50_000
# No visit is shorter (directory.VisitType): a gap under it holds no slot.
SHORTEST_VISIT = timedelta(minutes=5)
_STEP = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3_600,
    "DAILY": 86_400,
    "WEEKLY": 604_800,
    "MONTHLY": 2_419_200,  # 28 days: counts high, never low
    "YEARLY": 31_536_000,
}
# The BY* parts that multiply the occurrences of a coarser frequency (RFC 5545 §3.3.10's
# expand column), with how many each value can give at most.
_EXPANDS = (
    ("BYSECOND", "MINUTELY", 1),
    ("BYMINUTE", "HOURLY", 1),
    ("BYHOUR", "DAILY", 1),
    ("BYDAY", "WEEKLY", 5),
    ("BYMONTHDAY", "MONTHLY", 1),
    ("BYYEARDAY", "YEARLY", 1),
    ("BYWEEKNO", "YEARLY", 7),
    ("BYMONTH", "YEARLY", 1),
)
_ORDER = list(_STEP)


class CalendarInvalid(DomainError):
    status = 422


def _too_much(why: str) -> CalendarInvalid:
    return CalendarInvalid(
        "calendar_too_complex",
        _("The calendar asks for too much work to read (%(why)s): nothing was changed.")
        % {"why": why},
    )


class Budget:
    """What reading one calendar may cost (a CalDAV calendar's documents share one)."""

    def __init__(self) -> None:
        self.deadline = clock.monotonic() + settings.CRENEAU_AGENDA_TIME_BUDGET_SECONDS
        self.occurrences = 0

    def spend(self, occurrences: int) -> None:
        self.occurrences += occurrences
        if self.occurrences > MAX_OCCURRENCES:
            raise _too_much(
                _("more than %(count)s occurrences in all") % {"count": f"{MAX_OCCURRENCES:,}"}
            )
        if clock.monotonic() > self.deadline:
            raise _too_much(
                _("more than %(seconds)s seconds")
                % {"seconds": settings.CRENEAU_AGENDA_TIME_BUDGET_SECONDS}
            )


def _values(rule, name: str) -> list:
    value = rule.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _rule_counts(rule, first: datetime, start: datetime, end: datetime) -> tuple[float, float]:
    """An upper bound of a rule's occurrences from its first one to ``end``, and of those
    between ``start`` and ``end``."""
    frequency = str((_values(rule, "FREQ") or ["DAILY"])[0]).upper()
    step = _STEP.get(frequency, 86_400) * max(1, int((_values(rule, "INTERVAL") or [1])[0]))
    each = 1
    for part, coarser_than, weight in _EXPANDS:
        values = _values(rule, part)
        if values and _ORDER.index(frequency) >= _ORDER.index(coarser_than):
            # A weekday a week is one day; a weekday of a month or a year, up to five.
            each *= len(values) * (1 if frequency == "WEEKLY" else weight)
    until = _values(rule, "UNTIL")
    last = end
    if until and isinstance(until[0], datetime):
        last = min(end, until[0] if until[0].tzinfo else until[0].replace(tzinfo=first.tzinfo))
    count = _values(rule, "COUNT")
    cap = float(count[0]) if count else math.inf
    every = min(cap, max(0.0, (last - first).total_seconds()) / step * each + each)
    within = min(cap, max(0.0, (last - max(first, start)).total_seconds()) / step * each + each)
    return every, within


def _screen(calendar, zone: ZoneInfo, start: datetime, end: datetime) -> None:
    """Refuse, before expanding anything, a calendar whose rules ask for too many
    occurrences."""
    total = 0.0
    for event in calendar.walk("VEVENT"):
        starts = event.get("DTSTART")
        if starts is None:
            continue
        first = _instant(starts.dt, zone)
        rules = event.get("RRULE")
        for rule in rules if isinstance(rules, list) else [rules] if rules is not None else []:
            every, within = _rule_counts(rule, first, start, end)
            uid = str(event.get("UID", "?"))[:60]
            if within > MAX_OCCURRENCES_PER_EVENT or every > MAX_ITERATIONS_PER_EVENT:
                raise _too_much(
                    _("the event %(uid)s repeats about %(count)s times")
                    % {"uid": uid, "count": f"{int(max(within, every)):,}"}
                )
            total += within
    if total > MAX_OCCURRENCES:
        raise _too_much(
            _("more than %(count)s occurrences in all") % {"count": f"{MAX_OCCURRENCES:,}"}
        )


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
    """Sorted, overlapping ones joined, and those closer than the shortest visit too."""
    out: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if out and start < out[-1][1] + SHORTEST_VISIT:
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


def busy_from_ics(
    data: bytes, *, zone: ZoneInfo, start: datetime, end: datetime, budget: Budget | None = None
) -> list:
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
    budget = budget or Budget()
    try:
        _screen(calendar, zone, start, end)
        intervals = _events_busy(calendar, zone, start, end, budget) + _freebusy(calendar, zone)
        budget.spend(0)
    except CalendarInvalid:
        raise
    except Exception as error:
        raise CalendarInvalid(
            "calendar_invalid",
            _("The calendar's events cannot be read: %(error)s") % {"error": str(error)[:200]},
        ) from error
    return [(max(a, start), min(b, end)) for a, b in merged(intervals) if b > start and a < end]


def _events_busy(calendar, zone: ZoneInfo, start: datetime, end: datetime, budget) -> list:
    intervals = []
    found = recurring_ical_events.of(calendar).between(start, end)
    budget.spend(len(found))
    for event in found:
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
