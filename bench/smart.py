"""SMART Scheduling Links for the whole demo network (AP-HP's hospitals, 26 weeks of agendas):
the time to make the manifest and every NDJSON file (Location, Schedule, one Slot file a week),
for the public site (links to its pages) and for a finder under contract (a signed link per
slot), in the service, as a finder's first poll of everything would make them.

    python -m bench.smart [--database postgresql|sqlite]"""

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.booking import ROOT, bench_contract, django_on_own_database, log, machine


def publish(scope) -> dict:
    from django.utils import timezone

    from creneau.booking.services import offer_record
    from creneau.fhir import smart

    now = timezone.now()
    started = time.perf_counter()
    manifest = smart.manifest(scope, request_url="bench", query={}, since=None, now=now)
    manifest_ms = (time.perf_counter() - started) * 1000
    files = []
    for file in smart.files(now):
        started = time.perf_counter()
        body, offered = smart.file_body(scope, file, now)
        smart.version(scope, file, body, now)
        if offered:  # as the view does when it serves the file: its ledger entry
            offer_record(scope=scope, slots=offered, query={}, via="smart")
        files.append(
            {
                "file": file.name,
                "seconds": round(time.perf_counter() - started, 3),
                "lines": body.count(b"\n"),
                "bytes": len(body),
            }
        )
    # A finder's next poll with _since: answered from the stored versions (issue 27, point 13).
    started = time.perf_counter()
    changed = smart.manifest(
        scope, request_url="bench", query={}, since=timezone.now(), now=timezone.now()
    )
    since_ms = (time.perf_counter() - started) * 1000
    return {
        "manifest_ms": round(manifest_ms, 1),
        "manifest_since_ms": round(since_ms, 1),
        "manifest_since_outputs": len(changed["output"]),
        "since_over_manifest": round(since_ms / manifest_ms, 1),
        # The manifest alone makes no query; what `_since` saves is making every file.
        "since_over_all_files": round(since_ms / 1000 / sum(f["seconds"] for f in files), 3),
        "outputs": len(manifest["output"]),
        "files": files,
        "all_files_seconds": round(sum(f["seconds"] for f in files), 2),
        "slots": sum(f["lines"] for f in files if f["file"].startswith("Slot")),
        "bytes": sum(f["bytes"] for f in files),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    django_on_own_database(args.database, "creneau_bench_smart")
    from django.conf import settings
    from django.core.management import call_command

    from creneau.agenda.demo import demo_agenda_load
    from creneau.channels.models import Channel
    from creneau.channels.queries import channel_scope_for_key
    from creneau.channels.services import organisation_public_site_ensure
    from creneau.directory.demo import demo_directory_load
    from creneau.directory.models import Organisation

    call_command("migrate", verbosity=0)
    log("demo network")
    demo_directory_load()
    for organisation in Organisation.objects.all():
        organisation_public_site_ensure(organisation=organisation, via="bench")
    log("26 weeks of agendas")
    report = demo_agenda_load(horizon_weeks=26)
    public = Channel.objects.get(kind="public_site", organisation__runs_hub=True)
    finder = bench_contract(public, name="Finder (bench)", kind="smart_finder")
    results: dict = {
        "benchmark": "smart",
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "database": args.database,
        "dataset": {
            "network": "demo (AP-HP hospitals, 800 practitioners)",
            "slots_26_weeks": report.created,
            "weeks_published": settings.CRENEAU_SMART_WEEKS,
        },
    }
    log("public site")
    results["public_site"] = publish(channel_scope_for_key(public.key))
    log("finder under contract (signed links)")
    results["finder"] = publish(channel_scope_for_key(finder.channel.key))
    results["ratios"] = {
        "finder_over_public_seconds": round(
            results["finder"]["all_files_seconds"] / results["public_site"]["all_files_seconds"],
            2,
        )
    }
    results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    out = Path(args.out) if args.out else ROOT / "results" / f"smart-{args.database}.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
