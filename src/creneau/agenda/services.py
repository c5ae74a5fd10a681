"""Every change to agendas: rules, absences, and the slots generated from them."""

import multiprocessing
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import Absence, AgendaSource, AvailabilityRule, BusyInterval, Slot
from creneau.agenda.recurrence import (
    cut_period,
    is_public_holiday,
    occurrence_days,
    overlaps_any,
    steady_offset,
)
from creneau.directory.identifiers import new_public_ids
from creneau.directory.models import (
    Department,
    Establishment,
    Practitioner,
    PractitionerRole,
    VisitType,
)
from creneau.errors import DomainError

_ROLE_BATCH = 200


class AgendaError(DomainError):
    status = 422

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(code, message)
        self.field = field


def _validated(instance, *, exclude: Sequence[str] = ()) -> None:
    try:
        instance.full_clean(exclude=list(exclude))
    except ValidationError as error:
        name, messages = next(iter(error.message_dict.items()))
        raise AgendaError(
            "invalid_" + ("rule" if isinstance(instance, AvailabilityRule) else "absence"),
            f"{name}: {messages[0]}",
            field=name,
        ) from error


# ---------------------------------------------------------------------------------------------
# Rules and absences


def availability_rule_save(
    *,
    practitioner_role: PractitionerRole,
    visit_types: Sequence[VisitType],
    starts_on: date,
    start_time: time,
    end_time: time,
    recurrence: str = "FREQ=WEEKLY",
    ends_on: date | None = None,
    slot_minutes: int | None = None,
    capacity: int = 1,
    open_on_public_holidays: bool = False,
    label: str = "",
    rule: AvailabilityRule | None = None,
    horizon_weeks: int | None = None,
    now: datetime | None = None,
) -> tuple[AvailabilityRule, "GenerationReport"]:
    """Create a rule, or change ``rule``, and regenerate that practitioner role's slots at once,
    in the same transaction: patients never see slots of a rule that no longer exists."""
    if not visit_types:
        raise AgendaError(
            "invalid_rule", _("A period must offer at least one visit type."), field="visit_types"
        )
    organisation_id = practitioner_role.establishment.organisation_id
    for visit_type in visit_types:
        if visit_type.organisation_id != organisation_id:
            raise AgendaError(
                "invalid_rule",
                _("The visit type %(code)s belongs to another organisation.")
                % {"code": visit_type.code},
                field="visit_types",
            )
    with transaction.atomic():
        rule = rule or AvailabilityRule(practitioner_role=practitioner_role)
        if rule.practitioner_role_id != practitioner_role.pk:
            raise AgendaError("invalid_rule", _("A rule cannot move to another practitioner."))
        rule.recurrence = recurrence
        rule.starts_on = starts_on
        rule.ends_on = ends_on
        rule.start_time = start_time
        rule.end_time = end_time
        rule.slot_minutes = slot_minutes
        rule.capacity = capacity
        rule.open_on_public_holidays = open_on_public_holidays
        rule.label = label
        _validated(rule)
        rule.save()
        rule.visit_types.set(visit_types)
        report = slots_generate(
            roles=PractitionerRole.objects.filter(pk=practitioner_role.pk),
            horizon_weeks=horizon_weeks,
            now=now,
        )
    return rule, report


def availability_rule_end(
    *, rule: AvailabilityRule, horizon_weeks: int | None = None, now: datetime | None = None
) -> "GenerationReport":
    """Switch a rule off; its free slots go, its booked ones are reported for staff to move."""
    with transaction.atomic():
        rule.is_active = False
        rule.save(update_fields=["is_active", "updated_at"])
        return slots_generate(
            roles=PractitionerRole.objects.filter(pk=rule.practitioner_role_id),
            horizon_weeks=horizon_weeks,
            now=now,
        )


@dataclass(frozen=True)
class PlannedSlot:
    starts_at: datetime
    ends_at: datetime
    visit_type_id: int


@dataclass
class RulePreview:
    """What saving (or ending) a rule would do to its practitioner role's slots, from now to
    the horizon: the slots it opens, the free ones it closes, and the booked ones it leaves
    uncovered (their appointments stay, staff move them)."""

    opening: list[PlannedSlot]
    closing: list[PlannedSlot]
    uncovered: list[int]  # slot ids


