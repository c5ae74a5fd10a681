"""The hospital staff's pages (/staff/): sign-in with a password and a one-time code, then the
agendas within the member's scope (staff.scope): a day or a week of a practitioner, a department
or an establishment, every slot's state and every appointment, and a print view of a day.
Anything outside the scope is a 404, by page and by address."""

import functools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from creneau.agenda.models import Absence, BusyInterval, Slot
from creneau.booking.models import PARIS, Appointment, paris_midnight
from creneau.booking.services import appointment_status_set
from creneau.booking.throttling import Throttled, throttle
from creneau.directory.models import PractitionerRole
from creneau.directory.text import fold
from creneau.errors import DomainError
from creneau.ledger.services import refusal_append
from creneau.second_factor import OneTimeCodeMixin
from creneau.spreadsheets import csv_download
from creneau.staff.models import PatientDataView, StaffAccess
from creneau.staff.scope import StaffScope
from creneau.staff.services import patient_data_view_record, patient_lookup
from creneau.staff.sign_on import FAILED, NO_ACCESS, sign_on_configured, signed_on
from creneau.web.forms import CallerLookupForm
from creneau.web.signin import sign_in

WEEK_DAYS = 7


class StaffLoginForm(OneTimeCodeMixin, AuthenticationForm):
    def confirm_second_factor_allowed(self, user) -> None:
        if not StaffAccess.objects.filter(user=user).exists():
            raise forms.ValidationError(_("This account has no access to the hospital's pages."))


