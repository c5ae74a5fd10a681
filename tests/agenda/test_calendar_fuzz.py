"""Whatever a calendar server sends, reading it either gives busy intervals that make sense or
a named refusal (CalendarInvalid), never another error: documents made by hypothesis, from
random bytes to a valid calendar with lines dropped, doubled or garbled."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from creneau.agenda.sources.calendar import CalendarInvalid, busy_from_ics
from tests.agenda.test_calendar_source import CALENDAR, FREEBUSY

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 3, 15, tzinfo=UTC)
END = START + timedelta(weeks=8)
LINES = (CALENDAR.replace("END:VCALENDAR", FREEBUSY + "END:VCALENDAR")).splitlines()


def read(document: bytes) -> None:
    try:
        intervals = busy_from_ics(document, zone=PARIS, start=START, end=END)
    except CalendarInvalid as error:
        assert error.code == "calendar_invalid" and error.message
        return
    for first, last in intervals:
        assert first.tzinfo is not None and START <= first < last <= END
    assert intervals == sorted(intervals)
    assert all(a[1] < b[0] for a, b in pairwise(intervals))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes(document):
    read(document)


@st.composite
def garbled(draw) -> bytes:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 6))):
        index = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "double", "garble", "truncate", "swap"]))
        if action == "drop":
            del lines[index]
        elif action == "double":
            lines.insert(index, lines[index])
        elif action == "garble":
            lines[index] = draw(st.text(max_size=60)).replace("\r", "").replace("\n", "")
        elif action == "truncate":
            lines[index] = lines[index][: draw(st.integers(0, len(lines[index])))]
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        if not lines:
            break
    return "\r\n".join(lines).encode("utf-8", "replace")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbled())
def test_a_valid_calendar_garbled(document):
    read(document)