class _PreviewDone(Exception):
    def __init__(self, preview: RulePreview) -> None:
        self.preview = preview


def _slot_plan(role: PractitionerRole) -> dict[tuple[datetime, int], PlannedSlot]:
    return {
        (starts_at, visit_type_id): PlannedSlot(starts_at, ends_at, visit_type_id)
        for starts_at, ends_at, visit_type_id in Slot.objects.filter(
            practitioner_role=role
        ).values_list("starts_at", "ends_at", "visit_type_id")
    }


def availability_rule_preview(
    *,
    practitioner_role: PractitionerRole,
    rule: AvailabilityRule | None = None,
    ending: bool = False,
    now: datetime | None = None,
    **fields,
) -> RulePreview:
    """The change ``availability_rule_save`` (or ``availability_rule_end`` when ``ending``)
    would make, found by making it and rolling it back: the preview is the change itself, not
    a second reckoning that could differ from it."""
    now = now or timezone.now()
    before = _slot_plan(practitioner_role)
    try:
        with transaction.atomic():
            if ending:
                assert rule is not None
                report = availability_rule_end(rule=rule, now=now)
            else:
                _rule, report = availability_rule_save(
                    practitioner_role=practitioner_role, rule=rule, now=now, **fields
                )
            after = _slot_plan(practitioner_role)
            raise _PreviewDone(
                RulePreview(
                    opening=sorted(
                        (after[key] for key in after.keys() - before.keys()),
                        key=lambda slot: (slot.starts_at, slot.visit_type_id),
                    ),
                    closing=sorted(
                        (before[key] for key in before.keys() - after.keys()),
                        key=lambda slot: (slot.starts_at, slot.visit_type_id),
                    ),
                    uncovered=[slot.pk for slot in report.orphaned],
                )
            )
    except _PreviewDone as done:
        if rule is not None:
            rule.refresh_from_db()
        return done.preview


def absence_create(
    *,
    starts_at: datetime,
    ends_at: datetime,
    practitioner: Practitioner | None = None,
    department: Department | None = None,
    establishment: Establishment | None = None,
    practitioner_role: PractitionerRole | None = None,
    reason: str = "",
    horizon_weeks: int | None = None,
) -> tuple[Absence, "GenerationReport"]:
    """Record leave or a closure, or block time in one agenda, and take the slots it covers
    out of the offer."""
    with transaction.atomic():
        absence = Absence(
            practitioner_role=practitioner_role,
            practitioner=practitioner,
            department=department,
            establishment=establishment,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason,
        )
        subjects = (practitioner_role, practitioner, department, establishment)
        if sum(x is not None for x in subjects) != 1:
            raise AgendaError(
                "invalid_absence",
                _(
                    "An absence concerns one agenda, one practitioner, one department or one "
                    "establishment."
                ),
            )
        _validated(absence)
        absence.save()
        report = slots_generate(roles=_roles_of(absence), horizon_weeks=horizon_weeks)
    return absence, report


def absence_remove(*, absence: Absence, horizon_weeks: int | None = None) -> "GenerationReport":
    """Withdraw leave or a closure: the slots it covered come back."""
    with transaction.atomic():
        roles = list(_roles_of(absence))
        absence.delete()
        return slots_generate(roles=roles, horizon_weeks=horizon_weeks)


def _roles_of(absence: Absence):
    roles = PractitionerRole.objects.all()
    if absence.practitioner_role_id:
        return roles.filter(pk=absence.practitioner_role_id)
    if absence.practitioner_id:
        return roles.filter(practitioner_id=absence.practitioner_id)
    if absence.department_id:
        return roles.filter(department_id=absence.department_id)
    return roles.filter(establishment_id=absence.establishment_id)


# ---------------------------------------------------------------------------------------------
# Slot generation


@dataclass
class GenerationReport:
    roles: int = 0
    created: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    # Booked slots that no rule covers any more: still there for their appointments, no longer
    # offered; staff should move those patients.
    orphaned: list[Slot] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "roles": self.roles,
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "orphaned": [slot.public_id for slot in self.orphaned],
        }


# What a rule asks of one slot, as a plain tuple in this order (a national roll makes millions).
_COMPARED = ("ends_at", "local_minute", "capacity", "rule_id", "bookable_from", "bookable_until")
_Wanted = tuple[datetime, int, int, int, datetime, datetime]


