"""A practitioner whose agenda is an iCalendar feed, served by a real HTTP server on loopback:
every recurrence form removes exactly the overlapping slots (across the change to summer time);
a booked slot in new busy time is kept and reported; a feed that breaks, grows too large, is too
slow or sits on a private address changes nothing stored; a source not synced within its
freshness limit leaves search and comes back when it syncs; `creneau agenda` connects, syncs
and explains."""

import json
import threading
import time as clock_time
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from ipaddress import ip_network
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from creneau.agenda.models import AgendaSource, BusyInterval, Slot
from creneau.agenda.sources.services import agenda_source_connect, agenda_source_sync
from creneau.booking.services import appointment_book
from tests.conftest import NOW

pytestmark = pytest.mark.django_db
PARIS = ZoneInfo("Europe/Paris")

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//Agenda//FR
BEGIN:VTIMEZONE
TZID:Europe/Paris
BEGIN:STANDARD
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE
BEGIN:VEVENT
UID:weekly@test
DTSTAMP:20270101T000000Z
SUMMARY:Staff meeting
DTSTART;TZID=Europe/Paris:20270316T100000
DTEND;TZID=Europe/Paris:20270316T103000
RRULE:FREQ=WEEKLY;BYDAY=TU
EXDATE;TZID=Europe/Paris:20270323T100000
END:VEVENT
BEGIN:VEVENT
UID:weekly@test
DTSTAMP:20270101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20270330T100000
DTSTART;TZID=Europe/Paris:20270330T110000
DTEND;TZID=Europe/Paris:20270330T113000
SUMMARY:Staff meeting, later this week
END:VEVENT
BEGIN:VEVENT
UID:away@test
DTSTAMP:20270101T000000Z
DTSTART;VALUE=DATE:20270317
DTEND;VALUE=DATE:20270318
SUMMARY:Congress
END:VEVENT
BEGIN:VEVENT
UID:maybe@test
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Paris:20270318T090000
DTEND;TZID=Europe/Paris:20270318T093000
STATUS:TENTATIVE
END:VEVENT
BEGIN:VEVENT
UID:reminder@test
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Paris:20270318T100000
DTEND;TZID=Europe/Paris:20270318T110000
TRANSP:TRANSPARENT
END:VEVENT
BEGIN:VEVENT
UID:cancelled@test
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Paris:20270319T090000
DTEND;TZID=Europe/Paris:20270319T100000
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:floating@test
DTSTAMP:20270101T000000Z
DTSTART:20270322T090000
DTEND:20270322T093000
END:VEVENT
BEGIN:VEVENT
UID:london@test
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/London:20270322T100000
DTEND;TZID=Europe/London:20270322T103000
END:VEVENT
END:VCALENDAR
"""

FREEBUSY = """BEGIN:VFREEBUSY
UID:fb@test
DTSTAMP:20270101T000000Z
FREEBUSY;FBTYPE=BUSY-UNAVAILABLE:20270325T090000Z/20270325T100000Z
FREEBUSY;FBTYPE=FREE:20270326T080000Z/PT2H
END:VFREEBUSY
"""


class Feed:
    """An iCalendar feed on loopback: its body, status and delay can change between syncs."""

    def __init__(self) -> None:
        self.body = CALENDAR.replace("END:VCALENDAR", FREEBUSY + "END:VCALENDAR").encode()
        self.status = 200
        self.delay = 0.0
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append({"if_none_match": self.headers.get("If-None-Match")})
                clock_time.sleep(outer.delay)
                etag = f'"{hash(outer.body) & 0xFFFFFF:x}"'
                if outer.status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(outer.status)
                self.send_header("Content-Type", "text/calendar")
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(outer.body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/agenda.ics"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed(settings):
    settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = (ip_network("127.0.0.0/8"),)
    served = Feed()
    yield served
    served.close()


@pytest.fixture
def role(pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)
    return pitie_neurosurgeon


def offered(role, day: date) -> list[str]:
    """The local start times of the role's offered slots that day."""
    start = datetime.combine(day, time(), tzinfo=PARIS)
    return sorted(
        f"{slot.starts_at.astimezone(PARIS):%H:%M}"
        for slot in Slot.objects.filter(
            practitioner_role=role,
            is_offered=True,
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=1),
        )
    )


