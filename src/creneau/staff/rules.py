"""Opening periods in words, not RRULE: the weekdays, the hours, every week, every other week
or the nth weekday of the month, the first and last day, the visits offered and the places
per slot. Each change is previewed first (the slots it opens and closes over the coming
weeks, and the appointments it would leave uncovered, named with links), then saved."""

from collections import defaultdict
from datetime import date, timedelta

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from creneau.agenda.models import AgendaSource, AvailabilityRule
from creneau.agenda.services import (
    AgendaError,
    availability_rule_end,
    availability_rule_preview,
    availability_rule_save,
)
from creneau.booking.models import Appointment
from creneau.directory.models import PractitionerRole, VisitType
from creneau.staff.models import PatientDataView
from creneau.staff.scope import StaffScope
from creneau.staff.services import patient_data_view_record
from creneau.staff.views import staff_view
from creneau.web.forms import FocusFirstError

WEEKDAYS = [
    ("MO", gettext_lazy("Monday")),
    ("TU", gettext_lazy("Tuesday")),
    ("WE", gettext_lazy("Wednesday")),
    ("TH", gettext_lazy("Thursday")),
    ("FR", gettext_lazy("Friday")),
    ("SA", gettext_lazy("Saturday")),
    ("SU", gettext_lazy("Sunday")),
]
FREQUENCIES = [
    ("weekly", gettext_lazy("Every week")),
    ("fortnightly", gettext_lazy("Every other week (from the first day)")),
    ("monthly", gettext_lazy("Once a month, on the weekday chosen below")),
]
WEEKS_OF_MONTH = [
    ("1", gettext_lazy("the first")),
    ("2", gettext_lazy("the second")),
    ("3", gettext_lazy("the third")),
    ("4", gettext_lazy("the fourth")),
    ("-1", gettext_lazy("the last")),
]
# How many weeks of the preview are listed slot by slot (the rest are counted).
LISTED_WEEKS = 4


def recurrence_of(frequency: str, weekdays: list[str], week_of_month: str) -> str:
    days = ",".join(day for day, _label in WEEKDAYS if day in weekdays)
    if frequency == "monthly":
        return "FREQ=MONTHLY;BYDAY=" + ",".join(f"{week_of_month}{day}" for day in days.split(","))
    if frequency == "fortnightly":
        return f"FREQ=WEEKLY;INTERVAL=2;BYDAY={days}"
    return f"FREQ=WEEKLY;BYDAY={days}"


def words_of(recurrence: str) -> dict | None:
    """The form's fields for a rule written in one of the shapes above, or None for a rule
    written by hand in another (it is shown as it is, and replaced if edited)."""
    parts = dict(part.split("=", 1) for part in recurrence.upper().split(";") if "=" in part)
    if set(parts) - {"FREQ", "INTERVAL", "BYDAY"} or "BYDAY" not in parts:
        return None
    days = parts["BYDAY"].split(",")
    known = {day for day, _label in WEEKDAYS}
    if parts["FREQ"] == "WEEKLY" and parts.get("INTERVAL", "1") in {"1", "2"}:
        if not set(days) <= known:
            return None
        frequency = "fortnightly" if parts.get("INTERVAL") == "2" else "weekly"
        return {"frequency": frequency, "weekdays": days, "week_of_month": "1"}
    if parts["FREQ"] == "MONTHLY" and "INTERVAL" not in parts:
        weeks = {day[:-2] for day in days}
        if len(weeks) != 1 or not weeks <= {n for n, _label in WEEKS_OF_MONTH}:
            return None
        if not {day[-2:] for day in days} <= known:
            return None
        return {
            "frequency": "monthly",
            "weekdays": [day[-2:] for day in days],
            "week_of_month": weeks.pop(),
        }
    return None