def slots_generate(
    *,
    roles: Iterable[PractitionerRole] | None = None,
    horizon_weeks: int | None = None,
    now: datetime | None = None,
    jobs: int = 1,
    since: datetime | None = None,
) -> GenerationReport:
    """Bring the built-in slots of ``roles`` (all by default) in line with their rules, from
    now (or ``since``, when later: the nightly roll) to the horizon. Idempotent: running it
    twice changes nothing the second time; it never duplicates a slot (the unique key forbids
    it) and never deletes one that is booked or held.

    ``jobs`` above one splits the roles between that many processes, each with its own
    database connection (PostgreSQL, outside any transaction: the nightly roll).
    """
    now = now or timezone.now()
    horizon_weeks = horizon_weeks or settings.CRENEAU_HORIZON_WEEKS
    horizon_end = now + timedelta(weeks=horizon_weeks)
    start = max(now, since) if since else now
    if start >= horizon_end:
        return GenerationReport()
    if roles is None:
        roles = PractitionerRole.objects.all()
    role_list = list(
        roles.select_related("establishment", "practitioner").order_by("pk")
        if hasattr(roles, "select_related")
        else roles
    )
    if jobs > 1 and connection.vendor == "postgresql" and not connection.in_atomic_block:
        return _generate_in_processes(role_list, horizon_weeks, now, jobs, start)
    report = GenerationReport()
    for offset in range(0, len(role_list), _ROLE_BATCH):
        with transaction.atomic():
            batch = role_list[offset : offset + _ROLE_BATCH]
            _generate_batch(batch, now, start, horizon_end, report)
    return report


def _generate_share(
    role_ids: list[int], horizon_weeks: int | None, now: datetime, since: datetime
) -> dict:
    report = slots_generate(
        roles=PractitionerRole.objects.filter(pk__in=role_ids),
        horizon_weeks=horizon_weeks,
        now=now,
        since=since,
    )
    connection.close()
    summary = report.as_dict()
    summary["orphaned"] = [(s.pk, s.public_id, s.starts_at) for s in report.orphaned]
    return summary


def _generate_in_processes(
    roles: list[PractitionerRole],
    horizon_weeks: int | None,
    now: datetime,
    jobs: int,
    since: datetime,
) -> GenerationReport:
    # Forked children must not share the parent's connection: close it, each opens its own.
    connections.close_all()
    shares = [[role.pk for role in roles[n::jobs]] for n in range(jobs)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        summaries = list(
            pool.map(_generate_share, shares, [horizon_weeks] * jobs, [now] * jobs, [since] * jobs)
        )
    report = GenerationReport()
    for summary in summaries:
        for name in ("roles", "created", "updated", "removed", "unchanged"):
            setattr(report, name, getattr(report, name) + summary[name])
        report.orphaned += [
            Slot(pk=pk, public_id=public_id, starts_at=starts_at)
            for pk, public_id, starts_at in summary["orphaned"]
        ]
    return report


_EXISTING = (
    "pk",
    "public_id",
    "practitioner_role_id",
    "visit_type_id",
    "starts_at",
    "booked",
    "held",
    "held_until",
    "is_offered",
    *_COMPARED,
)
# Where a row of _EXISTING says whether it is offered, and where what a rule sets begins.
_OFFERED = _EXISTING.index("is_offered")
_SET_BY_RULE = len(_EXISTING) - len(_COMPARED)


# Advisory lock space of slot generation, beside booking's ("CRN" + 0 to 2).
_GENERATION_SPACE = 0x435251


def _lock_roles(role_ids: list[int]) -> None:
    """One generation of a role at a time (the nightly roll, a calendar's sync, a rule saved):
    two at once would both insert the role's missing slots, and the second would fail on the
    unique key, taking its whole batch of roles with it. Taken in id order, in one statement,
    so two batches never wait on each other in a circle. SQLite writes one at a time anyway."""
    if connection.vendor != "postgresql" or not role_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_advisory_xact_lock(%s, k)) FROM "
            "(SELECT unnest(%s::int[]) AS k ORDER BY 1) AS roles",
            [_GENERATION_SPACE, sorted(role_ids)],
        )