def login(request: HttpRequest) -> HttpResponse:
    """The password and one-time code, and the hospital's sign-on where it is set."""
    return sign_in(
        request,
        form_class=StaffLoginForm,
        limit="staff_login",
        template="staff/login.html",
        home=reverse("staff:home"),
        context={
            "sign_on": sign_on_configured(),
            "sign_on_name": settings.CRENEAU_OIDC_NAME,
            "sign_on_refused": request.GET.get("sign_on") == NO_ACCESS,
            "sign_on_failed": request.GET.get("sign_on") == FAILED,
        },
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    return HttpResponseRedirect(reverse("staff:login"))


def staff_view(view):
    """Signed in with both factors, holding at least one access: the view gets the scope,
    works in Paris time (forms read and pages show it), and a refusal becomes a page that
    says why (recorded in the ledger when it is one the ledger keeps)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and (user.is_verified() or signed_on(request))):
            return HttpResponseRedirect(reverse("staff:login") + "?next=" + request.path)
        scope = StaffScope.of(user)
        if scope is None:
            auth_logout(request)
            return HttpResponseRedirect(reverse("staff:login"))
        with timezone.override(PARIS):
            try:
                return view(request, scope, *args, **kwargs)
            except DomainError as error:
                refusal_append(error)
                return render(
                    request,
                    "staff/refused.html",
                    {
                        "scope": scope,
                        "message": error.message,
                        "back": safe_next(request, reverse("staff:home")),
                    },
                    status=error.status,
                )

    return wrapper


def safe_next(request: HttpRequest, default: str) -> str:
    """The page to go back to: the form's or the address's ``next`` when it is one of the
    hub's own, else ``default``."""
    back = request.POST.get("next") or request.GET.get("next") or ""
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return back
    return default


PRACTITIONERS_SHOWN = 300


@staff_view
def home(request: HttpRequest, scope: StaffScope) -> HttpResponse:
    """The member's scope, and its practitioners: each with specialties, department and
    hospital (two namesakes are told apart), found by name with ``q``."""
    roles = (
        scope.practitioner_roles()
        .select_related("practitioner", "establishment", "department")
        .prefetch_related("specialties")
        .order_by("practitioner__last_name", "practitioner__first_name", "establishment__name")
    )
    wanted = request.GET.get("q", "")[:100]
    for word in fold(wanted).split():
        roles = roles.filter(practitioner__search_name__contains=word)
    return render(
        request,
        "staff/home.html",
        {
            "scope": scope,
            "accesses": scope.accesses,
            "establishments": scope.establishments().order_by("name"),
            "departments": scope.departments().order_by("establishment__name", "name"),
            "roles": roles[:PRACTITIONERS_SHOWN],
            "wanted": wanted,
        },
    )


# ---------------------------------------------------------------------------------------------
# Agendas


@dataclass
class Row:
    """A line of the agenda: a slot (with its appointments) or a busy period of an external
    agenda."""

    starts_at: datetime
    ends_at: datetime
    state: str
    state_label: str
    slot: Slot | None = None
    appointments: list[Appointment] = field(default_factory=list)
    block: Absence | None = None


@dataclass
class Column:
    role: PractitionerRole
    days: list[tuple[date, list[Row]]]
    # The member books, moves and cancels for this practitioner, and sets their rules.
    books: bool = False


STATES = {
    "free": gettext_lazy("free"),
    "held": gettext_lazy("held"),
    "booked": gettext_lazy("booked"),
    "blocked": gettext_lazy("blocked"),
    "withdrawn": gettext_lazy("not offered"),
    "busy": gettext_lazy("busy in the external agenda"),
}


def _state(slot: Slot, now: datetime) -> str:
    if slot.booked:
        return "booked"
    if slot.held and slot.held_until and slot.held_until > now:
        return "held"
    if slot.overlaps or (slot.blocked_until and slot.blocked_until > now):
        return "blocked"
    if not slot.is_offered:
        return "withdrawn"
    return "free"


def _day(request: HttpRequest) -> date:
    try:
        return date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        return timezone.localtime(timezone.now(), PARIS).date()


def _columns(roles: list[PractitionerRole], first: date, days: int) -> list[Column]:
    start, end = paris_midnight(first), paris_midnight(first + timedelta(days=days))
    now = timezone.now()
    role_ids = [role.pk for role in roles]
    slots = (
        Slot.objects.filter(
            practitioner_role_id__in=role_ids, starts_at__gte=start, starts_at__lt=end
        )
        .select_related("visit_type")
        .order_by("starts_at", "visit_type__code")
    )
    appointments: dict[int, list[Appointment]] = {}
    for appointment in (
        Appointment.objects.filter(
            practitioner_role_id__in=role_ids, starts_at__gte=start, starts_at__lt=end
        )
        .select_related("visit_type", "channel", "operator", "agent")
        .order_by("starts_at")
    ):
        appointments.setdefault(appointment.slot_id or 0, []).append(appointment)
    rows: dict[tuple[int, date], list[Row]] = {}
    for slot in slots:
        state = _state(slot, now)
        local = timezone.localtime(slot.starts_at, PARIS).date()
        rows.setdefault((slot.practitioner_role_id, local), []).append(
            Row(
                slot.starts_at,
                slot.ends_at,
                state,
                str(STATES[state]),
                slot=slot,
                appointments=appointments.get(slot.pk, []),
            )
        )
    # Time blocked in one agenda, and a practitioner's absence from all of theirs: a line on
    # each day it covers.
    agendas_of: dict[int, list[int]] = {}
    for role in roles:
        agendas_of.setdefault(role.practitioner_id, []).append(role.pk)
    for absence in Absence.objects.filter(
        Q(practitioner_role_id__in=role_ids) | Q(practitioner_id__in=list(agendas_of)),
        ends_at__gt=start,
        starts_at__lt=end,
    ):
        label = _("blocked: %(reason)s") % {"reason": absence.reason}
        if absence.practitioner_id:
            label = _("absent: %(reason)s") % {"reason": absence.reason}
        first_day = timezone.localtime(max(absence.starts_at, start), PARIS).date()
        last_day = timezone.localtime(min(absence.ends_at, end) - timedelta(seconds=1), PARIS)
        for role_id in agendas_of.get(absence.practitioner_id, [absence.practitioner_role_id]):
            day = first_day
            while day <= last_day.date():
                rows.setdefault((role_id, day), []).append(
                    Row(absence.starts_at, absence.ends_at, "blocked", label, block=absence)
                )
                day += timedelta(days=1)
    for busy in BusyInterval.objects.filter(
        source__practitioner_role_id__in=role_ids, ends_at__gt=start, starts_at__lt=end
    ).select_related("source"):
        local = timezone.localtime(max(busy.starts_at, start), PARIS).date()
        rows.setdefault((busy.source.practitioner_role_id, local), []).append(
            Row(busy.starts_at, busy.ends_at, "busy", str(STATES["busy"]))
        )
    return [
        Column(
            role=role,
            days=[
                (
                    first + timedelta(days=n),
                    sorted(
                        rows.get((role.pk, first + timedelta(days=n)), []),
                        key=lambda row: row.starts_at,
                    ),
                )
                for n in range(days)
            ],
        )
        for role in roles
    ]


def _agenda(request: HttpRequest, scope: StaffScope, title: str, roles) -> HttpResponse:
    first = _day(request)
    week = request.GET.get("view") == "week"
    printing = request.GET.get("print") == "1"
    days = WEEK_DAYS if week and not printing else 1
    if week:
        first -= timedelta(days=first.weekday())
    step = timedelta(days=days)
    roles = list(
        roles.select_related("practitioner", "establishment", "department").order_by(
            "practitioner__last_name", "practitioner__first_name", "pk"
        )[:60]
    )
    today = timezone.localtime(timezone.now(), PARIS).date()
    columns = _columns(roles, first, days)
    shown = scope.desk_roles().filter(pk__in=[role.pk for role in roles])
    desk = set(shown.values_list("pk", flat=True))
    for column in columns:
        column.books = column.role.pk in desk
    # Every page that shows patients' names is in the access log, with what it showed.
    patient_data_view_record(
        user=request.user,
        kind=PatientDataView.Kind.PRINT if printing else PatientDataView.Kind.AGENDA,
        subject=f"{title}, {first.isoformat()}, {days} d",
        appointments=[
            appointment
            for column in columns
            for _day, rows in column.days
            for row in rows
            for appointment in row.appointments
        ],
    )
    return render(
        request,
        "staff/print.html" if printing else "staff/agenda.html",
        {
            "scope": scope,
            "title": title,
            "columns": columns,
            "first": first,
            "last": first + step - timedelta(days=1),
            "week": week,
            "previous": (first - step).isoformat(),
            "next": (first + step).isoformat(),
            "today": today.isoformat(),
            "view": "week" if week else "day",
            "printing": printing,
            "here": request.get_full_path(),
            "unblocked": request.GET.get("done") == "unblocked",
        },
    )


@staff_view
def practitioner_agenda(request: HttpRequest, scope: StaffScope, role_id: str) -> HttpResponse:
    role = scope.role_or_404(role_id)
    title = f"{role.practitioner.display_name} — {role.establishment.name}"
    return _agenda(request, scope, title, PractitionerRole.objects.filter(pk=role.pk))


@staff_view
def department_agenda(request: HttpRequest, scope: StaffScope, department_id: int) -> HttpResponse:
    department = scope.department_or_404(department_id)
    title = f"{department.name} — {department.establishment.name}"
    return _agenda(request, scope, title, scope.practitioner_roles().filter(department=department))


@staff_view
def establishment_agenda(
    request: HttpRequest, scope: StaffScope, establishment_id: str
) -> HttpResponse:
    establishment = scope.establishment_or_404(establishment_id)
    return _agenda(
        request,
        scope,
        establishment.name,
        scope.practitioner_roles().filter(establishment=establishment),
    )


@staff_view
def patients(request: HttpRequest, scope: StaffScope) -> HttpResponse:
    """Find a patient's appointments (last name, birth date, phone) inside the scope; each
    look-up goes to the access log. Sent by POST: the criteria stay out of addresses and
    server logs."""
    if not scope.sees_patients:
        raise Http404("no patients in this scope")
    form = CallerLookupForm(request.POST or None)
    found, throttled = None, None
    if request.method == "POST":
        try:
            throttle(request, "staff_lookup", str(request.user.pk))
        except Throttled as error:
            form.add_error(None, error.message)
            throttled = error
        else:
            criteria = form.criteria()
            if criteria is not None:
                found = patient_lookup(scope=scope, user=request.user, criteria=criteria)
    status = 200 if form.is_bound is False or not form.errors else 422
    response = render(
        request,
        "staff/patients.html",
        {"scope": scope, "form": form, "found": found},
        status=429 if throttled else status,
    )
    if throttled:
        response["Retry-After"] = str(throttled.retry_after)
    return response


STATUS_ACTIONS = ("arrived", "no_show", "done")


@require_POST
@staff_view
def appointment_status(
    request: HttpRequest, scope: StaffScope, appointment_id: str
) -> HttpResponse:
    """Arrived, did not come, or seen: set from the day's list, by someone whose scope holds
    the appointment's practitioner (anyone else gets a 404), recorded as theirs."""
    appointment = (
        Appointment.objects.filter(
            public_id=appointment_id,
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
        )
        .select_related("practitioner_role")
        .first()
    )
    status = request.POST.get("status", "")
    if appointment is None or status not in STATUS_ACTIONS:
        raise Http404("no such appointment here")
    back = safe_next(
        request, reverse("staff:practitioner", args=[appointment.practitioner_role.public_id])
    )
    appointment_status_set(appointment=appointment, status=status, user=request.user)
    return HttpResponseRedirect(back)


# ---------------------------------------------------------------------------------------------
# The access log


class AccessLogForm(forms.Form):
    first = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    last = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput({"type": "date"})
    )


