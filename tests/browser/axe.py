"""axe-core (the copy that axe-playwright-python ships) run inside a page or a frame: the WCAG 2.1
A and AA rules; a serious or critical violation fails the test. Each run is recorded next to the
screenshots (build/screenshots/axe.json) for the issue's note."""

import fcntl
import json
import os
from pathlib import Path

import axe_playwright_python

AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(
    encoding="utf-8"
)
RULES = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
BLOCKING = {"serious", "critical"}


def check_accessibility(target, name: str, record: Path) -> None:
    """``target``: a Playwright Page or Frame. Evaluated through DevTools, so the pages' strict
    policy (no inline script) stays in force for everything else."""
    target.evaluate(AXE_SOURCE)
    result = target.evaluate("rules => axe.run(document, rules)", RULES)
    violations = [
        {
            "rule": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [n["target"] for n in v["nodes"]][:5],
        }
        for v in result["violations"]
    ]
    # Both pytest workers record here: one at a time, and the file replaced whole.
    with record.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = json.loads(record.read_text(encoding="utf-8")) if record.exists() else {}
        runs[name] = {
            "url": target.url,
            "passes": len(result["passes"]),
            "violations": violations,
        }
        written = record.with_suffix(f".{os.getpid()}.tmp")
        written.write_text(json.dumps(runs, indent=2, ensure_ascii=False), encoding="utf-8")
        written.replace(record)
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert blocking == [], f"{name}: {json.dumps(blocking, indent=2, ensure_ascii=False)}"
