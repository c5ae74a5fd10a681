"""The done-when of the ledger, as an auditor meets it: a demo hub serving on loopback, bookings
through two channels (the public site and the widget), then `creneau ledger verify URL` from
another process with only the published key: a clean neutrality report. Then one ledger row is
altered in the database: verification fails and names that entry."""

import json
import sqlite3
import urllib.request

from tests.cli import hub_env, run_creneau, start_demo_hub


def call(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def book(base: str, channel: str, phone: str) -> dict:
    found = call(f"{base}/api/v1/slots?specialty=neurosurgery&limit=3&channel={channel}")
    patient = {"last_name": "Roux", "first_name": "Inès", "birth_date": "1979-04-02"}
    return call(
        f"{base}/api/v1/appointments?channel={channel}",
        {"slot": found["items"][-1]["id"], "patient": {**patient, "phone": phone}},
    )


def test_the_demo_verifies_clean_then_names_an_altered_row(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ledger-demo")
    env = hub_env(data_dir, CRENEAU_HORIZON_WEEKS="2")
    base, hub = start_demo_hub(data_dir, env)
    try:
        credentials = json.loads((data_dir / "demo-credentials.json").read_text())
        public = next(c for c in credentials["channels"] if c["kind"] == "public_site")["key"]
        widget = credentials["widget"]["key"]
        site = book(base, public, "06 12 34 56 01")
        embedded = book(base, widget, "06 12 34 56 02")
        assert site["ledger"]["index"] is not None and embedded["ledger"]["index"] is not None
        signed = run_creneau("ledger", "checkpoint", env=env)
        assert signed.returncode == 0, signed.stderr
        key = run_creneau("ledger", "public-key", env=env).stdout.strip()
        assert credentials["ledger"]["public_key"] == key

        # The auditor's side: another directory, no database, the hub's address and its key.
        auditor = hub_env(tmp_path_factory.mktemp("auditor"))
        state = tmp_path_factory.mktemp("state") / "state.json"
        clean = run_creneau(
            "ledger", "verify", base, "--public-key", key, "--state", str(state), env=auditor
        )
        assert clean.returncode == 0, clean.stdout + clean.stderr
        assert "no channel left its perimeter" in clean.stdout
        lines = clean.stdout.splitlines()
        widget_row = next(line for line in lines if line.startswith("Widget"))
        assert widget_row.split()[-5] == "1"  # one booking through the widget
        assert all(line.split()[-1] == "0" for line in lines[2:-1])  # nothing outside

        # The log grows; the next run checks it extends what the last one saw (the hub's
        # consistency proof from the kept size and root).
        book(base, public, "06 12 34 56 03")
        run_creneau("ledger", "checkpoint", env=env)
        again = run_creneau(
            "ledger", "verify", base, "--public-key", key, "--state", str(state), env=auditor
        )
        assert again.returncode == 0, again.stdout + again.stderr

        # Someone narrows a perimeter version after the fact, in the database.
        with sqlite3.connect(data_dir / "creneau.sqlite3") as database:
            version, rowid = database.execute(
                "SELECT v.public_id, pe.id FROM channels_perimeterestablishment pe "
                "JOIN channels_perimeterversion v ON v.id = pe.version_id LIMIT 1"
            ).fetchone()
            database.execute("DELETE FROM channels_perimeterestablishment WHERE id = ?", (rowid,))
        rewritten = run_creneau("ledger", "verify", base, "--public-key", key, env=auditor)
        assert rewritten.returncode != 0
        assert f"perimeter version {version}: the hub's establishments today differ" in (
            rewritten.stderr
        )

        # Someone rewrites the booking's entry in the database, to another hospital.
        index = embedded["ledger"]["index"]
        with sqlite3.connect(data_dir / "creneau.sqlite3") as database:
            (row,) = database.execute(
                "SELECT data FROM ledger_entry WHERE leaf_index = ?", (index,)
            ).fetchone()
            database.execute(
                "UPDATE ledger_entry SET data = ? WHERE leaf_index = ?",
                (row.replace('"finess":"', '"finess":"9'), index),
            )
        tampered = run_creneau("ledger", "verify", base, "--public-key", key, env=auditor)
        assert tampered.returncode != 0
        assert f"entry {index}: its content is not what the log signed" in tampered.stderr
    finally:
        hub.terminate()
        hub.wait(timeout=30)