ACCESS_LOG_SHOWN = 200


@staff_view
def access_log(request: HttpRequest, scope: StaffScope) -> HttpResponse:
    """Every view of patients' details in the organisation, by its staff and its operators:
    who, when, which page, how many appointments (their references, never a name); as a page
    or as CSV (``?format=csv``) for a period. For auditors and organisation administrators."""
    organisations = scope.audited_organisations
    if not organisations:
        raise Http404("no access log here")
    form = AccessLogForm(request.GET or None)
    today = timezone.localdate()
    first, last = today - timedelta(days=30), today
    if form.is_valid():
        first = form.cleaned_data["first"] or first
        last = form.cleaned_data["last"] or last
    views = (
        PatientDataView.objects.filter(
            Q(appointments__establishment__organisation_id__in=organisations)
            | Q(operator__organisation_id__in=organisations)
            | Q(user__staff_accesses__organisation_id__in=organisations),
            at__gte=paris_midnight(first),
            at__lt=paris_midnight(last + timedelta(days=1)),
        )
        .distinct()
        .select_related("user", "operator", "api_client")
        .prefetch_related(Prefetch("appointments", Appointment.objects.only("public_id")))
        .order_by("-at", "-pk")
    )
    if request.GET.get("format") == "csv":
        return _access_log_csv(views, first, last)
    return render(
        request,
        "staff/access_log.html",
        {
            "scope": scope,
            "form": form,
            "views": views[:ACCESS_LOG_SHOWN],
            "first": first,
            "last": last,
            "shown": ACCESS_LOG_SHOWN,
        },
    )


def _access_log_csv(views, first: date, last: date) -> HttpResponse:
    return csv_download(
        f"access-log-{first}-{last}.csv",
        ["at", "who", "operator", "page", "what", "shown", "appointments"],
        (
            [
                timezone.localtime(view.at).isoformat(),
                view.user.get_username() if view.user_id else str(view.api_client or ""),
                view.operator.name if view.operator_id else "",
                view.kind,
                view.subject,
                view.shown,
                " ".join(a.public_id for a in view.appointments.all()),
            ]
            for view in views.iterator(chunk_size=500)
        ),
    )


@staff_view
def reports(request: HttpRequest, scope: StaffScope) -> HttpResponse:
    """The organisation's reports for auditors and organisation administrators: the channels'
    and operators' figures per day (searches, bookings, moves, cancellations, no-shows,
    refusals) and their CSV, and the way to the transparency ledger. No patient in them."""
    from creneau.channels.models import OperatorCompany
    from creneau.web.console import statistics_page

    organisations = scope.audited_organisations
    if not organisations:
        raise Http404("no reports here")
    return statistics_page(
        request,
        OperatorCompany.objects.filter(organisation_id__in=organisations).order_by("name"),
        template="staff/reports.html",
        context={"scope": scope},
    )
