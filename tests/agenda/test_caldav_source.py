"""A practitioner whose agenda is a CalDAV calendar, on a real Radicale server started on
loopback: events made with the `caldav` library (a weekly meeting with an exception and a moved
occurrence, an all-day congress, a tentative meeting, a transparent reminder, a cancelled
event, a floating time, an event in London) take out exactly the overlapping
slots; later syncs are incremental (RFC 6578 sync-token) and follow additions and deletions; a
token the server forgot starts a full sync; the password is stored sealed."""

import re
import socket
import subprocess
import sys
import time
from datetime import date
from ipaddress import ip_network

import caldav
import pytest

from creneau.agenda.models import AgendaSource, CalendarObject
from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync
from tests.agenda.test_calendar_source import ALL, CALENDAR, offered, without
from tests.cli import free_port

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def radicale(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("radicale")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "radicale",
            "--server-hosts",
            f"127.0.0.1:{port}",
            "--auth-type",
            "none",
            "--rights-type",
            "authenticated",
            "--storage-filesystem-folder",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def objects_of(document: str) -> list[str]:
    """One CalDAV object per UID (a recurrence's overrides with their master), each a
    VCALENDAR with the time zone."""
    timezone_block = re.search(r"BEGIN:VTIMEZONE.*?END:VTIMEZONE\n", document, re.S).group(0)
    events = re.findall(r"BEGIN:VEVENT.*?END:VEVENT\n", document, re.S)
    by_uid: dict[str, list[str]] = {}
    for event in events:
        by_uid.setdefault(re.search(r"UID:(\S+)", event).group(1), []).append(event)
    wrap = "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Test//Agenda//FR\n{}{}END:VCALENDAR\n"
    return [wrap.format(timezone_block, "".join(parts)) for parts in by_uid.values()]


@pytest.fixture
def calendar_url(radicale, settings, request):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    client = caldav.DAVClient(url=radicale + "/", username="dr.morin", password="secret")
    name = f"agenda-{request.node.name[:20]}-{time.monotonic_ns()}"
    calendar = client.principal().make_calendar(name=name, cal_id=name)
    for document in objects_of(CALENDAR):
        calendar.save_event(document)
    return str(calendar.url), calendar


def test_caldav_events_take_out_the_busy_slots_and_syncs_are_incremental(
    calendar_url, pitie_neurosurgeon, open_agenda, clock
):
    url, calendar = calendar_url
    role = pitie_neurosurgeon
    open_agenda(role)
    source = agenda_source_connect(
        role=role, kind="caldav", url=url, username="dr.morin", secret="secret"
    )
    assert "secret" not in source.sealed_secret
    outcome = agenda_source_sync(source=source)
    assert outcome.ok, outcome.error
    expected = {
        date(2027, 3, 16): without("10:00"),
        date(2027, 3, 17): [],
        date(2027, 3, 18): without("09:00"),
        date(2027, 3, 19): ALL,
        date(2027, 3, 22): without("09:00", "11:00"),
        date(2027, 3, 23): ALL,
        date(2027, 3, 30): without("11:00"),
    }
    assert {day: offered(role, day) for day in expected} == expected
    source.refresh_from_db()
    first_token = source.sync_token
    assert first_token and CalendarObject.objects.filter(source=source).count() == 7

    # The congress is cancelled (deleted) and a meeting is added on the 23rd: the next sync
    # brings only those two changes, and the slots follow.
    next(e for e in calendar.events() if "away@test" in e.data).delete()
    calendar.save_event(
        "BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Test//FR\nBEGIN:VEVENT\nUID:new@test\n"
        "DTSTAMP:20270101T000000Z\nDTSTART;TZID=Europe/Paris:20270323T093000\n"
        "DTEND;TZID=Europe/Paris:20270323T103000\nEND:VEVENT\nEND:VCALENDAR\n"
    )
    assert agenda_source_sync(source=source).ok
    assert offered(role, date(2027, 3, 17)) == ALL
    assert offered(role, date(2027, 3, 23)) == without("09:30", "10:00")
    source.refresh_from_db()
    assert source.sync_token and source.sync_token != first_token

    # A token the server no longer knows: a full sync, the same result.
    AgendaSource.objects.filter(pk=source.pk).update(
        sync_token="http://radicale.org/ns/sync/0000000000000000000000000000000000000000"
    )
    source.refresh_from_db()
    assert agenda_source_sync(source=source).ok
    assert offered(role, date(2027, 3, 23)) == without("09:30", "10:00")
    assert offered(role, date(2027, 3, 16)) == without("10:00")


def test_a_caldav_server_that_is_down_or_private_changes_nothing(
    calendar_url, pitie_neurosurgeon, open_agenda, clock, settings
):
    url, _calendar = calendar_url
    open_agenda(pitie_neurosurgeon)
    source = agenda_source_connect(role=pitie_neurosurgeon, kind="caldav", url=url)
    assert agenda_source_sync(source=source).ok
    before = offered(pitie_neurosurgeon, date(2027, 3, 16))
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    refused = agenda_source_sync(source=source)
    assert not refused.ok and "CRENEAU_OUTGOING_ALLOWED_NETWORKS" in refused.error
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    AgendaSource.objects.filter(pk=source.pk).update(url=f"http://127.0.0.1:{free_port()}/x/")
    source.refresh_from_db()
    down = agenda_source_sync(source=source)
    assert not down.ok and down.error
    assert offered(pitie_neurosurgeon, date(2027, 3, 16)) == before


def test_bookings_moves_and_cancellations_are_written_into_the_calendar(
    calendar_url, pitie_neurosurgeon, open_agenda, clock, public_scope, patient
):
    """Each change is written by the worker, once, in order; the event names the visit and
    the appointment, the patient only for a hospital calendar; the hub's own events are not
    busy time (the booked slot is not reported at the next sync)."""
    from creneau.agenda.models import Slot
    from creneau.booking.services import (
        appointment_book,
        appointment_cancel,
        appointment_reschedule,
    )
    from creneau.notify.models import Message
    from creneau.notify.services import messages_sweep

    url, calendar = calendar_url
    role = pitie_neurosurgeon
    open_agenda(role)
    source = agenda_source_connect(role=role, kind="caldav", url=url, hosted_by_hospital=True)
    assert agenda_source_sync(source=source).ok
    free = list(
        Slot.objects.filter(
            practitioner_role=role, is_offered=True, visit_type__code="neurosurgery-first"
        ).order_by("starts_at")[10:12]
    )
    booked = appointment_book(scope=public_scope, patient=patient, slot=free[0]).appointment
    messages_sweep()
    uid = f"appointment-{booked.public_id}@creneau"

    def event():
        found = [e for e in calendar.events() if uid in e.data]
        return found[0].icalendar_component if found else None

    written = event()
    assert written is not None
    assert written["DTSTART"].dt == free[0].starts_at
    assert patient.last_name.upper() in str(written["SUMMARY"])
    assert booked.public_id in str(written["DESCRIPTION"])
    # The hub's own event is no busy time: the next sync reports nothing.
    outcome = agenda_source_sync(source=source)
    assert outcome.ok and outcome.booked_in_busy_time == ()

    appointment_reschedule(appointment=booked, scope=public_scope, slot=free[1])
    messages_sweep()
    assert event()["DTSTART"].dt == free[1].starts_at
    appointment_cancel(appointment=booked, reason="")
    messages_sweep()
    messages_sweep()
    assert event() is None
    writes = Message.objects.filter(appointment=booked, medium="cal").order_by("pk")
    assert [(m.kind, m.status) for m in writes] == [
        ("confirmation", "sent"),
        ("moved", "sent"),
        ("cancelled", "sent"),
    ]
    assert writes[0].provider_reference  # the calendar's ETag, for the next If-Match
