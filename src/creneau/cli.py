"""The ``creneau`` command: Django's management commands plus Créneau's own (demo, serve,
import), all run with Créneau's settings."""

import os
import secrets
import shutil
import sys


def _option_value(argv: list[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _metrics_directory() -> None:
    """The gunicorn workers count their metrics in files of one directory, which a scrape adds
    up (prometheus_client's multiprocess mode); set before anything imports it, and emptied of
    the counts of an earlier run."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    data_dir = os.environ.get("CRENEAU_DATA_DIR") or "creneau-data"
    directory = os.path.join(os.path.abspath(data_dir), "metrics")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    argv[0] = "creneau"
    command = argv[1] if len(argv) > 1 else ""
    if command == "demo":
        # The data directory decides where settings put the database: it must be known before
        # Django loads them.
        data_dir = _option_value(argv, "--data-dir")
        if data_dir:
            os.environ["CRENEAU_DATA_DIR"] = os.path.abspath(data_dir)
    elif command == "serve":
        os.environ.setdefault("CRENEAU_PRODUCTION", "1")
    if command == "serve" or (command == "demo" and "--no-serve" not in argv):
        # Only what serves: a data-only demo run beside a served hub leaves its counts alone.
        _metrics_directory()
    elif argv[1:3] == ["ledger", "verify"]:
        # An auditor's check of a hub or an export needs no hub of its own: no data directory
        # is made (nor a secret key written) in whatever folder it runs from.
        os.environ.setdefault("CRENEAU_SECRET_KEY", secrets.token_urlsafe(64))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creneau.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
