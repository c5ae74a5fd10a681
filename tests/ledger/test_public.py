"""Checkpoints and the public endpoints, as an outside auditor reads them: the signed note
verifies with the published key, every entry is under the signed root, each checkpoint extends
the one before, and a tree altered in the database is never signed again."""

import base64

import pytest

from creneau.ledger import merkle
from creneau.ledger.checkpoints import CheckpointError, checkpoint_make, signer_new
from creneau.ledger.models import Checkpoint, Entry, Node
from creneau.ledger.note import open_note, parse_checkpoint, parse_vkey, skey
from creneau.ledger.services import entry_append

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(settings):
    new = signer_new("test.creneau/ledger")
    settings.CRENEAU_LEDGER_ORIGIN = "test.creneau/ledger"
    settings.CRENEAU_LEDGER_KEY = skey(new)
    return new.verifier.vkey()


def b64(value: str) -> bytes:
    return base64.b64decode(value)


def append(count: int, channel: str = "ch1") -> None:
    for n in range(count):
        entry_append(kind="offer", payload={"channel": channel, "n": n})


def signed(client, vkey: str):
    note = client.get("/ledger/checkpoint").content.decode()
    return parse_checkpoint(open_note(note, parse_vkey(vkey)))


def test_checkpoints_are_signed_and_each_extends_the_last(client, key, clock):
    assert client.get("/ledger/checkpoint").status_code == 404
    base = Entry.objects.count()  # the set-up's channels and perimeters
    append(5)
    first = checkpoint_make()
    assert first is not None and first.size == base + 5
    assert checkpoint_make() is None  # the log has not grown
    head = signed(client, key)
    assert (head.origin, head.size) == ("test.creneau/ledger", base + 5)
    assert head.extensions[0].startswith("time ")

    append(8, channel="ch2")
    checkpoint_make()
    second = signed(client, key)
    size = base + 13
    assert second.size == size
    proof = client.get("/ledger/proof/consistency", {"first": head.size, "second": size}).json()[
        "proof"
    ]
    merkle.verify_consistency(head.size, size, head.root, second.root, [b64(p) for p in proof])

    # Every entry is under the signed root, by its inclusion proof.
    data = client.get("/ledger/entries", {"start": 0, "end": size}).json()["entries"]
    assert [row["index"] for row in data] == list(range(size))
    for row in data:
        answer = client.get("/ledger/proof/inclusion", {"index": row["index"], "size": size})
        leaf = merkle.leaf_hash(row["data"].encode())
        merkle.verify_inclusion(
            row["index"], size, leaf, [b64(p) for p in answer.json()["proof"]], second.root
        )
    history = client.get("/ledger/checkpoints").json()["checkpoints"]
    assert [c["size"] for c in history] == [base + 5, size]


def test_bad_requests_get_clear_errors(client, key, clock):
    append(3)
    size = checkpoint_make().size
    for path, query in [
        ("/ledger/entries", {"start": 0, "end": size + 1}),
        ("/ledger/entries", {"start": 2, "end": 2}),
        ("/ledger/entries", {"start": "x", "end": 2}),
        ("/ledger/proof/inclusion", {"index": size, "size": size}),
        ("/ledger/proof/consistency", {"first": 0, "second": size}),
        ("/ledger/proof/consistency", {"first": 2, "second": size + 5}),
    ]:
        answer = client.get(path, query)
        assert answer.status_code == 400, (path, query)
        assert answer.json()["code"] in ("invalid_range", "invalid_request")


def test_an_altered_tree_is_never_signed(client, key, clock):
    append(6)
    signed_size = checkpoint_make().size
    # Someone with database access rewrites the signed past: the first entries and the hash of
    # the largest subtree they make, which every later root is built on.
    node = Node.objects.order_by("-level", "position").first()
    node.hash = bytes(32)
    node.save()
    append(2)
    with pytest.raises(CheckpointError, match=f"no longer extends checkpoint {signed_size}"):
        checkpoint_make()
    assert Checkpoint.objects.count() == 1


def test_a_receipt_and_the_page_for_people(client, key, clock, public_site):
    entry = entry_append(kind="booking", payload={"channel": public_site.public_id})
    receipt = client.get(f"/ledger/entry/{entry.public_id}").json()
    assert receipt["index"] is None and "proof" not in receipt  # not sequenced yet
    checkpoint_make()
    receipt = client.get(f"/ledger/entry/{entry.public_id}").json()
    head = parse_checkpoint(open_note(receipt["checkpoint"], parse_vkey(key)))
    leaf = merkle.leaf_hash(receipt["data"].encode())
    merkle.verify_inclusion(
        receipt["index"], head.size, leaf, [b64(p) for p in receipt["proof"]], head.root
    )
    page = client.get("/ledger/").content.decode()
    assert key in page and public_site.name in page
    english = client.get("/en/ledger/").content.decode()
    assert "Transparency ledger" in english
    perimeters = client.get("/ledger/perimeters").json()["perimeter_versions"]
    assert perimeters and all(v["establishments"] for v in perimeters)
    assert all(len(finess) == 9 for v in perimeters for finess in v["establishments"])
