"""Calendar arithmetic for slot generation: recurrence rules, French public holidays, and local
wall-clock times turned into UTC across daylight-saving changes. Pure functions, no database."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.easter import easter
from dateutil.rrule import rrulestr

# Good Friday and St Stephen's Day are public holidays in Moselle, Bas-Rhin and Haut-Rhin only
# (local law of Alsace-Moselle, Code du travail art. L3134-13).
ALSACE_MOSELLE = frozenset({"57", "67", "68"})


@lru_cache(maxsize=64)
def french_public_holidays(year: int, *, alsace_moselle: bool = False) -> frozenset[date]:
    """The eleven public holidays of Code du travail art. L3133-1, plus the two of
    Alsace-Moselle where they apply."""
    easter_sunday = easter(year)
    days = {
        date(year, 1, 1),
        easter_sunday + timedelta(days=1),  # Easter Monday
        date(year, 5, 1),
        date(year, 5, 8),
        easter_sunday + timedelta(days=39),  # Ascension
        easter_sunday + timedelta(days=50),  # Whit Monday
        date(year, 7, 14),
        date(year, 8, 15),
        date(year, 11, 1),
        date(year, 11, 11),
        date(year, 12, 25),
    }
    if alsace_moselle:
        days |= {easter_sunday - timedelta(days=2), date(year, 12, 26)}
    return frozenset(days)


def is_public_holiday(day: date, *, postcode: str = "") -> bool:
    return day in french_public_holidays(day.year, alsace_moselle=postcode[:2] in ALSACE_MOSELLE)


def _recurrence_text(recurrence: str) -> str:
    text = recurrence.strip()
    return text[6:] if text.upper().startswith("RRULE:") else text


def occurrence_days(
    recurrence: str, *, starts_on: date, ends_on: date | None, first: date, last: date
) -> tuple[date, ...]:
    """Days on which a rule opens, between ``first`` and ``last`` inclusive (RFC 5545 §3.3.10,
    with DTSTART the rule's first day). Floating dates: zones apply to the period's times.

    Remembered: a roll asks the same few recurrences over the same window for thousands of
    rules, and dateutil walks every day from the rule's first to answer."""
    return _occurrence_days(recurrence, starts_on, ends_on, first, last)


@lru_cache(maxsize=4096)
def _occurrence_days(
    recurrence: str, starts_on: date, ends_on: date | None, first: date, last: date
) -> tuple[date, ...]:
    last = min(last, ends_on) if ends_on else last
    if last < first or last < starts_on:
        return ()
    rule = rrulestr(
        _recurrence_text(recurrence), dtstart=datetime.combine(starts_on, time()), ignoretz=True
    )
    return tuple(
        moment.date()
        for moment in rule.between(
            datetime.combine(first, time()), datetime.combine(last, time()), inc=True
        )
    )


def local_to_utc(day: date, at: time, zone: ZoneInfo) -> datetime | None:
    """The UTC instant of a local wall-clock time, or None when the clocks skip it.

    In spring, 02:00-03:00 does not exist in Europe/Paris: a slot there is not created. In
    autumn, 02:00-03:00 happens twice: the first (summer time, ``fold=0``) is the only one used,
    so a slot is never created twice.
    """
    local = datetime.combine(day, at, tzinfo=zone)
    instant = local.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return instant


@dataclass(frozen=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    local_minute: int


def cut_period(
    day: date,
    *,
    opens: time,
    closes: time,
    step_minutes: int,
    duration_minutes: int,
    zone: ZoneInfo,
) -> Iterator[PlannedSlot]:
    """Slots of one opening period: they start every ``step_minutes`` of local wall-clock time
    (09:00, 09:30… on the day clocks change as on any other) and last ``duration_minutes``."""
    first = opens.hour * 60 + opens.minute
    last = closes.hour * 60 + closes.minute
    length = timedelta(minutes=duration_minutes)
    offset = steady_offset(day, zone)
    midnight = datetime.combine(day, time(), tzinfo=UTC)
    minute = first
    while minute + duration_minutes <= last:
        if offset is not None:
            # No clock change that day: every local time maps by the same offset.
            starts_at = midnight + timedelta(minutes=minute) - offset
        else:
            starts_at = local_to_utc(day, time(minute // 60, minute % 60), zone)
        if starts_at is not None:
            yield PlannedSlot(starts_at=starts_at, ends_at=starts_at + length, local_minute=minute)
        minute += step_minutes


@lru_cache(maxsize=4096)
def steady_offset(day: date, zone: ZoneInfo) -> timedelta | None:
    """The day's UTC offset if it holds from midnight to midnight, else None (a change day)."""
    start = datetime.combine(day, time(), tzinfo=zone).utcoffset()
    end = datetime.combine(day, time(23, 59, 59), tzinfo=zone).utcoffset()
    return start if start == end else None


def overlaps_any(
    starts_at: datetime, ends_at: datetime, periods: Iterable[tuple[datetime, datetime]]
) -> bool:
    return any(start < ends_at and starts_at < end for start, end in periods)
