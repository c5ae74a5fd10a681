"""Replays the attacks of issue 14 (points 3 to 8) and of issue 27 (points 1, 3, 4, 6, 9, 12 and
14: bench/attacks_surfaces.py) against a real ``creneau serve`` with several gunicorn workers,
and prints what each got, as JSON.

    python -m bench.attacks                          # SQLite, counters in the database
    python -m bench.attacks --database postgresql    # PostgreSQL
    python -m bench.attacks --cache-url redis://127.0.0.1:6379/15   # counters in Redis

It loads the demo network (two weeks of agendas) into a database of its own, serves it with
``creneau serve`` in production mode (``--workers``, 3 by default) on loopback, with the hub's
default limits and no trusted proxy, then attacks it as a hostile script would. Each attack
comes from its own loopback address (127.0.0.0/8 is all loopback on Linux), so that each limit
is measured on its own. ``tests/test_attacks.py`` runs the same attacks and asserts the
expected figures.
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

PG_ADMIN = os.environ.get("CRENEAU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
CREATE = [sys.executable, "-m", "creneau"]
EVIL = "http://evil.example"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# HTTP from a chosen loopback address


class Client:
    """One attacker: every request leaves from ``source`` (a loopback address of its own)."""

    def __init__(self, base: str, source: str, headers: dict | None = None) -> None:
        parts = urllib.parse.urlsplit(base)
        self.host, self.port = parts.hostname, parts.port
        self.source = source
        self.headers = headers or {}
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body=None, headers: dict | None = None):
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=60, source_address=(self.source, 0)
        )
        headers = {**self.headers, **(headers or {})}
        if isinstance(body, dict):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, path, body=body, headers=headers)
            answer = connection.getresponse()
            raw = answer.read()
            for name, value in answer.getheaders():
                if name.lower() == "set-cookie":
                    pair = value.split(";", 1)[0]
                    key, _, cookie = pair.partition("=")
                    self.cookies[key.strip()] = cookie
            try:
                data = json.loads(raw) if raw else {}
            except ValueError:
                data = {"text": raw.decode(errors="replace")}
            return answer.status, data
        finally:
            connection.close()

    def get(self, path: str, **headers):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body=None, **headers):
        return self.request("POST", path, body, headers=headers)


def outcome(status: int, data: dict) -> str:
    code = data.get("code") if isinstance(data, dict) else None
    return f"{status} {code}" if code else str(status)


def tally(results: list[tuple[int, dict]]) -> dict[str, int]:
    return dict(Counter(outcome(status, data) for status, data in results))


def wait_for_window(window: int, needed: int) -> None:
    """Fixed windows: start a measurement only if it can end before the window does."""
    left = window - int(time.time()) % window
    if left < needed:
        time.sleep(left + 1)


# ---------------------------------------------------------------------------------------------
# The attacks


class Slots:
    """Distinct free slots of one visit type (no two of them overlap), handed out once each."""

    def __init__(self, client: Client, specialty: str, from_day: str) -> None:
        self.items: list[dict] = []
        cursor = ""
        code = None
        while len(self.items) < 250:
            query = f"specialty={specialty}&limit=100&from_date={from_day}" + (
                f"&cursor={cursor}" if cursor else ""
            )
            status, page = client.get("/api/v1/slots?" + query)
            assert status == 200, page
            code = code or page["items"][0]["visit_type"]["code"]
            self.items += [i for i in page["items"] if i["visit_type"]["code"] == code]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        self._next: Iterator[dict] = iter(self.items)

    def take(self) -> str:
        return next(self._next)["id"]


def patient(number: int, phone: str | None = None) -> dict:
    return {
        "last_name": f"Attaque{chr(65 + number % 26)}",
        "first_name": "Script",
        "birth_date": "1975-05-05",
        "phone": phone or f"06{number:08d}",
    }


def token(client: Client, api: dict) -> str:
    pair = base64.b64encode(f"{api['client_id']}:{api['client_secret']}".encode()).decode()
    status, answer = client.request(
        "POST",
        api["token_url"],
        "grant_type=client_credentials",
        headers={
            "Authorization": "Basic " + pair,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 200, answer
    return answer["access_token"]


def attack_operator_holds(base: str, credentials: dict, slots: Slots) -> dict:
    """Point 3: a partner platform allowed to search and book holds every slot it finds."""
    partner = next(o for o in credentials["operators"] if o["kind"] == "partner")
    client = Client(base, "127.0.0.3")
    client.headers["Authorization"] = "Bearer " + token(client, partner["api_client"])
    results = [client.post("/api/v1/holds", {"slot": slots.take()}) for _ in range(40)]
    for status, data in results:
        if status == 201:
            client.request("DELETE", f"/api/v1/holds/{data['id']}")
    return {"holds asked": len(results), "answers": tally(results)}


def attack_cross_site(base: str, slots: Slots) -> dict:
    """Point 4: another site's page makes its visitors' browsers hold a slot."""
    client = Client(base, "127.0.0.4")
    slot = slots.take()
    browser = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"}
    plain = client.request(
        "POST",
        "/api/v1/holds",
        json.dumps({"slot": slot}),
        {"Content-Type": "text/plain", **browser},
    )
    json_body = client.post("/api/v1/holds", {"slot": slot}, **browser)
    form = client.request(
        "POST",
        "/api/v1/holds",
        f"slot={slot}",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    return {
        "text/plain from evil.example": outcome(*plain),
        "JSON from evil.example": outcome(*json_body),
        "form-encoded body": outcome(*form),
    }


def attack_shared_limits(base: str, credentials: dict, slots: Slots) -> dict:
    """Point 5: every limit counted once for all workers, not once per worker."""
    report = {}
    client = Client(base, "127.0.0.5")
    wait_for_window(600, 60)
    holds = []
    for _ in range(40):
        answer = client.post("/api/v1/holds", {"slot": slots.take()})
        holds.append(answer)
        if answer[0] == 201:
            client.request("DELETE", f"/api/v1/holds/{answer[1]['id']}")
    report["holds per address (limit 30 per 10 min)"] = tally(holds)

    client = Client(base, "127.0.0.6")
    wait_for_window(86400, 60)
    phone = "0612" + f"{secrets.randbelow(10**6):06d}"  # a range libphonenumber knows
    same_phone = [
        client.post("/api/v1/appointments", {"slot": slots.take(), "patient": patient(n, phone)})
        for n in range(8)
    ]
    report["bookings per phone (limit 5 a day)"] = tally(same_phone)

    client = Client(base, "127.0.0.7")
    wait_for_window(3600, 60)
    bookings = [
        client.post("/api/v1/appointments", {"slot": slots.take(), "patient": patient(n)})
        for n in range(30)
    ]
    report["bookings per address (limit 20 an hour)"] = tally(bookings)

    client = Client(base, "127.0.0.8")
    agent = credentials["operators"][0]["agent"]
    wait_for_window(600, 60)
    logins = []
    for _ in range(15):
        client.get("/console/login/")
        status, _page = client.request(
            "POST",
            "/console/login/",
            urllib.parse.urlencode(
                {
                    "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
                    "username": agent["username"],
                    "password": "wrong password " + secrets.token_hex(4),
                    "otp_token": "000000",
                }
            ),
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        logins.append((status, {}))
    report["console sign-ins per address and account (limit 10 per 10 min)"] = tally(logins)

    operator = credentials["operators"][0]
    client = Client(base, "127.0.0.9")
    client.headers["Authorization"] = "Bearer " + token(client, operator["api_client"])
    wait_for_window(60, 40)
    answers: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def ask(count: int) -> None:
        for _ in range(count):
            status, data = client.get("/api/v1/specialties")
            with lock:
                answers.append((status, data if isinstance(data, dict) else {}))

    threads = [threading.Thread(target=ask, args=(163,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report["operator requests per minute (limit 1,200)"] = tally(answers)
    return report


def attack_forged_forwarded_for(base: str, slots: Slots) -> dict:
    """Point 6: fifty holds, each claiming another client address in X-Forwarded-For."""
    client = Client(base, "127.0.0.10")
    results = []
    for n in range(50):
        forged = f"198.51.100.{n + 1}"
        results.append(
            client.post("/api/v1/holds", {"slot": slots.take()}, **{"X-Forwarded-For": forged})
        )
    for status, data in results:
        if status == 201:
            client.request("DELETE", f"/api/v1/holds/{data['id']}")
    return {"holds with 50 forged addresses": tally(results)}


def attack_sms_anywhere(base: str, slots: Slots) -> dict:
    """Point 7: confirmations texted to any number in the world, or to a landline. Since issue
    28 any valid number is a patient's contact, but no text message goes to it: booking alone
    on the public site, the patient must then give an e-mail address (refused on that field)."""
    client = Client(base, "127.0.0.11")
    report = {}
    for label, phone in [
        ("+86 mobile", "+86 138 0013 8000"),
        ("+234 mobile", "+234 803 123 4567"),
        ("Paris landline", "01 42 16 00 00"),
    ]:
        status, data = client.post(
            "/api/v1/appointments", {"slot": slots.take(), "patient": patient(1, phone)}
        )
        fields = [error["field"] for error in data.get("errors", [])]
        report[label] = f"{outcome(status, data)} {','.join(fields)}".strip()
    return report


def attack_idempotency_key(base: str, slots: Slots) -> dict:
    """Point 8: a second client sends the first one's Idempotency-Key and body."""
    first, second = Client(base, "127.0.0.12"), Client(base, "127.0.0.13")
    body = {"slot": slots.take(), "patient": patient(2)}
    key = {"Idempotency-Key": "booking-" + secrets.token_hex(4)}
    original = first.post("/api/v1/appointments", body, **key)
    copied = second.post("/api/v1/appointments", body, **key)
    return {
        "first client": outcome(*original),
        "second client, same key and body": outcome(*copied),
        "second client got a manage token": "manage_token" in copied[1],
    }


