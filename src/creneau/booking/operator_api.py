"""What an operator's software asks of its own work: its appointments, a caller's look-up, its
statistics. Every endpoint needs the operator's bearer token and sees only that operator."""

from datetime import date, timedelta

from django.http import HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from creneau.booking import operators
from creneau.booking.api import AppointmentOut, _appointment
from creneau.booking.models import paris_midnight
from creneau.booking.patients import caller_criteria_clean
from creneau.channels.models import OperatorCompany
from creneau.channels.queries import channel_scope_for_request
from creneau.dates import MAX_OFFSET, ApiDay

router = Router(tags=["operators"])


class AppointmentsFilters(Schema):
    from_date: ApiDay | None = Field(None, description="first day, Paris time (default: today)")
    to_date: ApiDay | None = Field(None, description="last day, Paris time, included")
    status: str | None = Field(None, description="booked, cancelled_patient, no_show, ...")
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class AppointmentsPage(Schema):
    count: int
    limit: int
    offset: int
    items: list[AppointmentOut]


class LookupIn(Schema):
    last_name: str = Field(max_length=100)
    birth_date: date
    phone: str = Field(max_length=30)


class LookupOut(Schema):
    items: list[AppointmentOut]


class StatisticsFilters(Schema):
    from_date: ApiDay | None = Field(None, description="default: 30 days ago")
    to_date: ApiDay | None = Field(None, description="default: today")
    format: str = Field("json", pattern="^(json|csv)$")


class StatisticsDayOut(Schema):
    day: date
    searches: int
    bookings: int
    moves: int
    cancellations: int
    no_shows: int
    refusals: int


class StatisticsOut(Schema):
    operator: str
    from_date: date
    to_date: date
    days: list[StatisticsDayOut]


@router.get("/operator/appointments", response=AppointmentsPage, summary="The operator's bookings")
def operator_appointments(request: HttpRequest, filters: Query[AppointmentsFilters]):
    """The appointments this operator booked, earliest first (from today by default)."""
    scope = channel_scope_for_request(request)
    scope.require("read")
    found = operators.operator_appointments(
        scope=scope,
        starts_from=paris_midnight(filters.from_date or timezone.localdate()),
        starts_before=paris_midnight(filters.to_date + timedelta(days=1))
        if filters.to_date
        else None,
        status=filters.status,
    )
    page = list(found[filters.offset : filters.offset + filters.limit])
    operators.operator_list_record(scope, page)
    return {
        "count": found.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": [_appointment(a) for a in page],
    }


@router.post("/operator/lookup", response=LookupOut, summary="Find a caller's appointments")
def operator_lookup(request: HttpRequest, payload: LookupIn):
    """A caller's coming appointments inside the operator's perimeter, found by last name, birth
    date and phone, whoever booked them. Each look-up is written to the organisation's access
    log; the appointments found may then be read, moved or cancelled by this operator for a
    while (`CRENEAU_LOOKUP_MINUTES`, 30)."""
    scope = channel_scope_for_request(request)
    scope.require("read")
    criteria = caller_criteria_clean(
        last_name=payload.last_name, birth_date=payload.birth_date, phone=payload.phone
    )
    found = operators.caller_lookup(scope=scope, criteria=criteria)
    return {"items": [_appointment(a) for a in found]}


@router.get("/operator/statistics", response=StatisticsOut, summary="The operator's statistics")
def operator_statistics(request: HttpRequest, filters: Query[StatisticsFilters]):
    """Per day: searches, bookings, moves, cancellations, no-shows of its bookings, refusals;
    `?format=csv` for a spreadsheet."""
    scope = channel_scope_for_request(request)
    scope.require("statistics")
    contract = operators.operator_contract(scope)
    first, last = operators.statistics_period(filters.from_date, filters.to_date)
    rows = operators.operator_statistics(
        operators=OperatorCompany.objects.filter(pk=contract.operator_id),
        first_day=first,
        last_day=last,
    )
    if filters.format == "csv":
        return operators.statistics_csv(rows, first, last)
    return {
        "operator": contract.operator.name,
        "from_date": first,
        "to_date": last,
        "days": [{name: getattr(row, name) for name in ("day", *operators.COUNTS)} for row in rows],
    }
