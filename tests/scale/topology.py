"""A hub beyond one server, started for real on this machine from Debian's packages: a
PostgreSQL primary with a streaming replica (its own clusters, ``initdb`` and ``pg_basebackup``),
PgBouncer in transaction mode, several ``creneau serve`` and HAProxy in front of them."""

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from bench.proxy import haproxy_running, wait_for_port

from tests.cli import CRENEAU, free_port


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian's postgresql package)")
    return found[-1]


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL and PgBouncer refuse to run as root: run them as the postgres account."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


def _run(command: list[str]) -> None:
    done = subprocess.run(_as_postgres(command), capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")


def _shared_directory(prefix: str) -> Path:
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    directory.chmod(0o755)
    return directory


class Clusters:
    """A primary and its streaming replica on two free ports."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.primary_port, self.replica_port = free_port(), free_port()

    def url(self, port: int, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{port}/{name}"

    def _ctl(self, data: str, action: str, *extra: str) -> None:
        _run(
            [
                _pg_bin("pg_ctl"),
                "-D",
                str(self.directory / data),
                "-l",
                str(self.directory / f"{data}.log"),
                "-w",
                action,
                *extra,
            ]
        )

    def start(self) -> None:
        primary = self.directory / "primary"
        _run([_pg_bin("initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust",
              "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        settings = [
            f"port = {self.primary_port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.directory}'",
            "wal_level = replica",
            "max_wal_senders = 4",
            "hot_standby = on",
            "max_connections = 300",
            "shared_buffers = 64MB",
            "fsync = off",
            "synchronous_commit = off",
        ]
        with (primary / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n".join(settings) + "\n")
        self._ctl("primary", "start")
        replica = self.directory / "replica"
        _run([_pg_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.primary_port),
              "-U", "postgres", "-D", str(replica), "-R", "-X", "stream",
              "--checkpoint=fast", "--no-sync"])  # fmt: skip
        with (replica / "postgresql.auto.conf").open("a", encoding="utf-8") as conf:
            conf.write(f"port = {self.replica_port}\n")
        self.start_replica()

    def start_replica(self) -> None:
        self._ctl("replica", "start")

    def stop_replica(self) -> None:
        self._ctl("replica", "stop", "-m", "fast")

    def stop(self) -> None:
        for data in ("replica", "primary"):
            if (self.directory / data / "postmaster.pid").exists():
                self._ctl(data, "stop", "-m", "immediate")

    def replay(self, paused: bool) -> None:
        with psycopg.connect(self.url(self.replica_port), autocommit=True) as replica:
            replica.execute(f"SELECT pg_wal_replay_{'pause' if paused else 'resume'}()")
            # A pause is a request: replay stops at the next record. Wait until it has.
            deadline = time.monotonic() + 10
            while paused and time.monotonic() < deadline:
                state = replica.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0]
                if state == "paused":
                    return
                time.sleep(0.05)
            if paused:
                raise RuntimeError("the replica's replay did not pause")

    def wait_for_replica(self, timeout: float = 30) -> None:
        """Until the replica has replayed everything the primary had written when asked."""
        with psycopg.connect(self.url(self.primary_port), autocommit=True) as primary:
            position = primary.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url(self.replica_port), autocommit=True) as replica:
            while time.monotonic() < deadline:
                done = replica.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [position]
                ).fetchone()[0]
                if done:
                    return
                time.sleep(0.1)
        raise RuntimeError("the replica did not catch up with the primary")


@contextmanager
def clusters() -> Iterator[Clusters]:
    directory = _shared_directory("creneau-pg-")
    pair = Clusters(directory)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def pgbouncer(database_port: int, name: str) -> Iterator[int]:
    """PgBouncer in transaction mode in front of ``name`` on the primary: its port."""
    directory = _shared_directory("creneau-pgbouncer-")
    port = free_port()
    (directory / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
    (directory / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"{name} = host=127.0.0.1 port={database_port} dbname={name}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                f"unix_socket_dir = {directory}",
                "auth_type = trust",
                f"auth_file = {directory / 'users.txt'}",
                "pool_mode = transaction",
                "max_client_conn = 500",
                "default_pool_size = 20",
                f"logfile = {directory / 'pgbouncer.log'}",
                f"pidfile = {directory / 'pgbouncer.pid'}",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    for path in directory.iterdir():
        if os.geteuid() == 0:
            shutil.chown(path, "postgres", "postgres")
    process = subprocess.Popen(
        _as_postgres(
            [shutil.which("pgbouncer") or "/usr/sbin/pgbouncer", str(directory / "pgbouncer.ini")]
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process, directory / "pgbouncer.log")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def haproxy(backends: list[int], directory: Path) -> Iterator[int]:
    """HAProxy on one address, round robin over ``backends``, adding X-Forwarded-For."""
    port = free_port()
    config = "\n".join(
        [
            "global",
            "  maxconn 2000",
            "defaults",
            "  mode http",
            "  option forwardfor",
            "  option http-server-close",
            "  timeout connect 5s",
            "  timeout client 180s",
            "  timeout server 180s",
            "frontend hub",
            f"  bind 127.0.0.1:{port}",
            "  default_backend servers",
            "backend servers",
            "  balance roundrobin",
            *[f"  server s{n} 127.0.0.1:{backend}" for n, backend in enumerate(backends)],
        ]
    )
    with haproxy_running(config + "\n", port, directory):
        yield port


@contextmanager
def served(data_dir: Path, env: dict[str, str], workers: int = 2) -> Iterator[int]:
    """``creneau serve`` on a free port, in production mode: its port. The output goes to
    ``data_dir/serve.log``."""
    port = free_port()
    log = (data_dir / "serve.log").open("w", encoding="utf-8")
    process = subprocess.Popen(
        [*CRENEAU, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)],
        env={**env, "CRENEAU_DATA_DIR": str(data_dir)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process, data_dir / "serve.log", timeout=60)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()
