"""The operator console: one page for an agent on the phone. Search (visit, hospital,
practitioner, date), pick a slot, take the caller's details, confirm; or find a caller's
appointments to move or cancel them. Each panel is a form that htmx sends in place (the page
works as plain forms without scripts), and each answer puts the focus where the agent goes next.

Every view works through the signed-in agent's company contract: its channel, perimeter,
allowed actions and quotas, checked again at each request."""

import functools
from datetime import date, datetime, timedelta

from django import forms
from django.contrib.auth import logout as auth_logout
from django.contrib.auth.forms import AuthenticationForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from creneau.booking import operators, queries, services
from creneau.booking.models import PARIS, Appointment, paris_midnight
from creneau.booking.queries import SlotQuery, slots_search_queryset
from creneau.channels.models import Agent, OperatorCompany
from creneau.channels.queries import (
    ChannelScope,
    channel_scope_for_agent,
    establishments_in_scope,
    practitioners_in_scope,
    visit_types_in_scope,
)
from creneau.errors import DomainError
from creneau.ledger.services import receipt, refusal_append
from creneau.second_factor import OneTimeCodeMixin
from creneau.web.forms import CallerLookupForm, CallerPatientForm
from creneau.web.signin import sign_in

SLOTS_SHOWN = 24
# The look-up's fields sit on the same page as the booking's: their own names and ids.
LOOKUP_PREFIX = "caller"


# ---------------------------------------------------------------------------------------------
# Signing in


class AgentLoginForm(OneTimeCodeMixin, AuthenticationForm):
    def confirm_second_factor_allowed(self, user) -> None:
        if not Agent.objects.filter(user=user).exists():
            raise forms.ValidationError(_("This account is not an operator's agent."))


def login(request: HttpRequest) -> HttpResponse:
    return sign_in(
        request,
        form_class=AgentLoginForm,
        limit="console_login",
        template="web/console/login.html",
        home=reverse("console:home"),
    )


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    auth_logout(request)
    return HttpResponseRedirect(reverse("console:login"))


