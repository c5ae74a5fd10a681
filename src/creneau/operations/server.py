"""gunicorn, embedded: ``creneau serve`` and the demo run the same server."""

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
            # Query strings may carry a manage token: log the path only, never patient data.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
            "forwarded_allow_ips": "127.0.0.1,::1",
            "timeout": 60,
        }
    ).run()


def default_options() -> dict[str, Any]:
    return {
        "bind": settings.CRENEAU_BIND,
        "workers": settings.CRENEAU_WORKERS,
        "threads": settings.CRENEAU_THREADS,
    }