ALL = ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30"]


def without(*times: str) -> list[str]:
    return [t for t in ALL if t not in times]


def test_every_recurrence_form_takes_out_exactly_the_busy_slots(feed, role, clock):
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    before = set(Slot.objects.filter(practitioner_role=role).values_list("pk", flat=True))
    outcome = agenda_source_sync(source=source)
    assert outcome.ok, outcome.error
    # Free slots in busy time are gone, not merely hidden (none was booked).
    after = set(Slot.objects.filter(practitioner_role=role).values_list("pk", flat=True))
    assert outcome.slots_removed == len(before - after) >= 14
    expected = {
        date(2027, 3, 16): without("10:00"),  # the weekly meeting
        date(2027, 3, 17): [],  # an all-day congress
        date(2027, 3, 18): without("09:00"),  # tentative: busy; transparent: free
        date(2027, 3, 19): ALL,  # cancelled: free
        date(2027, 3, 22): without("09:00", "11:00"),  # floating 09:00; 10:00 in London
        date(2027, 3, 23): ALL,  # the meeting's exception date
        date(2027, 3, 25): without("10:00", "10:30"),  # VFREEBUSY, busy-unavailable
        date(2027, 3, 26): ALL,  # VFREEBUSY FREE
        date(2027, 3, 30): without("11:00"),  # the occurrence moved, after summer time
        date(2027, 4, 6): without("10:00"),  # 10:00 local in summer time too
    }
    assert {day: offered(role, day) for day in expected} == expected
    source.refresh_from_db()
    assert source.last_success_at == NOW and source.stale_after == NOW + timedelta(hours=1)

    # The busy command explains it: the congress is one whole local day, in UTC.
    out = StringIO()
    call_command(
        "agenda",
        "busy",
        role.public_id,
        "--from",
        "2027-03-17",
        "--to",
        "2027-03-17",
        "--json",
        stdout=out,
    )
    assert json.loads(out.getvalue()) == [
        {"start": "2027-03-16T23:00:00Z", "end": "2027-03-17T23:00:00Z"}
    ]


def staff(role, **extra):
    """The practitioner's own account, a secretary of their department, and a secretary of
    another department of the same hospital."""
    from django.contrib.auth import get_user_model

    from creneau.directory.models import Department
    from creneau.staff.models import StaffAccess

    users = get_user_model().objects
    organisation = role.establishment.organisation
    other = Department.objects.filter(establishment=role.establishment).exclude(
        pk=role.department_id
    )[0]
    for name, access in (
        ("dr", {"role": "practitioner", "practitioner": role.practitioner}),
        ("secretary", {"role": "secretary", "department": role.department}),
        ("elsewhere", {"role": "secretary", "department": other}),
    ):
        user = users.create_user(name, f"{name}@hopital.example", "correct horse battery")
        StaffAccess.objects.create(user=user, organisation=organisation, **access)


