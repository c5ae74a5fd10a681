"""The API's slot search as one hand-written SQL statement, the hot path of issue 18.

``queries.slots_search_queryset`` (the ORM) stays the reference: the pages, the console, FHIR
and the waiting list use it. Building and compiling that queryset, then making a hundred model
instances of its twenty rows, cost most of a search's time; this module sends the same SQL
shape with its parameters and reads plain rows. ``tests/booking/test_search_sql.py`` runs both
over the demo network for every kind of channel and query, on both databases, and requires the
same slots in the same order.

The perimeter stays a sub-select of this very statement (invariant 5).
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, router
from django.utils.dateparse import parse_datetime
from django.utils.translation import get_language

from creneau import rows
from creneau.agenda.models import Slot
from creneau.booking.queries import (
    SLOT_WITH_PLACE,
    SlotQuery,
    decode_cursor,
    encode_cursor,
    require_criteria,
)
from creneau.channels.queries import ChannelScope
from creneau.directory.models import VisitType

_COLUMNS = """
    s.public_id, s.starts_at, s.ends_at, s.capacity, s.booked, s.held, s.held_until,
    s.establishment_id,
    v.public_id, v.code, v.label_fr, v.label_en, v.duration_minutes, v.preparation_fr,
    v.preparation_en,
    p.public_id, p.rpps, p.title, p.first_name, p.last_name,
    e.public_id, e.finess, e.name, e.city,
    d.name, d.code
"""

# agenda.queries.free_now, offerable_slots and ChannelScope.practitioner_roles, in SQL.
_FREE = """
    s.booked < s.capacity AND s.is_offered AND s.overlaps = 0
    AND (s.held = 0 OR s.booked < s.capacity - s.held OR s.held_until <= %s)
    AND (s.blocked_until IS NULL OR s.blocked_until <= %s)
    AND s.bookable_from <= %s AND s.bookable_until > %s
    AND s.practitioner_role_id NOT IN (
        SELECT a.practitioner_role_id FROM agenda_agendasource a WHERE a.stale_after <= %s)
"""
_ROLES = """
        SELECT pr.id FROM directory_practitionerrole pr
        JOIN directory_establishment pe ON pe.id = pr.establishment_id
        WHERE pe.is_active AND pr.is_active
        AND pr.establishment_id IN (
            SELECT establishment_id FROM channels_perimeterestablishment WHERE version_id = %s)
"""
_DEPARTMENTS = """
        AND pr.department_id IN (
            SELECT department_id FROM channels_perimeterdepartment WHERE version_id = %s)
"""
_NARROWED_ROLES = """
        AND pr.id IN (
            SELECT practitioner_role_id FROM channels_perimeterpractitionerrole
            WHERE version_id = %s)
"""
_RESERVED = " AND s.visit_type_id NOT IN (SELECT visit_type_id FROM channels_platformvisibility)"


def perimeter_roles(scope: ChannelScope) -> tuple[str, list]:
    """ChannelScope.practitioner_roles as SQL: the ids of the practitioner roles the channel's
    perimeter version holds, and its parameters."""
    sql, params = [_ROLES], [scope.version.pk]
    if scope.version.narrowed_to_departments:
        sql.append(_DEPARTMENTS)
        params.append(scope.version.pk)
    if scope.version.narrowed_to_roles:
        sql.append(_NARROWED_ROLES)
        params.append(scope.version.pk)
    return "".join(sql), params


def booking_checks(scope: ChannelScope, slot: Slot, now: datetime) -> tuple[bool, bool, bool]:
    """What a booking checks of a slot besides its own row, in one statement: is its role in
    the channel's perimeter, is its external agenda gone stale, is its visit reserved."""
    roles, params = perimeter_roles(scope)
    connection = connections[router.db_for_write(Slot)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS ({roles} AND pr.id = %s), "  # noqa: S608 (our SQL, values as parameters)
            "EXISTS (SELECT 1 FROM agenda_agendasource a WHERE a.stale_after <= %s "
            "AND a.practitioner_role_id = %s), "
            "EXISTS (SELECT 1 FROM channels_platformvisibility WHERE visit_type_id = %s)",
            [
                *params,
                slot.practitioner_role_id,
                connection.ops.adapt_datetimefield_value(now),
                slot.practitioner_role_id,
                slot.visit_type_id,
            ],
        )
        inside, stale, reserved = cursor.fetchone()
    return bool(inside), bool(stale), bool(reserved)


@dataclass(frozen=True)
class Found:
    """One free slot as the API shows it, and where it is for the ledger's offer."""

    public_id: str
    starts_at: datetime
    ends_at: datetime
    places_left: int
    establishment_id: int
    visit_type: dict
    practitioner: dict
    establishment: dict
    department: str | None
    department_code: str

    @property
    def place(self) -> dict:
        return {
            "finess": self.establishment["finess"],
            "department": self.department_code,
            "rpps": self.practitioner["rpps"],
        }


