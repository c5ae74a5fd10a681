"""The transparency ledger's storage: entries as appended, their place in the log once
sequenced, the tree's perfect-subtree hashes, and the signed checkpoints.

Appending is one INSERT in the caller's transaction (no lock: searches append too). A sequencer
then gives pending entries their consecutive leaf indices, one batch at a time under a lock, and
stores the hashes of the perfect subtrees they complete, so that a root or a proof reads
O(log n) rows."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from creneau.directory.models import PublicIdField


class Entry(models.Model):
    class Kind(models.TextChoices):
        OFFER = "offer", _("offer")
        BOOKING = "booking", _("booking")
        MOVE = "move", _("move")
        CANCEL = "cancel", _("cancellation")
        REFUSAL = "refusal", _("refusal")
        PERIMETER = "perimeter", _("perimeter version")
        CHANNEL = "channel", _("channel change")

    public_id = PublicIdField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # The channel's public id, also inside ``data``: kept apart for the counts by channel.
    channel = models.CharField(max_length=32, blank=True, db_index=True)
    # The canonical JSON of the entry (sorted keys, UTF-8, no floats): the leaf's bytes.
    data = models.TextField()
    leaf_hash = models.BinaryField(max_length=32)
    # Its place in the log: null until the sequencer reaches it.
    leaf_index = models.BigIntegerField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        indexes = [
            models.Index(
                fields=["id"],
                condition=models.Q(leaf_index__isnull=True),
                name="ledger_entry_pending",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.leaf_index}"


class Node(models.Model):
    """MTH of a perfect subtree: leaves [position * 2**level, (position + 1) * 2**level)."""

    level = models.PositiveSmallIntegerField()
    position = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "position"], name="ledger_node_unique")
        ]

    def __str__(self) -> str:
        return f"{self.level}/{self.position}"


class Log(models.Model):
    """One row: how many entries are sequenced. Its row lock orders the sequencers."""

    size = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return str(self.size)


class Checkpoint(models.Model):
    size = models.BigIntegerField(unique=True)
    root = models.BinaryField(max_length=32)
    note = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["size"]

    def __str__(self) -> str:
        return str(self.size)
