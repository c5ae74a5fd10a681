"""Quiet hours (CRENEAU_QUIET_HOURS, 21:00-08:00 Paris by default): what the hub sends on its
own initiative (waiting-list offers, reminders, the hospital's notices) waits until morning,
and an offer's window counts only waking hours, so that nobody loses a slot while asleep.
Times of day are read on the Paris clock, so the quiet night is the same on both sides of a
change of clocks (one night lasts an hour more or less in absolute time)."""

from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.utils import timezone

from creneau.booking.models import PARIS


def _at(day, minutes: int) -> datetime:
    """The instant of this Paris time of day on ``day`` (as the clock on the wall shows it)."""
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=PARIS)
    return local.astimezone(UTC)


def _quiet_period(moment: datetime) -> tuple[datetime, datetime] | None:
    """The quiet period ``moment`` falls in, (start, end), or None when it is waking time."""
    hours = settings.CRENEAU_QUIET_HOURS
    if hours is None:
        return None
    start, end = hours
    day = timezone.localtime(moment, PARIS).date()
    for offset in (-1, 0):
        begins = _at(day + timedelta(days=offset), start)
        ends_day = day + timedelta(days=offset + (1 if end <= start else 0))
        ends = _at(ends_day, end)
        if begins <= moment < ends:
            return begins, ends
    return None


def next_waking(moment: datetime) -> datetime:
    """``moment`` itself in waking hours; otherwise the end of the quiet period it is in."""
    period = _quiet_period(moment)
    return moment if period is None else period[1]


def _next_quiet_start(moment: datetime) -> datetime | None:
    hours = settings.CRENEAU_QUIET_HOURS
    if hours is None:
        return None
    day = timezone.localtime(moment, PARIS).date()
    for offset in (0, 1, 2):
        begins = _at(day + timedelta(days=offset), hours[0])
        if begins > moment:
            return begins
    return None  # pragma: no cover - a quiet period starts every day


def waking_deadline(start: datetime, minutes: int) -> datetime:
    """The instant ``minutes`` of waking time after ``start`` (the quiet hours not counted):
    an offer made at 20:30 for two hours ends at 09:30 the next morning."""
    remaining = timedelta(minutes=minutes)
    cursor = next_waking(start)
    while True:
        quiet = _next_quiet_start(cursor)
        if quiet is None or cursor + remaining <= quiet:
            return cursor + remaining
        remaining -= quiet - cursor
        cursor = next_waking(quiet)


# A message due in the night that the morning would make too late goes this long before the
# night begins instead (20:45 with the default quiet hours).
EVENING_MARGIN = timedelta(minutes=15)


def waking_time_for(due: datetime, *, latest: datetime, now: datetime) -> datetime | None:
    """When to send a message due at ``due`` that is of no use after ``latest``: ``due`` in
    waking hours; otherwise the next morning, or if that is too late the evening before the
    night ``due`` falls in; None when neither is between ``now`` and ``latest``."""
    period = _quiet_period(due)
    if period is None:
        return due if now <= due < latest else None
    begins, ends = period
    if ends < latest:
        return max(ends, now)
    evening = begins - EVENING_MARGIN
    return evening if now <= evening < latest else None