def _when(value) -> datetime:
    if isinstance(value, str):  # SQLite
        value = parse_datetime(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def search(
    scope: ChannelScope,
    query: SlotQuery,
    *,
    now: datetime,
    limit: int,
    establishment_ids: list[int] | None = None,
) -> tuple[list[Found], str | None]:
    """Earliest free slots first, as ``queries.slots_search`` finds them: the page and the
    cursor of the next one. ``establishment_ids`` narrows to those found near a place."""
    alias = router.db_for_read(Slot)
    connection = connections[alias]
    moment = connection.ops.adapt_datetimefield_value

    require_criteria(query)
    roles, roles_params = perimeter_roles(scope)
    sql = [
        f"SELECT {_COLUMNS} {SLOT_WITH_PLACE} WHERE {_FREE} AND s.practitioner_role_id IN ({roles})"
    ]
    when = moment(now)
    params: list = [when, when, when, when, when, *roles_params]
    if not scope.sees_reserved_visits:
        sql.append(_RESERVED)
    if query.visit_type is not None:
        sql.append(" AND s.visit_type_id = %s")
        params.append(query.visit_type.pk)
    else:
        sql.append(
            " AND s.specialty_id = %s AND s.visit_type_id IN (SELECT vt.id FROM "
            "directory_visittype vt WHERE vt.is_active AND vt.new_patients_allowed "
            "AND vt.specialty_id = %s)"
        )
        params += [query.specialty.pk, query.specialty.pk]
    sql.append(" AND s.starts_at >= %s")
    params.append(moment(max(now, query.starts_after or now)))
    if query.starts_before:
        sql.append(" AND s.starts_at < %s")
        params.append(moment(query.starts_before))
    if query.establishment is not None:
        sql.append(" AND s.establishment_id = %s")
        params.append(query.establishment.pk)
    if query.practitioner is not None:
        sql.append(" AND s.practitioner_id = %s")
        params.append(query.practitioner.pk)
    if query.from_minute is not None:
        sql.append(" AND s.local_minute >= %s")
        params.append(query.from_minute)
    if query.to_minute is not None:
        sql.append(" AND s.local_minute < %s")
        params.append(query.to_minute)
    if establishment_ids is not None:
        if not establishment_ids:
            return [], None
        sql.append(f" AND s.establishment_id IN ({', '.join(['%s'] * len(establishment_ids))})")
        params += establishment_ids
    if query.cursor:
        after, public_id = decode_cursor(query.cursor)
        sql.append(" AND (s.starts_at > %s OR (s.starts_at = %s AND s.public_id > %s))")
        params += [moment(after), moment(after), public_id]
    sql.append(" ORDER BY s.starts_at, s.public_id LIMIT %s")
    params.append(limit + 1)
    with connection.cursor() as cursor:
        cursor.execute("".join(sql), params)
        rows = cursor.fetchall()
    english = (get_language() or "fr").startswith("en")
    found = [_found(row, now, english) for row in rows[:limit]]
    next_cursor = encode_cursor(found[-1]) if len(rows) > limit else None
    return found, next_cursor


def _found(row: tuple, now: datetime, english: bool) -> Found:
    (
        public_id, starts_at, ends_at, capacity, booked, held, held_until, establishment_id,
        v_id, v_code, label_fr, label_en, minutes, preparation_fr, preparation_en,
        p_id, rpps, title, first_name, last_name,
        e_id, finess, e_name, city,
        department, department_code,
    ) = row  # fmt: skip
    held_until = _when(held_until) if held_until is not None else None
    holds = held if held_until and held_until > now else 0
    return Found(
        public_id=public_id,
        starts_at=_when(starts_at),
        ends_at=_when(ends_at),
        places_left=max(0, capacity - booked - holds),
        establishment_id=establishment_id,
        visit_type={
            "id": v_id,
            "code": v_code,
            "label": label_en if english else label_fr,
            "duration_minutes": minutes,
            "preparation": (preparation_en or preparation_fr) if english else preparation_fr,
        },
        practitioner={
            "id": p_id,
            "rpps": rpps,
            "display_name": " ".join(part for part in (title, first_name, last_name) if part),
        },
        establishment={"id": e_id, "finess": finess, "name": e_name, "city": city},
        department=department,
        department_code=department_code or "",
    )


_VISIT_TYPE = (
    f"SELECT {rows.columns(VisitType, 'v')} FROM directory_visittype v "  # noqa: S608
    "WHERE v.organisation_id = %s AND v.code = %s AND v.is_active"
)


def visit_type_by_code(organisation_id: int, code: str) -> VisitType | None:
    """An organisation's active visit type by its code (unique per organisation)."""
    database = router.db_for_read(VisitType)
    with connections[database].cursor() as cursor:
        cursor.execute(_VISIT_TYPE, [organisation_id, code])
        row = cursor.fetchone()
    return rows.instance(VisitType, database, row) if row else None
