"""The SAS slot query (INT_R01) on the national benchmark dataset: the exact query of
STANDARDS.md §1 for 25 practitioners over 14 days, sent the way the platform sends it (its
client certificate's subject in the TLS proxy's header) to `creneau serve`, one request at a
time as the platform's 3,000 calls an hour arrive, then 8 at once. Target (DESIGN.md): p95
under 200 ms; the platform gives up at 7 s.

    python -m bench.sas [--scale national] [--rounds 300] [--reuse]

--reuse keeps the benchmark's PostgreSQL database of a previous run (of this benchmark or of
bench.booking) instead of building the dataset again (about 8 minutes at national scale)."""

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.booking import (
    BENCH_DB,
    PG_ADMIN,
    ROOT,
    analyse,
    bench_contract,
    generate,
    log,
    machine,
    percentiles,
    prepare_database,
    slot_count,
    start_server,
)

SUBJECT = "CN=sas.bench,O=Agence du Numerique en Sante,C=FR"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"


def sas_platform(channel):
    """The SAS under contract over the public site's perimeter, recognised by its certificate;
    the follow-ups of five specialties reserved to regulators (SNP), as a hospital would."""
    from creneau.channels.models import Platform, PlatformVisibility
    from creneau.directory.models import VisitType

    fresh = not Platform.objects.filter(certificate_subject=SUBJECT).exists()
    contract = bench_contract(
        channel, name="SAS (banc d'essai)", kind="sas", certificate_subject=SUBJECT
    )
    if fresh:
        platform = Platform.objects.get(contract=contract)
        for visit in VisitType.objects.filter(
            organisation=channel.organisation, code__endswith="-follow-up"
        )[:5]:
            PlatformVisibility.objects.create(platform=platform, visit_type=visit, audience="SNP")
    return contract


def practitioners_with_slots(channel) -> list[str]:
    from creneau.directory.models import Practitioner

    return list(
        Practitioner.objects.filter(
            roles__establishment__organisation=channel.organisation, roles__is_active=True
        )
        .distinct()
        .values_list("rpps", flat=True)
    )


def query(rpps: list[str], now: datetime) -> str:
    start, end = now, now + timedelta(days=14)
    pairs = [
        ("_include", "Slot:schedule"),
        ("_include:iterate", "Schedule:actor"),
        ("start", f"ge{start.isoformat(timespec='seconds')}"),
        ("start", f"le{end.isoformat(timespec='seconds')}"),
        ("schedule.actor:Practitioner.identifier", ",".join(f"{IDNPS}|8{r}" for r in rpps)),
        ("status", "free"),
    ]
    return "/fhir/Slot?" + urllib.parse.urlencode(pairs, safe=":|,")


def ask(base: str, path: str) -> tuple[float, int, int, int]:
    request = urllib.request.Request(
        base + path,
        headers={
            "Accept": "application/fhir+json",
            "X-SSL-Client-S-DN": SUBJECT,
            "X-Forwarded-Proto": "https",
        },
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = answer.read()
        status = answer.status
    seconds = time.perf_counter() - started
    bundle = json.loads(body)
    slots = sum(1 for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "Slot")
    return seconds, status, slots, len(body)


def run(base: str, paths: list[str], concurrency: int) -> dict:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda p: ask(base, p), paths))
    wall = time.perf_counter() - started
    result = percentiles([a[0] for a in answers])
    result.update(
        {
            "concurrency": concurrency,
            "requests": len(answers),
            "per_second": round(len(answers) / wall, 1),
            "statuses": sorted({a[1] for a in answers}),
            "slots_per_answer_mean": round(statistics.mean(a[2] for a in answers), 1),
            "slots_per_answer_max": max(a[2] for a in answers),
            "bytes_per_answer_mean": round(statistics.mean(a[3] for a in answers)),
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--scale", choices=["national", "regional", "small"], default="national")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--reuse", action="store_true")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="creneau-bench-sas-"))
    database_url = (
        f"{PG_ADMIN}/{BENCH_DB}" if args.reuse else prepare_database("postgresql", workdir)
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")} | {
        "CRENEAU_DATA_DIR": str(workdir),
        "CRENEAU_DATABASE_URL": database_url,
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "creneau.settings"
    import django

    django.setup()
    from django.core.management import call_command

    from bench.booking import hub_public_site
    from bench.dataset import SCALES, dataset_create

    scale = SCALES[args.scale]
    results: dict = {
        "benchmark": "sas",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": "postgresql",
        "scale": scale.as_dict(),
        "query": "STANDARDS.md §1 INT_R01, 25 practitioners, 14 days, certificate header",
    }
    call_command("migrate", verbosity=0)
    if not args.reuse:
        log(f"dataset {scale.name}")
        dataset_create(scale)
        log(f"generating {args.weeks} weeks")
        results["generation"] = generate(args.weeks, os.cpu_count() or 1)
        analyse()
    channel = hub_public_site()
    sas_platform(channel)
    results["slots"] = slot_count()
    everyone = practitioners_with_slots(channel)
    results["practitioners_in_perimeter"] = len(everyone)
    rng = random.Random(7)
    now = datetime.now(UTC)
    paths = [query(rng.sample(everyone, 25), now) for _ in range(args.rounds)]

    from django.db import connections

    connections.close_all()
    port = 19000 + rng.randint(0, 999)
    base = f"http://127.0.0.1:{port}"
    server = start_server(env, port, args.workers, 2)
    try:
        ask(base, paths[0])  # warm the workers
        log("one request at a time")
        results["sequential"] = run(base, paths, 1)
        log("8 at once")
        results["concurrent_8"] = run(base, paths, 8)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results["server"] = {"workers": args.workers, "threads": 2}
    results["ratios"] = {
        "sequential_p95_over_200ms_target": round(results["sequential"]["p95_ms"] / 200, 3),
        "sequential_p95_over_7s_limit": round(results["sequential"]["p95_ms"] / 7000, 4),
    }
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(args.out) if args.out else ROOT / "results" / f"sas-{args.scale}-postgresql.json"
    out.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
