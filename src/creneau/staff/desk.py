"""The hospital's desk: staff book for a patient on the phone or at the counter, open an
appointment, move it or cancel it (the patient is told, with the reason and the nearest free
times). Each action goes through the desk channel of the appointment's department, its
perimeter that department, and records the staff member who acted."""

import segno
from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from creneau.agenda.models import Slot
from creneau.booking import services
from creneau.booking.models import AppointmentEvent
from creneau.ledger.services import receipt
from creneau.sealing import unseal
from creneau.staff.models import PatientDataView
from creneau.staff.scope import StaffScope
from creneau.staff.services import desk_scope, nearest_free_slots, patient_data_view_record
from creneau.staff.views import safe_next, staff_view
from creneau.web.forms import CallerPatientForm, FocusFirstError


def _slot_or_404(scope: StaffScope, public_id: str) -> Slot:
    slot = (
        Slot.objects.filter(
            public_id=public_id, practitioner_role_id__in=scope.desk_roles().values("pk")
        )
        .select_related(
            "visit_type",
            "practitioner",
            "establishment",
            "practitioner_role__department",
            "practitioner_role__establishment",
            "practitioner_role__practitioner",
        )
        .first()
    )
    if slot is None:
        raise Http404("no such slot here")
    return slot


def _agenda_day(role, starts_at) -> str:
    day = timezone.localtime(starts_at).date().isoformat()
    return reverse("staff:practitioner", args=[role.public_id]) + f"?day={day}"


@staff_view
def book(request: HttpRequest, scope: StaffScope) -> HttpResponse:
    """GET: the chosen slot and the patient's details; POST: book it through the desk."""
    slot = _slot_or_404(scope, request.GET.get("slot") or request.POST.get("slot", ""))
    role = slot.practitioner_role
    form = CallerPatientForm(request.POST or None)
    status = 200
    if request.method == "POST":
        language = "en" if request.POST.get("language") == "en" else "fr"
        patient = form.patient(language)
        if patient is not None:
            booked = services.appointment_book(
                scope=desk_scope(role=role, user=request.user),
                patient=patient,
                slot=slot,
                reason=request.POST.get("reason", "")[:500],
            )
            url = reverse("staff:appointment", args=[booked.appointment.public_id])
            return HttpResponseRedirect(url + "?done=booked")
        status = 422
    return render(
        request,
        "staff/book.html",
        {
            "scope": scope,
            "slot": slot,
            "form": form,
            "back": _agenda_day(role, slot.starts_at),
        },
        status=status,
    )


DONE = {
    "booked": gettext_lazy("Booked."),
    "moved": gettext_lazy("Moved. The patient is told the new time."),
    "cancelled": gettext_lazy("Cancelled. The patient is told, with the reason."),
}


@staff_view
def appointment(request: HttpRequest, scope: StaffScope, appointment_id: str) -> HttpResponse:
    """One appointment: who, when, how it was booked and by whom, what happened to it; and,
    for those who book, the nearest free times to move it to, and its cancellation."""
    found = scope.appointment_or_404(appointment_id)
    role = found.practitioner_role
    now = timezone.now()
    movable = (
        scope.books
        and found.status == found.Status.BOOKED
        and found.starts_at > now
        and scope.desk_roles().filter(pk=role.pk).exists()
    )
    nearest = []
    if movable:
        nearest = nearest_free_slots(
            scope=desk_scope(role=role, user=request.user),
            role=role,
            visit_type=found.visit_type,
            around=found.starts_at,
            now=now,
        )
    patient_data_view_record(
        user=request.user,
        kind=PatientDataView.Kind.APPOINTMENT,
        subject=f"appointment {found.public_id}",
        appointments=[found],
    )
    events = AppointmentEvent.objects.filter(appointment=found).select_related(
        "by", "operator", "channel"
    )
    return render(
        request,
        "staff/appointment.html",
        {
            "scope": scope,
            "appointment": found,
            "events": events.order_by("at", "pk"),
            "movable": movable,
            "nearest": nearest,
            "done": DONE.get(request.GET.get("done", "")),
            "done_booked": request.GET.get("done") == "booked",
            "slip_url": reverse("staff:slip", args=[found.public_id]),
            "receipt": receipt(found.ledger_entry) if found.ledger_entry else {},
            "back": _agenda_day(role, found.starts_at),
            "here": request.path,
        },
    )