class Reader:
    """The served hub's database, read directly (what the ledger grew by, the demo's roles)."""

    def __init__(self, data_dir: Path, env: dict) -> None:
        self.url = env.get("CRENEAU_DATABASE_URL", "")
        self.path = data_dir / "creneau.sqlite3"

    def rows(self, sql: str) -> list[tuple]:
        if not self.url:
            import sqlite3

            with sqlite3.connect(self.path) as connection:
                return connection.execute(sql).fetchall()
        with psycopg.connect(self.url) as connection:
            return connection.execute(sql).fetchall()

    def ledger_entries(self) -> int:
        return self.rows("SELECT COUNT(*) FROM ledger_entry")[0][0]

    def roles(self, count: int) -> list[dict]:
        """Roles of public hospitals with nothing but Créneau's own agenda."""
        found = self.rows(
            "SELECT r.public_id, p.rpps, e.finess FROM directory_practitionerrole r "
            "JOIN directory_practitioner p ON p.id = r.practitioner_id "
            "JOIN directory_establishment e ON e.id = r.establishment_id "
            "JOIN directory_organisation o ON o.id = e.organisation_id "
            "WHERE o.is_public AND r.id NOT IN (SELECT practitioner_role_id FROM "
            "agenda_agendasource WHERE kind <> 'builtin') ORDER BY r.id DESC LIMIT " + str(count)
        )
        return [{"id": a, "rpps": b, "finess": c} for a, b, c in found]