class RuleForm(FocusFirstError):
    label = forms.CharField(
        label=gettext_lazy("Name (optional)"),
        required=False,
        max_length=200,
        help_text=gettext_lazy("For staff, such as “Tuesday consultations”."),
    )
    weekdays = forms.MultipleChoiceField(
        label=gettext_lazy("Days"), choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple
    )
    frequency = forms.ChoiceField(
        label=gettext_lazy("How often"),
        choices=FREQUENCIES,
        initial="weekly",
        widget=forms.RadioSelect,
    )
    week_of_month = forms.ChoiceField(
        label=gettext_lazy("Which one in the month (once a month)"),
        choices=WEEKS_OF_MONTH,
        initial="1",
        required=False,
    )
    start_time = forms.TimeField(
        label=gettext_lazy("Opens at"), widget=forms.TimeInput({"type": "time"}, format="%H:%M")
    )
    end_time = forms.TimeField(
        label=gettext_lazy("Closes at"), widget=forms.TimeInput({"type": "time"}, format="%H:%M")
    )
    starts_on = forms.DateField(
        label=gettext_lazy("First day"),
        widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d"),
    )
    ends_on = forms.DateField(
        label=gettext_lazy("Last day (optional)"),
        required=False,
        widget=forms.DateInput({"type": "date"}, format="%Y-%m-%d"),
    )
    visit_types = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Visits offered"),
        queryset=VisitType.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    capacity = forms.IntegerField(
        label=gettext_lazy("Places per slot"), min_value=1, max_value=500, initial=1
    )
    slot_minutes = forms.IntegerField(
        label=gettext_lazy("Slot length in minutes (optional)"),
        required=False,
        min_value=5,
        max_value=480,
        help_text=gettext_lazy("Empty: each visit's own duration."),
    )
    open_on_public_holidays = forms.BooleanField(
        label=gettext_lazy("Open on public holidays"), required=False
    )

    def __init__(self, role: PractitionerRole, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["visit_types"].queryset = VisitType.objects.filter(
            organisation_id=role.establishment.organisation_id,
            specialty__in=role.specialties.all(),
            is_active=True,
        ).order_by("specialty__code", "code")
        self.fields["visit_types"].label_from_instance = lambda visit: (
            f"{visit.label} ({visit.duration_minutes} min)"
        )

    def service_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "label": data["label"],
            "recurrence": recurrence_of(
                data["frequency"], data["weekdays"], data.get("week_of_month") or "1"
            ),
            "starts_on": data["starts_on"],
            "ends_on": data["ends_on"],
            "start_time": data["start_time"],
            "end_time": data["end_time"],
            "visit_types": list(data["visit_types"]),
            "capacity": data["capacity"],
            "slot_minutes": data["slot_minutes"],
            "open_on_public_holidays": data["open_on_public_holidays"],
        }


def _initial(rule: AvailabilityRule | None) -> dict:
    if rule is None:
        return {"starts_on": timezone.localdate(), "capacity": 1, "frequency": "weekly"}
    return {
        "label": rule.label,
        **(words_of(rule.recurrence) or {}),
        "start_time": rule.start_time,
        "end_time": rule.end_time,
        "starts_on": rule.starts_on,
        "ends_on": rule.ends_on,
        "visit_types": list(rule.visit_types.all()),
        "capacity": rule.capacity,
        "slot_minutes": rule.slot_minutes,
        "open_on_public_holidays": rule.open_on_public_holidays,
    }


def _role(scope: StaffScope, role_id: str) -> PractitionerRole:
    """A role whose rules the member sets (secretaries and administrators), with its agenda
    kept here: a role whose slots come from a remote FHIR agenda has no rules here."""
    return scope.role_or_404(role_id, desk=True)


def _rule_or_404(role: PractitionerRole, rule_id: str) -> AvailabilityRule:
    rule = AvailabilityRule.objects.filter(
        practitioner_role=role, public_id=rule_id, is_active=True
    ).first()
    if rule is None:
        raise Http404("no such rule here")
    return rule


def describe(rule: AvailabilityRule) -> str:
    """A rule in a sentence: “Every week on Monday, Thursday, 09:00-12:00”."""
    words = words_of(rule.recurrence)
    hours = f"{rule.start_time:%H:%M}\u2013{rule.end_time:%H:%M}"
    if words is None:
        return _("Rule written by hand (%(rule)s), %(hours)s") % {
            "rule": rule.recurrence,
            "hours": hours,
        }
    names = dict(WEEKDAYS)
    days = ", ".join(str(names[day]) for day in words["weekdays"])
    if words["frequency"] == "monthly":
        which = dict(WEEKS_OF_MONTH)[words["week_of_month"]]
        return _("Each month, %(which)s %(days)s, %(hours)s") % {
            "which": which,
            "days": days,
            "hours": hours,
        }
    if words["frequency"] == "fortnightly":
        return _("Every other week on %(days)s, %(hours)s") % {"days": days, "hours": hours}
    return _("Every week on %(days)s, %(hours)s") % {"days": days, "hours": hours}