def _htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def agent_view(view):
    """Signed in with both factors, as an agent whose company's contract is in force: the
    view receives the scope of that contract's channel. Refusals become the console's alert."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        user = request.user
        if not (user.is_authenticated and user.is_verified()):
            login_url = reverse("console:login")
            if _htmx(request):
                response = HttpResponse(status=401)
                response["HX-Redirect"] = login_url
                return response
            return HttpResponseRedirect(login_url)
        try:
            scope = channel_scope_for_agent(user)
            return view(request, scope, *args, **kwargs)
        except DomainError as error:
            refusal_append(error)
            return _alert(request, error)

    return wrapper


def _alert(request: HttpRequest, error: DomainError) -> HttpResponse:
    template = "web/console/_alert.html" if _htmx(request) else "web/console/refused.html"
    response = render(
        request, template, {"message": error.message, "code": error.code}, status=error.status
    )
    retry_after = getattr(error, "retry_after", None)
    if retry_after:
        response["Retry-After"] = str(max(1, int(retry_after)))
    return response


# ---------------------------------------------------------------------------------------------
# The page and its panels


class ConsoleSearchForm(forms.Form):
    visit_type = forms.ChoiceField(label=gettext_lazy("Visit"))
    establishment = forms.ChoiceField(label=gettext_lazy("Hospital"), required=False)
    practitioner = forms.CharField(
        label=gettext_lazy("Practitioner (name)"), required=False, max_length=100
    )
    day = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput({"type": "date"})
    )
    move = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, scope: ChannelScope, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["visit_type"].choices = [
            (v.public_id, f"{v.label} ({v.organisation.short_name or v.organisation.name})")
            for v in visit_types_in_scope(scope)
        ]
        self.fields["establishment"].choices = [("", _("Any hospital"))] + [
            (e.public_id, f"{e.name}, {e.city}") for e in establishments_in_scope(scope)
        ]


def _page(request: HttpRequest, scope: ChannelScope, status: int = 200, **panels) -> HttpResponse:
    context = {
        "scope": scope,
        "operator": scope.operator,
        "search_form": panels.pop("search_form", None) or ConsoleSearchForm(scope),
        "lookup_form": panels.pop("lookup_form", None) or CallerLookupForm(prefix=LOOKUP_PREFIX),
        **panels,
    }
    return render(request, "web/console/page.html", context, status=status)


def _panel(
    request: HttpRequest,
    scope: ChannelScope,
    template: str,
    context: dict,
    status: int = 200,
    **page,
) -> HttpResponse:
    """The panel alone for htmx, or the whole page around it."""
    if _htmx(request):
        return render(request, template, {"scope": scope, **context}, status=status)
    return _page(request, scope, status=status, panel=template, **context, **page)


@agent_view
def home(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    return _page(request, scope)


def _slot_rows(scope: ChannelScope, form: ConsoleSearchForm, now: datetime):
    data = form.cleaned_data
    visit_type = visit_types_in_scope(scope).filter(public_id=data["visit_type"]).first()
    establishment = None
    if data.get("establishment"):
        establishment = establishments_in_scope(scope, ident=data["establishment"]).first()
    found, _distances = slots_search_queryset(
        scope,
        SlotQuery(
            visit_type=visit_type,
            establishment=establishment,
            starts_after=paris_midnight(data["day"]) if data.get("day") else None,
        ),
        now,
    )
    if data.get("practitioner"):
        practitioners = practitioners_in_scope(scope, name=data["practitioner"])
        found = found.filter(practitioner_id__in=practitioners.values("pk"))
    slots = list(found[:SLOTS_SHOWN])
    services.offer_record(
        scope=scope,
        slots=slots,
        # The practitioner's name as typed is free text: it never enters the public ledger.
        query={"visit_type": visit_type, "establishment": establishment},
    )
    days: dict[date, list] = {}
    for slot in slots:
        days.setdefault(timezone.localtime(slot.starts_at, PARIS).date(), []).append(slot)
    return list(days.items())


@agent_view
def slots(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    scope.require("search")
    form = ConsoleSearchForm(scope, request.GET)
    if not form.is_valid():
        return _panel(request, scope, "web/console/_slots.html", {"form": form}, search_form=form)
    moving = None
    if form.cleaned_data.get("move"):
        moving = operators.access_appointment_for_operator(
            scope=scope, public_id=form.cleaned_data["move"]
        )
    days = _slot_rows(scope, form, timezone.now())
    return _panel(
        request,
        scope,
        "web/console/_slots.html",
        {"days": days, "moving": moving, "form": form},
        search_form=form,
    )


def _slot(scope: ChannelScope, public_id: str):
    slot = queries.slot_by_id(public_id)
    if not scope.practitioner_roles().filter(pk=slot.practitioner_role_id).exists():
        raise DomainError("not_found", _("No such slot for this operator."), status=404)
    return slot


@agent_view
def details(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    """The chosen slot and the form for the caller's details."""
    scope.require("book")
    slot = _slot(scope, request.GET.get("slot", ""))
    form = CallerPatientForm()
    form.fields["last_name"].widget.attrs["autofocus"] = True
    return _panel(request, scope, "web/console/_details.html", {"slot": slot, "form": form})


