"""The ledger benchmark: one command, JSON out.

    python -m bench.ledger              # verify 1,000,000 entries; append cost on PostgreSQL
    python -m bench.ledger --entries 100000 --database sqlite

1. Verification: a synthetic log of ``--entries`` entries (a perimeter version, a channel, then
   offers of four slots and bookings inside it), hashed into a tree and signed like the hub's,
   written as an export; then ``creneau.ledger.verify`` reads it back as an auditor would
   (signatures, every entry against the signed root, the neutrality replay). DESIGN.md: under
   30 s for a million entries.
2. Appending: the booking service's own time, with and without its ledger entry, in the same
   process on a database of its own (``creneau_bench_ledger`` on PostgreSQL, or a SQLite file),
   in alternating rounds. DESIGN.md: appending adds under 10% to a booking's time.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from bench.booking import prepare_database

ROOT = Path(__file__).resolve().parent
BENCH_DB = "creneau_bench_ledger"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def synthetic_export(path: Path, entries: int) -> dict:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from creneau.ledger.merkle import leaf_hash
    from creneau.ledger.note import Checkpoint, Signer
    from creneau.ledger.verify import Compact

    def canonical(value: dict) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    signer = Signer("bench.creneau/ledger", Ed25519PrivateKey.generate())
    hospitals = [f"75{n:07d}" for n in range(39)]
    data = [
        canonical(
            {
                "kind": "perimeter",
                "perimeter": "p1",
                "version": "v1",
                "number": 1,
                "establishments": hospitals,
                "departments": [],
                "roles": [],
                "at": "2026-11-29T00:00:00+00:00",
            }
        ),
        canonical(
            {
                "kind": "channel",
                "channel": "c1",
                "name": "Site",
                "perimeter": "p1",
                "action": "created",
            }
        ),
    ]
    for n in range(entries - len(data)):
        place = {
            "finess": hospitals[n % 39],
            "department": "",
            "rpps": f"{10000000000 + n % 12000}",
        }
        if n % 5:
            entry = {
                "kind": "offer",
                "channel": "c1",
                "perimeter_version": "v1",
                "query": {"specialty": "neurosurgery"},
                "slots": [{"slot": f"s{n}-{k}", **place} for k in range(4)],
            }
        else:
            entry = {
                "kind": "booking",
                "channel": "c1",
                "perimeter_version": "v1",
                "appointment": f"a{n}",
                "slot": f"s{n}",
                **place,
            }
        data.append(canonical({**entry, "at": "2026-11-29T10:00:00+00:00"}))
    tree = Compact()
    for entry in data:
        tree.append(leaf_hash(entry.encode()))
    note = signer.sign(Checkpoint(signer.name, len(data), tree.root()).text())
    path.write_text(json.dumps({"checkpoints": [note], "entries": data}), encoding="utf-8")
    return {"vkey": signer.verifier.vkey(), "bytes": path.stat().st_size}


def measure_verify(entries: int) -> dict:
    from creneau.ledger.note import parse_vkey
    from creneau.ledger.verify import ExportSource, verify

    path = Path(tempfile.mkdtemp(prefix="creneau-ledger-")) / "export.json"
    log(f"building a log of {entries} entries")
    made = synthetic_export(path, entries)
    log("verifying it")
    started = time.perf_counter()
    report, _state = verify(ExportSource(path), parse_vkey(made["vkey"]))
    seconds = time.perf_counter() - started
    assert not report.failures, report.failures[:3]
    channel = report.channels["c1"]
    return {
        "entries": entries,
        "export_bytes": made["bytes"],
        "seconds": round(seconds, 2),
        "entries_per_second": round(entries / seconds),
        "offers": channel.offers,
        "slots_checked": channel.slots_offered,
        "bookings": channel.bookings,
        "failures": len(report.failures),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "target_seconds": 30,
    }


def measure_append(kind: str, rounds: int, per_round: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="creneau-ledger-db-"))
    os.environ.update(
        {
            "CRENEAU_DATABASE_URL": prepare_database(kind, workdir, BENCH_DB),
            "CRENEAU_DATA_DIR": str(workdir),
            "CRENEAU_HORIZON_WEEKS": "4",
            "DJANGO_SETTINGS_MODULE": "creneau.settings",
        }
    )
    import django

    django.setup()
    from unittest.mock import patch

    from django.core.management import call_command

    from creneau.agenda.demo import demo_agenda_load
    from creneau.agenda.models import Slot
    from creneau.booking import queries
    from creneau.booking.patients import patient_details_clean
    from creneau.booking.services import BookingError, appointment_book
    from creneau.channels.models import Channel
    from creneau.channels.queries import channel_scope_for_key
    from creneau.channels.services import organisation_public_site_ensure
    from creneau.directory.demo import demo_directory_load

    log(f"database ({kind}): migrate and load the demo network")
    call_command("migrate", verbosity=0)
    network = demo_directory_load()
    organisation_public_site_ensure(organisation=network.organisation, via="bench")
    demo_agenda_load()
    scope = channel_scope_for_key(
        Channel.objects.get(kind="public_site", organisation=network.organisation).key
    )
    patient = patient_details_clean(
        last_name="Banc",
        first_name="Charge",
        birth_date=date(1970, 1, 1),
        phone="0612345678",
    )
    free = iter(
        Slot.objects.filter(
            establishment__organisation=network.organisation,
            bookable_from__lte=datetime.now(UTC),
            booked=0,
            overlaps=0,
        )
        .order_by("practitioner_id", "starts_at")
        .values_list("public_id", flat=True)[: rounds * per_round * 4]
    )

    def one_round() -> float:
        started = time.perf_counter()
        done = 0
        while done < per_round:
            slot = queries.slot_by_id(next(free))
            try:
                appointment_book(scope=scope, slot=slot, patient=patient)
            except BookingError:
                continue  # a slot over one already booked: take the next
            done += 1
        return (time.perf_counter() - started) / per_round * 1000

    log(f"{rounds} rounds of {per_round} bookings with and without the ledger entry")
    one_round()  # warm-up
    with_ledger, without = [], []
    for _ in range(rounds):
        with_ledger.append(one_round())
        with patch("creneau.booking.services._ledger", return_value=""):
            without.append(one_round())
    median_with, median_without = statistics.median(with_ledger), statistics.median(without)
    return {
        "database": kind,
        "bookings_per_mode": rounds * per_round,
        "booking_ms_with_ledger": round(median_with, 3),
        "booking_ms_without_ledger": round(median_without, 3),
        "overhead_percent": round(100 * (median_with - median_without) / median_without, 1),
        "rounds_ms": {
            "with": [round(v, 2) for v in with_ledger],
            "without": [round(v, 2) for v in without],
        },
        "target_percent": 10,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--per-round", type=int, default=50)
    parser.add_argument("--out", help="where the JSON goes (default bench/results/...)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT.parent / "src"))
    result = {
        "benchmark": "ledger",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "verify": measure_verify(args.entries),
        "append": measure_append(args.database, args.rounds, args.per_round),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out or ROOT / "results" / f"ledger-{args.database}.json")
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