def _sources_note(role: PractitionerRole) -> str:
    source = AgendaSource.objects.filter(practitioner_role=role).first()
    if source is not None and source.kind == AgendaSource.Kind.FHIR:
        return _(
            "This practitioner's slots come from their own agenda (%(address)s): rules set here "
            "open nothing."
        ) % {"address": source.url}
    return ""


@staff_view
def rules(request: HttpRequest, scope: StaffScope, role_id: str) -> HttpResponse:
    role = _role(scope, role_id)
    found = (
        AvailabilityRule.objects.filter(practitioner_role=role, is_active=True)
        .prefetch_related("visit_types")
        .order_by("starts_on", "start_time", "pk")
    )
    return render(
        request,
        "staff/rules.html",
        {
            "scope": scope,
            "role": role,
            "rules": [(rule, describe(rule)) for rule in found],
            "note": _sources_note(role),
            "saved": request.GET.get("done") in {"saved", "ended"},
        },
    )


def _by_week(slots, visits) -> tuple[list, int]:
    """The first weeks' slots, week by week, and how many come after."""
    today = timezone.localdate()
    weeks: dict[date, list] = defaultdict(list)
    later = 0
    for slot in slots:
        local = timezone.localtime(slot.starts_at).date()
        week = local - timedelta(days=local.weekday())
        if (week - today).days < LISTED_WEEKS * 7:
            weeks[week].append((slot, visits.get(slot.visit_type_id)))
        else:
            later += 1
    return sorted(weeks.items()), later


def _preview_context(request, role, preview) -> dict:
    """The preview as the page shows it: the slots it opens and closes, week by week over the
    first weeks and counted beyond, and the appointments left uncovered, with links."""
    concerned = {slot.visit_type_id for slot in preview.opening + preview.closing}
    visits = {visit.pk: visit for visit in VisitType.objects.filter(pk__in=concerned)}
    weeks, later = _by_week(preview.opening, visits)
    closing_weeks, closing_later = _by_week(preview.closing, visits)
    uncovered = list(
        Appointment.objects.filter(
            slot_id__in=preview.uncovered, status=Appointment.Status.BOOKED
        ).order_by("starts_at")
    )
    if uncovered:
        patient_data_view_record(
            user=request.user,
            kind=PatientDataView.Kind.BLOCKED,
            subject=f"rule preview {role.public_id}",
            appointments=uncovered,
        )
    return {
        "weeks": weeks,
        "later": later,
        "closing_weeks": closing_weeks,
        "closing_later": closing_later,
        "opening": len(preview.opening),
        "closing": len(preview.closing),
        "uncovered": uncovered,
    }


@staff_view
def rule_edit(
    request: HttpRequest, scope: StaffScope, role_id: str, rule_id: str | None = None
) -> HttpResponse:
    """GET: the form (a new rule, or the rule's words); POST: the preview; POST with
    ``confirm``: save, then the rules' list."""
    role = _role(scope, role_id)
    rule = _rule_or_404(role, rule_id) if rule_id else None
    form = RuleForm(role, request.POST or None, initial=_initial(rule))
    context: dict = {}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            fields = form.service_fields()
            try:
                if request.POST.get("confirm") == "1":
                    availability_rule_save(practitioner_role=role, rule=rule, **fields)
                    url = reverse("staff:rules", args=[role.public_id])
                    return HttpResponseRedirect(url + "?done=saved")
                preview = availability_rule_preview(practitioner_role=role, rule=rule, **fields)
                context = _preview_context(request, role, preview)
            except AgendaError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
        if form.errors:
            status = 422
    return render(
        request,
        "staff/rule.html",
        {
            "scope": scope,
            "role": role,
            "rule": rule,
            "form": form,
            "written_by_hand": rule is not None and words_of(rule.recurrence) is None,
            "note": _sources_note(role),
            "previewed": bool(context),
            **context,
        },
        status=status,
    )


@staff_view
def rule_end(request: HttpRequest, scope: StaffScope, role_id: str, rule_id: str) -> HttpResponse:
    """GET: what ending the rule closes and leaves uncovered; POST: end it."""
    role = _role(scope, role_id)
    rule = _rule_or_404(role, rule_id)
    if request.method == "POST":
        availability_rule_end(rule=rule)
        return HttpResponseRedirect(reverse("staff:rules", args=[role.public_id]) + "?done=ended")
    preview = availability_rule_preview(practitioner_role=role, rule=rule, ending=True)
    return render(
        request,
        "staff/rule_end.html",
        {
            "scope": scope,
            "role": role,
            "rule": rule,
            "described": describe(rule),
            **_preview_context(request, role, preview),
        },
    )
