"""Running the `creneau` command as a user would: a separate process, a hub of its own."""

import os
import subprocess
import sys
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
