"""HAProxy in front of the hub for a campaign (issue 18, point 3; docs/scaling.md): run by
``bench.campaign`` and checked by ``tests/scale/test_campaign_queue.py``. Needs only the
standard library and Debian's ``haproxy``."""

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.attacks import free_port

# HAProxy in front of the hub, as a hospital would run it for a campaign: at most the hub's
# workers times threads requests in the hub, the others in HAProxy's queue, which serves them in
# their order of arrival within three classes: first the holds and bookings (a patient let in
# does not queue behind the crowd), then the patients who hold a waiting-room ticket, then those
# arriving, who thus get their turns in the order they came.
HAPROXY = """global
  maxconn 9000
defaults
  mode http
  option http-server-close
  timeout connect 5s
  timeout client 600s
  timeout server 600s
  timeout queue 600s
frontend campaign
  bind 127.0.0.1:{port}
  maxconn 9000
  http-request set-priority-class int(-1) if {{ req.hdr(X-Creneau-Ticket) -m found }}
  http-request set-priority-class int(-1) if {{ req.cook(creneau_ticket) -m found }}
  http-request set-priority-class int(-2) if METH_POST
  default_backend hub
backend hub
  server hub 127.0.0.1:{hub} maxconn {at_once}
"""


@contextmanager
def haproxy(data_dir: Path, hub: int, at_once: int) -> Iterator[int]:
    """HAProxy for a campaign in front of the hub on port ``hub``: its port."""
    port = free_port()
    with haproxy_running(HAPROXY.format(port=port, hub=hub, at_once=at_once), port, data_dir):
        yield port


@contextmanager
def haproxy_running(config: str, port: int, directory: Path) -> Iterator[None]:
    """Debian's HAProxy with ``config`` (which binds ``port``), its configuration and log in
    ``directory``, until the block ends."""
    path = directory / "haproxy.cfg"
    path.write_text(config, encoding="utf-8")
    log = directory / "haproxy.log"
    with log.open("w", encoding="utf-8") as output:
        process = subprocess.Popen(
            [shutil.which("haproxy") or "/usr/sbin/haproxy", "-db", "-f", str(path)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for_port(port, process, log)
            yield
        finally:
            process.terminate()
            process.wait(timeout=20)


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    """Until something listens on ``port``, or fail with the end of ``process``'s ``log``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.1)
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    raise RuntimeError(f"nothing listens on {port}: {text[-2000:]}")
