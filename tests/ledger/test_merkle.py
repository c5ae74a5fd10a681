"""The Merkle tree against RFC 9162: the public test vectors of transparency-dev/merkle
(tests/data/merkle-vectors, Apache 2.0) for both verifiers, and property-based checks that the
proofs built here verify and that every prefix of a random log is consistent with every longer
one."""

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creneau.ledger.merkle import (
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parents[1] / "data" / "merkle-vectors"


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def cases(kind: str) -> list:
    found = sorted((VECTORS / kind).rglob("*.json"))
    assert found, f"no {kind} vectors under {VECTORS}"
    return [
        pytest.param(json.loads(path.read_text()), id=str(path.relative_to(VECTORS)))
        for path in found
    ]


@pytest.mark.parametrize("case", cases("inclusion"))
def test_inclusion_vectors(case):
    def verify():
        verify_inclusion(
            case["leafIdx"],
            case["treeSize"],
            b64(case["leafHash"]),
            [b64(p) for p in case["proof"] or []],
            b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


@pytest.mark.parametrize("case", cases("consistency"))
def test_consistency_vectors(case):
    def verify():
        verify_consistency(
            case["size1"],
            case["size2"],
            b64(case["root1"]),
            b64(case["root2"]),
            [b64(p) for p in case["proof"] or []],
        )

    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify()
    else:
        verify()


def test_the_rfc_hashes():
    # RFC 9162 2.1.1: a leaf is hashed with 0x00 before it, a node with 0x01.
    assert leaf_hash(b"").hex() == (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    )
    a, b, c = (leaf_hash(bytes([i])) for i in range(3))
    assert root_of([a, b, c]) == node_hash(node_hash(a, b), c)


def subtree_of(leaves):
    return lambda start, end: root_of(leaves[start:end])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=70))
def test_every_prefix_is_consistent_with_every_longer_one(entries):
    leaves = [leaf_hash(entry) for entry in entries]
    roots = [root_of(leaves[:size]) for size in range(len(leaves) + 1)]
    subtree = subtree_of(leaves)
    for second in range(1, len(leaves) + 1):
        for index in range(second):
            proof = inclusion_proof(index, second, subtree)
            verify_inclusion(index, second, leaves[index], proof, roots[second])
        for first in range(1, second + 1):
            proof = consistency_proof(first, second, subtree)
            verify_consistency(first, second, roots[first], roots[second], proof)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=2, max_size=40), st.data())
def test_a_changed_log_fails_its_proofs(entries, data):
    leaves = [leaf_hash(entry) for entry in entries]
    size = len(leaves)
    first = data.draw(st.integers(1, size - 1))
    subtree = subtree_of(leaves)
    proof = consistency_proof(first, size, subtree)
    changed = list(leaves)
    where = data.draw(st.integers(0, first - 1))
    changed[where] = leaf_hash(b"tampered" + entries[where])
    # A log whose past was rewritten is not an extension of the one signed before.
    with pytest.raises(ProofError):
        verify_consistency(first, size, root_of(changed[:first]), root_of(leaves), proof)
    with pytest.raises(ProofError):
        verify_inclusion(
            where, size, changed[where], inclusion_proof(where, size, subtree), root_of(leaves)
        )
