"""Beyond one server, on engines that exist (issue 18, point 5), started for real here:

- a PostgreSQL primary and a streaming replica (``initdb``, ``pg_basebackup``);
- server A reads and writes on the primary through psycopg's pool (``CRENEAU_DB_POOL``);
- server B through PgBouncer in transaction mode (``CRENEAU_DB_TRANSACTION_POOLER``);
- both read searches on the replica, count their limits in Redis, and stand behind HAProxy.

Through that one address, 200 clients race for three places, the attacks of issue 14 get
exactly what the limits allow, and a patient never sees their booking vanish while the replica
lags behind or is down."""

import json
import shutil
import socket
from collections import Counter
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from bench.attacks import Client, Slots, patient, run_attacks

from tests.booking.test_race import contested_slots, race
from tests.cli import Database, hub_env, run_creneau, suite_engine
from tests.scale.topology import clusters, haproxy, pgbouncer, served
from tests.test_attacks import EXPECTED

pytestmark = pytest.mark.skipif(
    suite_engine() != "postgresql", reason="PostgreSQL's replicas and poolers: the PostgreSQL half"
)


def redis_database() -> str:
    """A Redis database of its own, emptied: the limits' windows of an earlier run (an hour, a
    day) would otherwise still count here."""
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError:
        pytest.fail("Redis is not reachable on 127.0.0.1:6379: this test needs it")
    import redis

    number = 11
    redis.Redis(host="127.0.0.1", port=6379, db=number).flushdb()
    return f"redis://127.0.0.1:6379/{number}"