def test_the_same_feed_again_is_a_304_and_a_new_event_takes_its_slot_out(
    feed, role, clock, public_scope, patient, mailoutbox
):
    from creneau.notify.services import messages_sweep

    staff(role)
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    agenda_source_sync(source=source)
    source.refresh_from_db()
    again = agenda_source_sync(source=source)
    assert again.ok and feed.requests[-1]["if_none_match"] == source.etag
    # A patient booked 11:30 on the 18th; then the practitioner adds a meeting over it.
    slot = Slot.objects.get(
        practitioner_role=role,
        visit_type__code="neurosurgery-first",
        starts_at=datetime(2027, 3, 18, 11, 30, tzinfo=PARIS),
    )
    appointment_book(scope=public_scope, patient=patient, slot=slot)
    messages_sweep()  # the patient's confirmation
    mailoutbox.clear()
    feed.body = feed.body.replace(
        b"END:VCALENDAR",
        b"BEGIN:VEVENT\r\nUID:late@test\r\nDTSTAMP:20270101T000000Z\r\n"
        b"DTSTART;TZID=Europe/Paris:20270318T110000\r\n"
        b"DTEND;TZID=Europe/Paris:20270318T120000\r\nEND:VEVENT\r\nEND:VCALENDAR",
    )
    outcome = agenda_source_sync(source=source)
    assert outcome.ok
    assert offered(role, date(2027, 3, 18)) == ["09:30", "10:00", "10:30"]
    # The booked slot stays, with its appointment, and is reported.
    assert Slot.objects.filter(pk=slot.pk, booked=1).exists()
    assert outcome.booked_in_busy_time == (slot.public_id,)
    source.refresh_from_db()
    assert source.last_report["booked_in_busy_time"] == [slot.public_id]
    # The practitioner and their department's secretary are told, by e-mail, which one; the
    # other department is not, and the patient's name is in none of it.
    messages_sweep()
    told = {m.to[0]: m for m in mailoutbox}
    assert set(told) == {"dr@hopital.example", "secretary@hopital.example"}
    for mail in told.values():
        assert "18/03 at 11:30" in mail.subject or "18/03 à 11:30" in mail.subject, mail.subject
        assert slot.appointments.get().public_id in mail.body
        assert patient.last_name not in mail.body + mail.subject
        assert not mail.attachments
    # A later sync reports it no more.
    mailoutbox.clear()
    agenda_source_sync(source=source)
    messages_sweep()
    assert mailoutbox == []


@pytest.mark.parametrize(
    "breakage",
    ["garbage", "not_a_calendar", "server_error", "too_large", "too_slow", "private_address"],
)
def test_a_broken_feed_changes_nothing_and_says_why(feed, role, clock, settings, breakage):
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    assert agenda_source_sync(source=source).ok
    before = (
        list(Slot.objects.filter(practitioner_role=role).values_list("pk", "is_offered")),
        list(BusyInterval.objects.filter(source=source).values_list("starts_at", "ends_at")),
    )
    feed.body += b"\n"  # a new ETag: the next sync reads the body
    if breakage == "garbage":
        feed.body = b"BEGIN:VCALENDAR\r\nthis is not\r\niCalendar at all\r\n"
    elif breakage == "not_a_calendar":
        feed.body = b"<html><body>Login required</body></html>"
    elif breakage == "server_error":
        feed.status = 500
    elif breakage == "too_large":
        settings.CRENEAU_AGENDA_MAX_BYTES = 1000
    elif breakage == "too_slow":
        settings.CRENEAU_AGENDA_TIMEOUT_SECONDS = 1
        feed.delay = 2.5
    else:
        settings.CRENEAU_OUTGOING_ALLOWED_NETWORKS = ()
    outcome = agenda_source_sync(source=source)
    assert not outcome.ok and outcome.error
    source.refresh_from_db()
    assert source.last_error == outcome.error[:500]
    assert source.last_success_at == NOW  # the first sync's
    after = (
        list(Slot.objects.filter(practitioner_role=role).values_list("pk", "is_offered")),
        list(BusyInterval.objects.filter(source=source).values_list("starts_at", "ends_at")),
    )
    assert after == before


