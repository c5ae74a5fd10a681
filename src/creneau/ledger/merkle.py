"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), section 2.1: leaf and node hashes,
the tree head, inclusion and consistency proofs, and their verification. Pure functions: the
database side (stored subtree hashes) lives in ``creneau.ledger.tree``.

Proofs are built from a ``subtree(start, end)`` function that gives MTH(D[start:end]) for the
ranges the RFC's recursion visits. Every such range is a run of whole, aligned perfect subtrees,
so a store of perfect-subtree hashes answers each in O(log n) reads."""

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Subtree = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A proof that does not verify, or a request no proof can answer."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, by the RFC's definition (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 2.1.3.1)."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start += k
    return proof[::-1]


def consistency_proof(first: int, second: int, subtree: Subtree) -> list[bytes]:
    """PROOF(first, D[0:second]) (RFC 9162 2.1.4.1); empty when first is 0 or equals second."""
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    proof: list[bytes] = []
    m, start, end, whole = first, 0, second, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            proof.append(subtree(start + k, end))
            end = start + k
        else:
            proof.append(subtree(start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree(start, end))
    return proof[::-1]


def _check(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 2.1.3.2; raises ProofError unless ``leaf`` is at ``index`` under ``root``."""
    _check(leaf, "the leaf hash")
    _check(root, "the root")
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        _check(p, "a proof hash")
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if r != root:
        raise ProofError("the proof leads to another root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 2.1.4.2; raises ProofError unless the tree of size ``second`` with
    ``second_root`` extends the one of size ``first`` with ``first_root``."""
    if not 0 <= first <= second:
        raise ProofError(f"size {second} cannot extend size {first}")
    if first == 0:
        # Every tree extends the empty one: there is nothing to prove, and no proof to check.
        raise ProofError("a consistency proof starts from a tree of at least one entry")
    if first == second:
        if proof:
            raise ProofError("a proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("the same size with two roots: the log forked")
        return
    _check(first_root, "the first root")
    _check(second_root, "the second root")
    if not proof:
        raise ProofError("the proof is empty")
    for p in proof:
        _check(p, "a proof hash")
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the first tree is a subtree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    if fr != first_root:
        raise ProofError("the proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the proof does not lead to the second root")
