"""Running the `creneau` command as a user would: a separate process, a hub of its own."""

import fcntl
import hashlib
import os
import shutil
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
    admin_url = _admin_url(PG_URL)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is not reachable at {admin_url}: CI needs it")
        pytest.skip("PostgreSQL is not reachable")
    name = f"creneau_hub_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = _sibling_url(PG_URL, name)
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
    # The suite runs at any hour, and offers and the hospital's notices wait out the night
    # (CRENEAU_QUIET_HOURS, tested in tests/notify/test_quiet.py on a set clock): a hub run
    # here sends them at once, unless a test says otherwise.
    env["CRENEAU_QUIET_HOURS"] = "off"
    env.update(extra)
    return env


def run_creneau(*args: str, env: dict[str, str], check: bool = False):
    return subprocess.run([*CRENEAU, *args], capture_output=True, text=True, env=env, check=check)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Where the demos loaded once per test run are kept (set by tests/conftest.py for the run and
# its pytest-xdist workers).
TEMPLATES = "CRENEAU_TEST_DEMO_TEMPLATES"
# The settings that change what the demo loads; the others change only how it serves.
_LOADING = ("CRENEAU_HORIZON_WEEKS",)


def demo_copied(data_dir: Path, env: dict[str, str]) -> None:
    """Give ``data_dir`` and the hub's database a copy of a demo loaded once in this test run
    with the same loading settings, so that ``creneau demo`` keeps it as on its second run
    (migrated, agendas rolled, credentials and ports rewritten) instead of loading the network
    again: each hub still has data of its own, twenty seconds sooner. A copy of the SQLite
    file, or a PostgreSQL database made from the template database."""
    root = os.environ.get(TEMPLATES)
    if not root:
        return
    url = env.get("CRENEAU_DATABASE_URL", "")
    loading = [(name, env.get(name)) for name in _LOADING]
    key = hashlib.sha256(repr((bool(url), loading)).encode()).hexdigest()[:12]
    template = Path(root) / key
    with (Path(root) / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one load per template, whichever worker asks first
        if not (template / "demo-credentials.json").exists():
            _template_load(template, key, url, dict(loading))
        if url:
            database = url.rsplit("/", 1)[1]
            with psycopg.connect(_admin_url(url), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{database}"')
                admin.execute(f'CREATE DATABASE "{database}" TEMPLATE "{_template_name(key)}"')
    shutil.copytree(template, data_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.log"))


def _template_name(key: str) -> str:
    return f"creneau_tmpl_{Path(os.environ[TEMPLATES]).name[-8:]}_{key}"


def _sibling_url(url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``url``."""
    return url.rsplit("/", 1)[0] + "/" + name


def _admin_url(url: str) -> str:
    return _sibling_url(url, "postgres")


def _template_load(template: Path, key: str, url: str, loading: dict) -> None:
    extra = {name: value for name, value in loading.items() if value is not None}
    if url:
        name = _template_name(key)
        with psycopg.connect(_admin_url(url), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        (template.parent / f"{key}.database").write_text(name)
        extra["CRENEAU_DATABASE_URL"] = _sibling_url(url, name)
    template.mkdir(parents=True, exist_ok=True)
    loaded = run_creneau("demo", "--no-serve", env=hub_env(template, **extra))
    if loaded.returncode != 0:
        shutil.rmtree(template)
        raise RuntimeError("the demo did not load: " + loaded.stderr[-3000:])


def templates_drop(root: Path) -> None:
    """At the end of the run: the template databases, then the directory."""
    names = [path.read_text() for path in root.glob("*.database")]
    if names:
        with psycopg.connect(_admin_url(PG_URL), autocommit=True, connect_timeout=3) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(root, ignore_errors=True)


def start_demo_hub(data_dir: Path, env: dict[str, str], *args: str, timeout: float = 180):
    """`creneau demo` on a free loopback port: real gunicorn, the data in ``data_dir``.
    Returns the base URL and the process; the caller terminates it. The server's output goes
    to ``data_dir/server.log``: a pipe nobody reads would fill and block the server. The demo
    starts from a copy of one loaded earlier in the run (``demo_copied``).

    A port found free may be taken (as another connection's local port) while the demo loads
    its data: the demo then stops with "Address already in use" and starts again on others."""
    demo_copied(data_dir, env)
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
