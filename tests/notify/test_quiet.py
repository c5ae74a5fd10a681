"""Quiet hours (issue 28, point 2): offers, reminders and the hospital's notices wait out the
night, on the Paris clock, across midnight and across a change of clocks; an offer's window
counts waking hours only; what the patient just did is told at once."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from creneau.booking.models import PARIS
from creneau.notify.quiet import next_waking, waking_deadline, waking_time_for
from creneau.settings import _quiet_hours


def paris(*args, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=PARIS, fold=fold)


@pytest.mark.parametrize(
    ("moment", "waking"),
    [
        (paris(2026, 12, 4, 20, 59), paris(2026, 12, 4, 20, 59)),  # still awake
        (paris(2026, 12, 4, 21, 0), paris(2026, 12, 5, 8, 0)),  # the night begins
        (paris(2026, 12, 4, 23, 59), paris(2026, 12, 5, 8, 0)),  # before midnight
        (paris(2026, 12, 5, 3, 50), paris(2026, 12, 5, 8, 0)),  # after midnight
        (paris(2026, 12, 5, 8, 0), paris(2026, 12, 5, 8, 0)),  # morning
        # Clocks go forward in the night of 27-28 March 2027, back in that of 30-31 October.
        (paris(2027, 3, 28, 1, 30), paris(2027, 3, 28, 8, 0)),
        (paris(2027, 10, 31, 2, 30, fold=1), paris(2027, 10, 31, 8, 0)),
    ],
)
def test_the_night_ends_at_eight_on_the_paris_clock(moment, waking):
    assert next_waking(moment.astimezone(UTC)) == waking.astimezone(UTC)


def test_an_offer_s_window_counts_waking_hours_only():
    # Two hours from 20:30: half an hour tonight, an hour and a half tomorrow morning.
    assert waking_deadline(paris(2026, 12, 4, 20, 30), 120) == paris(2026, 12, 5, 9, 30)
    # Made at 03:50, it starts at 08:00 (not "before 05:50").
    assert waking_deadline(paris(2026, 12, 5, 3, 50), 120) == paris(2026, 12, 5, 10, 0)
    # In the day, two hours are two hours.
    assert waking_deadline(paris(2026, 12, 4, 14, 0), 120) == paris(2026, 12, 4, 16, 0)
    # A window longer than a day skips every night.
    assert waking_deadline(paris(2026, 12, 4, 8, 0), 26 * 60) == paris(2026, 12, 5, 21, 0)
    assert waking_deadline(paris(2026, 12, 4, 8, 0), 26 * 60 + 1) == paris(2026, 12, 6, 8, 1)
    # Across the change of clocks the night is an hour shorter in absolute time, the same
    # on the wall: 20:30 CET plus two waking hours is 09:30 CEST, 07:30 UTC.
    spring = waking_deadline(paris(2027, 3, 27, 20, 30).astimezone(UTC), 120)
    assert spring == datetime(2027, 3, 28, 7, 30, tzinfo=UTC)
    autumn = waking_deadline(paris(2027, 10, 30, 20, 30).astimezone(UTC), 120)
    assert autumn == datetime(2027, 10, 31, 8, 30, tzinfo=UTC)  # 09:30 CET


def test_other_quiet_hours_and_none(settings):
    settings.CRENEAU_QUIET_HOURS = (13 * 60, 14 * 60)  # a quiet lunch, not across midnight
    assert next_waking(paris(2026, 12, 4, 13, 30)) == paris(2026, 12, 4, 14, 0)
    assert next_waking(paris(2026, 12, 4, 3, 0)) == paris(2026, 12, 4, 3, 0)
    settings.CRENEAU_QUIET_HOURS = None
    assert next_waking(paris(2026, 12, 5, 3, 50)) == paris(2026, 12, 5, 3, 50)
    assert waking_deadline(paris(2026, 12, 5, 3, 50), 120) == paris(2026, 12, 5, 5, 50)


def test_the_setting_is_read_or_refused_with_its_name(monkeypatch):
    monkeypatch.setenv("CRENEAU_QUIET_HOURS", "22:30-07:15")
    assert _quiet_hours("CRENEAU_QUIET_HOURS", "21:00-08:00") == (22 * 60 + 30, 7 * 60 + 15)
    monkeypatch.setenv("CRENEAU_QUIET_HOURS", "off")
    assert _quiet_hours("CRENEAU_QUIET_HOURS", "21:00-08:00") is None
    for wrong in ("21h-8h", "25:00-08:00", "08:00-08:00"):
        monkeypatch.setenv("CRENEAU_QUIET_HOURS", wrong)
        with pytest.raises(ImproperlyConfigured, match="CRENEAU_QUIET_HOURS"):
            _quiet_hours("CRENEAU_QUIET_HOURS", "21:00-08:00")


def test_a_reminder_due_in_the_night_comes_in_the_morning_or_the_evening_before():
    now = paris(2026, 12, 1, 12, 0)
    # Due at 02:00 for an appointment at 11:00 (an hour's lead): 08:00.
    latest = paris(2026, 12, 5, 10, 0)
    assert waking_time_for(paris(2026, 12, 5, 2, 0), latest=latest, now=now) == paris(
        2026, 12, 5, 8, 0
    )
    # For an appointment at 08:30, 08:00 is too late: 20:45 the evening before.
    latest = paris(2026, 12, 5, 7, 30)
    assert waking_time_for(paris(2026, 12, 4, 23, 0), latest=latest, now=now) == paris(
        2026, 12, 4, 20, 45
    )
    # In the day it is sent when due; past its use or before now, never.
    assert waking_time_for(paris(2026, 12, 4, 15, 0), latest=latest, now=now) == paris(
        2026, 12, 4, 15, 0
    )
    assert waking_time_for(paris(2026, 12, 4, 23, 0), latest=latest, now=latest) is None
