"""No double booking, ever: 200 concurrent clients race for a handful of places through a real
server (gunicorn, two worker processes), on SQLite and on PostgreSQL.

The places raced for include pairs of slots of two visit types over the same time of the same
practitioner: each pair is one place, guarded by the overlap check (the exclusion constraint on
PostgreSQL), not by a slot's own counter."""

import base64
import itertools
import json
import random
import subprocess
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cli import CRENEAU, hub_database, hub_env, run_creneau, start_demo_hub, suite_engine

CLIENTS = 200


def post(url: str, body: dict, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def race(count: int, call) -> list[tuple[int, dict]]:
    """``count`` threads released together, each making ``call(number)``; their answers."""
    results: list[tuple[int, dict]] = [(0, {})] * count
    start = threading.Barrier(count)

    def client(number: int) -> None:
        start.wait()
        results[number] = call(number)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.fixture(params=[suite_engine()], scope="module")
def race_hub(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"race-{request.param}")
    # Two hundred clients from one loopback address: the per-client limits would stop them
    # before the race does.
    extra = {
        "CRENEAU_HORIZON_WEEKS": "2",
        "CRENEAU_RATE_BOOKINGS": "0",
        "CRENEAU_RATE_BOOKINGS_PER_PHONE": "0",
        "CRENEAU_RATE_HOLDS": "0",
        # The waiting room on, so fast that nobody waits: every patient still takes a turn.
        "CRENEAU_WAITING_ROOM_RATE": "1000",
        "CRENEAU_WAITING_ROOM_BURST": "1000000",
    }
    with hub_database(request.param, data_dir) as (engine_env, database):
        env = hub_env(tmp_path_factory.mktemp("elsewhere"), **extra, **engine_env)
        try:
            base, process = start_demo_hub(data_dir, env)
        except RuntimeError as error:
            pytest.fail(str(error))
        yield base, database, {**env, "CRENEAU_DATA_DIR": str(data_dir)}
        process.terminate()
        process.wait(timeout=30)


def contested_slots(base: str, headers: dict | None = None) -> list[dict]:
    """Three times of one neurosurgeon, each offered as two visit types: three places."""
    request = urllib.request.Request(
        base + "/api/v1/slots?specialty=neurosurgery&limit=100", headers=headers or {}
    )
    with urllib.request.urlopen(request) as answer:
        items = json.load(answer)["items"]
    by_time = defaultdict(list)
    for item in items:
        if item["visit_type"]["code"] not in {"neurosurgery-first", "neurosurgery-spine"}:
            continue  # both last 30 minutes: the pairs do not overlap each other
        by_time[(item["practitioner"]["id"], item["starts_at"])].append(item)
    # The first practitioner with three such times (today's first ones may have begun, or
    # be too close to book, depending on the hour the test runs).
    by_practitioner = defaultdict(list)
    for group in by_time.values():
        if len(group) >= 2:
            by_practitioner[group[0]["practitioner"]["id"]].append(group[:2])
    chosen = next((pairs[:3] for pairs in by_practitioner.values() if len(pairs) >= 3), [])
    assert len(chosen) == 3, "the demo offers two visit types over the same neurosurgery times"
    return [slot for pair in chosen for slot in pair]


def test_two_hundred_clients_race_for_three_places_and_exactly_three_win(race_hub):
    base, database, _env = race_hub
    slots = contested_slots(base)
    rng = random.Random(7)
    targets = [rng.choice(slots)["id"] for _ in range(CLIENTS)]

    def client(number: int) -> tuple[int, dict]:
        body = {
            "slot": targets[number],
            "patient": {
                "last_name": f"Patient{chr(65 + number % 26)}",
                "first_name": "Race",
                "birth_date": "1970-01-01",
                "phone": "0612345678",
            },
        }
        return post(base + "/api/v1/appointments", body)

    results = race(CLIENTS, client)

    statuses = Counter(status for status, _body in results)
    assert statuses == {201: 3, 409: CLIENTS - 3}, statuses
    assert {body["code"] for status, body in results if status == 409} == {"slot_taken"}
    winners = {body["starts_at"] for status, body in results if status == 201}
    assert len(winners) == 3, "one winner per time, never both visit types of a pair"

    ids = ", ".join(f"'{slot['id']}'" for slot in slots)
    stored = database.rows(
        "select s.public_id, count(a.id) from agenda_slot s left join booking_appointment a "
        f"on a.slot_id = s.id where s.public_id in ({ids}) group by s.public_id"
    )
    assert sum(count for _id, count in stored) == 3
    assert all(count <= 1 for _id, count in stored)
    overlapping = database.rows(
        "select count(*) from booking_appointment a join booking_appointment b "
        "on a.practitioner_id = b.practitioner_id and a.id < b.id "
        "and a.starts_at < b.ends_at and b.starts_at < a.ends_at "
        "and a.status = 'booked' and b.status = 'booked'"
    )
    assert overlapping == [(0,)]
    counters = database.rows(
        f"select booked, capacity from agenda_slot where public_id in ({ids}) and booked > 0"
    )
    assert sorted(counters) == [(1, 1)] * 3


def delete(url: str) -> int:
    request = urllib.request.Request(url, method="DELETE")
    with urllib.request.urlopen(request, timeout=60) as answer:
        return answer.status


def get_items(base: str, query: str) -> list[dict]:
    with urllib.request.urlopen(base + "/api/v1/slots?" + query) as answer:
        return json.load(answer)["items"]


def overlapping_group(base: str) -> list[dict]:
    """A second opinion (45 minutes) of a neurosurgeon a week ahead, and that practitioner's
    other slots over the same time: first consultations and spine visits at its start and
    half an hour later."""
    week_ahead = (datetime.now(UTC) + timedelta(days=8)).date().isoformat()
    items = get_items(base, f"specialty=neurosurgery&limit=100&from_date={week_ahead}")
    for opinion in items:
        if opinion["visit_type"]["code"] != "neurosurgery-second-opinion":
            continue
        group = [
            item
            for item in items
            if item["practitioner"]["id"] == opinion["practitioner"]["id"]
            and item["starts_at"] < opinion["ends_at"]
            and opinion["starts_at"] < item["ends_at"]
        ]
        if len(group) >= 3:
            return group
    raise AssertionError("the demo offers second opinions over other neurosurgery visits")


def test_holds_and_bookings_race_for_one_practitioners_overlapping_time(race_hub):
    """Half the clients hold, half book, slots of one practitioner that overlap a 45-minute
    second opinion: whoever wins, no two holds or bookings of the practitioner overlap, so no
    patient told "this slot is yours" is later refused it."""
    base, database, _env = race_hub
    group = overlapping_group(base)
    rng = random.Random(5)
    clients = 120
    targets = [rng.choice(group)["id"] for _ in range(clients)]

    def client(number: int) -> tuple[int, dict]:
        if number % 2:
            return post(base + "/api/v1/holds", {"slot": targets[number]})
        else:
            body = {
                "slot": targets[number],
                "patient": {
                    "last_name": "Chevauchement",
                    "first_name": "Course",
                    "birth_date": "1972-02-02",
                    "phone": "0611223344",
                },
            }
            return post(base + "/api/v1/appointments", body)

    results = race(clients, client)

    statuses = Counter(status for status, _body in results)
    assert set(statuses) == {201, 409}, statuses
    assert {body["code"] for status, body in results if status == 409} == {"slot_taken"}
    by_id = {slot["id"]: slot for slot in group}
    won = sorted(
        (by_id[targets[n]]["starts_at"], by_id[targets[n]]["ends_at"])
        for n, (status, _body) in enumerate(results)
        if status == 201
    )
    for (_s1, end), (start_next, _e2) in itertools.pairwise(won):
        assert end <= start_next, f"two winners overlap: {won}"
    # In the database: no live hold overlaps another live hold or a booked appointment.
    clashes = database.rows(
        "select count(*) from booking_hold h join agenda_slot s on s.id = h.slot_id "
        "join agenda_slot o on o.practitioner_id = s.practitioner_id and o.id <> s.id "
        "and o.starts_at < s.ends_at and s.starts_at < o.ends_at "
        "left join booking_hold h2 on h2.slot_id = o.id and h2.status = 'active' "
        "left join booking_appointment a on a.slot_id = o.id and a.status = 'booked' "
        "where h.status = 'active' and (h2.id is not null or a.id is not null)"
    )
    assert clashes == [(0,)]
    for number, (status, body) in enumerate(results):
        if status == 201 and number % 2:
            assert delete(f"{base}/api/v1/holds/{body['id']}") == 204


def test_thirty_concurrent_holds_from_one_visitor_get_the_cap_exactly(race_hub):
    """The cap of holds one visitor keeps at once (3) holds under thirty concurrent requests
    from one address, for thirty different slots."""
    base, _database, _env = race_hub
    two_weeks = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    items = get_items(base, f"specialty=dermatology&limit=100&from_date={two_weeks}")
    # Slots of one visit type: no two of them overlap.
    code = Counter(item["visit_type"]["code"] for item in items).most_common(1)[0][0]
    slots = [item["id"] for item in items if item["visit_type"]["code"] == code]
    assert len(slots) >= 30, len(slots)

    def client(number: int) -> tuple[int, dict]:
        return post(base + "/api/v1/holds", {"slot": slots[number]})

    results = race(30, client)
    statuses = Counter(status for status, _body in results)
    assert statuses == {201: 3, 429: 27}, statuses
    assert {body["code"] for status, body in results if status == 429} == {"too_many_holds"}
    for status, body in results:
        if status == 201:
            assert delete(f"{base}/api/v1/holds/{body['id']}") == 204


def bearer(base: str, operator: dict) -> dict:
    api = operator["api_client"]
    form = urllib.parse.urlencode({"grant_type": "client_credentials"}).encode()
    pair = f"{api['client_id']}:{api['client_secret']}".encode()
    request = urllib.request.Request(
        base + api["token_url"],
        data=form,
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
    )
    with urllib.request.urlopen(request) as answer:
        return {"Authorization": "Bearer " + json.load(answer)["access_token"]}


def test_two_operators_api_clients_race_for_the_same_places(race_hub):
    """Two call centres' software (the demo's), 40 clients each, race for three places inside
    both perimeters: three bookings in all, each carrying the operator that won it."""
    base, database, env = race_hub
    credentials = json.loads(
        (Path(env["CRENEAU_DATA_DIR"]) / "demo-credentials.json").read_text(encoding="utf-8")
    )
    operators = [o for o in credentials["operators"] if o["kind"] == "call_centre"]
    headers = [bearer(base, operator) for operator in operators]
    slots = contested_slots(base, headers[1])  # the narrower perimeter: Paris intra-muros
    per_operator = 40
    total = per_operator * len(operators)
    rng = random.Random(11)
    targets = [rng.choice(slots)["id"] for _ in range(total)]

    def client(number: int) -> tuple[int, dict]:
        body = {
            "slot": targets[number],
            "patient": {
                "last_name": f"Appelant{chr(65 + number % 26)}",
                "first_name": "Course",
                "birth_date": "1971-01-01",
                "phone": "0698765432",
            },
        }
        return post(base + "/api/v1/appointments", body, headers[number % len(operators)])

    results = race(total, client)
    statuses = Counter(status for status, _body in results)
    assert statuses == {201: 3, 409: total - 3}, statuses
    for number, (status, body) in enumerate(results):
        if status == 201:
            assert body["operator"]["name"] == operators[number % len(operators)]["name"]
    ids = ", ".join(f"'{slot['id']}'" for slot in slots)
    stored = database.rows(
        "select o.name, count(*) from booking_appointment a join agenda_slot s on s.id = a.slot_id "
        "join channels_operatorcompany o on o.id = a.operator_id "
        f"where s.public_id in ({ids}) group by o.name"
    )
    assert sum(count for _name, count in stored) == 3


def test_the_nightly_roll_in_two_processes_extends_the_horizon_once(race_hub):
    """`creneau slots generate --jobs 2` beside a serving hub: the horizon grows from two weeks
    to three, and a second run (in two processes again) creates nothing."""
    _base, database, env = race_hub
    before = database.rows("select count(*) from agenda_slot")[0][0]
    jobs = "2" if database.engine == "postgresql" else "1"
    grown = run_creneau("slots", "generate", "--horizon-weeks", "3", "--jobs", jobs, env=env)
    assert grown.returncode == 0, grown.stderr
    created = int(grown.stdout.split(" slots created")[0].rsplit(" ", 1)[1])
    assert created > 0
    assert database.rows("select count(*) from agenda_slot")[0][0] == before + created
    again = run_creneau("slots", "generate", "--horizon-weeks", "3", "--jobs", jobs, env=env)
    assert " 0 slots created" in again.stdout, again.stdout + again.stderr
    duplicates = database.rows(
        "select count(*) from (select 1 from agenda_slot group by practitioner_role_id, "
        "visit_type_id, starts_at having count(*) > 1) d"
    )
    assert duplicates == [(0,)]


def test_bookings_racing_a_calendar_sync_never_lose_their_slot(race_hub):
    """Patients book a practitioner's slots while their calendar (an iCalendar feed) turns
    those days busy and `creneau agenda sync` runs twice, beside the serving hub: every booking
    that succeeded keeps its slot (never deleted under it), and every slot left free in the
    busy days is gone."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    base, database, env = race_hub
    with urllib.request.urlopen(base + "/api/v1/slots?specialty=neurosurgery&limit=100") as got:
        items = json.load(got)["items"]
    practitioner = items[0]["practitioner"]["id"]
    query = f"specialty=neurosurgery&practitioner={practitioner}&limit=40"
    with urllib.request.urlopen(f"{base}/api/v1/slots?{query}") as got:
        mine = [
            i
            for i in json.load(got)["items"]
            if i["establishment"]["id"] == items[0]["establishment"]["id"]
        ]
    assert len(mine) >= 16
    with urllib.request.urlopen(f"{base}/api/v1/practitioners/{practitioner}") as got:
        person = json.load(got)
    role = next(
        r["id"]
        for r in person["roles"]
        if r["establishment"]["id"] == mine[0]["establishment"]["id"]
    )
    days = sorted({i["starts_at"][:10] for i in mine})
    calendar = {"body": b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//FR\r\nEND:VCALENDAR\r\n"}

    class Feed(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.end_headers()
            self.wfile.write(calendar["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sync_env = {**env, "CRENEAU_OUTGOING_ALLOWED_NETWORKS": "127.0.0.0/8"}
    url = f"http://127.0.0.1:{server.server_port}/agenda.ics"
    connected = run_creneau("agenda", "connect", role, "--ics-url", url, env=sync_env)
    assert connected.returncode == 0, connected.stderr
    events = "".join(
        f"BEGIN:VEVENT\r\nUID:busy-{day}@t\r\nDTSTAMP:20270101T000000Z\r\n"
        f"DTSTART;VALUE=DATE:{day.replace('-', '')}\r\n"
        f"DTEND;VALUE=DATE:{(datetime.fromisoformat(day) + timedelta(days=1)):%Y%m%d}\r\n"
        "END:VEVENT\r\n"
        for day in days
    )
    calendar["body"] = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//FR\r\n{events}END:VCALENDAR\r\n"
    ).encode()
    outcomes: list[tuple[int, dict]] = []

    def book(number: int) -> tuple[int, dict]:
        if number >= 2:
            results = []
            for item in mine[number - 2 :: 8]:
                results.append(
                    post(
                        base + "/api/v1/appointments",
                        {"slot": item["id"], "patient": patient(number)},
                    )
                )
            outcomes.extend(results)
            return 0, {}
        done = run_creneau("agenda", "sync", role, env=sync_env)
        return done.returncode, {"out": done.stdout, "err": done.stderr}

    syncs = race(10, book)[:2]
    server.shutdown()
    assert all(code == 0 for code, _out in syncs), syncs
    assert {code for code, _body in outcomes} <= {201, 409, 403}, outcomes[:3]
    booked_ids = {body["id"] for code, body in outcomes if code == 201}
    stored = database.rows(
        "select a.public_id, a.slot_id, s.booked from booking_appointment a "
        f"left join agenda_slot s on s.id = a.slot_id where a.public_id in "
        f"({', '.join(repr(i) for i in booked_ids) or 'null'})"
    )
    assert len(stored) == len(booked_ids)
    assert all(slot_id is not None and booked == 1 for _id, slot_id, booked in stored), stored
    # Every slot of the busy days still there is taken: booked, or held by a live hold (the
    # other tests of this hub hold and book too); none is free.
    left = database.rows(
        "select s.public_id, s.booked, s.held, s.held_until from agenda_slot s "
        "join directory_practitionerrole r on r.id = s.practitioner_role_id "
        f"where r.public_id = '{role}' and ("
        + " or ".join(f"cast(s.starts_at as text) like '{day}%'" for day in days)
        + ")"
    )
    now = datetime.now(UTC)

    def live(held: int, until) -> bool:
        if not held or until is None:
            return False
        moment = until if isinstance(until, datetime) else datetime.fromisoformat(str(until))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) > now

    assert all(booked == 1 or live(held, until) for _id, booked, held, until in left), left
    codes = Counter(code for code, _body in outcomes)
    print(f"calendar race: {dict(codes)}, taken slots left in the busy days: {len(left)}")
    assert codes[201] >= 1  # some bookings won, the others came too late: the race took place


def patient(number: int) -> dict:
    return {
        "last_name": "Course",
        "first_name": "Anne-" + "ABCDEFGHIJ"[number],
        "birth_date": "1980-01-01",
        "phone": f"+3361234{number:04d}",
    }


def test_generations_of_one_role_at_once_all_succeed(race_hub):
    """`creneau slots generate` (the roll, here for one hospital) twice and `creneau agenda
    sync` of the demo's calendar practitioner twice, all at the same moment, after that
    hospital's free slots were lost: each would insert the same missing slots, and all but one
    would fail on the unique key, with their whole batch of roles. One generation of a role at
    a time: all succeed, every slot once."""
    _base, database, env = race_hub
    role, finess = database.rows(
        "select r.public_id, e.finess from directory_practitionerrole r "
        "join directory_establishment e on e.id = r.establishment_id "
        "join agenda_agendasource a on a.practitioner_role_id = r.id where a.kind = 'calendar'"
    )[0]
    sync_env = {**env, "CRENEAU_OUTGOING_ALLOWED_NETWORKS": "127.0.0.0/8"}
    runs = [(("slots", "generate", "--establishment", finess), env)] * 2 + [
        (("agenda", "sync", role), sync_env)
    ] * 2
    for _round in range(3):
        # The whole hospital's free slots: long generations, which the four runs overlap. A
        # free slot may still carry spent holds (released or lapsed rows, kept since issue 27):
        # the ORM would cascade to them, this raw SQL removes them first. A slot a cancelled
        # visit still names is kept.
        free = (
            "select s.id from agenda_slot s where s.booked = 0 and s.held = 0 "
            "and not exists (select 1 from booking_appointment a where a.slot_id = s.id) "
            "and s.practitioner_role_id in (select r.id from directory_practitionerrole r "
            "join directory_establishment e on e.id = r.establishment_id "
            f"where e.finess = '{finess}')"
        )
        database.rows(f"delete from booking_hold where slot_id in ({free}) returning id")
        database.rows(f"delete from agenda_slot where id in ({free}) returning id")
        commands = [
            subprocess.Popen(
                [*CRENEAU, *args],
                env=run_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args, run_env in runs
        ]
        for command in commands:
            out, err = command.communicate(timeout=300)
            assert command.returncode == 0, out + err
    duplicates = database.rows(
        "select count(*) from (select 1 from agenda_slot group by practitioner_role_id, "
        "visit_type_id, starts_at having count(*) > 1) d"
    )
    assert duplicates == [(0,)]
    offered = database.rows(
        "select count(*) from agenda_slot s join directory_practitionerrole r "
        f"on r.id = s.practitioner_role_id where r.public_id = '{role}' and s.is_offered"
    )
    assert offered[0][0] > 0


def test_patients_arriving_together_each_take_their_own_turn_in_the_waiting_room(race_hub):
    """Sixty patients search at the same instant, each a first visit: sixty distinct turns, at
    least 1/rate apart, none lost or shared, whichever worker answered."""
    base, _database, _env = race_hub

    def arrive(_number: int) -> tuple[int, dict]:
        request = urllib.request.Request(base + "/api/v1/slots?specialty=neurosurgery&limit=1")
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, {"ticket": answer.headers["X-Creneau-Ticket"]}

    results = race(60, arrive)
    assert {status for status, _body in results} == {200}
    turns = sorted(
        json.loads(base64.urlsafe_b64decode(body["ticket"].split(":")[0] + "=="))["at"]
        for _status, body in results
    )
    assert len(set(turns)) == 60
    # Never two turns closer than 1/rate; farther when the requests came farther apart.
    assert min(later - earlier for earlier, later in itertools.pairwise(turns)) >= 0.001 - 1e-6
