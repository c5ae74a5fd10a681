"""What an operator under contract may reach of the appointments, and its statistics.

An operator reaches an appointment it booked (through its own channel), or one that a caller's
look-up (last name, birth date, phone) found inside its perimeter in the last
``CRENEAU_LOOKUP_MINUTES``; nothing else, whatever id it names. Every look-up is written to the
access log (``CallerLookup``), which the organisation reads."""

from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.booking.models import (
    PARIS,
    Appointment,
    AppointmentEvent,
    CallerLookup,
    paris_midnight,
)
from creneau.booking.patients import CallerCriteria
from creneau.booking.queries import with_details
from creneau.booking.services import BookingError
from creneau.channels.models import Contract, OperatorCompany
from creneau.channels.queries import ActionNotAllowed, ChannelScope
from creneau.dates import FIRST_DAY, LAST_DAY, LONGEST_PERIOD_DAYS, day_in_range
from creneau.directory.text import fold
from creneau.errors import DomainError
from creneau.ledger.models import Entry
from creneau.sealing import keyed_hash
from creneau.spreadsheets import csv_download
from creneau.staff.access_log import patient_data_view_record
from creneau.staff.models import PatientDataView


def operator_contract(scope: ChannelScope) -> Contract:
    if scope.contract is None:
        raise ActionNotAllowed(
            "operator_only", _("Only an operator's channel can do this."), status=403
        )
    return scope.contract


def _reachable(scope: ChannelScope, now: datetime) -> QuerySet[Appointment]:
    contract = operator_contract(scope)
    opened = CallerLookup.objects.filter(
        channel=scope.channel,
        found=OuterRef("pk"),
        at__gte=now - timedelta(minutes=settings.CRENEAU_LOOKUP_MINUTES),
    )
    return Appointment.objects.filter(
        Q(operator_id=contract.operator_id, channel=scope.channel) | Exists(opened),
        practitioner_role_id__in=scope.practitioner_roles().values("pk"),
    )


def access_appointment_for_operator(
    *, scope: ChannelScope, public_id: str, now: datetime | None = None
) -> Appointment:
    """The appointment, if this operator may reach it; the same 404 as an unknown id
    otherwise (nothing tells an operator that another's appointment exists)."""
    appointment = (
        with_details(_reachable(scope, now or timezone.now())).filter(public_id=public_id).first()
    )
    if appointment is None:
        raise BookingError(
            "not_found",
            _("No appointment %(id)s for this operator.") % {"id": public_id[:40]},
            status=404,
        )
    return appointment


def operator_appointments(
    *,
    scope: ChannelScope,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    status: str | None = None,
) -> QuerySet[Appointment]:
    """The appointments the operator booked through its channel, earliest first."""
    contract = operator_contract(scope)
    found = Appointment.objects.filter(operator_id=contract.operator_id, channel=scope.channel)
    if starts_from is not None:
        found = found.filter(starts_at__gte=starts_from)
    if starts_before is not None:
        found = found.filter(starts_at__lt=starts_before)
    if status:
        found = found.filter(status=status)
    return with_details(found).order_by("starts_at", "pk")


def criteria_hash(criteria: CallerCriteria) -> str:
    """The access log's trace of a look-up's criteria: keyed, so that it identifies nobody
    without the hub's secret, and the same for the same caller however the name was typed."""
    return keyed_hash(
        f"caller-lookup|{fold(criteria.last_name)}|{criteria.birth_date}|{criteria.phone}", 64
    )


@transaction.atomic
def caller_lookup(
    *, scope: ChannelScope, criteria: CallerCriteria, now: datetime | None = None
) -> list[Appointment]:
    """A caller's coming appointments inside the operator's perimeter, whoever booked them,
    found by last name (any case or accents), birth date and phone (E.164); recorded in the
    access log with what was found."""
    contract = operator_contract(scope)
    scope.require("read")
    now = now or timezone.now()
    wanted = fold(criteria.last_name)
    candidates = with_details(
        Appointment.objects.filter(
            patient_birth_date=criteria.birth_date,
            patient_phone=criteria.phone,
            status=Appointment.Status.BOOKED,
            starts_at__gt=now,
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
        )
    ).order_by("starts_at", "pk")
    found = [a for a in candidates if fold(a.patient_last_name) == wanted]
    lookup = CallerLookup.objects.create(
        operator_id=contract.operator_id,
        channel=scope.channel,
        agent=scope.agent,
        api_client=scope.api_client,
        criteria_hash=criteria_hash(criteria),
        found_count=len(found),
        at=now,
    )
    lookup.found.set(found)
    patient_data_view_record(
        user=scope.agent,
        operator=contract.operator,
        api_client=scope.api_client,
        kind=PatientDataView.Kind.OPERATOR_LOOKUP,
        subject=f"caller look-up, {scope.channel.public_id}",
        appointments=found,
        criteria=lookup.criteria_hash,
        now=now,
    )
    return found


