"""The booking benchmark: one command, JSON out.

    python -m bench.booking --scale national                 # PostgreSQL, 15 million slots
    python -m bench.booking --scale small --database sqlite  # the embedded default

It builds the dataset in a database of its own (PostgreSQL ``creneau_bench``, dropped and made
again; or a SQLite file in a temporary folder), then measures, in this order:

1. slot generation: 2 weeks (about a million slots at national scale), then 26 weeks from
   empty by a hub's first nightly roll, the next night's roll (one day more) and a roll a week
   later (one week more); one practitioner's rule change;
2. search "earliest 20 slots for a visit type in the public site's perimeter": latency in the
   service, and of the bare SQL of the same query (the limit), at both sizes (growth);
3. through HTTP (``creneau serve``: gunicorn, production settings) with the load generator in a
   separate process (``bench.load``): search throughput, booking throughput with 64 clients,
   and the contention run (1,000 clients, 10 slots); then booking throughput again as a call
   centre's software does it (OAuth2 bearer token, contract checks, attribution);
4. pgbench running the booking's SQL statements on the same machine (PostgreSQL only).

Everything shares the machine's cores: the server's workers, PostgreSQL and the load generator
are not pinned; the report gives the CPU seconds the load generator used.
"""

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path

PG_ADMIN = os.environ.get("CRENEAU_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
BENCH_DB = "creneau_bench"
ROOT = Path(__file__).resolve().parent


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gib"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


def percentiles(samples: list[float]) -> dict:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3)

    return {"p50_ms": at(0.50), "p95_ms": at(0.95), "p99_ms": at(0.99), "samples": len(ordered)}


# ---------------------------------------------------------------------------------------------
# Database set-up, before Django starts


def prepare_database(kind: str, workdir: Path, name: str = BENCH_DB) -> str:
    """A database of the benchmark's own: a SQLite file in ``workdir``, or PostgreSQL ``name``
    dropped and made again."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'creneau.sqlite3'}"
    import psycopg

    with psycopg.connect(f"{PG_ADMIN}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{PG_ADMIN}/{name}"


def django_on_own_database(kind: str, name: str, **env: str) -> Path:
    """A fresh database of the benchmark's own (``name`` on PostgreSQL, a file on SQLite),
    Django set up on it with ``env`` added to the environment; the work directory."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
    os.environ.update(
        {
            "CRENEAU_DATA_DIR": str(workdir),
            "CRENEAU_DATABASE_URL": prepare_database(kind, workdir, name=name),
            "DJANGO_SETTINGS_MODULE": "creneau.settings",
            **env,
        }
    )
    import django

    django.setup()
    return workdir


# ---------------------------------------------------------------------------------------------
# Measurements in the process (Django set up)


def slot_count() -> int:
    from creneau.agenda.models import Slot

    return Slot.objects.count()


def generate(weeks: int, jobs: int, *, roll: bool = False, now=None) -> dict:
    """Slot generation over ``weeks``: by ``slots_generate`` (every agenda compared from now),
    or by the nightly roll (which opens what lies beyond the last roll), at ``now``."""
    from creneau.agenda.services import slots_generate
    from creneau.operations.jobs import nightly_roll

    started = time.perf_counter()
    if roll:
        report = nightly_roll(horizon_weeks=weeks, jobs=jobs, now=now).slots
    else:
        report = slots_generate(horizon_weeks=weeks, jobs=jobs, now=now)
    seconds = time.perf_counter() - started
    return {
        "horizon_weeks": weeks,
        "seconds": round(seconds, 2),
        "created": report.created,
        "unchanged": report.unchanged,
        "slots_per_second": round(report.created / seconds),
        "roles": report.roles,
        "processes": jobs,
        "by": "nightly_roll" if roll else "slots_generate",
    }


