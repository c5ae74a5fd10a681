"""Connecting a practitioner role to its agenda source and syncing it. A sync that fails (the
server is down, answers garbage, too much or too slowly) changes nothing stored but the
source's status: its busy time and the slots stay as they were, and the freshness limit decides
when its slots leave search."""

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import AgendaSource, BusyInterval, CalendarObject, Slot
from creneau.agenda.services import AgendaError, slots_generate
from creneau.agenda.sources import caldav_calendar, calendar, fhir_agenda
from creneau.agenda.sources.calendar import merged
from creneau.agenda.sources.fhir_agenda import RemoteSlot
from creneau.directory.models import PractitionerRole, VisitType
from creneau.errors import DomainError
from creneau.sealing import seal

KINDS = {
    AgendaSource.Kind.CALENDAR: calendar,
    AgendaSource.Kind.CALDAV: caldav_calendar,
    AgendaSource.Kind.FHIR: fhir_agenda,
}


# Sources the hub does not fetch: its own rules, and the HIS, which sends its SIU itself.
PUSHED = (AgendaSource.Kind.BUILTIN, AgendaSource.Kind.HIS)


def _module(source: AgendaSource):
    module = KINDS.get(AgendaSource.Kind(source.kind))
    if module is None:
        raise AgendaError(
            "source_kind_unsupported",
            _("Agenda sources of kind %(kind)s cannot be synced yet.") % {"kind": source.kind},
        )
    return module


@transaction.atomic
def agenda_source_connect(
    *,
    role: PractitionerRole,
    kind: str,
    url: str = "",
    username: str = "",
    secret: str = "",
    hosted_by_hospital: bool = False,
    freshness_minutes: int = 60,
    sync_minutes: int = 15,
    remote_schedule: str = "",
    remote_api: str = "ihe",  # AgendaSource.RemoteApi
    default_visit_type: VisitType | None = None,
) -> AgendaSource:
    """Give ``role`` its agenda source (replacing the one it had); the first sync is due at
    once. The secret is sealed before it is stored and never comes back out but to the sync."""
    if kind not in AgendaSource.Kind.values:
        raise AgendaError("source_kind_unknown", _("Unknown agenda source kind: %s.") % kind[:40])
    source = AgendaSource.objects.filter(practitioner_role=role).first() or AgendaSource(
        practitioner_role=role
    )
    previous = source.kind if source.pk else None
    source.kind = kind
    source.url = url
    source.username = username
    source.sealed_secret = seal(secret) if secret else ""
    source.sync_token = ""
    if source.pk:  # a new address: what the hub held of the old calendar goes
        CalendarObject.objects.filter(source_id=source.pk).delete()
    source.hosted_by_hospital = hosted_by_hospital
    source.remote_schedule = remote_schedule
    source.remote_api = remote_api
    source.default_visit_type = default_visit_type
    source.freshness_minutes = freshness_minutes
    source.sync_minutes = sync_minutes
    source.etag = ""
    source.last_error = ""
    source.next_sync_at = timezone.now()
    if kind == AgendaSource.Kind.FHIR and not (url and remote_schedule):
        raise AgendaError(
            "source_invalid", _("A FHIR source needs the server's base address and a schedule id.")
        )
    try:
        source.full_clean()
    except Exception as error:
        raise AgendaError("source_invalid", str(error)[:300]) from error
    source.save()
    if previous == AgendaSource.Kind.FHIR and kind != AgendaSource.Kind.FHIR:
        # Slots of a former remote agenda go (those booked stay, for their appointments).
        _remote_slots_apply(source, [], timezone.now())
    if kind in PUSHED:
        # Its own rules make the slots; nothing to fetch, so nothing goes stale (the HIS
        # sends its appointments as they are made, and keeps them when connected again).
        if previous != kind:
            BusyInterval.objects.filter(source=source).delete()
        AgendaSource.objects.filter(pk=source.pk).update(stale_after=None, next_sync_at=None)
    if kind in (*PUSHED, AgendaSource.Kind.FHIR):
        # A remote agenda's slots replace the rules': the role's free built-in slots go.
        slots_generate(roles=PractitionerRole.objects.filter(pk=role.pk))
    return source


@dataclass(frozen=True)
class SyncOutcome:
    source: AgendaSource
    ok: bool
    busy_periods: int = 0
    slots_removed: int = 0
    booked_in_busy_time: tuple[str, ...] = ()
    error: str = ""