def run_surface_attacks(base: str, credentials: dict, reader: Reader, env: dict, data_dir) -> dict:
    from bench import attacks_surfaces as surfaces

    links = surfaces.finder_links(base, credentials, 30)
    roles = reader.roles(4)
    hub = {
        **env,
        "CRENEAU_DATA_DIR": str(data_dir),
        "CRENEAU_HORIZON_WEEKS": "2",
        "CRENEAU_OUTGOING_ALLOWED_NETWORKS": "127.0.0.0/8",
    }
    return {
        "27.1 a platform link's hold": surfaces.attack_link_hold(base, links[:3]),
        "27.4 visitors by a finder's links": surfaces.attack_link_visitors(
            base, credentials, links[3:]
        ),
        "27.9 anonymous SMART files": surfaces.attack_smart_downloads(base, reader.ledger_entries),
        "27.6 and 27.12 agenda feeds": surfaces.attack_agenda_feeds(
            [r["id"] for r in roles[:3]], hub
        ),
        "27.14 MLLP": surfaces.attack_mllp(roles[3], hub, data_dir),
    }


CROWD = {"CRENEAU_WAITING_ROOM_RATE": "1", "CRENEAU_WAITING_ROOM_BURST": "0"}


def crowd_attack(base: str, credentials: dict) -> dict:
    from bench import attacks_surfaces as surfaces

    return surfaces.attack_waiting_room(base, surfaces.finder_links(base, credentials, 1))


