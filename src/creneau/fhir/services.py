"""The publishing interfaces' writes: the first-served time of each SMART file's content."""

from collections.abc import Callable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from creneau.channels.models import Channel
from creneau.fhir.models import PublishedVersion


def published_version_note(
    *,
    channel: Channel,
    name: str,
    digest: str,
    fingerprint: Callable[[], str] = str,
    now: datetime,
) -> tuple[datetime, bool]:
    """When this content of the file was first served (now if never before), and whether this
    is its first serving. Two workers making the same bytes at once agree (the unique key; the
    loser reads the winner's time, and only the winner is first). ``fingerprint`` is asked
    only for a new version: a download of bytes already served costs no more query."""
    found = PublishedVersion.objects.filter(channel=channel, name=name, digest=digest).first()
    if found is not None:
        return found.first_served_at, False
    try:
        with transaction.atomic():
            created = PublishedVersion.objects.create(
                channel=channel,
                name=name,
                digest=digest,
                fingerprint=fingerprint(),
                first_served_at=now,
            )
            return created.first_served_at, True
    except IntegrityError:
        found = PublishedVersion.objects.get(channel=channel, name=name, digest=digest)
        return found.first_served_at, False


def published_version_since(*, channel: Channel, name: str, fingerprint: str) -> datetime | None:
    """When a file in this state was first served, if it was."""
    return (
        PublishedVersion.objects.filter(channel=channel, name=name, fingerprint=fingerprint)
        .order_by("first_served_at")
        .values_list("first_served_at", flat=True)
        .first()
    )


def published_versions_prune(*, now: datetime | None = None, keep_days: int = 7) -> int:
    """Forget versions older than a week (the worker runs it): a finder that polls asks within
    minutes, and a forgotten version only costs one full answer instead of a 304."""
    now = now or timezone.now()
    deleted, _counts = PublishedVersion.objects.filter(
        first_served_at__lt=now - timedelta(days=keep_days)
    ).delete()
    return deleted