def agenda_source_sync(*, source: AgendaSource, now: datetime | None = None) -> SyncOutcome:
    """Read the source; on success, its busy time replaces the previous one and the role's
    built-in slots follow at once (those in busy time leave search; a booked one stays, and is
    reported); on failure, only the source's status changes."""
    now = now or timezone.now()
    if source.kind in PUSHED:
        return SyncOutcome(source=source, ok=True)
    weeks = _horizon_weeks(source, now)
    until = now + timedelta(weeks=weeks)
    next_sync = now + timedelta(minutes=source.sync_minutes)
    try:
        if source.kind == AgendaSource.Kind.FHIR:
            remote = fhir_agenda.FhirAgenda(source).slots(now=now, until=until)
        else:
            found = _module(source).busy(source, now=now, until=until)
    except DomainError as error:
        AgendaSource.objects.filter(pk=source.pk).update(
            last_attempt_at=now, next_sync_at=next_sync, last_error=error.message[:500]
        )
        source.refresh_from_db()
        return SyncOutcome(source=source, ok=False, error=error.message)
    removed = 0
    booked: tuple[str, ...] = ()
    with transaction.atomic():
        # One sync of a source at a time (a worker's and a command's may meet): the second
        # waits here, then finds the slots the first left (two generations of one role at
        # once would both insert the same new slots).
        AgendaSource.objects.select_for_update().filter(pk=source.pk).first()
        if source.kind == AgendaSource.Kind.FHIR:
            stats = _remote_slots_apply(source, remote, now)
            _succeeded(source, now, next_sync, last_report={**stats, "at": now.isoformat()})
            source.refresh_from_db()
            return SyncOutcome(source=source, ok=True, slots_removed=stats["slots_removed"])
        # When the server says nothing changed (304), the slots already follow this busy
        # time (and the nightly roll applies it to the days it adds): nothing to regenerate.
        if found.objects is not None:  # a CalDAV calendar's objects, as they now stand
            CalendarObject.objects.filter(source=source).delete()
            CalendarObject.objects.bulk_create(
                CalendarObject(source=source, href=href[:500], data=data)
                for href, data in found.objects.items()
            )
        if not found.unchanged:
            BusyInterval.objects.filter(source=source).delete()
            BusyInterval.objects.bulk_create(
                BusyInterval(source=source, starts_at=start, ends_at=end)
                for start, end in found.intervals
            )
            role = PractitionerRole.objects.filter(pk=source.practitioner_role_id)
            report = slots_generate(roles=role, now=now, horizon_weeks=weeks)
            removed = report.removed
            booked = tuple(str(slot.public_id) for slot in report.orphaned)
            conflicts_tell(source, report.orphaned, now)
        stats = {
            "busy_periods": BusyInterval.objects.filter(source=source).count(),
            "slots_removed": removed,
            "booked_in_busy_time": list(booked),
            "at": now.isoformat(timespec="seconds"),
        }
        _succeeded(
            source,
            now,
            next_sync,
            etag=found.etag[:200],
            sync_token=found.sync_token[:500],
            last_report=stats,
        )
    source.refresh_from_db()
    return SyncOutcome(
        source=source,
        ok=True,
        busy_periods=stats["busy_periods"],
        slots_removed=removed,
        booked_in_busy_time=booked,
    )


def conflicts_tell(source: AgendaSource, orphaned: list[Slot], now: datetime) -> None:
    """The booked slots the source's busy time now covers, told to the practitioner and the
    department (notify.services.conflicts_report)."""
    if orphaned:
        from creneau.notify.services import conflicts_report

        conflicts_report(
            slot_ids=[slot.pk for slot in orphaned], source=source.get_kind_display(), now=now
        )


def _succeeded(source: AgendaSource, now: datetime, next_sync: datetime, **more) -> None:
    """A sync went through: the source is fresh until its freshness limit from now."""
    AgendaSource.objects.filter(pk=source.pk).update(
        last_attempt_at=now,
        last_success_at=now,
        next_sync_at=next_sync,
        stale_after=now + timedelta(minutes=source.freshness_minutes),
        last_error="",
        **more,
    )


