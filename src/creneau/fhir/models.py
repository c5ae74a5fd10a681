"""What the publishing interfaces remember between requests: when each content of a SMART file
was first served, so that every worker answers the same Last-Modified for the same bytes."""

from django.db import models

from creneau.channels.models import Channel


class PublishedVersion(models.Model):
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40)  # Location, Schedule, Slot-2027-W11
    digest = models.CharField(max_length=64)  # SHA-256 of the file's bytes
    # What the file's bytes were made from, read without making them (smart.fingerprint):
    # ``_since`` on the manifest finds a file's state here instead of making every file.
    fingerprint = models.CharField(max_length=64, blank=True, default="")
    first_served_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "name", "digest"], name="fhir_published_version_unique"
            )
        ]
        indexes = [
            models.Index(fields=["first_served_at"], name="fhir_published_version_age"),
            models.Index(
                fields=["channel", "name", "fingerprint"], name="fhir_published_version_state"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.name} {self.digest[:12]}"