def operator_list_record(
    scope: ChannelScope, appointments: list[Appointment], *, one: bool = False
) -> None:
    """An operator's list of its bookings, or one appointment it reads, shows the patients'
    details: it is in the access log with the appointments it showed."""
    patient_data_view_record(
        user=scope.agent,
        operator=scope.operator,
        api_client=scope.api_client,
        kind=PatientDataView.Kind.OPERATOR_READ if one else PatientDataView.Kind.OPERATOR_LIST,
        subject=f"operator's bookings, {scope.channel.public_id}",
        appointments=appointments,
    )


# ---------------------------------------------------------------------------------------------
# Statistics


@dataclass
class DayRow:
    operator: str
    day: date
    searches: int = 0
    bookings: int = 0
    moves: int = 0
    cancellations: int = 0
    no_shows: int = 0
    refusals: int = 0


COUNTS = ("searches", "bookings", "moves", "cancellations", "no_shows", "refusals")


def operator_statistics(
    *, operators: QuerySet[OperatorCompany], first_day: date, last_day: date
) -> list[DayRow]:
    """Per operator and day (Paris time): searches served and refusals (from the ledger),
    bookings, moves and cancellations the operator made (from the appointments' history),
    and no-shows of the appointments it booked (by the appointment's day)."""
    start = paris_midnight(first_day)
    end = paris_midnight(last_day + timedelta(days=1))
    names = dict(operators.values_list("pk", "name"))
    by_channel = {
        public_id: names[operator_id]
        for public_id, operator_id in Contract.objects.filter(
            operator_id__in=list(names)
        ).values_list("channel__public_id", "operator_id")
    }
    rows: dict[tuple[str, date], DayRow] = {}

    def add(name: str, day: date, field: str, count: int) -> None:
        row = rows.setdefault((name, day), DayRow(operator=name, day=day))
        setattr(row, field, getattr(row, field) + count)

    ledger = (
        Entry.objects.filter(
            kind__in=("offer", "refusal"),
            channel__in=list(by_channel),
            created_at__gte=start,
            created_at__lt=end,
        )
        .annotate(day=TruncDate("created_at", tzinfo=PARIS))
        .values_list("channel", "kind", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for channel, kind, day, n in ledger:
        add(by_channel[channel], day, "searches" if kind == "offer" else "refusals", n)
    actions = {"booked": "bookings", "moved": "moves", "cancelled": "cancellations"}
    events = (
        AppointmentEvent.objects.filter(
            operator_id__in=list(names), action__in=list(actions), at__gte=start, at__lt=end
        )
        .annotate(day=TruncDate("at", tzinfo=PARIS))
        .values_list("operator_id", "action", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for operator_id, action, day, n in events:
        add(names[operator_id], day, actions[action], n)
    no_shows = (
        Appointment.objects.filter(
            operator_id__in=list(names),
            status=Appointment.Status.NO_SHOW,
            starts_at__gte=start,
            starts_at__lt=end,
        )
        .annotate(day=TruncDate("starts_at", tzinfo=PARIS))
        .values_list("operator_id", "day")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for operator_id, day, n in no_shows:
        add(names[operator_id], day, "no_shows", n)
    return sorted(rows.values(), key=lambda row: (row.day, row.operator))


def statistics_totals(rows: list[DayRow]) -> list[DayRow]:
    """One row per operator over the whole period, for the side-by-side comparison."""
    totals: dict[str, DayRow] = {}
    for row in rows:
        total = totals.setdefault(row.operator, DayRow(operator=row.operator, day=row.day))
        for name in COUNTS:
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return sorted(totals.values(), key=lambda row: row.operator)


STATISTICS_DAYS = 30


class PeriodInvalid(DomainError):
    status = 422


def statistics_period(first: date | None, last: date | None) -> tuple[date, date]:
    """The days asked for, by default the last ``STATISTICS_DAYS`` up to today (Paris); at
    most a year at once, within the days the hub knows (creneau.dates)."""
    last = last or timezone.localdate()
    first = first or last - timedelta(days=STATISTICS_DAYS)
    if not (day_in_range(first) and day_in_range(last)):
        raise PeriodInvalid(
            "invalid_period",
            _("The period must lie between %(first)s and %(last)s.")
            % {"first": FIRST_DAY, "last": LAST_DAY},
        )
    if abs((last - first).days) >= LONGEST_PERIOD_DAYS:
        raise PeriodInvalid(
            "invalid_period",
            _("Ask for at most %(days)s days at once.") % {"days": LONGEST_PERIOD_DAYS},
        )
    return first, last


def statistics_csv(rows: list[DayRow], first: date, last: date) -> HttpResponse:
    """The rows as a CSV download, one line per operator and day."""
    names = [f.name for f in fields(DayRow)]
    return csv_download(
        f"statistics-{first}-{last}.csv",
        names,
        ([getattr(row, name) for name in names] for row in rows),
    )