def run_attacks(base: str, credentials: dict) -> dict:
    reader = Client(base, "127.0.0.2")
    week_ahead = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    neurosurgery = Slots(reader, "neurosurgery", week_ahead)
    general = Slots(reader, "cardiology", week_ahead)
    return {
        "3 operator holds (cap 20 at once)": attack_operator_holds(base, credentials, neurosurgery),
        "4 cross-site writes": attack_cross_site(base, general),
        "5 limits shared by every worker": attack_shared_limits(base, credentials, general),
        "6 forged X-Forwarded-For": attack_forged_forwarded_for(base, general),
        "7 text messages to any number": attack_sms_anywhere(base, general),
        "8 idempotency keys of another client": attack_idempotency_key(base, general),
    }


# ---------------------------------------------------------------------------------------------
# The hub under attack


@contextmanager
def database(engine: str) -> Iterator[dict]:
    if engine == "sqlite":
        yield {}
        return
    name = f"creneau_attacks_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN + "/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield {"CRENEAU_DATABASE_URL": f"{PG_ADMIN}/{name}"}
    finally:
        with psycopg.connect(PG_ADMIN + "/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_demo(data_dir: Path, env: dict) -> dict:
    """``creneau demo --no-serve`` into ``data_dir``: the demo's credentials."""
    loaded = subprocess.run(
        [*CREATE, "demo", "--no-serve", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
    )
    if loaded.returncode:
        raise RuntimeError("creneau demo --no-serve failed: " + loaded.stderr[-2000:])
    return json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))


@contextmanager
def served_hub(
    data_dir: Path, env: dict, workers: int, **settings: str
) -> Iterator[tuple[str, dict]]:
    """The demo network loaded with ``creneau demo --no-serve``, then ``creneau serve`` in
    production mode. Yields the base URL and the demo's credentials."""
    env = {k: v for k, v in env.items()}
    env.update({"CRENEAU_DATA_DIR": str(data_dir), "CRENEAU_HORIZON_WEEKS": "2"})
    credentials = load_demo(data_dir, env)
    port = free_port()
    log_file = (data_dir / "serve.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*CREATE, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        env={
            **env,
            "CRENEAU_SECRET_KEY": secrets.token_urlsafe(50),
            "CRENEAU_ALLOWED_HOSTS": "127.0.0.1",
            "CRENEAU_SSL_REDIRECT": "0",
            **settings,
        },
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if Client(base, "127.0.0.1").get("/api/v1/specialties")[0] == 200:
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "creneau serve did not start: " + (data_dir / "serve.log").read_text()
                    ) from None
                time.sleep(0.3)
        yield base, credentials
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--cache-url", default="", help="CRENEAU_CACHE_URL (Redis)")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="creneau-attacks-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    if args.cache_url:
        env["CRENEAU_CACHE_URL"] = args.cache_url
    try:
        with database(args.database) as engine_env:
            log(f"loading the demo on {args.database} and serving it with {args.workers} workers")
            hub_env = {**env, **engine_env}
            with served_hub(data_dir, hub_env, args.workers) as (base, credentials):
                log("attacking")
                report = run_attacks(base, credentials)
                reader = Reader(data_dir, hub_env)
                report |= run_surface_attacks(base, credentials, reader, hub_env, data_dir)
            log("serving it again with a waiting room (1 patient a second, no burst)")
            with served_hub(data_dir, hub_env, args.workers, **CROWD) as (base, credentials):
                report["27.3 the waiting room"] = crowd_attack(base, credentials)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    print(
        json.dumps(
            {
                "database": args.database,
                "counters": "redis" if args.cache_url else "database",
                "workers": args.workers,
                "dataset": "demo network, 2 weeks of agendas",
                "attacks": report,
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