def test_a_stale_source_leaves_search_and_comes_back(feed, role, clock, client):
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url, freshness_minutes=5)
    assert agenda_source_sync(source=source).ok

    def found() -> set[str]:
        answer = client.get(
            "/api/v1/slots", {"specialty": "neurosurgery", "practitioner": role.practitioner.rpps}
        )
        return {item["id"] for item in answer.json()["items"]}

    slots = found()
    assert slots
    feed.status = 503
    clock.shift(timedelta(minutes=6))
    assert not agenda_source_sync(source=source).ok
    assert found() == set()  # withdrawn, no job needed
    refused = client.post(
        "/api/v1/holds", json.dumps({"slot": sorted(slots)[0]}), content_type="application/json"
    )
    assert refused.status_code == 503 and refused.json()["code"] == "agenda_unavailable"
    health = client.get("/readyz").json()
    assert health["status"] == "degraded"
    assert health["agenda_sources"]["withdrawn_from_search"] == [role.public_id]
    assert health["agenda_sources"]["failing"] == 1
    feed.status = 200
    assert agenda_source_sync(source=source).ok
    assert found()
    assert client.get("/readyz").json()["agenda_sources"]["withdrawn_from_search"] == []


def test_the_commands_connect_sync_and_explain(feed, role, clock):
    out = StringIO()
    call_command("agenda", "connect", role.public_id, "--ics-url", feed.url, stdout=out)
    assert "busy periods" in out.getvalue()
    assert AgendaSource.objects.get(practitioner_role=role).kind == "calendar"
    out = StringIO()
    call_command("agenda", "sync", "--all", stdout=out)
    assert out.getvalue().startswith("[1/1] ")
    with pytest.raises(CommandError, match="ROLE"):
        call_command("agenda", "busy", "nope", "--from", "2027-03-17", "--to", "2027-03-17")
    with pytest.raises(CommandError, match="--to"):
        call_command("agenda", "busy", role.public_id, "--from", "2027-03-17", "--to", "2027-03-16")
    feed.status = 500
    feed.body += b"\n"
    with pytest.raises(CommandError, match="1 of 1 sources did not sync"):
        call_command("agenda", "sync", role.public_id, stdout=StringIO())
    out = StringIO()
    call_command("agenda", "connect", role.public_id, "--builtin", stdout=out)
    assert offered(role, date(2027, 3, 17)) == ALL  # back to the rules alone


def test_the_admin_connects_syncs_and_tests_a_source_without_showing_its_secret(
    feed, role, clock, client, hospital_admin
):
    client.force_login(hospital_admin)
    added = client.post(
        "/admin/agenda/agendasource/add/",
        {
            "practitioner_role": role.pk,
            "kind": "calendar",
            "url": feed.url,
            "username": "dr.morin",
            "secret": "s3cret-calendar-password",
            "freshness_minutes": 60,
            "sync_minutes": 15,
        },
    )
    assert added.status_code == 302, added.content.decode()[:1500]
    source = AgendaSource.objects.get(practitioner_role=role)
    assert source.sealed_secret and "s3cret" not in source.sealed_secret
    page = client.get(f"/admin/agenda/agendasource/{source.pk}/change/").content.decode()
    assert "s3cret-calendar-password" not in page
    for action in ("test_connection", "sync_now"):
        answer = client.post(
            "/admin/agenda/agendasource/",
            {"action": action, "_selected_action": [source.pk]},
            follow=True,
        )
        assert 'class="success"' in answer.content.decode(), action
    source.refresh_from_db()
    assert source.last_success_at == NOW and source.last_error == ""
    assert offered(role, date(2027, 3, 17)) == []
    listing = client.get("/admin/agenda/agendasource/").content.decode()
    assert role.practitioner.last_name in listing


