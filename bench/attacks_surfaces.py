"""The attacks of issue 27 on the surfaces added last (points 1, 3, 4, 6, 9, 12 and 14),
replayed by ``python -m bench.attacks`` against the same ``creneau serve`` as issue 14's, and
printed with the others. Each comes from loopback addresses of its own. The agenda feeds are
served by this process on loopback; the sync runs as the worker runs it (``creneau agenda
sync``, on the served hub's database); the MLLP listener is ``creneau mllp``."""

import http.client
import json
import socket
import subprocess
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.attacks import CREATE, Client, outcome, patient, tally, token


def _form(client: Client, path: str, fields: dict):
    return client.request(
        "POST",
        path,
        urllib.parse.urlencode(fields),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )


def _raw(client: Client, method: str, path: str, fields: dict | None = None):
    """One request from the client's address as it goes on the wire: the status, where a
    redirect leads (as a path), and the body's bytes (an NDJSON file, an HTML page)."""
    connection = http.client.HTTPConnection(
        client.host, client.port, timeout=60, source_address=(client.source, 0)
    )
    headers = dict(client.headers)
    body = None
    if fields is not None:
        body = urllib.parse.urlencode(fields)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    try:
        connection.request(method, path, body, headers)
        answer = connection.getresponse()
        data = answer.read()
        return answer.status, urllib.parse.urlsplit(answer.getheader("Location") or "").path, data
    finally:
        connection.close()


def _location(client: Client, path: str, fields: dict) -> tuple[int, str]:
    """POST a form; the status and where it leads."""
    status, location, _body = _raw(client, "POST", path, fields)
    return status, location


def _raw_get(client: Client, path: str) -> tuple[int, bytes]:
    status, _location, body = _raw(client, "GET", path)
    return status, body


def finder_links(base: str, credentials: dict, count: int) -> list[str]:
    """Signed booking links of the demo's SMART finder, from its own Slot files."""
    finder = next(p for p in credentials["platforms"] if p["kind"] == "smart_finder")
    client = Client(base, "127.0.0.30")
    client.headers["Authorization"] = "Bearer " + token(client, finder)
    status, manifest = client.get("/fhir/$bulk-publish")
    assert status == 200, manifest
    links: list[str] = []
    seen: set[str] = set()
    # From next week (none too soon to book); one slot per practitioner's schedule, so that no
    # two of them overlap (a practitioner's visits may share the same hours).
    weeks = [i for i in manifest["output"] if i["type"] == "Slot"][1:]
    for item in weeks:
        if len(links) >= count:
            break
        path = urllib.parse.urlsplit(item["url"])
        _status, data = _raw_get(client, path.path + (f"?{path.query}" if path.query else ""))
        for line in data.decode().splitlines():
            slot = json.loads(line)
            schedule = slot["schedule"]["reference"]
            if schedule in seen or len(links) >= count:
                continue
            seen.add(schedule)
            link = next(
                e["valueUrl"] for e in slot.get("extension", []) if e["url"].endswith("deep-link")
            )
            links.append(urllib.parse.urlsplit(link).path)
    return links


def attack_link_hold(base: str, links: list[str]) -> dict:
    """Point 1: a link's hold page asked to book another slot, twice, and after its release."""
    client = Client(base, "127.0.0.31")
    linked, other, released = links[0], links[1], links[2]
    _status, page = _location(client, linked, {"source": "attacker"})
    other_slot = other.rstrip("/").split("/")[-1].split(".")[0]
    details = patient(31)
    report = {
        "hold page, another slot": outcome(*_form(client, page, {**details, "slot": other_slot})),
        "hold page, its own slot": str(_location(client, page, details)[0]),
        "hold page again, once booked": outcome(*_form(client, page, patient(32))),
    }
    _status, second = _location(client, released, {})
    _form(client, second + "release/", {})
    report["hold page after its release"] = outcome(*_form(client, second, patient(33)))
    return report


def attack_link_visitors(base: str, credentials: dict, links: list[str]) -> dict:
    """Point 4: seven addresses hold three of the finder's links each; then the finder's own
    software, and the next patient by a link."""
    held = []
    for n in range(7):
        visitor = Client(base, f"127.0.0.{40 + n}")
        held += [_location(visitor, link, {}) for link in links[3 * n : 3 * n + 3]]
    finder = next(p for p in credentials["platforms"] if p["kind"] == "smart_finder")
    software = Client(base, "127.0.0.30")
    software.headers["Authorization"] = "Bearer " + token(software, finder)
    slot = links[22].rstrip("/").split("/")[-1].split(".")[0]
    own = software.post("/api/v1/holds", {"slot": slot})
    return {
        "visitors' holds by its links": dict(Counter(str(s) for s, _ in held)),
        "the finder's own API hold": outcome(*own),
        "the next patient by a link": str(_location(Client(base, "127.0.0.48"), links[23], {})[0]),
    }