class Hub:
    def __init__(self, **parts) -> None:
        self.__dict__.update(parts)

    def client(self, source: str) -> Client:
        return Client(self.base, source)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with clusters() as pair:
        with psycopg.connect(pair.url(pair.primary_port), autocommit=True) as admin:
            admin.execute("CREATE DATABASE creneau")
        primary = pair.url(pair.primary_port, "creneau")
        replica = pair.url(pair.replica_port, "creneau")
        data_a = tmp_path_factory.mktemp("server-a")
        loaded = run_creneau(
            "demo",
            "--no-serve",
            "--data-dir",
            str(data_a),
            env=hub_env(data_a, CRENEAU_DATABASE_URL=primary, CRENEAU_HORIZON_WEEKS="2"),
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        credentials = json.loads((data_a / "demo-credentials.json").read_text(encoding="utf-8"))
        # The second server shares the first one's secrets (the key, the ledger's signing key);
        # its metrics directory is its own.
        data_b = tmp_path_factory.mktemp("server-b")
        shutil.copytree(data_a, data_b, dirs_exist_ok=True)
        shared = {
            "CRENEAU_SECRET_KEY": "x" * 20 + "shared-by-both-servers" + "y" * 20,
            "CRENEAU_ALLOWED_HOSTS": "127.0.0.1",
            "CRENEAU_SSL_REDIRECT": "0",
            "CRENEAU_TRUSTED_PROXIES": "127.0.0.1",
            "CRENEAU_HORIZON_WEEKS": "2",
            "CRENEAU_CACHE_URL": redis_database(),
            "CRENEAU_DATABASE_REPLICA_URLS": replica,
        }
        with pgbouncer(pair.primary_port, "creneau") as bouncer:
            env_a = hub_env(data_a, **shared, CRENEAU_DATABASE_URL=primary, CRENEAU_DB_POOL="2,8")
            env_b = hub_env(
                data_b,
                **shared,
                CRENEAU_DATABASE_URL=f"postgres://postgres@127.0.0.1:{bouncer}/creneau",
                CRENEAU_DB_TRANSACTION_POOLER="1",
            )
            proxy = tmp_path_factory.mktemp("proxy")
            with ExitStack() as stack:
                port_a = stack.enter_context(served(data_a, env_a))
                port_b = stack.enter_context(served(data_b, env_b))
                front = stack.enter_context(haproxy([port_a, port_b], proxy))
                pair.wait_for_replica()
                yield Hub(
                    base=f"http://127.0.0.1:{front}",
                    servers=[f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"],
                    logs=[data_a / "serve.log", data_b / "serve.log"],
                    clusters=pair,
                    database=Database("postgresql", primary),
                    credentials=credentials,
                )


def requests_served(log: Path, path: str) -> int:
    return sum(path in line for line in log.read_text(encoding="utf-8").splitlines())


def test_two_hundred_clients_race_through_two_servers_and_exactly_three_win(hub):
    slots = contested_slots(hub.base)
    targets = [slots[n % len(slots)]["id"] for n in range(200)]
    before = [requests_served(log, "POST /api/v1/appointments") for log in hub.logs]

    def book(number: int) -> tuple[int, dict]:
        # Each client from an address and with a phone of its own: the race, not the limits.
        client = hub.client(f"127.0.1.{number + 1}")
        return client.post(
            "/api/v1/appointments",
            {"slot": targets[number], "patient": patient(number, f"06{50_000_000 + number:08d}")},
        )

    results = race(200, book)

    statuses = Counter(status for status, _body in results)
    assert statuses == {201: 3, 409: 197}, statuses
    assert {body["code"] for status, body in results if status == 409} == {"slot_taken"}
    assert len({body["starts_at"] for status, body in results if status == 201}) == 3
    ids = ", ".join(f"'{slot['id']}'" for slot in slots)
    assert hub.database.rows(
        "select count(*) from booking_appointment a join agenda_slot s on s.id = a.slot_id "
        f"where s.public_id in ({ids})"
    ) == [(3,)]
    # Both servers took part: A on psycopg's pool, B through PgBouncer.
    after = [requests_served(log, "POST /api/v1/appointments") for log in hub.logs]
    assert all(later - earlier >= 50 for earlier, later in zip(before, after, strict=True))


def test_the_limits_hold_exactly_across_two_servers(hub):
    """The attacks of issue 14 through the proxy: every limit counted once for both servers
    (in Redis), and the client's address taken from the proxy's X-Forwarded-For only."""
    assert run_attacks(hub.base, hub.credentials) == EXPECTED


def free_slots(client: Client, day: str) -> set[str]:
    status, page = client.get(f"/api/v1/slots?specialty=dermatology&limit=50&from_date={day}")
    assert status == 200, page
    return {item["id"] for item in page["items"]}


def test_searches_read_the_replica_and_a_patient_never_sees_their_booking_vanish(hub):
    pair = hub.clusters
    day = (datetime.now(UTC) + timedelta(days=9)).date().isoformat()
    pair.wait_for_replica()
    patient_client, other = hub.client("127.0.2.1"), hub.client("127.0.2.2")
    slot = sorted(free_slots(patient_client, day))[0]

    pair.replay(paused=True)
    try:
        status, booked = patient_client.post(
            "/api/v1/appointments", {"slot": slot, "patient": patient(1, "0755555501")}
        )
        assert status == 201, booked
        token = booked["manage_token"]
        # The patient's appointment, by the API and by its page: read on the primary.
        for _ in range(4):  # whichever server answers
            status, seen = patient_client.get(
                f"/api/v1/appointments/{booked['id']}", **{"X-Manage-Token": token}
            )
            assert (status, seen["status"]) == (200, "booked")
            assert patient_client.get(f"/appointments/{booked['id']}/?token={token}")[0] == 200
            # Their next search waits for the replica to replay their booking: the primary
            # answers it meanwhile, and the slot is gone.
            assert slot not in free_slots(patient_client, day)
        # Somebody else's search reads the replica, which has not replayed the booking yet.
        assert slot in free_slots(other, day)
        status, ready = Client(hub.servers[0], "127.0.0.1").get("/readyz")
        assert ready["replicas"]["replica1"]["bytes_behind"] > 0, ready
    finally:
        pair.replay(paused=False)
    pair.wait_for_replica()
    assert slot not in free_slots(other, day)


def test_a_replica_down_leaves_searches_to_the_primary(hub):
    pair = hub.clusters
    day = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    client = hub.client("127.0.2.3")
    pair.stop_replica()
    try:
        for server in hub.servers:
            status, ready = Client(server, "127.0.0.1").get("/readyz")
            assert status == 200 and ready["status"] == "degraded", ready
            assert ready["replicas"]["replica1"]["status"] == "unreachable"
        for _ in range(4):
            assert free_slots(client, day)
        status, booked = client.post(
            "/api/v1/appointments",
            {"slot": sorted(free_slots(client, day))[0], "patient": patient(2, "0755555502")},
        )
        assert status == 201, booked
    finally:
        pair.start_replica()
    pair.wait_for_replica()
    Slots(client, "cardiology", day)  # the replica serves again