def _remote_slots_apply(source: AgendaSource, remote: list[RemoteSlot], now: datetime) -> dict:
    """The role's slots of its remote agenda become the free ones it listed: new ones are
    offered, changed ones follow, those it no longer lists leave (unless a patient holds or
    booked one here: the hold books through the remote, which refuses if it was taken there)."""
    role = PractitionerRole.objects.select_related("establishment").get(
        pk=source.practitioner_role_id
    )
    zone = ZoneInfo(role.establishment.time_zone)
    codes = {code for slot in remote for code in slot.service_codes}
    visit_types = {
        visit_type.code: visit_type
        for visit_type in VisitType.objects.filter(
            organisation_id=role.establishment.organisation_id, code__in=codes, is_active=True
        )
    }
    existing = {
        slot.external_id: slot
        for slot in Slot.objects.filter(practitioner_role=role, source=Slot.Source.FHIR)
    }
    created, updated, unmapped = [], [], 0
    seen: set[str] = set()
    # The unique key spans every source: a built-in slot kept for its appointment holds its
    # time and visit type.
    taken_keys = set(
        Slot.objects.filter(practitioner_role=role).values_list("visit_type_id", "starts_at")
    )
    for found in remote:
        visit_type = next(
            (visit_types[code] for code in found.service_codes if code in visit_types),
            source.default_visit_type,
        )
        if visit_type is None:
            unmapped += 1
            continue
        seen.add(found.id)
        local = timezone.localtime(found.starts_at, zone)
        fields = {
            "ends_at": found.ends_at,
            "local_minute": local.hour * 60 + local.minute,
            "visit_type_id": visit_type.pk,
            "specialty_id": visit_type.specialty_id,
            "bookable_from": found.starts_at - timedelta(days=visit_type.max_horizon_days),
            "bookable_until": found.starts_at - timedelta(minutes=visit_type.min_notice_minutes),
            "is_offered": True,
        }
        slot = existing.get(found.id)
        if slot is None:
            if (visit_type.pk, found.starts_at) in taken_keys:
                continue  # two remote slots of one visit type at one time: one place here
            taken_keys.add((visit_type.pk, found.starts_at))
            created.append(
                Slot(
                    practitioner_role=role,
                    practitioner_id=role.practitioner_id,
                    establishment_id=role.establishment_id,
                    starts_at=found.starts_at,
                    source=Slot.Source.FHIR,
                    external_id=found.id,
                    **fields,
                )
            )
            continue
        if slot.booked or slot.starts_at != found.starts_at:
            continue  # a booked slot keeps its time; a moved one comes back under a new id
        if any(getattr(slot, name) != value for name, value in fields.items()):
            for name, value in fields.items():
                setattr(slot, name, value)
            updated.append(slot)
    Slot.objects.bulk_create(created, batch_size=1000)
    Slot.objects.bulk_update(
        updated,
        [
            "ends_at",
            "local_minute",
            "visit_type_id",
            "specialty_id",
            "bookable_from",
            "bookable_until",
            "is_offered",
        ],
        batch_size=1000,
    )
    gone = [slot.pk for key, slot in existing.items() if key not in seen]
    # Re-checked in the DELETE itself, as for built-in slots: a taken slot is never deleted.
    _total, per_model = Slot.objects.filter(
        Q(held=0) | Q(held_until__lte=now), pk__in=gone, booked=0
    ).delete()
    removed = per_model.get(Slot._meta.label, 0)
    return {
        "remote_slots": len(remote),
        "slots_created": len(created),
        "slots_updated": len(updated),
        "slots_removed": removed,
        "unmapped": unmapped,
    }


def _horizon_weeks(source: AgendaSource, now: datetime) -> int:
    """How far the busy time must reach: the hub's horizon, or further when the role already
    has slots beyond it (a longer roll made them): busy time takes those out too."""
    last = Slot.objects.filter(practitioner_role_id=source.practitioner_role_id).aggregate(
        last=Max("starts_at")
    )["last"]
    weeks = settings.CRENEAU_HORIZON_WEEKS
    if last is not None and last > now:
        weeks = max(weeks, math.ceil((last - now) / timedelta(weeks=1)) + 1)
    return weeks


def agenda_sources_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """The worker's periodic pass: sync the sources whose time has come, each claimed by a
    conditional update so that two workers never sync the same one at once."""
    now = now or timezone.now()
    synced = 0
    due = (
        AgendaSource.objects.exclude(kind__in=PUSHED)
        .filter(Q(next_sync_at__lte=now) | Q(next_sync_at__isnull=True))
        .order_by("next_sync_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in list(due):
        lease = now + timedelta(minutes=5)
        if not AgendaSource.objects.filter(
            Q(next_sync_at__lte=now) | Q(next_sync_at__isnull=True), pk=pk
        ).update(next_sync_at=lease):
            continue
        agenda_source_sync(source=AgendaSource.objects.get(pk=pk), now=now)
        synced += 1
    return synced


def agenda_feed_renew(*, source: AgendaSource) -> str:
    """A new secret for the practitioner's private feed of bookings (the old one stops working
    at once); returned once, only its hash is kept."""
    token = secrets.token_urlsafe(24)
    AgendaSource.objects.filter(pk=source.pk).update(
        feed_token_hash=hashlib.sha256(token.encode()).hexdigest()
    )
    return token


def agenda_source_test(*, source: AgendaSource) -> tuple[bool, str]:
    """Whether the source answers now (nothing stored changes)."""
    if source.kind == AgendaSource.Kind.BUILTIN:
        return True, _("Créneau's own agenda: nothing to reach.")
    if source.kind == AgendaSource.Kind.HIS:
        from creneau.notify.his import his_reachable

        return his_reachable()
    try:
        return True, _module(source).test(source, now=timezone.now())
    except DomainError as error:
        return False, error.message


def busy_intervals(
    *, role: PractitionerRole, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The busy time Créneau holds for ``role`` between ``start`` and ``end``, merged: why a
    slot is not offered."""
    found = BusyInterval.objects.filter(
        source__practitioner_role=role, ends_at__gt=start, starts_at__lt=end
    ).values_list("starts_at", "ends_at")
    return [(max(a, start), min(b, end)) for a, b in merged(list(found))]


def offered_in(role: PractitionerRole, start: datetime, end: datetime) -> int:
    return Slot.objects.filter(
        practitioner_role=role, starts_at__gte=start, starts_at__lt=end, is_offered=True
    ).count()
