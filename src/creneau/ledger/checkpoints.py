"""Signed checkpoints of the ledger: the key, and the service that signs a new tree head only
when it extends the last one signed."""

import base64
import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from creneau.errors import DomainError
from creneau.ledger import merkle, tree
from creneau.ledger.models import Checkpoint
from creneau.ledger.note import Checkpoint as CheckpointText
from creneau.ledger.note import Signer, parse_skey, skey


class CheckpointError(DomainError):
    status = 409


def signer_new(origin: str | None = None) -> Signer:
    return Signer(origin or settings.CRENEAU_LEDGER_ORIGIN, Ed25519PrivateKey.generate())


def signer() -> Signer:
    """The organisation's signer: from CRENEAU_LEDGER_KEY, else the data directory's key file,
    made once outside production."""
    if settings.CRENEAU_LEDGER_KEY:
        found = parse_skey(settings.CRENEAU_LEDGER_KEY)
    else:
        path = Path(settings.CRENEAU_LEDGER_KEY_PATH)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as key_file:
                key_file.write(skey(signer_new()) + "\n")
        found = parse_skey(path.read_text(encoding="utf-8"))
    if found.name != settings.CRENEAU_LEDGER_ORIGIN:
        raise CheckpointError(
            "ledger_key_origin",
            f"The ledger key is named {found.name!r}, the log's origin is "
            f"{settings.CRENEAU_LEDGER_ORIGIN!r}: they must be the same.",
            status=500,
        )
    return found


def _text(size: int, root: bytes, now: datetime) -> str:
    # The time as an extension line (tlog-checkpoint allows them after the root).
    return CheckpointText(
        settings.CRENEAU_LEDGER_ORIGIN, size, root, (f"time {int(now.timestamp())}",)
    ).text()


def checkpoint_make(*, now: datetime | None = None) -> Checkpoint | None:
    """Sequence what is pending, then sign the tree head if the log grew; None if it did not.
    A head that is not consistent with the last checkpoint (the stored tree was altered) is
    never signed."""
    now = now or timezone.now()
    while tree.sequence():
        pass
    with transaction.atomic():
        size = tree.size()
        last = Checkpoint.objects.order_by("-size").first()
        if size == 0 or (last is not None and last.size >= size):
            return None
        root = tree.root(size)
        if last is not None:
            try:
                merkle.verify_consistency(
                    last.size, size, bytes(last.root), root, tree.consistency(last.size, size)
                )
            except merkle.ProofError as error:
                raise CheckpointError(
                    "ledger_inconsistent",
                    f"The log no longer extends checkpoint {last.size}: {error}. Nothing signed.",
                ) from error
        note = signer().sign(_text(size, root, now))
        return Checkpoint.objects.create(size=size, root=root, note=note, created_at=now)


def root_b64(checkpoint: Checkpoint) -> str:
    return base64.b64encode(bytes(checkpoint.root)).decode()
