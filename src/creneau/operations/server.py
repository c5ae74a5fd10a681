"""gunicorn, embedded: ``creneau serve`` and the demo run the same server."""

import os
import subprocess
import sys
from typing import Any

from django.conf import settings
from gunicorn.app.base import BaseApplication


class CreneauServer(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings and value is not None:
                self.cfg.set(key, value)

    def load(self):
        from creneau.wsgi import application

        return application


def serve(*, bind: str, workers: int, threads: int) -> None:
    CreneauServer(
        {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "accesslog": "-",
            # Paths and query strings may carry a manage token: the path only, redacted.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
            "logger_class": "creneau.operations.log_redaction.RedactingLogger",
            # X-Forwarded-For and -Proto are believed from the proxies named, nobody else.
            "forwarded_allow_ips": ",".join(str(n) for n in settings.CRENEAU_TRUSTED_PROXIES) or "",
            # A worker gone, its live gauges go with it (prometheus_client multiprocess).
            "child_exit": _child_exit,
            "timeout": 60,
        }
    ).run()


def _child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def default_options() -> dict[str, Any]:
    return {
        "bind": settings.CRENEAU_BIND,
        "workers": settings.CRENEAU_WORKERS,
        "threads": settings.CRENEAU_THREADS,
    }


def _die_with_parent() -> None:
    """In the child: be stopped when the process that started it dies, however it dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the caller's own clean-up still stops it


def start_worker(log_path) -> subprocess.Popen:
    """``creneau worker`` in a process of its own beside the server (the demo runs one)."""
    log = open(log_path, "a", encoding="utf-8")  # noqa: SIM115 (the child keeps it open)
    return subprocess.Popen(
        [sys.executable, "-m", "creneau", "worker"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=os.environ.copy(),
        preexec_fn=_die_with_parent,  # started before any other thread of the demo
    )
