"""Periodic work, as plain functions: ``creneau slots generate`` and cron call them today; the
background worker will schedule them (notifications issue)."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from creneau.agenda.services import GenerationReport, slots_generate
from creneau.booking.idempotency import idempotency_purge
from creneau.booking.services import waiting_list_match, waiting_list_offers_expire


@dataclass
class RollReport:
    slots: GenerationReport
    offers_expired: int
    offers_made: int
    idempotency_keys_purged: int


def nightly_roll(
    *,
    horizon_weeks: int | None = None,
    roles=None,
    now: datetime | None = None,
    jobs: int = 1,
) -> RollReport:
    """Extend every agenda to the horizon, then offer what is new to the waiting list."""
    now = now or timezone.now()
    report = slots_generate(
        roles=roles,
        horizon_weeks=horizon_weeks or settings.CRENEAU_HORIZON_WEEKS,
        now=now,
        jobs=jobs,
    )
    expired = waiting_list_offers_expire(now=now)
    made = waiting_list_match(now=now)
    purged = idempotency_purge(now=now)
    return RollReport(
        slots=report, offers_expired=expired, offers_made=made, idempotency_keys_purged=purged
    )
