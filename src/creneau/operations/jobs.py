"""Periodic work, as plain functions, and the schedule on which ``creneau worker`` runs them:
messages due, waiting-list offers passed on, holds tidied, agendas rolled forward each night."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from creneau.agenda.models import AgendaRoll
from creneau.agenda.services import GenerationReport, slots_generate
from creneau.agenda.sources.services import agenda_sources_due
from creneau.booking.idempotency import idempotency_purge
from creneau.booking.queries import PARIS
from creneau.booking.services import holds_clean, waiting_list_match, waiting_list_offers_expire
from creneau.fhir.services import published_versions_prune
from creneau.ledger.checkpoints import checkpoint_make
from creneau.notify.services import messages_sweep
from creneau.operations.models import ScheduledJob
from creneau.ratelimit import counters_prune


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
    """Extend every agenda to the horizon, then offer what is new to the waiting list.

    Every agenda is opened from where the last roll stopped (``AgendaRoll``), not compared
    again from today: a national roll opens one new day or week of 15 million slots, it does not
    read them all. Given ``roles``, those are brought in line over the whole horizon."""
    now = now or timezone.now()
    weeks = horizon_weeks or settings.CRENEAU_HORIZON_WEEKS
    opened = None if roles is not None else AgendaRoll.objects.filter(pk=1).first()
    report = slots_generate(
        roles=roles,
        horizon_weeks=weeks,
        now=now,
        jobs=jobs,
        since=opened.opened_until if opened else None,
    )
    if roles is None:
        until = now + timedelta(weeks=weeks)
        if opened is None or opened.opened_until < until:
            AgendaRoll.objects.update_or_create(pk=1, defaults={"opened_until": until})
    expired = waiting_list_offers_expire(now=now)
    made = waiting_list_match(now=now)
    purged = idempotency_purge(now=now)
    return RollReport(
        slots=report, offers_expired=expired, offers_made=made, idempotency_keys_purged=purged
    )


# ---------------------------------------------------------------------------------------------
# The worker's schedule


@dataclass(frozen=True)
class Periodic:
    """A job the worker runs by itself: every so often, or once a day at a local time."""

    name: str
    run: Callable[[], object]
    every: timedelta | None = None
    daily_at: time | None = None

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        assert self.daily_at is not None
        local = timezone.localtime(moment, PARIS)
        today = datetime.combine(local.date(), self.daily_at, tzinfo=PARIS)
        upcoming = (
            today
            if today > local
            else datetime.combine(local.date() + timedelta(days=1), self.daily_at, tzinfo=PARIS)
        )
        return upcoming.astimezone(UTC)


def _task_results_prune() -> int:
    from django_tasks_db.models import DBTaskResult

    old = timezone.now() - timedelta(days=settings.CRENEAU_TASK_RESULTS_DAYS)
    deleted, _counts = DBTaskResult.objects.finished().filter(finished_at__lt=old).delete()
    return deleted


def _patient_data_purge() -> int:
    from creneau.staff.privacy import patient_data_purge

    return patient_data_purge()


PERIODIC = {
    job.name: job
    for job in [
        Periodic(
            "messages",
            messages_sweep,
            every=timedelta(seconds=settings.CRENEAU_SWEEP_SECONDS),
        ),
        Periodic("offers", waiting_list_offers_expire, every=timedelta(minutes=1)),
        Periodic("waiting_list", waiting_list_match, every=timedelta(minutes=5)),
        Periodic("holds", holds_clean, every=timedelta(minutes=15)),
        Periodic("counters", counters_prune, every=timedelta(minutes=15)),
        Periodic("published", published_versions_prune, every=timedelta(hours=6)),
        Periodic("sources", agenda_sources_due, every=timedelta(minutes=1)),
        Periodic(
            "ledger",
            checkpoint_make,
            every=timedelta(seconds=settings.CRENEAU_LEDGER_CHECKPOINT_SECONDS),
        ),
        Periodic("roll", nightly_roll, daily_at=time(2, 30)),
        Periodic("task_results", _task_results_prune, daily_at=time(3, 30)),
        Periodic("patient_data", _patient_data_purge, daily_at=time(3, 45)),
    ]
}


def periodic_enqueue_due(*, now: datetime | None = None) -> list[str]:
    """Enqueue each periodic job whose time has come, once whatever the number of workers: the
    run is claimed by moving its next time forward in one conditional update."""
    from creneau.operations.tasks import run_periodic

    now = now or timezone.now()
    started = []
    for job in PERIODIC.values():
        first = now if job.every is not None else job.next_after(now)
        ScheduledJob.objects.get_or_create(name=job.name, defaults={"next_run_at": first})
        with transaction.atomic():
            claimed = ScheduledJob.objects.filter(name=job.name, next_run_at__lte=now).update(
                next_run_at=job.next_after(now), last_run_at=now
            )
            if claimed:
                run_periodic.enqueue(job.name)
                started.append(job.name)
    return started