@agent_view
@require_POST
def book(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    scope.require("book")
    # The booking checks the perimeter itself, and a refusal goes to the ledger.
    slot = queries.slot_by_id(request.POST.get("slot", ""))
    form = CallerPatientForm(request.POST)
    language = "en" if request.POST.get("language") == "en" else "fr"
    patient = form.patient(language)
    if patient is None:
        return _panel(
            request, scope, "web/console/_details.html", {"slot": slot, "form": form}, status=422
        )
    booked = services.appointment_book(
        scope=scope, patient=patient, slot=slot, reason=request.POST.get("reason", "")[:500]
    )
    appointment = queries.access_appointment(
        public_id=booked.appointment.public_id, token=booked.manage_token
    )
    return _panel(
        request,
        scope,
        "web/console/_done.html",
        {"appointment": appointment, "action": "booked", "receipt": _receipt(appointment)},
        status=201,
    )


def _receipt(appointment: Appointment) -> dict:
    return receipt(appointment.ledger_entry) if appointment.ledger_entry else {}


@agent_view
@require_POST
def lookup(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    form = CallerLookupForm(request.POST, prefix=LOOKUP_PREFIX)
    criteria = form.criteria()
    found = None if criteria is None else operators.caller_lookup(scope=scope, criteria=criteria)
    return _panel(
        request,
        scope,
        "web/console/_found.html",
        {"found": found, "lookup_form": form},
        status=200 if found is not None else 422,
        lookup_form=form,
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason given by the caller (optional)"), required=False, max_length=300
    )


@agent_view
def cancel(request: HttpRequest, scope: ChannelScope, appointment_id: str) -> HttpResponse:
    """GET asks the agent to confirm (with the caller's reason); POST cancels."""
    scope.require("cancel")
    appointment = operators.access_appointment_for_operator(scope=scope, public_id=appointment_id)
    if request.method != "POST":
        return _panel(
            request,
            scope,
            "web/console/_cancel.html",
            {"appointment": appointment, "cancel_form": CancelForm()},
        )
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    services.appointment_cancel(appointment=appointment, channel_scope=scope, reason=reason)
    return _panel(
        request,
        scope,
        "web/console/_done.html",
        {"appointment": appointment, "action": "cancelled"},
    )


@agent_view
@require_POST
def move(request: HttpRequest, scope: ChannelScope, appointment_id: str) -> HttpResponse:
    scope.require("move")
    appointment = operators.access_appointment_for_operator(scope=scope, public_id=appointment_id)
    slot = queries.slot_by_id(request.POST.get("slot", ""))
    services.appointment_reschedule(appointment=appointment, scope=scope, slot=slot)
    moved = operators.access_appointment_for_operator(scope=scope, public_id=appointment_id)
    return _panel(
        request,
        scope,
        "web/console/_done.html",
        {"appointment": moved, "action": "moved", "receipt": _receipt(moved)},
    )


@agent_view
def appointments(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    """The company's coming bookings (its own only)."""
    scope.require("read")
    found = list(
        operators.operator_appointments(
            scope=scope, starts_from=timezone.now() - timedelta(days=1)
        )[:200]
    )
    operators.operator_list_record(scope, found)
    return render(
        request,
        "web/console/appointments.html",
        {"scope": scope, "operator": scope.operator, "appointments": found},
    )


@agent_view
def statistics(request: HttpRequest, scope: ChannelScope) -> HttpResponse:
    """The company's own statistics per day (never another operator's)."""
    operator = scope.operator
    assert operator is not None
    return statistics_page(
        request,
        OperatorCompany.objects.filter(pk=operator.pk),
        template="web/console/statistics.html",
        context={"scope": scope, "operator": operator},
    )


def _day(text: str | None) -> date | None:
    """A day of the period chooser; a day it cannot read is no day (the default period)."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def statistics_page(request: HttpRequest, companies, *, template: str, context: dict):
    """The statistics of ``companies`` over a period: a table per day, the operators side by
    side (table and bar chart), and the CSV of the same rows (``?format=csv``)."""
    period_error = ""
    try:
        first, last = operators.statistics_period(
            _day(request.GET.get("from")), _day(request.GET.get("to"))
        )
    except operators.PeriodInvalid as error:
        period_error = error.message
        first, last = operators.statistics_period(None, None)
    if first > last:
        first, last = last, first
    rows = operators.operator_statistics(operators=companies, first_day=first, last_day=last)
    if request.GET.get("format") == "csv":
        return operators.statistics_csv(rows, first, last)
    totals = operators.statistics_totals(rows)
    # The longest bar is the largest figure of any operator.
    peak = max((getattr(t, name) for t in totals for name in operators.COUNTS), default=0) or 1
    return render(
        request,
        template,
        {
            **context,
            "period_error": period_error,
            "rows": rows,
            "totals": totals,
            "chart": [
                {
                    "operator": t.operator,
                    "bars": [
                        (name, label, getattr(t, name), round(100 * getattr(t, name) / peak))
                        for name, label in (
                            ("searches", _("Searches")),
                            ("bookings", _("Bookings")),
                            ("moves", _("Moves")),
                            ("cancellations", _("Cancellations")),
                            ("no_shows", _("No-shows")),
                            ("refusals", _("Refusals")),
                        )
                    ],
                }
                for t in totals
            ],
            "first": first,
            "last": last,
        },
    )
