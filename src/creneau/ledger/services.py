"""Appending to the ledger: called by the services whose changes it records, in their
transaction (DESIGN.md, invariant 6). An entry is canonical JSON with no patient data."""

import json
from datetime import datetime

from django.db import connections, router
from django.utils import timezone

from creneau.errors import DomainError
from creneau.ledger import tree
from creneau.ledger.merkle import leaf_hash
from creneau.ledger.models import Entry
from creneau.operations.metrics import REFUSALS


class LedgerError(DomainError):
    pass


def _no_floats(value) -> None:
    if isinstance(value, float):
        raise LedgerError("ledger_float", "Ledger entries hold no floating-point numbers.")
    if isinstance(value, dict):
        for item in value.values():
            _no_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _no_floats(item)


def canonical(payload: dict) -> str:
    """Sorted keys, no spaces, UTF-8 as is; integers and strings only (no floats)."""
    _no_floats(payload)
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_append(*, kind: str, payload: dict, now: datetime | None = None) -> Entry:
    """One INSERT, in the caller's transaction: the entry waits for the sequencer to give it
    its place in the log."""
    now = now or timezone.now()
    data = canonical({**payload, "kind": kind, "at": now.isoformat(timespec="seconds")})
    entry = Entry(
        kind=kind,
        channel=str(payload.get("channel", "")),
        data=data,
        leaf_hash=leaf_hash(data.encode()),
        created_at=now,
    )
    # One plain INSERT: every search appends its offer, and the ORM's save cost more than it.
    database = router.db_for_write(Entry)
    connection = connections[database]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_entry (public_id, kind, channel, data, leaf_hash, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            [
                entry.public_id,
                entry.kind,
                entry.channel,
                entry.data,
                entry.leaf_hash,
                connection.ops.adapt_datetimefield_value(now),
            ],
        )
        entry.pk = cursor.fetchone()[0]
    entry._state.adding, entry._state.db = False, database
    return entry


def refusal_append(error: DomainError) -> Entry | None:
    """Record a refusal that carries what the ledger needs (``error.refusal``), in its own
    transaction: the refused change itself was rolled back."""
    if error.aftermath is not None:
        error.aftermath()
        error.aftermath = None
    if not error.refusal:
        return None
    entry = entry_append(kind="refusal", payload={**error.refusal, "code": error.code})
    REFUSALS.labels(error.code).inc()
    return entry


def receipt(public_id: str) -> dict:
    """A patient's receipt for an entry: its id, and its index in the log, sequencing what is
    pending first if it has none yet (a short pass outside the caller's transaction). Anyone
    checks it at /ledger/entry/ID once a checkpoint covers it."""
    if not public_id:
        return {"entry": "", "index": None}
    index = Entry.objects.filter(public_id=public_id).values_list("leaf_index", flat=True).first()
    if index is None:
        tree.sequence(wait=False)
        index = (
            Entry.objects.filter(public_id=public_id).values_list("leaf_index", flat=True).first()
        )
    return {"entry": public_id, "index": index}
