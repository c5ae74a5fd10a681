"""Running the `creneau` command as a user would: a separate process, a hub of its own."""

import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

CRENEAU = [sys.executable, "-m", "creneau"]
PG_URL = os.environ.get("CRENEAU_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/creneau")


def suite_engine() -> str:
    """The engine this half of the suite runs on (bin/check runs it once on each): a test that
    starts a hub of its own uses the same one, so that each engine is raced once, not twice."""
    return "postgresql" if os.environ.get("CRENEAU_DATABASE_URL") else "sqlite"


class Database:
    """Reads a hub's database directly, to see what was really stored."""

    def __init__(self, engine: str, target: str) -> None:
        self.engine, self.target = engine, target

    def rows(self, sql: str) -> list[tuple]:
        if self.engine == "sqlite":
            with sqlite3.connect(self.target) as connection:
                return connection.execute(sql).fetchall()
        with psycopg.connect(self.target) as connection:
            return connection.execute(sql).fetchall()


@contextmanager
def hub_database(engine: str, data_dir: Path) -> Iterator[tuple[dict[str, str], Database]]:
    """A database of its own for a hub run as a separate process: the SQLite file in its data
    directory, or a new PostgreSQL database dropped afterwards. Yields the hub's extra
    environment and a reader. In CI a missing PostgreSQL fails, never skips."""
    if engine == "sqlite":
        yield {}, Database("sqlite", str(Path(data_dir) / "creneau.sqlite3"))
        return
    admin_url = PG_URL.rsplit("/", 1)[0] + "/postgres"
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {admin_url}: CI needs it")
        pytest.skip("PostgreSQL is not reachable")
    name = f"creneau_hub_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    try:
        yield {"CRENEAU_DATABASE_URL": url}, Database("postgresql", url)
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


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


def start_demo_hub(data_dir: Path, env: dict[str, str], *args: str, timeout: float = 180):
    """`creneau demo` on a free loopback port: real gunicorn, the data in ``data_dir``.
    Returns the base URL and the process; the caller terminates it. The server's output goes
    to ``data_dir/server.log``: a pipe nobody reads would fill and block the server.

    A port found free may be taken (as another connection's local port) while the demo loads
    its data: the demo then stops with "Address already in use" and starts again on others."""
    for _attempt in range(3):
        try:
            return _start_demo_hub(data_dir, env, args, timeout)
        except PortTaken:
            continue
    raise RuntimeError("no free port stayed free for the demo")


class PortTaken(RuntimeError):
    pass


def _start_demo_hub(data_dir: Path, env: dict[str, str], args, timeout: float):
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
            *args,
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
                if "Address already in use" in output:
                    raise PortTaken(output) from error
                raise RuntimeError("the demo stopped: " + output) from error
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"the demo did not answer within {timeout} s")