def attack_smart_downloads(base: str, ledger_entries) -> dict:
    """Point 9: one week's Slot file downloaded ten times without a token; then 310 downloads
    of the smallest file from one address."""
    client = Client(base, "127.0.0.50")
    _status, manifest = client.get("/fhir/$bulk-publish")
    weeks = [
        urllib.parse.urlsplit(i["url"]).path for i in manifest["output"] if i["type"] == "Slot"
    ]
    before = ledger_entries()
    path = next(week for week in weeks[1:] if _raw_get(client, week)[1])  # a week with slots
    sizes = [len(_raw_get(client, path)[1]) for _ in range(9)]
    grown = ledger_entries() - before
    flood = Client(base, "127.0.0.51")
    answers = [flood.get("/fhir/$bulk-publish/Location.ndjson") for _ in range(310)]
    return {
        "ten downloads of a week's file": f"{sizes[0]:,} bytes each, {grown} ledger entries added",
        "310 downloads from one address (limit 300 per 10 min)": tally(
            [(s, d if isinstance(d, dict) and "code" in d else {}) for s, d in answers]
        ),
    }


@contextmanager
def feed_server(address: str, answer) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            answer(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((address, 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{address}:{server.server_address[1]}/calendar.ics"
    finally:
        server.shutdown()
        server.server_close()


def _sync(role: str, url: str, env: dict) -> str:
    subprocess.run(
        [*CREATE, "agenda", "connect", role, "--ics-url", url], env=env, capture_output=True
    )
    started = time.monotonic()
    done = subprocess.run(
        [*CREATE, "agenda", "sync", role], env=env, capture_output=True, text=True, timeout=600
    )
    said = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    why = next((line for line in said if "CommandError" not in line), str(done.returncode))
    return f"{time.monotonic() - started:.1f} s: {why.split(': FAILED: ')[-1].strip()[:140]}"


SECONDLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//x//x\r\nBEGIN:VEVENT\r\nUID:s\r\n"
    "DTSTAMP:20260101T000000Z\r\nDTSTART:20260101T080000Z\r\nDURATION:PT1S\r\n"
    "RRULE:FREQ=SECONDLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def attack_agenda_feeds(roles: list[str], env: dict) -> dict:
    """Points 6 and 12: a one-line FREQ=SECONDLY event, 200 FREQ=MINUTELY ones, and a feed
    sent a byte a second (the fetch's deadline 5 s)."""

    def calendar(body: str):
        def answer(handler):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/calendar")
            handler.end_headers()
            handler.wfile.write(body.encode())

        return answer

    minutely = SECONDLY.replace("RRULE:FREQ=SECONDLY", "RRULE:FREQ=MINUTELY")
    events = minutely.split("BEGIN:VEVENT")[1].split("END:VCALENDAR")[0]
    many = minutely.replace("BEGIN:VEVENT" + events, ("BEGIN:VEVENT" + events) * 200)

    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "text/calendar")
        handler.send_header("Content-Length", "60")
        handler.end_headers()
        for _ in range(60):
            try:
                handler.wfile.write(b"x")
                handler.wfile.flush()
            except OSError:
                return
            time.sleep(1)

    report = {}
    for (label, answer), role in zip(
        [
            (f"one line, FREQ=SECONDLY ({len(SECONDLY)} bytes)", calendar(SECONDLY)),
            ("200 events, FREQ=MINUTELY", calendar(many)),
            ("a byte a second, deadline 5 s (point 12)", trickle),
        ],
        roles,
        strict=True,
    ):
        with feed_server("127.0.0.60", answer) as url:
            report[label] = _sync(role, url, {**env, "CRENEAU_AGENDA_TIMEOUT_SECONDS": "5"})
    return report


def _siu(
    rpps: str, finess: str, *, tq1_end: str = "", sch_length: str = "", ais_length: str = "60"
) -> str:
    return "\r".join(
        [
            "MSH|^~\\&|DXCARE|HIS|CRENEAU|APHP|20270315080000+0100||SIU^S12^SIU_S12|MSG1|P|2.5",
            f"SCH||RDV-9^DXCARE|||||CONSULT^Consultation||{sch_length}|min|",
            f"TQ1|1||||||202703161000|{tq1_end}",
            "PID|1||IPP-1^^^HIS^PI||ATTAQUE^MLLP||19700101|M",
            f"AIS|1|A|CONSULT^Consultation|202703161000|||{ais_length}|min",
            f"AIL|1|A|NCH^^^{finess}",
            f"AIP|1|A|{rpps}^ATTAQUE^MLLP",
        ]
    )


def attack_mllp(role: dict, env: dict, data_dir: Path) -> dict:
    """Point 14: poison SIU messages, then 30 half-open connections (cap 20) and one message
    sent a byte at a time (a message's 3 s)."""
    from creneau.agenda.sources import mllp  # framing only: no settings needed

    subprocess.run(
        [*CREATE, "agenda", "connect", role["id"], "--his"], env=env, capture_output=True
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    listener_env = {**env, "CRENEAU_MLLP_MESSAGE_SECONDS": "3", "CRENEAU_MLLP_IDLE_SECONDS": "20"}
    log = (data_dir / "mllp.log").open("w")
    process = subprocess.Popen(
        [*CREATE, "mllp", "--bind", f"127.0.0.1:{port}"], env=listener_env, stdout=log, stderr=log
    )
    report: dict = {}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        poison = {
            "TQ1-8 99991231235959-1400": _siu(
                role["rpps"], role["finess"], tq1_end="99991231235959-1400"
            ),
            "SCH-9 1e308": _siu(role["rpps"], role["finess"], sch_length="1e308", ais_length=""),
            "SCH-9 inf": _siu(role["rpps"], role["finess"], sch_length="inf", ais_length=""),
            "SCH-9 nan": _siu(role["rpps"], role["finess"], sch_length="nan", ais_length=""),
        }
        for label, message in poison.items():
            try:
                ack = mllp.send(f"127.0.0.1:{port}", message, timeout=10)
                fields = (
                    ack.split("\r")[1].split("|") if "\r" in ack else ack.split("MSA")[1].split("|")
                )
                report[label] = f"{fields[1]} {fields[3][:70]}" if len(fields) > 3 else ack[:80]
            except (OSError, mllp.FramingError) as error:
                report[label] = f"no ACK: {type(error).__name__}"
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(30)]
        time.sleep(1)
        still_open = 0
        for connection in held:
            connection.settimeout(0.2)
            try:
                still_open += connection.recv(1) != b""
            except TimeoutError:
                still_open += 1
            except OSError:
                pass
        report["30 half-open connections: kept open"] = still_open
        for connection in held:
            connection.close()
        slow = socket.create_connection(("127.0.0.1", port), timeout=10)
        started = time.monotonic()
        slow.sendall(mllp.START)
        closed_after = None
        for _ in range(20):
            time.sleep(0.5)
            try:
                slow.sendall(b"M")
                slow.settimeout(0.05)
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_after = time.monotonic() - started
                break
        slow.close()
        report["a message a byte every 0.5 s: closed after"] = (
            f"{closed_after:.1f} s" if closed_after else "not closed in 10 s"
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
    return report


def attack_waiting_room(base: str, links: list[str]) -> dict:
    """Point 3 (the hub served again with CRENEAU_WAITING_ROOM_RATE=1 and no burst): 40
    arrivals queue at the API; a latecomer then tries the pages, the FHIR search, and one
    admitted ticket from ten other addresses."""
    admitted = Client(base, "127.0.0.70")
    status, _page = admitted.get("/api/v1/slots?specialty=neurosurgery")
    ticket = admitted.cookies.get("creneau_ticket", "")
    for n in range(40):
        Client(base, f"127.0.1.{n + 1}").get("/api/v1/slots?specialty=neurosurgery")
    late = Client(base, "127.0.0.71")
    slot = links[0].rstrip("/").split("/")[-1].split(".")[0]
    report = {
        "the first arrival": str(status),
        "API hold": outcome(*late.post("/api/v1/holds", {"slot": slot})),
        "POST /hold/": outcome(*_form(late, "/hold/", {"slot": slot})),
        "FHIR Slot search": outcome(*late.get("/fhir/Slot?_count=5")),
    }
    borrowed = [
        Client(base, f"127.0.2.{n + 1}").get(
            "/api/v1/slots?specialty=neurosurgery", **{"X-Creneau-Ticket": ticket}
        )
        for n in range(10)
    ]
    report["one admitted ticket from ten addresses"] = tally(borrowed)
    return report
