"""Syncing 1,000 practitioners' calendars (iCalendar feeds), each with 26 weeks of events, from
a loopback server: the worker's pass over all of them (fetch, parse, expand the recurrences,
store the busy time, regenerate the role's slots), then a second pass where every server answers
304. Time and the process's peak memory.

    python -m bench.sources [--sources 1000] [--database postgresql|sqlite]"""

import argparse
import json
import os
import random
import resource
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.booking import ROOT, django_on_own_database, generate, log, machine


def calendar(number: int, start: datetime) -> bytes:
    """A practitioner's 26 weeks: a weekly staff meeting with two exceptions and a moved
    occurrence, a monthly all-day congress, twenty one-off meetings, a transparent reminder."""
    rng = random.Random(number)
    day = start.date()
    stamp = start.strftime("%Y%m%dT%H%M%SZ")
    weekday = ["MO", "TU", "WE", "TH", "FR"][number % 5]
    first = day + timedelta(days=(number % 5 - day.weekday()) % 7)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//bench//agenda//FR",
        "BEGIN:VEVENT",
        f"UID:weekly-{number}@bench",
        f"DTSTAMP:{stamp}",
        f"DTSTART;TZID=Europe/Paris:{first:%Y%m%d}T093000",
        f"DTEND;TZID=Europe/Paris:{first:%Y%m%d}T103000",
        f"RRULE:FREQ=WEEKLY;BYDAY={weekday};COUNT=26",
        f"EXDATE;TZID=Europe/Paris:{first + timedelta(weeks=3):%Y%m%d}T093000",
        f"EXDATE;TZID=Europe/Paris:{first + timedelta(weeks=9):%Y%m%d}T093000",
        "END:VEVENT",
        "BEGIN:VEVENT",
        f"UID:weekly-{number}@bench",
        f"DTSTAMP:{stamp}",
        f"RECURRENCE-ID;TZID=Europe/Paris:{first + timedelta(weeks=5):%Y%m%d}T093000",
        f"DTSTART;TZID=Europe/Paris:{first + timedelta(weeks=5):%Y%m%d}T140000",
        f"DTEND;TZID=Europe/Paris:{first + timedelta(weeks=5):%Y%m%d}T150000",
        "END:VEVENT",
    ]
    for month in range(6):
        congress = day + timedelta(days=30 * month + rng.randint(0, 25))
        lines += [
            "BEGIN:VEVENT",
            f"UID:congress-{number}-{month}@bench",
            f"DTSTAMP:{stamp}",
            f"DTSTART;VALUE=DATE:{congress:%Y%m%d}",
            f"DTEND;VALUE=DATE:{congress + timedelta(days=1):%Y%m%d}",
            "END:VEVENT",
        ]
    for meeting in range(20):
        when = day + timedelta(days=rng.randint(0, 180))
        hour = rng.choice([9, 10, 11, 14, 15, 16])
        lines += [
            "BEGIN:VEVENT",
            f"UID:meeting-{number}-{meeting}@bench",
            f"DTSTAMP:{stamp}",
            f"DTSTART;TZID=Europe/Paris:{when:%Y%m%d}T{hour:02d}0000",
            f"DTEND;TZID=Europe/Paris:{when:%Y%m%d}T{hour:02d}4500",
            "END:VEVENT",
        ]
    lines += [
        "BEGIN:VEVENT",
        f"UID:reminder-{number}@bench",
        f"DTSTAMP:{stamp}",
        f"DTSTART;TZID=Europe/Paris:{first:%Y%m%d}T120000",
        f"DTEND;TZID=Europe/Paris:{first:%Y%m%d}T130000",
        "TRANSP:TRANSPARENT",
        "RRULE:FREQ=DAILY;COUNT=180",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def serve(documents: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = documents.get(self.path)
            if body is None:
                self.send_error(404)
                return
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    django_on_own_database(
        args.database, "creneau_bench_sources", CRENEAU_OUTGOING_ALLOWED_NETWORKS="127.0.0.0/8"
    )
    from django.core.management import call_command

    from bench.dataset import SCALES, dataset_create
    from creneau.agenda.models import BusyInterval
    from creneau.agenda.sources.services import agenda_source_connect, agenda_sources_due
    from creneau.directory.models import PractitionerRole

    call_command("migrate", verbosity=0)
    log("dataset small, 26 weeks of slots")
    dataset_create(SCALES["small"])
    generation = generate(26, (os.cpu_count() or 1) if args.database == "postgresql" else 1)
    now = datetime.now(UTC)
    roles = list(PractitionerRole.objects.order_by("pk")[: args.sources])
    documents = {f"/{n}.ics": calendar(n, now) for n in range(len(roles))}
    server = serve(documents)
    base = f"http://127.0.0.1:{server.server_port}"
    for number, role in enumerate(roles):
        agenda_source_connect(role=role, kind="calendar", url=f"{base}/{number}.ics")
    log(f"syncing {len(roles)} calendars")
    started = time.perf_counter()
    synced = 0
    while True:
        done = agenda_sources_due(limit=100)
        synced += done
        if not done:
            break
    first = time.perf_counter() - started
    log("again: every server answers 304")
    from creneau.agenda.models import AgendaSource

    AgendaSource.objects.update(next_sync_at=datetime.now(UTC))
    started = time.perf_counter()
    while agenda_sources_due(limit=100):
        pass
    second = time.perf_counter() - started
    server.shutdown()
    results = {
        "benchmark": "sources",
        "started_at": now.isoformat(timespec="seconds"),
        "machine": machine(),
        "database": args.database,
        "dataset": {
            "roles_with_a_calendar": len(roles),
            "slots_26_weeks": generation["created"],
            "events_per_calendar": "1 weekly (26, 2 exceptions, 1 moved), 6 all-day, 20 one-off, "
            "1 transparent daily (180)",
            "bytes_per_calendar": round(sum(map(len, documents.values())) / len(documents)),
        },
        "first_sync": {
            "sources": synced,
            "seconds": round(first, 1),
            "ms_per_source": round(1000 * first / max(1, synced), 1),
            "busy_intervals_stored": BusyInterval.objects.count(),
        },
        "second_sync_all_304": {
            "seconds": round(second, 1),
            "ms_per_source": round(1000 * second / max(1, synced), 1),
        },
        "peak_memory_mib": peak_mib(),
        "ratios": {"second_over_first": round(second / first, 3) if first else None},
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = Path(args.out) if args.out else ROOT / "results" / f"sources-{args.database}.json"
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
