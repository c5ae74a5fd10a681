"""Calendar arithmetic: recurrence rules, French public holidays, daylight-saving changes."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from creneau.agenda.recurrence import (
    cut_period,
    french_public_holidays,
    is_public_holiday,
    local_to_utc,
    occurrence_days,
)

PARIS = ZoneInfo("Europe/Paris")
SPRING_2027 = date(2027, 3, 28)  # clocks go from 02:00 to 03:00
AUTUMN_2027 = date(2027, 10, 31)  # clocks go from 03:00 back to 02:00


def test_the_eleven_french_public_holidays_of_2027():
    holidays = french_public_holidays(2027)
    assert sorted(holidays) == [
        date(2027, 1, 1),
        date(2027, 3, 29),  # Easter Monday (Easter: 28 March 2027)
        date(2027, 5, 1),
        date(2027, 5, 6),  # Ascension
        date(2027, 5, 8),
        date(2027, 5, 17),  # Whit Monday
        date(2027, 7, 14),
        date(2027, 8, 15),
        date(2027, 11, 1),
        date(2027, 11, 11),
        date(2027, 12, 25),
    ]


def test_good_friday_and_st_stephen_are_holidays_in_alsace_moselle_only():
    assert is_public_holiday(date(2027, 3, 26), postcode="67000")
    assert is_public_holiday(date(2027, 12, 26), postcode="57000")
    assert not is_public_holiday(date(2027, 3, 26), postcode="75013")
    assert not is_public_holiday(date(2027, 12, 26), postcode="75013")


def days(rule, first=date(2027, 1, 1), last=date(2027, 3, 31), starts_on=date(2027, 1, 4), **kw):
    return list(
        occurrence_days(
            rule, starts_on=starts_on, ends_on=kw.get("ends_on"), first=first, last=last
        )
    )


def test_weekly_every_other_week_and_first_monday_of_the_month():
    assert days("FREQ=WEEKLY;BYDAY=MO,TH")[:4] == [
        date(2027, 1, 4),
        date(2027, 1, 7),
        date(2027, 1, 11),
        date(2027, 1, 14),
    ]
    assert days("FREQ=WEEKLY;INTERVAL=2;BYDAY=TU")[:3] == [
        date(2027, 1, 5),
        date(2027, 1, 19),
        date(2027, 2, 2),
    ]
    assert days("FREQ=MONTHLY;BYDAY=1MO") == [
        date(2027, 1, 4),
        date(2027, 2, 1),
        date(2027, 3, 1),
    ]


def test_a_rule_stops_at_its_last_day_and_at_its_until():
    assert days("FREQ=WEEKLY;BYDAY=MO", ends_on=date(2027, 1, 18))[-1] == date(2027, 1, 18)
    assert days("FREQ=WEEKLY;BYDAY=MO;UNTIL=20270112")[-1] == date(2027, 1, 11)
    assert days("FREQ=WEEKLY;BYDAY=MO;COUNT=2") == [date(2027, 1, 4), date(2027, 1, 11)]


def test_nine_to_noon_stays_nine_to_noon_local_on_both_sides_of_a_clock_change():
    before = list(
        cut_period(
            date(2027, 3, 22),
            opens=time(9),
            closes=time(12),
            step_minutes=30,
            duration_minutes=30,
            zone=PARIS,
        )
    )
    after = list(
        cut_period(
            date(2027, 3, 29),
            opens=time(9),
            closes=time(12),
            step_minutes=30,
            duration_minutes=30,
            zone=PARIS,
        )
    )
    assert [s.starts_at.astimezone(PARIS).time() for s in before] == [
        s.starts_at.astimezone(PARIS).time() for s in after
    ]
    assert before[0].starts_at == datetime(2027, 3, 22, 8, tzinfo=UTC)  # UTC+1
    assert after[0].starts_at == datetime(2027, 3, 29, 7, tzinfo=UTC)  # UTC+2
    assert len(before) == len(after) == 6


def test_a_period_across_the_night_of_a_change_skips_the_missing_hour_and_never_doubles():
    spring = list(
        cut_period(
            SPRING_2027,
            opens=time(1),
            closes=time(4),
            step_minutes=30,
            duration_minutes=30,
            zone=PARIS,
        )
    )
    assert [s.local_minute for s in spring] == [60, 90, 180, 210]  # 02:00 and 02:30 do not exist
    autumn = list(
        cut_period(
            AUTUMN_2027,
            opens=time(1),
            closes=time(4),
            step_minutes=30,
            duration_minutes=30,
            zone=PARIS,
        )
    )
    starts = [s.starts_at for s in autumn]
    assert len(starts) == len(set(starts)) == 6
    assert local_to_utc(AUTUMN_2027, time(2, 30), PARIS) == datetime(
        2027, 10, 31, 0, 30, tzinfo=UTC
    )


@settings(max_examples=150, deadline=None)
@given(
    first_day=st.dates(min_value=date(2026, 1, 1), max_value=date(2030, 12, 31)),
    opens=st.integers(min_value=0, max_value=22 * 60),
    length=st.integers(min_value=15, max_value=8 * 60),
    step=st.sampled_from([5, 10, 15, 20, 30, 45, 60]),
    duration=st.sampled_from([10, 15, 20, 30, 60]),
    zone=st.sampled_from(
        ["Europe/Paris", "America/Cayenne", "Indian/Reunion", "America/Santiago", "America/Havana"]
    ),
)
def test_every_slot_starts_on_the_local_grid_once_and_lasts_its_duration(
    first_day, opens, length, step, duration, zone
):
    tz = ZoneInfo(zone)
    closes = min(opens + length, 24 * 60 - 1)
    seen = set()
    for offset in range(0, 14):  # two weeks from any day: includes every kind of change
        day = first_day + timedelta(days=offset)
        slots = list(
            cut_period(
                day,
                opens=time(opens // 60, opens % 60),
                closes=time(closes // 60, closes % 60),
                step_minutes=step,
                duration_minutes=duration,
                zone=tz,
            )
        )
        expected = [m for m in range(opens, closes - duration + 1, step)]
        for slot in slots:
            local = slot.starts_at.astimezone(tz)
            assert local.date() == day
            assert local.hour * 60 + local.minute == slot.local_minute
            assert slot.local_minute in expected
            assert slot.ends_at - slot.starts_at == timedelta(minutes=duration)
            assert slot.starts_at not in seen
            seen.add(slot.starts_at)
        # Only a local time the clocks skip may be missing.
        missing = set(expected) - {s.local_minute for s in slots}
        for minute in missing:
            assert local_to_utc(day, time(minute // 60, minute % 60), tz) is None
