"""Which slots a channel may offer now: the one filter that search, the slot picker and the
waiting list share."""

from datetime import datetime

from django.db.models import F, Q, QuerySet

from creneau.agenda.models import SLOT_FREE, AgendaSource, Slot
from creneau.channels.queries import ChannelScope


def free_now(now: datetime) -> Q:
    """Free at ``now``: offered, not full counting live holds, and the practitioner's time not
    held through another slot. Once ``held_until`` (``blocked_until``) has passed, every hold
    counted in the slot (over its time) is void, so the slot is free with no job having run."""
    return (
        SLOT_FREE
        & (Q(held=0) | Q(booked__lt=F("capacity") - F("held")) | Q(held_until__lte=now))
        & unblocked(now)
    )


def unblocked(now: datetime) -> Q:
    """No live hold on another slot of the practitioner overlaps this one."""
    return Q(blocked_until__isnull=True) | Q(blocked_until__lte=now)


def offerable_slots(scope: ChannelScope, now: datetime) -> QuerySet[Slot]:
    found = Slot.objects.filter(
        free_now(now),
        bookable_from__lte=now,
        bookable_until__gt=now,
        # Invariant 5: the perimeter is a sub-select of this very query.
        practitioner_role_id__in=scope.practitioner_roles().values("pk"),
    )
    if not scope.sees_reserved_visits:
        found = found.exclude(visit_type_id__in=scope.reserved_visit_types())
    # An external agenda Créneau has not seen within its freshness limit is not offered.
    return found.exclude(practitioner_role_id__in=stale_roles(now))


def stale_roles(now: datetime) -> QuerySet[AgendaSource]:
    return AgendaSource.objects.filter(stale_after__lte=now).values("practitioner_role_id")
