"""Search: the earliest free slots a channel may offer, filtered by its perimeter in the query."""

import base64
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import router
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau import rows
from creneau.agenda.models import Slot
from creneau.agenda.queries import offerable_slots
from creneau.booking.models import PARIS, Appointment, Hold, WaitingListEntry, paris_midnight
from creneau.booking.services import BookingError, token_hash, token_matches
from creneau.channels.queries import ChannelScope
from creneau.dates import instant_in_range
from creneau.directory.models import (
    Department,
    Establishment,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)

EARTH_RADIUS_KM = 6371.0


class SearchError(BookingError):
    status = 422


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), good to a few metres at a city's scale."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Near:
    latitude: float
    longitude: float
    within_km: float | None = None


@dataclass
class SearchPage:
    slots: list[Slot]
    next_cursor: str | None
    distances: dict[int, float]


def encode_cursor(slot: Slot) -> str:
    raw = f"{slot.starts_at.isoformat()}|{slot.public_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, public_id = raw.split("|", 1)
        starts_at = datetime.fromisoformat(moment)
        if starts_at.tzinfo is None or not instant_in_range(starts_at):
            raise ValueError
        return starts_at, public_id
    except ValueError as error:
        raise SearchError("invalid_cursor", _("The cursor is not one this API gave.")) from error


@dataclass(frozen=True)
class SlotQuery:
    visit_type: VisitType | None = None
    specialty: Specialty | None = None
    establishment: Establishment | None = None
    practitioner: Practitioner | None = None
    starts_after: datetime | None = None
    starts_before: datetime | None = None
    from_minute: int | None = None
    to_minute: int | None = None
    near: Near | None = None
    cursor: str | None = None


def require_criteria(query: SlotQuery) -> None:
    if query.visit_type is None and query.specialty is None:
        raise SearchError(
            "visit_type_or_specialty_required", _("Name a visit type or a specialty to search.")
        )


def distances_near(scope: ChannelScope, near: Near | None) -> tuple[dict[int, float], list | None]:
    """How far from ``near`` each establishment of the perimeter is, and those within its
    radius if it has one (None: no radius)."""
    distances: dict[int, float] = {}
    if near is None:
        return distances, None
    places = scope.establishments().exclude(latitude=None)
    for place in places.values("pk", "latitude", "longitude"):
        distances[place["pk"]] = distance_km(
            near.latitude, near.longitude, place["latitude"], place["longitude"]
        )
    if near.within_km is None:
        return distances, None
    return distances, [pk for pk, km in distances.items() if km <= near.within_km]


def slots_search_queryset(
    scope: ChannelScope, query: SlotQuery, now: datetime
) -> tuple[QuerySet[Slot], dict[int, float]]:
    """The search as one SQL query, earliest first, and the distances it computed."""
    require_criteria(query)
    found = offerable_slots(scope, now)
    if query.visit_type is not None:
        found = found.filter(visit_type=query.visit_type)
    else:
        found = found.filter(
            specialty=query.specialty,
            visit_type_id__in=VisitType.objects.filter(
                specialty=query.specialty, is_active=True, new_patients_allowed=True
            ).values("pk"),
        )
    found = found.filter(starts_at__gte=max(now, query.starts_after or now))
    if query.starts_before:
        found = found.filter(starts_at__lt=query.starts_before)
    if query.establishment is not None:
        found = found.filter(establishment=query.establishment)
    if query.practitioner is not None:
        found = found.filter(practitioner=query.practitioner)
    if query.from_minute is not None:
        found = found.filter(local_minute__gte=query.from_minute)
    if query.to_minute is not None:
        found = found.filter(local_minute__lt=query.to_minute)
    distances, within = distances_near(scope, query.near)
    if within is not None:
        found = found.filter(establishment_id__in=within)
    if query.cursor:
        after, public_id = decode_cursor(query.cursor)
        found = found.filter(Q(starts_at__gt=after) | Q(starts_at=after, public_id__gt=public_id))
    found = found.select_related(
        "practitioner", "establishment", "visit_type", "practitioner_role__department"
    ).order_by("starts_at", "public_id")
    return found, distances


def slots_search(
    scope: ChannelScope,
    *,
    limit: int = 20,
    now: datetime | None = None,
    **criteria,
) -> SearchPage:
    """Earliest free slots first. By specialty, only visit types open to new patients."""
    now = now or timezone.now()
    found, distances = slots_search_queryset(scope, SlotQuery(**criteria), now)
    page = list(found[: limit + 1])
    next_cursor = encode_cursor(page[limit - 1]) if len(page) > limit else None
    return SearchPage(slots=page[:limit], next_cursor=next_cursor, distances=distances)


@dataclass
class WeekAvailability:
    practitioner: Practitioner
    week_start: date
    days: list[tuple[date, list[Slot]]]
    next_available: Slot | None


