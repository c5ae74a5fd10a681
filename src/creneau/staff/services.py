"""What the staff's pages change: bookings at the hospital's desk, blocked time, and the
access log of the patients' details they show."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.agenda.models import Absence, Slot
from creneau.agenda.services import AgendaError, GenerationReport, absence_create
from creneau.booking.models import Appointment
from creneau.booking.operators import CallerCriteria, criteria_hash
from creneau.booking.queries import SlotQuery, slots_search_queryset, with_details
from creneau.channels.queries import ChannelScope, channel_scope_for_desk
from creneau.channels.services import desk_channel_ensure
from creneau.directory.models import PractitionerRole, VisitType
from creneau.directory.text import fold
from creneau.staff.access_log import patient_data_view_record
from creneau.staff.models import PatientDataView
from creneau.staff.scope import StaffScope

# How far back a look-up reaches: the past year's appointments, and every coming one.
LOOKUP_PAST = timedelta(days=366)


def patient_lookup(
    *, scope: StaffScope, user, criteria: CallerCriteria, now: datetime | None = None
) -> list[Appointment]:
    """A patient's appointments inside the member's scope (the past year's and the coming
    ones, any status), by last name (any case or accents), birth date and phone; recorded in
    the access log, found or not."""
    now = now or timezone.now()
    wanted = fold(criteria.last_name)
    candidates = with_details(
        Appointment.objects.filter(
            patient_birth_date=criteria.birth_date,
            patient_phone=criteria.phone,
            starts_at__gte=now - LOOKUP_PAST,
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
        )
    ).order_by("-starts_at", "pk")
    found = [a for a in candidates if fold(a.patient_last_name) == wanted]
    patient_data_view_record(
        user=user,
        kind=PatientDataView.Kind.LOOKUP,
        subject="look-up",
        appointments=found,
        criteria=criteria_hash(criteria),
        now=now,
    )
    return found


# ---------------------------------------------------------------------------------------------
# The desk


def desk_scope(*, role: PractitionerRole, user) -> ChannelScope:
    """The channel through which ``user`` books for ``role``: the desk of the role's
    department (of its establishment when it has none), its perimeter that department.
    Appointments and their events record the staff member, as an operator's agent is."""
    desk = desk_channel_ensure(establishment=role.establishment, department=role.department)
    return channel_scope_for_desk(desk.channel, user)


# How far around an appointment the nearest free times are looked for.
NEAREST_WINDOW = timedelta(days=42)


def nearest_free_slots(
    *,
    scope: ChannelScope,
    role: PractitionerRole,
    visit_type: VisitType,
    around: datetime,
    limit: int = 5,
    now: datetime | None = None,
) -> list[Slot]:
    """The free slots of the same visit with the same practitioner, nearest to ``around``
    first (before or after it, never in the past): what the desk offers a patient whose time
    is taken away."""
    now = now or timezone.now()
    found, _distances = slots_search_queryset(
        scope,
        SlotQuery(
            visit_type=visit_type,
            starts_after=max(now, around - NEAREST_WINDOW),
            starts_before=around + NEAREST_WINDOW,
        ),
        now,
    )
    candidates = list(
        found.filter(practitioner_role=role).select_related("visit_type", "practitioner")[:200]
    )
    candidates.sort(key=lambda slot: abs((slot.starts_at - around).total_seconds()))
    return sorted(candidates[:limit], key=lambda slot: slot.starts_at)


# ---------------------------------------------------------------------------------------------
# Blocked time


@dataclass
class BlockPreview:
    """What blocking a period of some agendas would do: the free slots it closes and the
    appointments inside it, which stay booked until staff move or cancel them."""

    roles: list[PractitionerRole]
    starts_at: datetime
    ends_at: datetime
    closing: list[Slot]
    appointments: list[Appointment]


def block_preview(
    *, roles: list[PractitionerRole], starts_at: datetime, ends_at: datetime
) -> BlockPreview:
    if ends_at <= starts_at:
        raise AgendaError(
            "block_period_order", _("The blocked time must end after it begins."), field="ends_at"
        )
    if ends_at - starts_at > timedelta(days=366):
        raise AgendaError("block_too_long", _("Block at most a year at a time."), field="ends_at")
    inside = {"starts_at__lt": ends_at, "ends_at__gt": starts_at}
    closing = list(
        Slot.objects.filter(practitioner_role__in=roles, booked=0, **inside)
        .select_related("visit_type")
        .order_by("starts_at")
    )
    return BlockPreview(
        roles=roles,
        starts_at=starts_at,
        ends_at=ends_at,
        closing=closing,
        appointments=appointments_inside(roles=roles, starts_at=starts_at, ends_at=ends_at),
    )


def appointments_inside(
    *, roles: list[PractitionerRole], starts_at: datetime, ends_at: datetime
) -> list[Appointment]:
    """The booked appointments of ``roles`` that overlap a period."""
    return list(
        with_details(
            Appointment.objects.filter(
                practitioner_role__in=roles,
                status=Appointment.Status.BOOKED,
                starts_at__lt=ends_at,
                ends_at__gt=starts_at,
            )
        ).order_by("starts_at", "pk")
    )


def block_create(
    *,
    role: PractitionerRole,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    everywhere: bool = False,
) -> tuple[Absence, GenerationReport]:
    """Block a slot, a morning or a period of one agenda, or of all the practitioner's
    (``everywhere``: leave, a congress): the free slots leave the offer at once; the
    appointments inside stay until staff move or cancel them (they are listed)."""
    roles = practitioner_agendas(role) if everywhere else [role]
    block_preview(roles=roles, starts_at=starts_at, ends_at=ends_at)  # the same checks
    if not reason.strip():
        raise AgendaError(
            "reason_required", _("Say why the time is blocked (staff only)."), field="reason"
        )
    if everywhere:
        return absence_create(
            practitioner=role.practitioner,
            starts_at=starts_at,
            ends_at=ends_at,
            reason=reason.strip(),
        )
    return absence_create(
        practitioner_role=role, starts_at=starts_at, ends_at=ends_at, reason=reason.strip()
    )


def practitioner_agendas(role: PractitionerRole) -> list[PractitionerRole]:
    """All the active agendas of the practitioner of ``role``."""
    return list(
        PractitionerRole.objects.filter(practitioner_id=role.practitioner_id, is_active=True)
        .select_related("practitioner", "establishment", "department")
        .order_by("pk")
    )