def _generate_batch(
    roles: list[PractitionerRole],
    now: datetime,
    start: datetime,
    horizon_end: datetime,
    report: GenerationReport,
) -> None:
    """The slots of ``roles`` starting from ``start`` to ``horizon_end``, in line with their
    rules; ``now`` decides which holds have lapsed."""
    role_ids = [role.pk for role in roles]
    _lock_roles(role_ids)
    rules_by_role: dict[int, list[AvailabilityRule]] = defaultdict(list)
    for rule in AvailabilityRule.objects.filter(
        practitioner_role_id__in=role_ids, is_active=True
    ).order_by("pk"):
        rules_by_role[rule.practitioner_role_id].append(rule)
    # Each visit type once, however many rules offer it (not one instance per rule).
    links = AvailabilityRule.visit_types.through.objects.filter(
        availabilityrule__practitioner_role_id__in=role_ids, availabilityrule__is_active=True
    ).values_list("availabilityrule_id", "visittype_id")
    offered: dict[int, list[int]] = defaultdict(list)
    for rule_id, visit_type_id in links:
        offered[rule_id].append(visit_type_id)
    visit_types = VisitType.objects.in_bulk({v for ids in offered.values() for v in ids})
    visit_types_of = {
        rule_id: [visit_types[v] for v in sorted(ids)] for rule_id, ids in offered.items()
    }
    absences = _absences_for(roles, start, horizon_end)
    # A role whose agenda is another system's (FHIR) has that system's slots, not the rules'.
    remote = set(
        AgendaSource.objects.filter(
            practitioner_role_id__in=role_ids, kind=AgendaSource.Kind.FHIR
        ).values_list("practitioner_role_id", flat=True)
    )
    # Plain tuples, not model instances: a national roll compares millions of slots.
    existing: dict[int, dict[tuple[int, datetime], tuple]] = defaultdict(dict)
    for row in Slot.objects.filter(
        practitioner_role_id__in=role_ids,
        source=Slot.Source.BUILTIN,
        starts_at__gte=start,
        starts_at__lt=horizon_end,
    ).values_list(*_EXISTING):
        existing[row[2]][(row[3], row[4])] = row

    to_create: list[tuple] = []
    to_update: list[Slot] = []
    to_delete: list[int] = []
    for role in roles:
        report.roles += 1
        rules = [] if role.pk in remote else rules_by_role[role.pk]
        wanted = _wanted_slots(role, rules, visit_types_of, absences[role.pk], start, horizon_end)
        have = existing[role.pk]
        for (visit_type, specialty), slots in wanted.items():
            for starts_at, spec in slots.items():
                row = have.pop((visit_type, starts_at), None)
                if row is None:
                    to_create.append((role, visit_type, specialty, starts_at, spec))
                    continue
                if row[_OFFERED] and row[_SET_BY_RULE:] == spec:  # as the rules want it
                    report.unchanged += 1
                    continue
                current = dict(zip(_EXISTING, row, strict=True))
                slot = Slot(
                    pk=current["pk"], is_offered=True, **dict(zip(_COMPARED, spec, strict=True))
                )
                # Fewer places than already taken would break invariant 1: keep them.
                slot.capacity = max(slot.capacity, current["booked"] + current["held"])
                to_update.append(slot)
        for row in have.values():
            current = dict(zip(_EXISTING, row, strict=True))
            held = current["held"] and current["held_until"] and current["held_until"] > now
            if not current["booked"] and not held:
                to_delete.append(current["pk"])
                continue
            # Reported once, when the slot stops being offered: a later save of the same
            # agenda does not repeat it.
            if current["booked"] and current["is_offered"]:
                report.orphaned.append(
                    Slot(pk=current["pk"], public_id=current["public_id"], starts_at=row[4])
                )
            if current["is_offered"]:
                slot = Slot(pk=current["pk"], is_offered=False)
                for name in _COMPARED:
                    setattr(slot, name, current[name])
                to_update.append(slot)
    _insert_slots(to_create)
    Slot.objects.bulk_update(to_update, ["is_offered", *_COMPARED], batch_size=1000)
    removed = 0
    for offset in range(0, len(to_delete), 5000):
        # Re-checked in the DELETE itself: a booking or a hold may have taken the slot since it
        # was read (a calendar's sync racing a patient), and a taken slot is never deleted.
        _total, per_model = Slot.objects.filter(
            Q(held=0) | Q(held_until__lte=now),
            pk__in=to_delete[offset : offset + 5000],
            booked=0,
        ).delete()
        removed += per_model.get(Slot._meta.label, 0)
    report.created += len(to_create)
    report.updated += len(to_update)
    report.removed += removed


