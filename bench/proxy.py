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
    port = free_port()
    config = data_dir / "haproxy.cfg"
    config.write_text(HAPROXY.format(port=port, hub=hub, at_once=at_once), encoding="utf-8")
    log_file = (data_dir / "haproxy.log").open("w", encoding="utf-8")
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    process = subprocess.Popen(
        [binary, "-db", "-f", str(config)], stdout=log_file, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "haproxy did not start: " + (data_dir / "haproxy.log").read_text()
                    ) from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log_file.close()
