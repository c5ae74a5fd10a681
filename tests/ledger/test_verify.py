"""`creneau ledger verify` on an export: clean for an honest log; and every tampering caught and
named: an entry changed, deleted, moved, inserted; the log truncated or forked; a checkpoint
forged with another key; a perimeter version rewritten after the fact; an offer crafted outside
the perimeter. (The same verifier reads a live hub: tests/ledger/test_demo_verify.py.)"""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from creneau.agenda.models import Slot
from creneau.ledger.checkpoints import checkpoint_make, signer_new
from creneau.ledger.merkle import leaf_hash
from creneau.ledger.note import Checkpoint as CheckpointText
from creneau.ledger.note import open_note, parse_checkpoint, parse_vkey, skey
from creneau.ledger.verify import Compact, ExportSource, verify
from tests.conftest import PATIENT

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def key(settings):
    new = signer_new("test.creneau/ledger")
    settings.CRENEAU_LEDGER_ORIGIN = "test.creneau/ledger"
    settings.CRENEAU_LEDGER_KEY = skey(new)
    return new


@pytest.fixture
def export(client, key, pitie_neurosurgeon, private_neurosurgeon, open_agenda, clock, tmp_path):
    """A log with searches, bookings, a move, a cancellation and a refusal, checkpointed twice,
    exported."""
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    found = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 5}).json()["items"]
    booked = post(client, "/api/v1/appointments", {"slot": found[0]["id"], "patient": PATIENT})
    checkpoint_make()
    token = {"X-Manage-Token": booked.json()["manage_token"]}
    path = f"/api/v1/appointments/{booked.json()['id']}"
    post(client, path + "/reschedule", {"slot": found[1]["id"]}, **token)
    post(client, path + "/cancel", {}, **token)
    private = Slot.objects.filter(practitioner_role=private_neurosurgeon).first()
    assert post(client, "/api/v1/holds", {"slot": private.public_id}).status_code == 403
    client.get("/search/", {"what": "s:neurosurgery"})
    checkpoint_make()
    file = tmp_path / "ledger.json"
    call_command("ledger", "export", str(file))
    return file


def failures(data: dict, vkey: str, tmp_path) -> list[str]:
    file = tmp_path / "tampered.json"
    file.write_text(json.dumps(data), encoding="utf-8")
    report, _state = verify(ExportSource(file), parse_vkey(vkey))
    return report.failures


def test_an_honest_log_verifies_with_a_clean_neutrality_report(export, key, capsys):
    call_command("ledger", "verify", str(export), "--public-key", key.verifier.vkey())
    out = capsys.readouterr().out
    assert "The log verifies" in out, out
    rows = [
        line.split()[-7:]
        for line in out.splitlines()
        if all(part.isdigit() for part in line.split()[-7:]) and len(line.split()) > 7
    ]
    public = max(rows, key=lambda row: int(row[0]))  # the public site: the channel searched
    offers, slots_offered, bookings, moves, cancels, refusals, outside = map(int, public)
    assert offers >= 2 and slots_offered >= 5
    assert (bookings, moves, cancels, refusals) == (1, 1, 1, 1)
    assert outside == 0


def test_every_tampering_is_caught_and_named(export, key, tmp_path):
    vkey = key.verifier.vkey()
    data = json.loads(export.read_text(encoding="utf-8"))
    entries = data["entries"]
    booking = next(i for i, e in enumerate(entries) if json.loads(e)["kind"] == "booking")
    last = len(entries) - 1

    changed = json.loads(entries[booking])
    changed["finess"] = "750000000"
    cases = {
        "changed": {
            **data,
            "entries": [*entries[:booking], json.dumps(changed), *entries[booking + 1 :]],
        },
        "deleted": {**data, "entries": entries[:booking] + entries[booking + 1 :]},
        "reordered": {
            **data,
            "entries": [
                *entries[: booking - 1],
                entries[booking],
                entries[booking - 1],
                *entries[booking + 1 :],
            ],
        },
        "inserted": {**data, "entries": [*entries[:booking], entries[0], *entries[booking:]]},
        "truncated": {**data, "entries": entries[:last]},
    }
    for name, tampered in cases.items():
        found = failures(tampered, vkey, tmp_path)
        assert any("checkpoint" in f or "entry" in f for f in found), name

    # A checkpoint signed with another key is not the hospital's.
    other = signer_new("test.creneau/ledger")
    head = parse_checkpoint(open_note(data["checkpoints"][-1], key.verifier))
    forged = other.sign(head.text())
    found = failures({**data, "checkpoints": [*data["checkpoints"][:-1], forged]}, vkey, tmp_path)
    assert any("no signature by test.creneau/ledger" in f for f in found)

    # A fork: a second head of the same size, signed by the right key, with another root.
    fork = key.sign(CheckpointText(head.origin, head.size, bytes(32), head.extensions).text())
    found = failures({**data, "checkpoints": [*data["checkpoints"], fork]}, vkey, tmp_path)
    assert any("do not grow" in f for f in found)