_INSERTED = (
    "public_id",
    "practitioner_role_id",
    "practitioner_id",
    "establishment_id",
    "visit_type_id",
    "specialty_id",
    "starts_at",
    "ends_at",
    "local_minute",
    "bookable_from",
    "bookable_until",
    "capacity",
    "booked",
    "held",
    "overlaps",
    "is_offered",
    "source",
    "rule_id",
    "external_id",
)
# PostgreSQL types of the columns above, in the same order, for binary COPY.
_COPY_TYPES = (
    ["varchar"]
    + ["int8"] * 5
    + ["timestamptz"] * 2
    + ["int2"]
    + ["timestamptz"] * 2
    + ["int2"] * 4
    + ["bool", "varchar", "int8", "varchar"]
)


def _insert_slots(planned: list[tuple]) -> None:
    """Insert new slots in bulk, below the ORM: COPY on PostgreSQL, executemany on SQLite.
    The table's unique key still refuses any duplicate. Should two public ids of the same
    second collide (``new_public_ids``), the batch draws new ones and is written again."""
    if not planned:
        return
    for attempt in range(3):
        try:
            with transaction.atomic():  # a savepoint: a refused COPY leaves the batch usable
                _insert_slots_once(planned)
            return
        except IntegrityError as error:
            if "public_id" not in str(error) or attempt == 2:
                raise


def _insert_slots_once(planned: list[tuple]) -> None:
    postgres = connection.vendor == "postgresql"

    def value(moment: datetime):
        # SQLite stores what Django's adapter would: naive UTC text. Every moment here is
        # already in UTC (recurrence.local_to_utc) and on a whole minute, so this is exact.
        return moment if postgres else moment.strftime("%Y-%m-%d %H:%M:%S")

    public_ids = new_public_ids(len(planned))
    rows = [
        (
            public_id,
            role.pk,
            role.practitioner_id,
            role.establishment_id,
            visit_type,
            specialty,
            value(starts_at),
            value(ends_at),
            local_minute,
            value(bookable_from),
            value(bookable_until),
            capacity,
            0,
            0,
            0,
            True,
            "builtin",  # Slot.Source.BUILTIN
            rule_id,
            "",
        )
        for public_id, (
            role,
            visit_type,
            specialty,
            starts_at,
            (ends_at, local_minute, capacity, rule_id, bookable_from, bookable_until),
        ) in zip(public_ids, planned, strict=True)
    ]
    table = Slot._meta.db_table
    columns = ", ".join(connection.ops.quote_name(column) for column in _INSERTED)
    with connection.cursor() as cursor:
        if postgres:
            # Binary COPY: no text formatting of four timestamps a row on either side. Below
            # Django's cursor: its errors wrapped as Django's (IntegrityError) by hand.
            copying = f"COPY {table} ({columns}) FROM STDIN (FORMAT BINARY)"
            with connection.wrap_database_errors, cursor.cursor.copy(copying) as copy:
                copy.set_types(_COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(_INSERTED))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608


