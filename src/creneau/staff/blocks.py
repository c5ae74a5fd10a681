"""Blocked time: a slot, a morning, an afternoon or any period of one agenda, with a reason
for staff. The form shows first what blocking would close and which appointments are inside;
once blocked, the block's page lists those appointments with the nearest free times to move
each to, or its cancellation (the patient is told either way)."""

import contextlib
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from creneau.agenda.models import Absence
from creneau.agenda.services import AgendaError, absence_remove
from creneau.booking.models import PARIS
from creneau.channels.queries import ChannelScope
from creneau.dates import instant_in_range
from creneau.directory.models import PractitionerRole
from creneau.staff.models import PatientDataView
from creneau.staff.scope import StaffScope
from creneau.staff.services import (
    appointments_inside,
    block_create,
    block_preview,
    desk_scope,
    nearest_free_slots,
    patient_data_view_record,
    practitioner_agendas,
)
from creneau.staff.views import staff_view
from creneau.web.forms import FocusFirstError

LOCAL_INPUT = "%Y-%m-%dT%H:%M"
NOON = time(13, 0)


class BlockForm(FocusFirstError):
    starts_at = forms.DateTimeField(
        label=gettext_lazy("From"),
        input_formats=[LOCAL_INPUT],
        widget=forms.DateTimeInput({"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    ends_at = forms.DateTimeField(
        label=gettext_lazy("Until"),
        input_formats=[LOCAL_INPUT],
        widget=forms.DateTimeInput({"type": "datetime-local"}, format=LOCAL_INPUT),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason (staff only, never shown to patients)"), max_length=200
    )
    everywhere = forms.BooleanField(
        label=gettext_lazy("In all of this practitioner's agendas (leave, training, congress)"),
        required=False,
    )


def _initial(request: HttpRequest) -> dict:
    """The form filled from the agenda's links: a slot's times, or a day's morning or
    afternoon (Paris time)."""
    try:
        day = date.fromisoformat(request.GET.get("day", ""))
    except ValueError:
        day = timezone.localdate()
    midnight = datetime.combine(day, time(), tzinfo=PARIS)
    noon = datetime.combine(day, NOON, tzinfo=PARIS)
    next_midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=PARIS)
    part = request.GET.get("part")
    if part == "morning":
        return {"starts_at": midnight, "ends_at": noon}
    if part == "afternoon":
        return {"starts_at": noon, "ends_at": next_midnight}
    initial = {"starts_at": midnight, "ends_at": next_midnight}
    for name in ("starts_at", "ends_at"):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(request.GET.get(name, ""))
            if moment.tzinfo is not None and instant_in_range(moment):
                initial[name] = moment.astimezone(PARIS)
    return initial


@staff_view
def block(request: HttpRequest, scope: StaffScope, role_id: str) -> HttpResponse:
    """GET: the form; POST: the preview (what closes, who is inside); POST with ``confirm``:
    block, then the block's page. All the practitioner's agendas at once (an absence) for a
    member whose scope holds them all."""
    role = scope.role_or_404(role_id)
    form = BlockForm(request.POST or None, initial=_initial(request))
    if not scope.covers(role.practitioner_id):
        del form.fields["everywhere"]
    preview = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            everywhere = bool(data.get("everywhere"))
            try:
                if request.POST.get("confirm") == "1":
                    absence, _report = block_create(
                        role=role,
                        starts_at=data["starts_at"],
                        ends_at=data["ends_at"],
                        reason=data["reason"],
                        everywhere=everywhere,
                    )
                    return HttpResponseRedirect(reverse("staff:blocked", args=[absence.public_id]))
                preview = block_preview(
                    roles=practitioner_agendas(role) if everywhere else [role],
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                )
            except AgendaError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
        if form.errors:
            status = 422
    if preview is not None and preview.appointments:
        patient_data_view_record(
            user=request.user,
            kind=PatientDataView.Kind.BLOCKED,
            subject=f"block preview {role.public_id}",
            appointments=preview.appointments,
        )
    return render(
        request,
        "staff/block.html",
        {
            "scope": scope,
            "role": role,
            "form": form,
            "preview": preview,
            "back": reverse("staff:practitioner", args=[role.public_id])
            + f"?day={timezone.localtime(form.initial['starts_at']).date().isoformat()}",
        },
        status=status,
    )


def _block_or_404(scope: StaffScope, public_id: str) -> tuple[Absence, list[PractitionerRole]]:
    """A blocked time of an agenda in the scope, or an absence of a practitioner with an
    agenda in the scope; and the agendas of it the member sees."""
    found = (
        Absence.objects.filter(public_id=public_id)
        .filter(Q(practitioner_role__isnull=False) | Q(practitioner__isnull=False))
        .first()
    )
    visible = scope.practitioner_roles().select_related(
        "practitioner", "establishment", "department"
    )
    if found is not None and found.practitioner_role_id:
        roles = list(visible.filter(pk=found.practitioner_role_id))
    elif found is not None:
        roles = list(visible.filter(practitioner_id=found.practitioner_id).order_by("pk"))
    if found is None or not roles:
        raise Http404("no such blocked time here")
    return found, roles


@staff_view
def blocked(request: HttpRequest, scope: StaffScope, block_id: str) -> HttpResponse:
    """A blocked time and the appointments still inside it, each with the nearest free times
    to move it to (for those who book for its agenda) and its cancellation."""
    absence, roles = _block_or_404(scope, block_id)
    inside = appointments_inside(roles=roles, starts_at=absence.starts_at, ends_at=absence.ends_at)
    desk = set(scope.desk_roles().filter(pk__in=[r.pk for r in roles]).values_list("pk", flat=True))
    now = timezone.now()
    moves = []
    scopes: dict[int, ChannelScope] = {}  # one desk scope per agenda, whoever is inside
    for appointment in inside:
        role = appointment.practitioner_role
        nearest = None  # not this member's to move
        if role.pk in desk:
            if role.pk not in scopes:
                scopes[role.pk] = desk_scope(role=role, user=request.user)
            nearest = nearest_free_slots(
                scope=scopes[role.pk],
                role=role,
                visit_type=appointment.visit_type,
                around=appointment.starts_at,
                limit=3,
                now=now,
            )
        moves.append((appointment, nearest))
    patient_data_view_record(
        user=request.user,
        kind=PatientDataView.Kind.BLOCKED,
        subject=f"blocked time {absence.public_id}",
        appointments=inside,
    )
    return render(
        request,
        "staff/blocked.html",
        {
            "scope": scope,
            "absence": absence,
            "role": roles[0],
            "everywhere": absence.practitioner_role_id is None,
            "moves": moves,
            "books": bool(desk),
            "opens": absence.practitioner_role_id or scope.covers(absence.practitioner_id),
            "done": request.GET.get("done", ""),
            "here": request.path,
            "back": reverse("staff:practitioner", args=[roles[0].public_id])
            + f"?day={timezone.localtime(absence.starts_at).date().isoformat()}",
        },
    )


@require_POST
@staff_view
def unblock(request: HttpRequest, scope: StaffScope, block_id: str) -> HttpResponse:
    """Open the time again: its slots come back to search. An absence over all the
    practitioner's agendas is lifted by a member whose scope holds them all."""
    absence, roles = _block_or_404(scope, block_id)
    if absence.practitioner_id and not scope.covers(absence.practitioner_id):
        raise Http404("not this member's to lift")
    role = roles[0]
    day = timezone.localtime(absence.starts_at).date().isoformat()
    absence_remove(absence=absence)
    return HttpResponseRedirect(
        reverse("staff:practitioner", args=[role.public_id]) + f"?day={day}&done=" + "unblocked"
    )
