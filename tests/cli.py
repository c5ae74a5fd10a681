"""Running the `creneau` command as a user would: a separate process, a hub of its own."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CRENEAU = [sys.executable, "-m", "creneau"]


def hub_env(data_dir: Path | str, **extra: str) -> dict[str, str]:
    """The environment of a hub in ``data_dir``: no CRENEAU_* setting of the test run leaks in
    (so it runs on its own SQLite file), plus the ``extra`` variables given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    env["CRENEAU_DATA_DIR"] = str(data_dir)
    env.update(extra)
    return env


def run_creneau(*args: str, env: dict[str, str], check: bool = False):
    return subprocess.run([*CRENEAU, *args], capture_output=True, text=True, env=env, check=check)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_demo_hub(data_dir: Path, env: dict[str, str], *, timeout: float = 180):
    """`creneau demo` on a free loopback port: real gunicorn, the data in ``data_dir``.
    Returns the base URL and the process; the caller terminates it. The server's output goes
    to ``data_dir/server.log``: a pipe nobody reads would fill and block the server."""
    port, example_port = free_port(), free_port()
    log = (Path(data_dir) / "server.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [
            *CRENEAU,
            "demo",
            "--port",
            str(port),
            "--example-port",
            str(example_port),
            "--data-dir",
            str(data_dir),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/v1/specialties", timeout=2)
            return base, process
        except OSError as error:
            if process.poll() is not None:
                output = (Path(data_dir) / "server.log").read_text(encoding="utf-8")
                raise RuntimeError("the demo stopped: " + output) from error
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the demo did not answer within {timeout} s")