def analyse() -> None:
    from django.db import connection

    # Fresh statistics for every table, as autovacuum would give a live database after a
    # while: the bulk-loaded directory has none yet, and the planner would guess.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def search_latency(scope, visit_types: list, rounds: int, rng: random.Random) -> dict:
    from django.db import connection
    from django.utils import timezone

    from creneau.booking.queries import SlotQuery, slots_search, slots_search_queryset

    service, bare, empty = [], [], 0
    for _ in range(rounds):
        visit_type = rng.choice(visit_types)
        now = timezone.now()
        started = time.perf_counter()
        page = slots_search(scope, visit_type=visit_type, limit=20, now=now)
        service.append(time.perf_counter() - started)
        empty += not page.slots
        found, _distances = slots_search_queryset(scope, SlotQuery(visit_type=visit_type), now)
        sql, params = found[:21].query.sql_with_params()
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            bare.append(time.perf_counter() - started)
    result = {"service": percentiles(service), "bare_sql": percentiles(bare), "empty_pages": empty}
    result["service_over_bare_p95"] = round(
        result["service"]["p95_ms"] / result["bare_sql"]["p95_ms"], 2
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
            result["plan"] = [row[0] for row in cursor.fetchall()]
    return result


def rule_change(rng: random.Random, count: int = 5) -> dict:
    from creneau.agenda.models import AvailabilityRule
    from creneau.agenda.services import availability_rule_save

    timings = []
    rules = list(AvailabilityRule.objects.order_by("?")[:count].select_related("practitioner_role"))
    for rule in rules:
        role = rule.practitioner_role
        started = time.perf_counter()
        availability_rule_save(
            practitioner_role=role,
            visit_types=list(rule.visit_types.all()),
            recurrence=rule.recurrence,
            starts_on=rule.starts_on,
            start_time=rule.start_time,
            end_time=clock_time(rule.end_time.hour - 1, 30),
            rule=rule,
        )
        timings.append(time.perf_counter() - started)
    return {
        "changes": len(timings),
        "median_ms": round(1000 * statistics.median(timings), 1),
        "max_ms": round(1000 * max(timings), 1),
    }


def free_first_slots(limit: int, offset: int = 0) -> list:
    from django.utils import timezone

    from creneau.agenda.models import Slot
    from creneau.agenda.queries import free_now

    now = timezone.now()
    return list(
        Slot.objects.filter(
            free_now(now),
            bookable_from__lte=now,
            bookable_until__gt=now,
            visit_type__code__endswith="-first",
            establishment__organisation__runs_hub=True,
        )
        .order_by("pk")
        .values_list("pk", "public_id")[offset : offset + limit]
    )


# ---------------------------------------------------------------------------------------------
# HTTP: the server, then the load generator in its own process


def start_server(env: dict, port: int, workers: int, threads: int) -> subprocess.Popen:
    server_env = {
        **env,
        "CRENEAU_SECRET_KEY": secrets.token_urlsafe(50),
        "CRENEAU_ALLOWED_HOSTS": "127.0.0.1",
        "CRENEAU_BIND": f"127.0.0.1:{port}",
        "CRENEAU_WORKERS": str(workers),
        "CRENEAU_THREADS": str(threads),
        "CRENEAU_LOG_LEVEL": "WARNING",
        # The load generator plays the TLS proxy: its X-Forwarded-Proto is believed.
        "CRENEAU_TRUSTED_PROXIES": "127.0.0.1",
        # The load comes from one address: per-client limits off (the report says so).
        "CRENEAU_RATE_HOLDS": "0",
        "CRENEAU_RATE_BOOKINGS": "0",
        "CRENEAU_RATE_BOOKINGS_PER_PHONE": "0",
        "CRENEAU_HOLDS_PER_VISITOR": "0",
        "CRENEAU_RATE_WAITING_LIST": "0",
        # The floor every answer is compared with: one row by its key, as JSON.
        "CRENEAU_BENCH_BASELINE": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "creneau", "serve"],
        env=server_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/specialties", headers={"X-Forwarded-Proto": "https"}
    )
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(request, timeout=2)
            return process
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server did not start")