def practitioner_availability(
    scope: ChannelScope,
    *,
    practitioner: Practitioner,
    week_start: date | None = None,
    visit_type: VisitType | None = None,
    establishment: Establishment | None = None,
    now: datetime | None = None,
) -> WeekAvailability:
    """One practitioner's free slots in the channel's scope, day by day over a week (Monday to
    Sunday, Paris time), and the first free slot after it to jump to."""
    now = now or timezone.now()
    monday = week_start or timezone.localtime(now, PARIS).date()
    monday -= timedelta(days=monday.weekday())
    start = paris_midnight(monday)
    end = paris_midnight(monday + timedelta(days=7))
    found = offerable_slots(scope, now).filter(practitioner=practitioner, starts_at__gte=now)
    if visit_type is not None:
        found = found.filter(visit_type=visit_type)
    if establishment is not None:
        found = found.filter(establishment=establishment)
    in_week = list(
        found.filter(starts_at__gte=start, starts_at__lt=end)
        .select_related(
            "visit_type", "establishment", "practitioner", "practitioner_role__department"
        )
        .order_by("starts_at", "public_id")
    )
    days: list[tuple[date, list[Slot]]] = [(monday + timedelta(days=n), []) for n in range(7)]
    for slot in in_week:
        local_day = timezone.localtime(slot.starts_at, PARIS).date()
        days[(local_day - monday).days][1].append(slot)
    following = (
        found.filter(starts_at__gte=end)
        .select_related("visit_type", "establishment")
        .order_by("starts_at", "public_id")
        .first()
    )
    return WeekAvailability(
        practitioner=practitioner, week_start=monday, days=days, next_available=following
    )


# ---------------------------------------------------------------------------------------------
# Access to a caller's own objects: "not found" for missing and forbidden alike.


def with_details(appointments: QuerySet[Appointment]) -> QuerySet[Appointment]:
    """Appointments with what their pages and the API show of them, in the same query."""
    return appointments.select_related(
        "practitioner", "establishment", "visit_type", "practitioner_role__department", "operator"
    )


def access_appointment(*, public_id: str, token: str | None) -> Appointment:
    appointment = with_details(Appointment.objects.filter(public_id=public_id)).first()
    if appointment is None or not token_matches(token, appointment.manage_token_hash):
        raise BookingError("not_found", _("No appointment matches this link."), status=404)
    return appointment


def by_link_token(token: str) -> Appointment | WaitingListEntry:
    """What the short link in a message opens: the appointment or waiting-list request whose
    token it carries (found by the token's hash; the same 404 for anything else)."""
    hashed = token_hash(token)
    found = (
        Appointment.objects.filter(manage_token_hash=hashed).first()
        or WaitingListEntry.objects.filter(manage_token_hash=hashed).first()
    )
    if found is None:
        raise BookingError("not_found", _("Nothing matches this link."), status=404)
    return found


def access_hold(*, scope: ChannelScope, public_id: str) -> Hold:
    hold = (
        Hold.objects.select_related("slot__practitioner", "slot__establishment", "slot__visit_type")
        .filter(public_id=public_id, channel=scope.channel)
        .first()
    )
    if hold is None:
        raise BookingError("hold_not_found", _("No such hold."), status=404)
    return hold


def access_waiting_list_entry(*, public_id: str, token: str | None) -> WaitingListEntry:
    entry = (
        WaitingListEntry.objects.select_related("visit_type", "establishment", "practitioner")
        .filter(public_id=public_id)
        .first()
    )
    if entry is None or not token_matches(token, entry.manage_token_hash):
        raise BookingError("not_found", _("No waiting-list request matches this link."), status=404)
    return entry


# A slot (s) with its visit type (v), practitioner (p), establishment (e), role (r) and the
# role's department (d): what the API shows of a slot and the ledger records of its place.
SLOT_WITH_PLACE = """
    FROM agenda_slot s
    JOIN directory_visittype v ON v.id = s.visit_type_id
    JOIN directory_practitioner p ON p.id = s.practitioner_id
    JOIN directory_establishment e ON e.id = s.establishment_id
    JOIN directory_practitionerrole r ON r.id = s.practitioner_role_id
    LEFT JOIN directory_department d ON d.id = r.department_id
"""

_SLOT_WITH_PLACE = f"""
    SELECT {rows.columns(Slot, "s")}, {rows.columns(Practitioner, "p")},
           {rows.columns(Establishment, "e")}, {rows.columns(VisitType, "v")},
           {rows.columns(PractitionerRole, "r")}, {rows.columns(Department, "d")}
    {SLOT_WITH_PLACE}
    WHERE s.public_id = %s
"""


def slot_by_id(public_id: str) -> Slot:
    """A slot with its practitioner, establishment, visit type, role and department, in one
    plain statement (the start of every booking)."""
    found = rows.read_one(
        router.db_for_read(Slot),
        _SLOT_WITH_PLACE,
        [public_id],
        [Slot, Practitioner, Establishment, VisitType, PractitionerRole, Department],
    )
    if found is None:
        raise BookingError("slot_not_found", _("No such slot."), status=404)
    slot, practitioner, establishment, visit_type, role, department = found
    Slot.practitioner.field.set_cached_value(slot, practitioner)
    Slot.establishment.field.set_cached_value(slot, establishment)
    Slot.visit_type.field.set_cached_value(slot, visit_type)
    Slot.practitioner_role.field.set_cached_value(slot, role)
    PractitionerRole.department.field.set_cached_value(role, department)
    return slot
