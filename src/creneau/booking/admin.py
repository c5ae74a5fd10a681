"""Appointments and the waiting list for hospital staff: see, mark arrivals and no-shows,
cancel on the hospital's behalf. Every change goes through the booking services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from creneau.admin_base import ReadOnlyAdmin
from creneau.booking import services
from creneau.booking.models import (
    Appointment,
    AppointmentEvent,
    CallerLookup,
    WaitingListEntry,
)
from creneau.notify.admin import MessageInline
from creneau.sealing import keyed_hash
from creneau.staff.access_log import patient_data_view_record
from creneau.staff.models import PatientDataView


class PatientViewsLogged:
    """Each list, search and record page of the admin that shows patients is a line of the
    access log, as the staff's own pages are: who, which page, how many patients (the
    appointments' references), and a search's words only as a keyed hash."""

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        listed = getattr(response, "context_data", None) or {}
        if "cl" in listed:
            changes = listed["cl"]
            self._log(
                request,
                PatientDataView.Kind.ADMIN_LIST,
                list(changes.result_list),
                search=changes.query,
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        record = (getattr(response, "context_data", None) or {}).get("original")
        if record is not None:
            self._log(request, PatientDataView.Kind.ADMIN_READ, [record])
        return response

    def _log(self, request, kind: str, shown: list, search: str = "") -> None:
        names = self.model._meta.verbose_name_plural
        patient_data_view_record(
            user=request.user,
            kind=kind,
            subject=f"admin: {names}" + (" (search)" if search else ""),
            appointments=[item for item in shown if isinstance(item, Appointment)],
            criteria=keyed_hash(f"admin-search|{search}", 64) if search else "",
            shown=len(shown),
        )


class HospitalCancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason told to the patients"),
        max_length=200,
        help_text=_("For example: the practitioner is absent that day."),
    )


class AppointmentEventInline(admin.TabularInline):
    model = AppointmentEvent
    extra = 0
    can_delete = False
    fields = [
        "at",
        "action",
        "status",
        "channel",
        "operator",
        "by",
        "api_client",
        "previous_starts_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Appointment)
class AppointmentAdmin(PatientViewsLogged, admin.ModelAdmin):
    list_display = [
        "starts_at",
        "patient_last_name",
        "patient_first_name",
        "practitioner",
        "establishment",
        "visit_type",
        "status",
        "channel",
        "operator",
    ]
    list_filter = ["status", "channel__kind", "operator", "establishment"]
    search_fields = ["patient_last_name", "public_id"]
    list_select_related = ["practitioner", "establishment", "visit_type", "channel", "operator"]
    date_hierarchy = "starts_at"
    inlines = [AppointmentEventInline, MessageInline]
    actions = ["mark_arrived", "mark_no_show", "mark_done", "cancel_by_hospital"]
    exclude = ["manage_token_hash", "sealed_token"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def _each(self, request, queryset, change) -> None:
        done = 0
        for appointment in queryset:
            try:
                change(appointment)
                done += 1
            except services.BookingError as error:
                self.message_user(
                    request, f"{appointment.public_id}: {error.message}", level=messages.WARNING
                )
        if done:
            self.message_user(request, _("%(count)s appointments updated.") % {"count": done})

    def _mark(self, request, queryset, status: str) -> None:
        self._each(
            request,
            queryset,
            lambda a: services.appointment_status_set(
                appointment=a, status=status, user=request.user
            ),
        )

    @admin.action(description=_("Mark as arrived"))
    def mark_arrived(self, request, queryset):
        self._mark(request, queryset, "arrived")

    @admin.action(description=_("Mark as did not come"))
    def mark_no_show(self, request, queryset):
        self._mark(request, queryset, "no_show")

    @admin.action(description=_("Mark as done"))
    def mark_done(self, request, queryset):
        self._mark(request, queryset, "done")

    @admin.action(description=_("Cancel on the hospital's behalf…"))
    def cancel_by_hospital(self, request, queryset):
        """Asks first: the appointments, and the reason the patients will be told."""
        form = HospitalCancelForm(request.POST if request.POST.get("confirm") else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            self._each(
                request,
                queryset,
                lambda a: services.appointment_cancel(
                    appointment=a, by_staff=True, user=request.user, reason=reason
                ),
            )
            return None
        return TemplateResponse(
            request,
            "admin/booking/appointment/cancel_by_hospital.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Cancel on the hospital's behalf"),
                "opts": self.model._meta,
                "appointments": queryset.select_related(
                    "visit_type", "practitioner", "establishment"
                ),
                "form": form,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )


@admin.register(WaitingListEntry)
class WaitingListEntryAdmin(PatientViewsLogged, admin.ModelAdmin):
    list_display = ["created_at", "patient_last_name", "visit_type", "before", "status"]
    list_filter = ["status"]
    list_select_related = ["visit_type"]
    exclude = ["manage_token_hash", "sealed_token"]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields if f.name not in self.exclude]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CallerLookup)
class CallerLookupAdmin(ReadOnlyAdmin):
    """The access log of operators' look-ups: read-only, for the organisation."""

    list_display = ["at", "operator", "channel", "agent", "api_client", "found_count"]
    list_filter = ["operator"]
    date_hierarchy = "at"
    readonly_fields = [
        "at",
        "operator",
        "channel",
        "agent",
        "api_client",
        "criteria_hash",
        "found",
        "found_count",
    ]
    search_fields = ["criteria_hash"]