def load(mode: str, base: str, lines: list[str], workdir: Path, headers=(), **options) -> dict:
    path = workdir / f"{mode}.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    command = [sys.executable, "-m", "bench.load", mode, "--base", base, "--input", str(path)]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    for header in headers:
        command += ["--header", header]
    answer = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT.parent)
    return json.loads(answer.stdout)


def pgbench(database_url: str, channel_id: int, rng: random.Random, seconds: int) -> dict:
    """The booking's SQL statements, as the HTTP path sends them (see the captured list),
    replayed by pgbench with 64 clients: what PostgreSQL alone allows on this machine."""
    from django.db import connection

    if not shutil.which("pgbench"):
        return {"skipped": "pgbench is not installed"}
    pool = free_first_slots(400_000, offset=200_000)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_first_slot")
        cursor.execute("CREATE TABLE bench_first_slot (n serial PRIMARY KEY, id bigint)")
        cursor.executemany(
            "INSERT INTO bench_first_slot (id) VALUES (%s)", [(pk,) for pk, _ in pool]
        )
    script = (ROOT / "pgbench-booking.sql").read_text(encoding="utf-8")
    script_path = Path(tempfile.mkdtemp()) / "booking.sql"
    script_path.write_text(script, encoding="utf-8")
    answer = subprocess.run(
        [
            "pgbench",
            "-n",
            "-c",
            "64",
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script_path),
            "-D",
            f"nslots={len(pool)}",
            "-D",
            f"channel={channel_id}",
            database_url,
        ],
        capture_output=True,
        text=True,
    )
    tps = None
    for line in answer.stdout.splitlines():
        if line.startswith("tps ="):
            tps = float(line.split()[2])
    return {
        "clients": 64,
        "seconds": seconds,
        "tps": tps,
        "failed": answer.returncode != 0,
        "output_tail": answer.stdout.splitlines()[-6:] + answer.stderr.splitlines()[-3:],
    }


def bench_contract(channel, *, name: str, kind: str, **terms):
    """An operator or platform under contract over ``channel``'s perimeter, without quotas
    (the load comes from one client), made once."""
    from datetime import date

    from creneau.channels.models import Contract
    from creneau.channels.services import operator_register

    contract = Contract.objects.filter(operator__name=name).first()
    if contract is None:
        contract = operator_register(
            organisation=channel.organisation,
            name=name,
            kind=kind,
            perimeter=channel.perimeter,
            starts_on=date(2020, 1, 1),
            bookings_per_day=0,
            requests_per_minute=0,
            via="bench",
            **terms,
        )
    return contract