def test_the_private_feed_of_bookings_names_patients_only_for_a_hospital_calendar(
    feed, role, clock, client, public_scope, patient
):
    import icalendar

    from creneau.booking.services import appointment_cancel

    agenda_source_connect(role=role, kind="calendar", url=feed.url)
    out = StringIO()
    call_command("agenda", "feed", role.public_id, stdout=out, stderr=StringIO())
    url = out.getvalue().strip()
    path = url[url.index("/agenda/") :]
    slots = Slot.objects.filter(practitioner_role=role, starts_at__gt=NOW + timedelta(days=1))
    kept = appointment_book(scope=public_scope, patient=patient, slot=slots[0]).appointment
    gone = appointment_book(scope=public_scope, patient=patient, slot=slots[3]).appointment
    appointment_cancel(appointment=gone, reason="")

    def events() -> dict[str, icalendar.Event]:
        answer = client.get(path)
        assert answer.status_code == 200 and answer["Content-Type"].startswith("text/calendar")
        assert answer["Cache-Control"].startswith("private")
        calendar = icalendar.Calendar.from_ical(answer.content)
        return {str(e["UID"]): e for e in calendar.walk("VEVENT")}

    found = events()
    assert str(found[f"appointment-{kept.public_id}@creneau"]["STATUS"]) == "CONFIRMED"
    assert str(found[f"appointment-{gone.public_id}@creneau"]["STATUS"]) == "CANCELLED"
    assert patient.last_name.upper() not in str(
        found[f"appointment-{kept.public_id}@creneau"]["SUMMARY"]
    )
    AgendaSource.objects.filter(practitioner_role=role).update(hosted_by_hospital=True)
    named = events()[f"appointment-{kept.public_id}@creneau"]
    assert patient.last_name.upper() in str(named["SUMMARY"])
    # A new address revokes the old one.
    call_command("agenda", "feed", role.public_id, stdout=StringIO(), stderr=StringIO())
    assert client.get(path).status_code == 404
    assert client.get("/agenda/not-a-token.ics").status_code == 404


def test_import_connects_many_roles_or_names_each_bad_row(feed, role, clock, tmp_path, aphp):
    from creneau.directory.models import PractitionerRole

    others = list(
        PractitionerRole.objects.filter(establishment__organisation=aphp)
        .exclude(pk=role.pk)
        .order_by("pk")[:2]
    )
    good = tmp_path / "sources.csv"
    good.write_text(
        "role,kind,url,freshness_minutes\n"
        f"{role.public_id},ics,{feed.url},30\n"
        f"{others[0].public_id},builtin,,\n",
        encoding="utf-8",
    )
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "role,kind,url,freshness_minutes\n"
        f"{others[1].public_id},ics,{feed.url},30\n"
        "nope,ics,https://calendar.example/x.ics,30\n"
        f"{role.public_id},fhir,https://agenda.example/fhir,30\n"
        f"{role.public_id},ics,ftp://calendar.example/x.ics,30\n"
        f"{role.public_id},ics,https://calendar.example/x.ics,2\n"
        f"{role.public_id},outlook,https://calendar.example/x.ics,30\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError) as refused:
        call_command("agenda", "import", str(bad))
    message = str(refused.value)
    for row, field in [
        (3, "role"),
        (4, "schedule"),
        (5, "url"),
        (6, "freshness_minutes"),
        (7, "kind"),
    ]:
        assert f"row {row}: {field}" in message
    assert not AgendaSource.objects.exists()  # nothing imported, not even the good row 2
    out = StringIO()
    call_command("agenda", "import", str(good), stdout=out)
    assert "2 agenda sources connected" in out.getvalue()
    source = AgendaSource.objects.get(practitioner_role=role)
    assert (source.kind, source.url, source.freshness_minutes) == ("calendar", feed.url, 30)
    assert AgendaSource.objects.get(practitioner_role=others[0]).kind == "builtin"


