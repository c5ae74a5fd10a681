"""A campaign opens: 10,000 patients for 500 slots made bookable at one instant (issue 18,
point 3). Each patient behaves as the booking page does in a browser: search the campaign's
visit type, take one of the first slots offered, hold it, book it; a hold refused sends them
back to the search, and an empty search sends them away.

    python -m bench.campaign                        # PostgreSQL on 127.0.0.1:5432
    python -m bench.campaign --database sqlite
    python -m bench.campaign --patients 2000 --slots 100 --ramp 2
    python -m bench.campaign --proxy none --connections 512   # no HAProxy in front

The hub is the demo network (`creneau demo --no-serve`, two weeks of agendas) with a campaign
visit type whose slots open at T0, served by `creneau serve` in production mode with every
per-client limit at its default, behind HAProxy (Debian's package) which lets the hub's workers
times threads requests in at once and queues the others, holds and bookings first, then ticket
holders, then arrivals (``bench.proxy``). Each patient has a connection, an address
(X-Forwarded-For from the load generator, which plays the TLS terminator) and a phone number of
their own. Patients arrive over ``--ramp`` seconds from T0 in a random order, which is
recorded: the JSON says how many slots went to the first arrivals, how closely the waiting
room's turns followed arrivals, and how long those who came too late waited to read that nothing
was left, besides the counts, the statuses and the latencies of each kind of answer.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import aiohttp

from bench.attacks import database, free_port, load_demo, log
from bench.booking import machine, percentiles
from bench.proxy import haproxy

ROOT = Path(__file__).resolve().parent
CREATE = [sys.executable, "-m", "creneau"]
CODE = "campaign-vaccination"


def prepare(data_dir: Path, env: dict, slots: int, opens_at: datetime) -> dict:
    """The demo, and a campaign of ``slots`` ten-minute slots over ten practitioners on a
    Saturday, bookable from ``opens_at``."""
    load_demo(data_dir, env)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "creneau.settings"
    import django

    django.setup()
    from creneau.agenda.models import Slot
    from creneau.agenda.services import availability_rule_save
    from creneau.directory.models import Organisation, PractitionerRole, VisitType

    hub = Organisation.objects.get(runs_hub=True)
    roles, practitioners = [], set()
    for role in PractitionerRole.objects.filter(
        establishment__organisation=hub,
        is_active=True,
        specialties__code="cardiology",
        agenda_source__isnull=True,  # an external agenda would be withdrawn, unread
    ).order_by("pk"):
        # Ten practitioners, not ten roles: one practising in two hospitals has one time.
        if role.practitioner_id not in practitioners and len(roles) < 10:
            roles.append(role)
            practitioners.add(role.practitioner_id)
    cardiology = roles[0].specialties.get(code="cardiology")
    campaign = VisitType.objects.create(
        organisation=hub,
        code=CODE,
        label_fr="Vaccination (campagne)",
        label_en="Vaccination (campaign)",
        specialty=cardiology,
        duration_minutes=10,
    )
    per_role = -(-slots // len(roles))
    today = datetime.now(UTC).date()
    saturday = today + timedelta(days=(5 - today.weekday()) % 7 + 7)
    for role in roles:
        end = datetime.combine(saturday, clock(8)) + timedelta(minutes=10 * per_role)
        availability_rule_save(
            practitioner_role=role,
            visit_types=[campaign],
            starts_on=saturday,
            ends_on=saturday,
            start_time=clock(8),
            end_time=end.time(),
            recurrence="FREQ=DAILY",
            slot_minutes=10,
            horizon_weeks=3,
        )
    opened = Slot.objects.filter(visit_type=campaign).order_by("starts_at", "public_id")
    extra = list(opened.values_list("pk", flat=True)[slots:])
    Slot.objects.filter(pk__in=extra).delete()
    Slot.objects.filter(visit_type=campaign).update(bookable_from=opens_at)
    from django.db import connections

    connections.close_all()
    return {"slots": Slot.objects.filter(visit_type=campaign).count(), "practitioners": len(roles)}


def serve(data_dir: Path, env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    log_file = (data_dir / "serve.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*CREATE, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        env={
            **env,
            "CRENEAU_SECRET_KEY": secrets.token_urlsafe(50),
            "CRENEAU_ALLOWED_HOSTS": "127.0.0.1",
            "CRENEAU_THREADS": str(threads),
            "CRENEAU_LOG_LEVEL": "WARNING",
            # The load generator plays the TLS proxy: its X-Forwarded-For and -Proto count.
            "CRENEAU_TRUSTED_PROXIES": "127.0.0.1",
        },
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(
                urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/specialties",
                    headers={"X-Forwarded-Proto": "https"},
                ),
                timeout=2,
            )
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("creneau serve did not start: " + (data_dir / "serve.log").read_text())


async def crowd(base: str, patients: int, opens_at: float, ramp: float, connections: int) -> dict:
    rng = random.Random(18)
    arrivals = sorted(rng.uniform(0, ramp) for _ in range(patients))
    latencies: dict[str, list[float]] = {"search": [], "hold": [], "book": []}
    statuses: dict[str, dict[str, int]] = {kind: {} for kind in latencies}
    outcomes: dict[str, int] = {}
    booked_at: dict[int, float] = {}
    # A connection per request, as a proxy in front of the hub opens them: a kept-alive one
    # that the server closes while idle would fail the next request on the client's side.
    connector = aiohttp.TCPConnector(limit=connections, force_close=True)
    timeout = aiohttp.ClientTimeout(total=600)

    waited: list[float] = []
    told_none_left: list[float] = []  # from arrival to an empty search
    turns: dict[int, float] = {}  # the waiting room's turn given to each patient

    async def ask(session, kind: str, method: str, path: str, headers: dict, body=None):
        """One request; in the waiting room, the patient waits as told and asks again with
        the ticket it was given (the page does so by itself)."""
        arrived = time.perf_counter()
        while True:
            started = time.perf_counter()
            try:
                async with session.request(
                    method, base + path, json=body, headers=headers
                ) as answer:
                    status = answer.status
                    data = await answer.json(content_type=None)
                    ticket = answer.headers.get("X-Creneau-Ticket")
            except (TimeoutError, aiohttp.ClientError) as error:
                status, data, ticket = 0, {"code": type(error).__name__}, None
            latencies[kind].append(time.perf_counter() - started)
            code = data.get("code", "") if isinstance(data, dict) else ""
            key = f"{status} {code}".strip()
            statuses[kind][key] = statuses[kind].get(key, 0) + 1
            if ticket:
                headers["X-Creneau-Ticket"] = ticket
            if status == 429 and code == "waiting_room":
                await asyncio.sleep(data["retry_after"])
                continue
            if kind == "search":
                waited.append(started - arrived)
            return status, data

    async def patient(session, number: int) -> None:
        await asyncio.sleep(max(0.0, opens_at + arrivals[number] - time.time()))
        headers = {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-For": f"10.{number // 65536}.{number // 256 % 256}.{number % 256}",
        }
        person = {
            "last_name": "Campagne " + "".join(chr(65 + int(d)) for d in str(number)),
            "first_name": "Patient",
            "birth_date": "1960-06-06",
            "phone": f"06{40_000_000 + number:08d}",
        }
        arrived = time.perf_counter()
        for attempt in range(5):
            status, page = await ask(
                session, "search", "GET", f"/api/v1/slots?visit_type={CODE}&limit=20", headers
            )
            if attempt == 0 and "X-Creneau-Ticket" in headers:
                turns[number] = turn_of(headers["X-Creneau-Ticket"])
            if status != 200:
                outcomes["search failed"] = outcomes.get("search failed", 0) + 1
                return
            if not page["items"]:
                outcomes["no slot left"] = outcomes.get("no slot left", 0) + 1
                told_none_left.append(time.perf_counter() - arrived)
                return
            slot = rng.choice(page["items"])["id"]  # one of the times the page shows
            status, hold = await ask(
                session, "hold", "POST", "/api/v1/holds", headers, {"slot": slot}
            )
            if status != 201:
                continue  # taken meanwhile: back to the search
            status, _answer = await ask(
                session, "book", "POST", "/api/v1/appointments", headers,
                {"hold": hold["id"], "patient": person},
            )  # fmt: skip
            if status == 201:
                booked_at[number] = time.time() - opens_at
                outcomes["booked"] = outcomes.get("booked", 0) + 1
            else:
                outcomes["booking refused"] = outcomes.get("booking refused", 0) + 1
            return
        outcomes["gave up after 5 refused holds"] = (
            outcomes.get("gave up after 5 refused holds", 0) + 1
        )

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(patient(session, n) for n in range(patients)))
        elapsed = time.perf_counter() - started
    winners = sorted(booked_at)
    return {
        "elapsed_seconds": round(elapsed, 1),
        "outcomes": outcomes,
        "statuses": statuses,
        "server_errors": sum(
            count
            for kind in statuses.values()
            for key, count in kind.items()
            if key.startswith(("5", "0"))
        ),
        "latency_ms": {kind: percentiles(values) for kind, values in latencies.items()},
        "waiting_room_ms": percentiles(waited) if waited else None,
        "told_no_slot_left_after_ms": percentiles(told_none_left) if told_none_left else None,
        "arrival_order": {
            "winners_among_first_arrivals": sum(1 for n in winners if n < len(winners)),
            "winners": len(winners),
            "latest_arrival_rank_that_won": (winners[-1] + 1) if winners else None,
            "median_arrival_rank_of_winners": (winners[len(winners) // 2] + 1) if winners else None,
        },
        "waiting_room_order": turn_order(turns, len(winners)),
        "last_booking_after_seconds": round(max(booked_at.values()), 1) if booked_at else None,
    }


def turn_of(ticket: str) -> float:
    """The admission time a waiting-room ticket carries (its payload is readable; only its
    signature needs the server's key)."""
    payload = ticket.split(":")[0]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["at"]


def turn_order(turns: dict[int, float], first: int) -> dict | None:
    """How closely the waiting room's turns followed the order of arrival: of the ``first``
    patients given the earliest turns, how many were among the ``first`` to arrive, and how far
    a patient's turn rank was from its arrival rank."""
    if not turns:
        return None
    by_turn = sorted(turns, key=lambda number: (turns[number], number))
    by_arrival = sorted(turns)
    arrival_rank = {number: rank for rank, number in enumerate(by_arrival)}
    shifts = sorted(abs(rank - arrival_rank[number]) for rank, number in enumerate(by_turn))
    return {
        "patients_with_a_turn": len(turns),
        "first_turns": first,
        "first_turns_among_first_arrivals": sum(
            1 for number in by_turn[:first] if arrival_rank[number] < first
        ),
        "rank_shift_median": shifts[len(shifts) // 2],
        "rank_shift_p95": shifts[int(len(shifts) * 0.95)],
        "rank_shift_max": shifts[-1],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--slots", type=int, default=500)
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which they arrive")
    parser.add_argument(
        "--proxy",
        choices=["haproxy", "none"],
        default="haproxy",
        help="HAProxy in front (its queue; ticket holders first), or the patients straight to "
        "the hub through --connections connections",
    )
    parser.add_argument(
        "--connections", type=int, default=512, help="with --proxy none: the hub's at once"
    )
    parser.add_argument(
        "--waiting-room", type=int, default=30, help="patients let in a second (0: none)"
    )
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    data_dir = Path(tempfile.mkdtemp(prefix="creneau-campaign-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    env.update({"CRENEAU_DATA_DIR": str(data_dir), "CRENEAU_HORIZON_WEEKS": "2"})
    out = Path(args.out or ROOT / "results" / f"campaign-{args.database}.json")
    try:
        with database(args.database) as engine_env:
            env.update(engine_env)
            opens = datetime.now(UTC) + timedelta(seconds=90)
            log(f"loading the demo on {args.database} and opening {args.slots} slots")
            campaign = prepare(data_dir, env, args.slots, opens)
            port = free_port()
            env["CRENEAU_WAITING_ROOM_RATE"] = str(args.waiting_room)
            server = serve(data_dir, env, port, args.workers, args.threads)
            at_once = args.workers * args.threads
            proxy = (
                haproxy(data_dir, port, at_once) if args.proxy == "haproxy" else nullcontext(port)
            )
            try:
                with proxy as front:
                    wait = (opens - datetime.now(UTC)).total_seconds()
                    log(f"{args.patients} patients arrive over {args.ramp} s, in {wait:.0f} s")
                    report = asyncio.run(
                        crowd(
                            f"http://127.0.0.1:{front}",
                            args.patients,
                            opens.timestamp(),
                            args.ramp,
                            # Behind HAProxy, each patient has a connection of their own.
                            0 if args.proxy == "haproxy" else args.connections,
                        )
                    )
            finally:
                server.terminate()
                server.wait(timeout=30)
            from creneau.booking.models import Appointment

            stored = Appointment.objects.filter(visit_type__code=CODE, status="booked").count()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    result = {
        "benchmark": "campaign",
        "machine": machine(),
        "database": args.database,
        "dataset": "demo network (41 hospitals, 2 weeks of agendas) and the campaign",
        "campaign": campaign,
        "patients": args.patients,
        "arrival_ramp_seconds": args.ramp,
        "proxy": (
            {
                "kind": "haproxy",
                "hub_at_once": at_once,
                "queue": "holds and bookings, then ticket holders, then arrivals",
            }
            if args.proxy == "haproxy"
            else {"kind": "none", "connections": args.connections}
        ),
        "server": {"workers": args.workers, "threads": args.threads, "limits": "defaults"},
        "waiting_room_rate": args.waiting_room,
        "appointments_stored": stored,
        **report,
    }
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
