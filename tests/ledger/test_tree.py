"""The ledger's tree as stored: entries appended in any order of commits get dense leaf
indices; roots and proofs read from the stored hashes equal the RFC's, for every size."""

import json

import pytest

from creneau.ledger import merkle, tree
from creneau.ledger.models import Entry, Node
from creneau.ledger.services import LedgerError, canonical, entry_append

pytestmark = pytest.mark.django_db


def test_entries_are_canonical_json_without_floats():
    assert canonical({"b": 1, "a": "é", "c": [2, {"z": 0, "y": None}]}) == (
        '{"a":"é","b":1,"c":[2,{"y":null,"z":0}]}'
    )
    with pytest.raises(LedgerError):
        canonical({"distance": 1.5})


def test_sequencing_gives_dense_indices_and_the_stored_tree_answers_like_the_rfc(clock):
    # The test database starts with the channels and perimeters of its set-up in the log.
    base = Entry.objects.count()
    appended = [entry_append(kind="offer", payload={"n": n}) for n in range(23)]
    assert tree.sequence(batch=10 + base) == 10 + base  # in batches, as the worker does
    assert tree.sequence() == 13
    assert tree.sequence() == 0
    total = base + 23
    assert tree.size() == total
    entries = list(Entry.objects.order_by("leaf_index"))
    assert [e.pk for e in entries[base:]] == [e.pk for e in appended]
    assert [e.leaf_index for e in entries] == list(range(total))
    assert json.loads(entries[base + 5].data)["n"] == 5
    leaves = [bytes(e.leaf_hash) for e in entries]
    for size in range(1, total + 1):
        expected = merkle.root_of(leaves[:size])
        assert tree.root(size) == expected
        for index in range(size):
            proof = tree.inclusion(index, size)
            merkle.verify_inclusion(index, size, leaves[index], proof, expected)
        for first in range(1, size + 1):
            merkle.verify_consistency(
                first, size, merkle.root_of(leaves[:first]), expected, tree.consistency(first, size)
            )
    # A proof reads O(log n) stored hashes: here, at most a handful of rows per level.
    assert Node.objects.count() < 2 * total + 1
