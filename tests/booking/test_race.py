"""No double booking, ever: 200 concurrent clients race for a handful of places through a real
server (gunicorn, two worker processes), on SQLite and on PostgreSQL.

The places raced for include pairs of slots of two visit types over the same time of the same
practitioner: each pair is one place, guarded by the overlap check (the exclusion constraint on
PostgreSQL), not by a slot's own counter."""

import json
import random
import threading
import urllib.error
import urllib.request
from collections import Counter, defaultdict

import pytest

from tests.cli import hub_database, hub_env, run_creneau, start_demo_hub

CLIENTS = 200


def post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


@pytest.fixture(params=["sqlite", "postgresql"], scope="module")
def race_hub(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(f"race-{request.param}")
    # Two hundred clients from one loopback address: the per-client limits would stop them
    # before the race does.
    extra = {
        "CRENEAU_HORIZON_WEEKS": "2",
        "CRENEAU_RATE_BOOKINGS": "0",
        "CRENEAU_RATE_BOOKINGS_PER_PHONE": "0",
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


def contested_slots(base: str) -> list[dict]:
    """Three times of one neurosurgeon, each offered as two visit types: three places."""
    with urllib.request.urlopen(base + "/api/v1/slots?specialty=neurosurgery&limit=100") as answer:
        items = json.load(answer)["items"]
    by_time = defaultdict(list)
    for item in items:
        if item["visit_type"]["code"] not in {"neurosurgery-first", "neurosurgery-spine"}:
            continue  # both last 30 minutes: the pairs do not overlap each other
        by_time[(item["practitioner"]["id"], item["starts_at"])].append(item)
    pairs = [group[:2] for group in by_time.values() if len(group) >= 2]
    practitioner = pairs[0][0]["practitioner"]["id"]
    chosen = [pair for pair in pairs if pair[0]["practitioner"]["id"] == practitioner][:3]
    assert len(chosen) == 3, "the demo offers two visit types over the same neurosurgery times"
    return [slot for pair in chosen for slot in pair]


def test_two_hundred_clients_race_for_three_places_and_exactly_three_win(race_hub):
    base, database, _env = race_hub
    slots = contested_slots(base)
    rng = random.Random(7)
    targets = [rng.choice(slots)["id"] for _ in range(CLIENTS)]
    results: list[tuple[int, dict]] = [(0, {})] * CLIENTS
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        body = {
            "slot": targets[number],
            "patient": {
                "last_name": f"Patient{chr(65 + number % 26)}",
                "first_name": "Race",
                "birth_date": "1970-01-01",
                "phone": "0612345678",
            },
        }
        start.wait()
        results[number] = post(base + "/api/v1/appointments", body)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

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
