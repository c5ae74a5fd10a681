"""The cost of a federated booking beside a built-in one: two `creneau demo` hubs on loopback.
Hub A federates a number of hub B's practitioners (`creneau agenda connect ROLE --fhir`); the
benchmark books, one request at a time as a patient's browser does, slots of those practitioners
on A (hold and book at A, then $hold and $book at B through its FHIR/IHE server, then the
booking at A) and as many slots of A's own practitioners, and reports the latency of each.

    python -m bench.federated [--practitioners 12] [--bookings 120] [--database sqlite|postgresql]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench.booking import ROOT, log, machine, percentiles

PG = "postgres://postgres@127.0.0.1:5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_hub(name: str, workdir: Path, database: str) -> tuple[str, subprocess.Popen, dict]:
    data_dir = workdir / name
    data_dir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    env.update(
        CRENEAU_DATA_DIR=str(data_dir),
        CRENEAU_HORIZON_WEEKS="4",
        CRENEAU_RATE_BOOKINGS="0",
        CRENEAU_RATE_BOOKINGS_PER_PHONE="0",
        CRENEAU_RATE_HOLDS="0",
        CRENEAU_OUTGOING_ALLOWED_NETWORKS="127.0.0.0/8",
    )
    if database == "postgresql":
        db = f"creneau_bench_{name}_{uuid.uuid4().hex[:6]}"
        subprocess.run(["psql", f"{PG}/postgres", "-qc", f'CREATE DATABASE "{db}"'], check=True)
        env["CRENEAU_DATABASE_URL"] = f"{PG}/{db}"
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "creneau",
            "demo",
            "--port",
            str(port),
            "--example-port",
            str(free_port()),
            "--data-dir",
            str(data_dir),
        ],
        stdout=(data_dir / "server.log").open("w"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/v1/specialties", timeout=2)
            return base, process, env
        except OSError:
            if process.poll() is not None:
                raise SystemExit((data_dir / "server.log").read_text()) from None
            time.sleep(0.5)
    raise SystemExit(f"hub {name} did not start")


def creneau(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "creneau", *args], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return done.stdout


ROLES = """
from creneau.directory.models import PractitionerRole as R
import json
roles = R.objects.filter(slots__booked=0).distinct().order_by("practitioner__rpps")
print(json.dumps([[r.public_id, r.practitioner.rpps, r.establishment.finess] for r in roles]))
"""


def roles(env: dict) -> list[list[str]]:
    return json.loads(creneau(env, "shell", "-c", ROLES).strip().splitlines()[-1])


def request(method: str, url: str, body: dict | None = None) -> tuple[int, dict]:
    sent = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(sent, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


SLOTS = """
from creneau.agenda.models import Slot
from django.utils import timezone
import json, datetime
ids = %r
found = Slot.objects.filter(practitioner_role__public_id__in=ids, booked=0, is_offered=True,
    starts_at__gt=timezone.now() + datetime.timedelta(days=2)).order_by("starts_at")
print(json.dumps([s.public_id for s in found]))
"""


def slots_of(env: dict, role_ids: list[str]) -> list[str]:
    return json.loads(creneau(env, "shell", "-c", SLOTS % role_ids).strip().splitlines()[-1])


def book_all(base: str, slots: list[str], count: int) -> dict:
    """Hold then book, as the patient pages do, one at a time; each booking's total time."""
    times, outcomes = [], {}
    for number, slot in enumerate(slots[:count]):
        started = time.perf_counter()
        status, held = request("POST", base + "/api/v1/holds", {"slot": slot})
        if status == 201:
            patient = {
                "last_name": "Banc",
                "first_name": "Essai",
                "birth_date": "1980-01-01",
                "phone": f"+336{number:08d}",
            }
            status, _body = request(
                "POST", base + "/api/v1/appointments", {"hold": held["id"], "patient": patient}
            )
        times.append(time.perf_counter() - started)
        outcomes[status] = outcomes.get(status, 0) + 1
    return {"bookings": len(times), "outcomes": outcomes, **percentiles(times)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--practitioners", type=int, default=12)
    parser.add_argument("--bookings", type=int, default=120)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="creneau-federated-"))
    log("starting hubs A and B (creneau demo, 4 weeks of slots)")
    (a_base, a_process, a_env), (b_base, b_process, b_env) = (
        start_hub("a", workdir, args.database),
        start_hub("b", workdir, args.database),
    )
    try:
        credentials = json.loads(
            (Path(b_env["CRENEAU_DATA_DIR"]) / "demo-credentials.json").read_text()
        )
        partner = next(p for p in credentials["platforms"] if p["kind"] == "fhir_partner")
        secret = workdir / "secret"
        secret.write_text(partner["client_secret"])
        in_b = {(rpps, finess): public_id for public_id, rpps, finess in roles(b_env)}
        in_a = roles(a_env)
        chosen = [r for r in in_a if (r[1], r[2]) in in_b][: args.practitioners]
        own = [r for r in in_a if r not in chosen][: args.practitioners]
        log(f"federating {len(chosen)} practitioners of B into A")
        started = time.perf_counter()
        for public_id, rpps, finess in chosen:
            creneau(
                a_env,
                "agenda",
                "connect",
                public_id,
                "--fhir",
                b_base + "/fhir",
                "--client-id",
                partner["client_id"],
                "--client-secret-file",
                str(secret),
                "--schedule",
                in_b[(rpps, finess)],
            )
        connect_seconds = time.perf_counter() - started
        started = time.perf_counter()
        creneau(a_env, "agenda", "sync", "--all")
        sync_seconds = time.perf_counter() - started
        federated_slots = slots_of(a_env, [r[0] for r in chosen])
        builtin_slots = slots_of(a_env, [r[0] for r in own])
        offered = len(federated_slots)
        count = min(args.bookings, len(federated_slots), len(builtin_slots))
        # Interleaved practitioners: consecutive bookings do not hit one practitioner's time.
        federated_slots = federated_slots[:: max(1, len(federated_slots) // count)]
        builtin_slots = builtin_slots[:: max(1, len(builtin_slots) // count)]
        # A 409 is a slot whose time an earlier booking of the run took (two visit types over
        # the same time): counted in "outcomes", timed like the others.
        log(f"booking {count} built-in slots, then {count} federated ones")
        builtin = book_all(a_base, builtin_slots, count)
        federated = book_all(a_base, federated_slots, count)
        result = {
            "benchmark": "federated",
            "database": args.database,
            "dataset": {
                "hubs": 2,
                "federated_practitioners": len(chosen),
                "federated_slots_offered": offered,
                "weeks": 4,
            },
            "machine": machine(),
            "connect_seconds": round(connect_seconds, 2),
            "sync_all_seconds": round(sync_seconds, 2),
            "builtin_booking": builtin,
            "federated_booking": federated,
            "ratios": {
                "federated_over_builtin_p50": round(federated["p50_ms"] / builtin["p50_ms"], 2),
                "federated_over_builtin_p95": round(federated["p95_ms"] / builtin["p95_ms"], 2),
            },
        }
    finally:
        for process in (a_process, b_process):
            process.terminate()
            process.wait(timeout=30)
    out = ROOT / "results" / f"federated-{args.database}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