@staff_view
def slip(request: HttpRequest, scope: StaffScope, appointment_id: str) -> HttpResponse:
    """The appointment slip the desk prints for the patient to take away: when, where, with
    whom, how to prepare, the reference, and the patient's manage link as a QR code (for a
    patient without a phone or e-mail, the slip is their only copy). Printing it is recorded in
    the access log, as the link it carries lets its holder move or cancel the appointment."""
    found = scope.appointment_or_404(appointment_id, desk=True)
    token = unseal(found.sealed_token) if found.status == found.Status.BOOKED else None
    prefix = "/en" if found.patient_language == "en" else ""
    link = f"{settings.CRENEAU_PUBLIC_URL.rstrip('/')}{prefix}/a/{token}" if token else ""
    patient_data_view_record(
        user=request.user,
        kind=PatientDataView.Kind.SLIP,
        subject=f"appointment {found.public_id}",
        appointments=[found],
    )
    with translation.override(found.patient_language or "fr"):
        return render(
            request,
            "staff/slip.html",
            {
                "appointment": found,
                "link": link,
                # segno's SVG is paths only: the link is encoded as modules, never as text.
                "qr": mark_safe(segno.make(link, error="m").svg_inline(scale=4))  # noqa: S308
                if link
                else "",
            },
        )


@require_POST
@staff_view
def move(request: HttpRequest, scope: StaffScope, appointment_id: str) -> HttpResponse:
    """Move to a chosen free slot of the same visit; the patient is told the new time."""
    found = scope.appointment_or_404(appointment_id, desk=True)
    slot = _slot_or_404(scope, request.POST.get("slot", ""))
    services.appointment_reschedule(
        appointment=found,
        scope=desk_scope(role=slot.practitioner_role, user=request.user),
        slot=slot,
    )
    back = safe_next(request, reverse("staff:appointment", args=[found.public_id]))
    return HttpResponseRedirect(back + ("&" if "?" in back else "?") + "done=moved")


class StaffCancelForm(FocusFirstError):
    reason = forms.CharField(
        label=gettext_lazy("Reason (the patient is told)"),
        max_length=200,
        widget=forms.TextInput({"autocomplete": "off"}),
    )


@staff_view
def cancel(request: HttpRequest, scope: StaffScope, appointment_id: str) -> HttpResponse:
    """GET asks to confirm, with the reason the patient is told; POST cancels, and the
    patient's message offers the nearest free times with the same practitioner."""
    found = scope.appointment_or_404(appointment_id, desk=True)
    role = found.practitioner_role
    form = StaffCancelForm(request.POST or None)
    scope_of_desk = desk_scope(role=role, user=request.user)
    nearest = nearest_free_slots(
        scope=scope_of_desk, role=role, visit_type=found.visit_type, around=found.starts_at
    )
    back = safe_next(request, reverse("staff:appointment", args=[found.public_id]))
    if request.method == "POST" and form.is_valid():
        services.appointment_cancel(
            appointment=found,
            channel_scope=scope_of_desk,
            by_staff=True,
            reason=form.cleaned_data["reason"],
            user=request.user,
            suggestions=[slot.starts_at for slot in nearest],
        )
        return HttpResponseRedirect(back + ("&" if "?" in back else "?") + "done=cancelled")
    # The confirmation names the patient: a view like the appointment's page.
    patient_data_view_record(
        user=request.user,
        kind=PatientDataView.Kind.APPOINTMENT,
        subject=f"cancellation of appointment {found.public_id}",
        appointments=[found],
    )
    return render(
        request,
        "staff/cancel.html",
        {
            "scope": scope,
            "appointment": found,
            "form": form,
            "nearest": nearest[:3],
            "next": request.POST.get("next") or request.GET.get("next", ""),
            "back": back,
        },
        status=422 if form.is_bound else 200,
    )
