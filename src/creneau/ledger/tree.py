"""The ledger's Merkle tree in the database: sequencing pending entries into the log, and roots
and proofs read from the stored perfect-subtree hashes (O(log n) rows, one query each)."""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import BigIntegerField, Case, Q, Value, When

from creneau.ledger import merkle
from creneau.ledger.models import Entry, Log, Node

Key = tuple[int, int]  # (level, position)


def _aligned(start: int, end: int) -> list[Key]:
    """[start, end) as aligned perfect subtrees, left to right (the ranges the RFC's recursion
    visits are all of this kind: their hash is the right fold of these)."""
    keys = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while (1 << level) > end - start:
            level -= 1
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _read(keys: Iterable[Key]) -> dict[Key, bytes]:
    wanted = set(keys)
    if not wanted:
        return {}
    query = Q()
    for level, position in wanted:
        query |= Q(level=level, position=position)
    found = {
        (level, position): bytes(digest)
        for level, position, digest in Node.objects.filter(query).values_list(
            "level", "position", "hash"
        )
    }
    missing = wanted - found.keys()
    if missing:
        raise merkle.ProofError(
            f"the tree lacks {len(missing)} stored hashes (e.g. {min(missing)})"
        )
    return found


def _fold(keys: list[Key], nodes: dict[Key, bytes]) -> bytes:
    digest = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        digest = merkle.node_hash(nodes[key], digest)
    return digest


def _with_store(build):
    """Run a proof builder twice: once to learn which ranges it needs, then with their hashes
    read in one query."""
    ranges: list[tuple[int, int]] = []

    def record(start: int, end: int) -> bytes:
        ranges.append((start, end))
        return b""

    build(record)
    nodes = _read(key for start, end in ranges for key in _aligned(start, end))
    return build(lambda start, end: _fold(_aligned(start, end), nodes))


def size() -> int:
    return Log.objects.get(pk=1).size


def root(tree_size: int) -> bytes:
    if tree_size == 0:
        return merkle.EMPTY_ROOT
    keys = _aligned(0, tree_size)
    return _fold(keys, _read(keys))


def inclusion(index: int, tree_size: int) -> list[bytes]:
    return _with_store(lambda subtree: merkle.inclusion_proof(index, tree_size, subtree))


def consistency(first: int, second: int) -> list[bytes]:
    return _with_store(lambda subtree: merkle.consistency_proof(first, second, subtree))


def _number(pending: list, start: int) -> None:
    """Every pending entry's leaf index: one UPDATE (a CASE) per thousand entries."""
    for chunk in range(0, len(pending), 1000):
        rows = pending[chunk : chunk + 1000]
        Entry.objects.filter(pk__in=[entry_id for entry_id, _leaf in rows]).update(
            leaf_index=Case(
                *(
                    When(pk=entry_id, then=Value(start + chunk + n))
                    for n, (entry_id, _leaf) in enumerate(rows)
                ),
                output_field=BigIntegerField(),
            )
        )


def sequence(*, batch: int = 5000, wait: bool = True) -> int:
    """Give the pending entries, in the order they were appended, the next leaf indices, and
    store the subtree hashes they complete. One sequencer at a time (the log row's lock); with
    ``wait=False`` a caller finding it taken leaves the work to the sequencer at work (a
    request does not queue behind another). The number sequenced."""
    with transaction.atomic():
        log = Log.objects.select_for_update(skip_locked=not wait).filter(pk=1).first()
        if log is None:
            return 0  # another sequencer holds the log
        pending = list(
            Entry.objects.filter(leaf_index__isnull=True)
            .order_by("id")
            .values_list("id", "leaf_hash")[:batch]
        )
        if not pending:
            return 0
        start = log.size
        nodes = _read(_aligned(0, start)) if start else {}
        new: dict[Key, bytes] = {}
        for offset, (_entry_id, leaf) in enumerate(pending):
            position, level = start + offset, 0
            digest = bytes(leaf)
            new[(0, position)] = digest
            while position & 1:
                left = new.get((level, position - 1)) or nodes[(level, position - 1)]
                digest = merkle.node_hash(left, digest)
                level, position = level + 1, position >> 1
                new[(level, position)] = digest
        Node.objects.bulk_create(
            Node(level=level, position=position, hash=digest)
            for (level, position), digest in new.items()
        )
        _number(pending, start)
        log.size = start + len(pending)
        log.save(update_fields=["size"])
    return len(pending)