def test_an_event_arriving_during_a_hold_never_double_books(
    feed, role, clock, public_scope, patient
):
    """The practitioner adds a meeting over a slot a patient is holding: the slot is kept while
    the hold lives, but the booking is refused cleanly (the calendar wins), and nothing is
    booked over the meeting."""
    from creneau.booking.services import BookingError, hold_create

    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    assert agenda_source_sync(source=source).ok
    slot = Slot.objects.get(
        practitioner_role=role,
        visit_type__code="neurosurgery-first",
        starts_at=datetime(2027, 3, 19, 11, 0, tzinfo=PARIS),
    )
    held = hold_create(scope=public_scope, slot=slot)
    feed.body = feed.body.replace(
        b"END:VCALENDAR",
        b"BEGIN:VEVENT\r\nUID:urgent@test\r\nDTSTAMP:20270101T000000Z\r\n"
        b"DTSTART;TZID=Europe/Paris:20270319T110000\r\n"
        b"DTEND;TZID=Europe/Paris:20270319T113000\r\nEND:VEVENT\r\nEND:VCALENDAR",
    )
    assert agenda_source_sync(source=source).ok
    slot.refresh_from_db()
    assert slot.held == 1 and not slot.is_offered  # kept for its hold, out of search
    with pytest.raises(BookingError) as refused:
        appointment_book(scope=public_scope, patient=patient, hold=held)
    assert refused.value.code == "slot_unavailable" and refused.value.status == 409
    assert not slot.appointments.exists()


def _event(uid: str, rule: str, start: str = "20270315T080000Z", length: str = "PT1S") -> str:
    return (
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20270101T000000Z\r\nDTSTART:{start}\r\n"
        f"DURATION:{length}\r\nRRULE:{rule}\r\nEND:VEVENT\r\n"
    )


def _calendar(*events: str) -> bytes:
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x\r\n" + "".join(events)).encode() + (
        b"END:VCALENDAR\r\n"
    )


@pytest.mark.parametrize(
    "events",
    [
        [_event("s", "FREQ=SECONDLY")],  # one line, 170 bytes
        [_event(f"m{n}", "FREQ=MINUTELY") for n in range(200)],
        [_event("c", "FREQ=MINUTELY;COUNT=1000000000")],
        [_event("old", "FREQ=SECONDLY;INTERVAL=3600", start="19000101T080000Z")],
        [_event("byes", "FREQ=DAILY;BYHOUR=8,9,10,11;BYMINUTE=0,5,10,15,20,25,30,35,40,45,50,55")],
        [_event(f"h{n}", "FREQ=HOURLY", length="PT10M") for n in range(12)],  # 52,416 in all
    ],
    ids=["secondly", "200-minutely", "a-billion", "from-1900", "by-lists", "twelve-hourly"],
)
def test_an_event_that_asks_for_too_much_work_is_refused_by_name(
    feed, role, clock, events, settings
):
    """Issue 27, point 6: bounded before anything is expanded; nothing stored changes."""
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    assert agenda_source_sync(source=source).ok
    before = list(BusyInterval.objects.filter(source=source).values_list("starts_at", "ends_at"))
    feed.body = _calendar(*events)
    started = clock_time.monotonic()
    outcome = agenda_source_sync(source=source)
    assert not outcome.ok and "trop de travail" in outcome.error, outcome.error
    assert clock_time.monotonic() - started < settings.CRENEAU_AGENDA_TIME_BUDGET_SECONDS
    after = list(BusyInterval.objects.filter(source=source).values_list("starts_at", "ends_at"))
    assert after == before


def test_busy_times_closer_than_the_shortest_visit_are_one(feed, role, clock):
    """Every 4 minutes, busy for 1: no visit fits in a gap of 3 minutes."""
    feed.body = _calendar(
        _event("q", "FREQ=MINUTELY;INTERVAL=4;COUNT=30", start="20270316T090000Z", length="PT1M")
    )
    source = agenda_source_connect(role=role, kind="calendar", url=feed.url)
    assert agenda_source_sync(source=source).ok
    stored = list(BusyInterval.objects.filter(source=source).values_list("starts_at", "ends_at"))
    assert stored == [
        (
            datetime(2027, 3, 16, 9, tzinfo=ZoneInfo("UTC")),
            datetime(2027, 3, 16, 10, 57, tzinfo=ZoneInfo("UTC")),
        )
    ]