def test_a_rewritten_perimeter_and_a_crafted_offer_are_named(export, key, tmp_path):
    """Rewrite the log honestly (every hash recomputed, a fresh checkpoint signed by the right
    key, as an insider could): the neutrality check still names what left the perimeter."""
    data = json.loads(export.read_text(encoding="utf-8"))
    entries = [json.loads(e) for e in data["entries"]]
    offer_index = next(i for i, e in enumerate(entries) if e["kind"] == "offer")
    entries[offer_index]["slots"].append(
        {"slot": "crafted", "finess": "920000001", "department": "", "rpps": "10000000000"}
    )
    perimeter_index = next(i for i, e in enumerate(entries) if e["kind"] == "perimeter")
    # The perimeter version at the start of the log, rewritten to hold one hospital only.
    entries[perimeter_index]["establishments"] = entries[perimeter_index]["establishments"][:1]
    rewritten = [
        json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in entries
    ]
    tree = Compact()
    for entry in rewritten:
        tree.append(leaf_hash(entry.encode()))
    head = key.sign(CheckpointText("test.creneau/ledger", len(rewritten), tree.root()).text())
    found = failures(
        {**data, "entries": rewritten, "checkpoints": [head]}, key.verifier.vkey(), tmp_path
    )
    assert any(f"entry {offer_index}:" in f and "crafted" in f for f in found)
    assert any("outside its perimeter" in f for f in found)
    # Against the checkpoints the hub had signed before, the rewrite itself is caught.
    found = failures({**data, "entries": rewritten}, key.verifier.vkey(), tmp_path)
    assert any("do not hash to its signed root" in f for f in found)


def test_the_state_of_the_last_run_catches_a_log_rewritten_between_runs(export, key, tmp_path):
    state = tmp_path / "state.json"
    call_command(
        "ledger", "verify", str(export), "--public-key", key.verifier.vkey(), "--state", str(state)
    )
    kept = json.loads(state.read_text())
    assert kept["size"] > 0
    state.write_text(json.dumps({**kept, "root": "00" * 32}))
    with pytest.raises(CommandError, match="does not verify"):
        call_command(
            "ledger",
            "verify",
            str(export),
            "--public-key",
            key.verifier.vkey(),
            "--state",
            str(state),
        )


def test_the_audit_finds_changes_without_entries_and_entries_without_changes(
    client, key, pitie_neurosurgeon, open_agenda, clock, capsys
):
    from creneau.ledger.models import Entry

    open_agenda(pitie_neurosurgeon)
    found = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 2}).json()["items"]
    booked = post(client, "/api/v1/appointments", {"slot": found[0]["id"], "patient": PATIENT})
    call_command("ledger", "audit")
    assert "Every change has its entry" in capsys.readouterr().out
    # The booking's entry removed from the log: the audit names the appointment.
    Entry.objects.filter(kind="booking").delete()
    with pytest.raises(CommandError, match="1 problem"):
        call_command("ledger", "audit")
    assert f"appointment {booked.json()['id']}: 1 booking not in the log" in capsys.readouterr().err


@pytest.fixture
def long_channel_name(aphp, public_site):
    """A widget whose name is longer than the report's old 40-character column."""
    from creneau.channels.services import channel_create

    channel = channel_create(
        organisation=aphp,
        name="Widget du service de neurochirurgie de la Pitié-Salpêtrière (site du CHU)",
        kind="embed",
        perimeter=public_site.perimeter,
    )
    return channel.name


def test_verify_from_any_folder_leaves_nothing_there_and_names_channels_whole(
    long_channel_name, export, key, tmp_path
):
    """An auditor runs the command where they stand: it writes no data directory or key
    there, and the report gives each channel's name whole."""
    import os
    import subprocess
    import sys

    auditor = tmp_path / "auditor"
    auditor.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "creneau",
            "ledger",
            "verify",
            str(export),
            "--public-key",
            key.verifier.vkey(),
        ],
        cwd=auditor,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list(auditor.iterdir()) == []
    assert long_channel_name in done.stdout