def _absences_for(
    roles: list[PractitionerRole], now: datetime, horizon_end: datetime
) -> dict[int, list[tuple[datetime, datetime]]]:
    practitioners = {role.practitioner_id for role in roles}
    departments = {role.department_id for role in roles if role.department_id}
    establishments = {role.establishment_id for role in roles}
    found = Absence.objects.filter(
        Q(practitioner_role_id__in=[role.pk for role in roles])
        | Q(practitioner_id__in=practitioners)
        | Q(department_id__in=departments)
        | Q(establishment_id__in=establishments),
        ends_at__gt=now,
        starts_at__lt=horizon_end,
    )
    by_subject: dict[tuple[str, int], list[tuple[datetime, datetime]]] = defaultdict(list)
    for absence in found:
        if absence.practitioner_role_id:
            key = ("r", absence.practitioner_role_id)
        elif absence.practitioner_id:
            key = ("p", absence.practitioner_id)
        elif absence.department_id:
            key = ("d", absence.department_id)
        else:
            key = ("e", absence.establishment_id)
        by_subject[key].append((absence.starts_at, absence.ends_at))
    # The busy time an external agenda gave for a role counts as the role's absence.
    busy: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for role_id, starts_at, ends_at in BusyInterval.objects.filter(
        source__practitioner_role_id__in=[role.pk for role in roles],
        ends_at__gt=now,
        starts_at__lt=horizon_end,
    ).values_list("source__practitioner_role_id", "starts_at", "ends_at"):
        busy[role_id].append((starts_at, ends_at))
    return defaultdict(
        list,
        {
            role.pk: by_subject[("r", role.pk)]
            + by_subject[("p", role.practitioner_id)]
            + by_subject[("d", role.department_id or 0)]
            + by_subject[("e", role.establishment_id)]
            + busy[role.pk]
            for role in roles
        },
    )


def _wanted_slots(
    role: PractitionerRole,
    rules: list[AvailabilityRule],
    visit_types_of: dict[int, list[VisitType]],
    absences: list[tuple[datetime, datetime]],
    now: datetime,
    horizon_end: datetime,
) -> dict[tuple[int, int], dict[datetime, _Wanted]]:
    """What the rules ask for: per (visit type, specialty), slot start → its details. Where two
    rules give the same slot, the first rule wins, so the result never holds a slot twice."""
    establishment = role.establishment
    zone = ZoneInfo(establishment.time_zone)
    first_day = timezone.localtime(now, zone).date()
    last_day = timezone.localtime(horizon_end, zone).date()
    wanted: dict[tuple[int, int], dict[datetime, _Wanted]] = defaultdict(dict)
    for rule in rules:
        days = occurrence_days(
            rule.recurrence,
            starts_on=rule.starts_on,
            ends_on=rule.ends_on,
            first=first_day,
            last=last_day,
        )
        if not rule.open_on_public_holidays:
            days = tuple(
                d for d in days if not is_public_holiday(d, postcode=establishment.postcode)
            )
        for visit_type in visit_types_of.get(rule.pk, ()):
            if not visit_type.is_active:
                continue
            slots = wanted[(visit_type.pk, visit_type.specialty_id)]
            notice = timedelta(minutes=visit_type.min_notice_minutes)
            horizon = timedelta(days=visit_type.max_horizon_days)
            cut = {
                "opens": rule.start_time,
                "closes": rule.end_time,
                "step_minutes": rule.slot_minutes or visit_type.duration_minutes,
                "duration_minutes": visit_type.duration_minutes,
            }
            pattern = _day_pattern(**cut)
            for day in days:
                offset = steady_offset(day, zone)
                if offset is None:
                    planned_day = [
                        (p.local_minute, p.starts_at, p.ends_at)
                        for p in cut_period(day, zone=zone, **cut)
                    ]
                else:
                    base = datetime.combine(day, time(), tzinfo=UTC) - offset
                    planned_day = [(m, base + start, base + end) for m, start, end in pattern]
                for local_minute, starts_at, ends_at in planned_day:
                    if not now <= starts_at < horizon_end or starts_at in slots:
                        continue
                    if absences and overlaps_any(starts_at, ends_at, absences):
                        continue
                    slots[starts_at] = (
                        ends_at,
                        local_minute,
                        rule.capacity,
                        rule.pk,
                        starts_at - horizon,
                        starts_at - notice,
                    )
    return wanted


_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # any day: the pattern is the same every day


@lru_cache(maxsize=1024)
def _day_pattern(
    *, opens: time, closes: time, step_minutes: int, duration_minutes: int
) -> tuple[tuple[int, timedelta, timedelta], ...]:
    """A period's slots as (local minute, start and end after local midnight), cut once for
    every day: a day with no clock change maps them to UTC by one offset; a change day is cut
    on its own."""
    return tuple(
        (planned.local_minute, planned.starts_at - _EPOCH, planned.ends_at - _EPOCH)
        for planned in cut_period(
            _EPOCH.date(),
            opens=opens,
            closes=closes,
            step_minutes=step_minutes,
            duration_minutes=duration_minutes,
            zone=ZoneInfo("UTC"),
        )
    )
