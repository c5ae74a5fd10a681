"""The proxy's queue for a campaign (issue 18, point 3; docs/scaling.md and ``bench.campaign``,
which runs it): HAProxy lets the hub's capacity in and serves the others in their order of
arrival within three classes: a patient's hold or booking first, then the patients who hold a
waiting-room ticket, then those arriving, so that those let in never queue behind the crowd and
arrivals get their turns in the order they came.

HAProxy (Debian's package) runs for real in front of a real HTTP server on loopback that answers
one request at a time and records their order."""

import os
import shutil
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bench.proxy import haproxy

from tests.cli import suite_engine

pytestmark = pytest.mark.skipif(
    suite_engine() != "sqlite", reason="no database involved: run once, in the SQLite half"
)


class Recorder(BaseHTTPRequestHandler):
    """Answers in the order requests reach it; the first one keeps it busy while the others
    queue in the proxy."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        time.sleep(1.5 if self.path == "/busy" else 0.02)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    do_GET = do_POST = _answer

    def log_message(self, format, *args) -> None:
        pass


@pytest.fixture
def haproxy_binary() -> None:
    if shutil.which("haproxy") or os.path.exists("/usr/sbin/haproxy"):
        return
    if os.environ.get("CI") == "true":
        pytest.fail("haproxy is not installed: CI needs it (Debian's package)")
    pytest.skip("haproxy is not installed")


def test_holds_and_bookings_first_then_the_waiting_then_arrivals_each_in_order(
    tmp_path, haproxy_binary
):
    hub = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    hub.seen = []  # type: ignore[attr-defined]
    threading.Thread(target=hub.serve_forever, daemon=True).start()
    try:
        with haproxy(tmp_path, hub.server_port, at_once=1) as port:

            def send(path: str, method: str = "GET", headers: dict | None = None) -> int:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}{path}",
                    method=method,
                    headers=headers or {},
                    data=b"{}" if method == "POST" else None,
                )
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.status

            ticket = {"X-Creneau-Ticket": "eyJhdCI6MH0:ticket"}
            queued = [
                ("/arrival-1", "GET", {}),
                ("/waiting-1", "GET", ticket),
                ("/arrival-2", "GET", {}),
                ("/hold", "POST", ticket),
                ("/waiting-2", "GET", {"Cookie": "creneau_ticket=eyJhdCI6MH0:ticket"}),
                ("/book", "POST", ticket),
                ("/arrival-3", "GET", {}),
            ]
            with ThreadPoolExecutor(len(queued) + 1) as pool:
                answers = [pool.submit(send, "/busy")]
                time.sleep(0.3)  # the hub is busy: what follows queues, in this order
                for path, method, headers in queued:
                    answers.append(pool.submit(send, path, method, headers))
                    time.sleep(0.1)
                assert [answer.result() for answer in answers] == [200] * (len(queued) + 1)
    finally:
        hub.shutdown()
    assert hub.seen == [  # type: ignore[attr-defined]
        "/busy",
        "/hold",
        "/book",
        "/waiting-1",
        "/waiting-2",
        "/arrival-1",
        "/arrival-2",
        "/arrival-3",
    ]