def operator_token(base: str, channel) -> str:
    """A call centre under contract over the public site's perimeter (no quota), its API
    client, and a token from the hub's OAuth2 endpoint: the operator's booking path."""
    import base64
    from urllib.parse import urlencode

    from creneau.channels.services import api_client_create

    contract = bench_contract(channel, name="Bench call centre", kind="call_centre")
    made = api_client_create(contract=contract, name="bench")
    pair = f"{made.client_id}:{made.client_secret}".encode()
    request = urllib.request.Request(
        f"{base}/oauth/token/",
        data=urlencode({"grant_type": "client_credentials"}).encode(),
        headers={
            "Authorization": "Basic " + base64.b64encode(pair).decode(),
            "X-Forwarded-Proto": "https",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.load(answer)["access_token"]


def hub_public_site():
    from creneau.channels.models import Channel

    return Channel.objects.get(kind="public_site", organisation__runs_hub=True)


def statements(visit_types: list) -> dict:
    """How many SQL statements the API's search and booking send, counted in-process through
    the same views (Django's test client on this database), with the served hub's settings."""
    from django.conf import settings
    from django.test import override_settings

    # As the served hub runs in this benchmark: the per-client limits off.
    limits = {name: (0, 0) for name in settings.CRENEAU_RATE_LIMITS}
    with override_settings(CRENEAU_RATE_LIMITS=limits, CRENEAU_HOLDS_PER_VISITOR=0):
        return _statements(visit_types)


def _statements(visit_types: list) -> dict:
    import uuid

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    code = visit_types[0].code
    client.get(f"/api/v1/slots?visit_type={code}&limit=20")  # warm: the scope's first read
    with CaptureQueriesContext(connection) as search:
        answer = client.get(f"/api/v1/slots?visit_type={code}&limit=20")
    slot = answer.json()["items"][0]["id"]
    with CaptureQueriesContext(connection) as booking:
        booked = client.post(
            "/api/v1/appointments",
            json.dumps(
                {
                    "slot": slot,
                    "patient": {
                        "last_name": "Banc",
                        "first_name": "Essai",
                        "birth_date": "1970-01-01",
                        "phone": "0612345678",
                    },
                }
            ),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=uuid.uuid4().hex,
        )
    return {
        "search": len(search.captured_queries),
        "booking": len(booking.captured_queries),
        "booking_status": booked.status_code,
    }


def ratios(results: dict) -> dict:
    """Each answer's throughput over the baseline's, measured in the same run."""
    floor = results.get("http_baseline", {}).get("per_second") or 0

    def over(name: str, base: float) -> float | None:
        value = results.get(name, {}).get("per_second")
        return round(value / base, 3) if value and base else None

    tps = results.get("pgbench_booking", {}).get("tps") or 0
    return {
        "search_vs_baseline": over("http_search", floor),
        "booking_vs_baseline": over("http_booking", floor),
        "operator_booking_vs_baseline": over("http_operator_booking", floor),
        "booking_vs_pgbench": over("http_booking", tps),
        "statements_per_booking": results.get("statements", {}).get("booking"),
        "statements_per_search": results.get("statements", {}).get("search"),
    }


def measure_in_process(results: dict, scale, args, rng: random.Random) -> None:
    """Dataset, generation at two sizes, search latency at both, rule changes."""
    from django.core.management import call_command

    from bench.dataset import dataset_create
    from creneau.channels.queries import channel_scope_for_key
    from creneau.directory.models import VisitType

    call_command("migrate", verbosity=0)
    log(f"dataset {scale.name} on {args.database}")
    started = time.perf_counter()
    channel = dataset_create(scale)
    results["dataset_seconds"] = round(time.perf_counter() - started, 1)
    analyse()
    scope = channel_scope_for_key(channel.key)
    visit_types = list(
        VisitType.objects.filter(organisation=channel.organisation, code__endswith="-first")
    )

    log("generating 2 weeks")
    jobs = (os.cpu_count() or 1) if args.database == "postgresql" else 1
    results["generation_2_weeks"] = generate(2, jobs)
    analyse()
    results["slots_small"] = slot_count()
    log(f"search at {results['slots_small']} slots")
    results["search_small"] = search_latency(scope, visit_types, args.search_rounds, rng)

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM agenda_slot")
    log("generating 26 weeks from empty")
    # The first night of a hub: its nightly roll opens 26 weeks from nothing.
    first_night = datetime.now(UTC)
    results["generation_26_weeks"] = generate(26, jobs, roll=True, now=first_night)
    analyse()
    log("the next night's roll: one more day")
    results["roll_one_day"] = generate(26, jobs, roll=True, now=first_night + timedelta(days=1))
    log("a roll a week later: one more week")
    results["roll_one_week"] = generate(26, jobs, roll=True, now=first_night + timedelta(days=8))
    analyse()
    results["slots"] = slot_count()
    log(f"search at {results['slots']} slots")
    results["search"] = search_latency(scope, visit_types, args.search_rounds, rng)
    results["search_growth_p95"] = round(
        results["search"]["service"]["p95_ms"] / results["search_small"]["service"]["p95_ms"], 2
    )
    log("rule changes")
    results["rule_change"] = rule_change(rng)


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", choices=["national", "regional", "small"], default="national")
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--seconds", type=int, default=20, help="length of each HTTP run")
    parser.add_argument("--search-rounds", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the database and figures of the last run; measure HTTP and pgbench again",
    )
    parser.add_argument("--out", help="where the JSON goes (default bench/results/...)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="creneau-bench-"))
    out = (
        Path(args.out)
        if args.out
        else ROOT / "results" / f"booking-{args.scale}-{args.database}.json"
    )
    if args.reuse:
        if args.database != "postgresql" or not out.exists():
            parser.error("--reuse needs a previous PostgreSQL run and its JSON")
        database_url = f"{PG_ADMIN}/{BENCH_DB}"
    else:
        database_url = prepare_database(args.database, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")} | {
        "CRENEAU_DATA_DIR": str(workdir),
        "CRENEAU_DATABASE_URL": database_url,
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "creneau.settings"
    import django

    django.setup()

    from bench.dataset import SCALES
    from creneau.directory.models import VisitType

    rng = random.Random(11)
    scale = SCALES[args.scale]
    results: dict = {
        "benchmark": "booking",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": args.database,
        "scale": scale.as_dict(),
        "cores": (
            "not pinned: the server's workers, the database and the load generator share all "
            "the machine's cores"
        ),
    }
    if args.reuse:
        previous = json.loads(out.read_text(encoding="utf-8"))
        results = {**previous, **{k: v for k, v in results.items() if k != "started_at"}}
        results["http_rerun_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    else:
        measure_in_process(results, scale, args, rng)
    channel = hub_public_site()
    visit_types = list(
        VisitType.objects.filter(organisation=channel.organisation, code__endswith="-first")
    )
    if not args.skip_http:
        from django.db import connections

        connections.close_all()
        port = 18000 + rng.randint(0, 999)
        base = f"http://127.0.0.1:{port}"
        server = start_server(env, port, args.workers, args.threads)
        results["server"] = {
            "workers": args.workers,
            "threads": args.threads,
            "per_client_rate_limits": "off (one load-generator address)",
        }
        try:
            codes = [v.code for v in visit_types]
            log("HTTP search")
            results["http_search"] = load(
                "search", base, codes, workdir, concurrency=32, seconds=args.seconds
            )
            log("HTTP baseline: one row by its key, 32 clients")
            from creneau.directory.models import Establishment

            rows = [str(pk) for pk in Establishment.objects.values_list("pk", flat=True)[:500]]
            results["http_baseline"] = load(
                "baseline", base, rows, workdir, concurrency=32, seconds=args.seconds
            )
            log("HTTP booking, 64 clients")
            slots = [public_id for _pk, public_id in free_first_slots(150_000)]
            rng.shuffle(slots)
            results["http_booking"] = load(
                "book", base, slots, workdir, concurrency=64, seconds=args.seconds
            )
            log("contention: 1000 clients, 10 slots")
            ten = [public_id for _pk, public_id in free_first_slots(10, offset=160_000)]
            contenders = [ten[n % 10] for n in range(1000)]
            contention = load("contend", base, contenders, workdir, concurrency=1000)
            from creneau.booking.models import Appointment

            contention["appointments_stored"] = Appointment.objects.filter(
                slot__public_id__in=ten
            ).count()
            results["contention"] = contention
            log("HTTP booking by an operator (OAuth2 bearer token), 64 clients")
            token = operator_token(base, channel)
            slots = [public_id for _pk, public_id in free_first_slots(150_000)]
            rng.shuffle(slots)
            results["http_operator_booking"] = load(
                "book",
                base,
                slots,
                workdir,
                headers=[f"Authorization: Bearer {token}"],
                concurrency=64,
                seconds=args.seconds,
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        if args.database == "postgresql":
            log("pgbench")
            results["pgbench_booking"] = pgbench(database_url, channel.pk, rng, args.seconds)
            tps = results["pgbench_booking"].get("tps")
            if tps:
                results["http_booking_share_of_pgbench"] = round(
                    results["http_booking"]["per_second"] / tps, 3
                )

    if not args.skip_http:
        log("statements of one search and one booking, as the HTTP path sends them")
        results["statements"] = statements(visit_types)
        results["ratios"] = ratios(results)
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"written to {out}")
    json.dump({k: v for k, v in results.items() if k != "search"}, sys.stdout, indent=1)
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
