"""Agendas in the admin. Saving a rule or an absence goes through the services, which
regenerate the practitioner's slots at once and report booked slots left uncovered."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from creneau.admin_base import ReadOnlyAdmin
from creneau.agenda import services
from creneau.agenda.models import Absence, AgendaSource, AvailabilityRule, Slot
from creneau.directory.models import VisitType


def _report(modeladmin, request, report: services.GenerationReport) -> None:
    modeladmin.message_user(
        request,
        _("Slots: %(created)s created, %(removed)s removed, %(updated)s updated.")
        % {"created": report.created, "removed": report.removed, "updated": report.updated},
    )
    if report.orphaned:
        modeladmin.message_user(
            request,
            format_html(
                "{} {}",
                ngettext(
                    "%(count)s booked slot is no longer covered by any rule: move its appointment.",
                    "%(count)s booked slots are no longer covered by any rule: move their "
                    "appointments.",
                    len(report.orphaned),
                )
                % {"count": len(report.orphaned)},
                _uncovered_links(report.orphaned),
            ),
            level=messages.WARNING,
        )


def _uncovered_links(slots) -> str:
    """Each appointment left without a rule: its day and time, its patient's name, and a link
    to it in the admin, where staff move or cancel it."""
    # Through the slots' own relation: the agenda does not import the booking app above it.
    found = [
        appointment
        for slot in Slot.objects.filter(pk__in=[slot.pk for slot in slots[:20]])
        .prefetch_related("appointments")
        .order_by("starts_at")
        for appointment in slot.appointments.all()
        if appointment.status == "booked"
    ]
    return format_html_join(
        " ",
        '<a href="{}">{} {} {}</a>',
        (
            (
                reverse("admin:booking_appointment_change", args=[a.pk]),
                date_format(timezone.localtime(a.starts_at), "D j M H:i"),
                a.patient_last_name,
                a.patient_first_name,
            )
            for a in found
        ),
    )


class AvailabilityRuleForm(forms.ModelForm):
    visit_types = forms.ModelMultipleChoiceField(
        VisitType.objects.filter(is_active=True).select_related("organisation"),
        widget=FilteredSelectMultiple(_("visit types"), is_stacked=False),
        label=_("visit types offered"),
    )

    class Meta:
        model = AvailabilityRule
        fields = [
            "practitioner_role",
            "label",
            "recurrence",
            "starts_on",
            "ends_on",
            "start_time",
            "end_time",
            "visit_types",
            "slot_minutes",
            "capacity",
            "open_on_public_holidays",
        ]

    def clean(self):
        data = super().clean()
        role = data.get("practitioner_role")
        for visit_type in data.get("visit_types") or []:
            if role and visit_type.organisation_id != role.establishment.organisation_id:
                self.add_error(
                    "visit_types",
                    _("The visit type %(code)s belongs to another organisation.")
                    % {"code": visit_type.code},
                )
        return data


@admin.register(AvailabilityRule)
class AvailabilityRuleAdmin(admin.ModelAdmin):
    form = AvailabilityRuleForm
    list_display = [
        "__str__",
        "practitioner_role",
        "start_time",
        "end_time",
        "capacity",
        "is_active",
    ]
    list_filter = ["is_active", "practitioner_role__establishment"]
    search_fields = ["practitioner_role__practitioner__last_name", "label"]
    autocomplete_fields = ["practitioner_role"]
    actions = ["end_rules"]

    def has_delete_permission(self, request, obj=None):
        # A rule is ended, not deleted: its booked slots must be reported, never dropped.
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        rule, report = services.availability_rule_save(
            practitioner_role=data["practitioner_role"],
            visit_types=list(data["visit_types"]),
            recurrence=data["recurrence"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            start_time=data["start_time"],
            end_time=data["end_time"],
            slot_minutes=data["slot_minutes"],
            capacity=data["capacity"],
            open_on_public_holidays=data["open_on_public_holidays"],
            label=data["label"],
            rule=obj if change else None,
        )
        obj.pk = rule.pk
        _report(self, request, report)

    def save_related(self, request, form, formsets, change):
        """The service has set the visit types and generated the slots."""

    @admin.action(description=_("End the selected rules (their free slots are withdrawn)"))
    def end_rules(self, request, queryset):
        for rule in queryset.filter(is_active=True):
            _report(self, request, services.availability_rule_end(rule=rule))


@admin.register(Absence)
class AbsenceAdmin(admin.ModelAdmin):
    list_display = ["__str__", "starts_at", "ends_at", "reason"]
    autocomplete_fields = ["practitioner_role", "practitioner", "department", "establishment"]
    fields = [
        "practitioner_role",
        "practitioner",
        "department",
        "establishment",
        "starts_at",
        "ends_at",
        "reason",
    ]

    def has_change_permission(self, request, obj=None):
        return obj is None

    def save_model(self, request, obj, form, change):
        # The form has validated the model and its constraints (one subject, order).
        absence, report = services.absence_create(
            practitioner_role=obj.practitioner_role,
            practitioner=obj.practitioner,
            department=obj.department,
            establishment=obj.establishment,
            starts_at=obj.starts_at,
            ends_at=obj.ends_at,
            reason=obj.reason,
        )
        obj.pk = absence.pk
        _report(self, request, report)

    def delete_model(self, request, obj):
        _report(self, request, services.absence_remove(absence=obj))

    def delete_queryset(self, request, queryset):
        for absence in queryset:
            self.delete_model(request, absence)


@admin.register(Slot)
class SlotAdmin(ReadOnlyAdmin):
    """Read only: slots come from rules and connected agendas, never from hand edits."""

    list_display = [
        "starts_at",
        "practitioner",
        "establishment",
        "visit_type",
        "booked",
        "capacity",
    ]
    list_filter = ["is_offered", "source"]
    raw_id_fields = ["practitioner_role"]
    show_full_result_count = False
    list_select_related = ["practitioner", "establishment", "visit_type"]

    def get_search_results(self, request, queryset, search_term):
        return queryset.filter(public_id=search_term) if search_term else queryset, False

    search_fields = ["public_id"]


class AgendaSourceForm(forms.ModelForm):
    """The secret is written, never shown: left empty, the stored one stays."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["remote_api"].required = False  # IHE unless said otherwise

    def clean(self):
        data = super().clean()
        if data.get("kind") == AgendaSource.Kind.FHIR:
            for name in ("url", "username", "remote_schedule"):
                if not data.get(name):
                    self.add_error(name, _("A FHIR source needs it."))
        return data

    secret = forms.CharField(
        label=_("password or secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored encrypted; never shown again. Leave empty to keep the current one."),
    )

    class Meta:
        model = AgendaSource
        fields = [
            "practitioner_role",
            "kind",
            "url",
            "username",
            "remote_schedule",
            "remote_api",
            "default_visit_type",
            "hosted_by_hospital",
            "freshness_minutes",
            "sync_minutes",
        ]
        help_texts = {
            "username": _("The user name, or for a FHIR server the OAuth2 client id."),
        }


@admin.register(AgendaSource)
class AgendaSourceAdmin(admin.ModelAdmin):
    form = AgendaSourceForm
    list_display = [
        "practitioner_role",
        "kind",
        "last_success_at",
        "next_sync_at",
        "withdrawn",
        "last_error",
    ]
    list_filter = ["kind"]
    search_fields = [
        "practitioner_role__practitioner__last_name",
        "practitioner_role__practitioner__rpps",
        "url",
    ]
    autocomplete_fields = ["practitioner_role"]
    raw_id_fields = ["default_visit_type"]
    readonly_fields = [
        "last_attempt_at",
        "last_success_at",
        "next_sync_at",
        "stale_after",
        "last_error",
        "last_report",
    ]
    actions = ["sync_now", "test_connection", "renew_feed"]

    def get_fields(self, request, obj=None):
        return [*AgendaSourceForm.Meta.fields, "secret", *self.readonly_fields]

    @admin.display(boolean=True, description=_("withdrawn from search"))
    def withdrawn(self, source):
        return source.stale_after is not None and source.stale_after <= timezone.now()

    def save_model(self, request, obj, form, change):
        from creneau.agenda.sources.services import agenda_source_connect

        data = form.cleaned_data
        secret = data.get("secret") or ""
        kept = obj.sealed_secret if change and not secret else None
        stored = agenda_source_connect(
            role=data["practitioner_role"],
            kind=data["kind"],
            url=data.get("url") or "",
            username=data.get("username") or "",
            secret=secret,
            hosted_by_hospital=data.get("hosted_by_hospital", False),
            freshness_minutes=data["freshness_minutes"],
            sync_minutes=data["sync_minutes"],
            remote_schedule=data.get("remote_schedule") or "",
            remote_api=data.get("remote_api") or AgendaSource.RemoteApi.IHE,
            default_visit_type=data.get("default_visit_type"),
        )
        if kept:
            AgendaSource.objects.filter(pk=stored.pk).update(sealed_secret=kept)
        obj.pk = stored.pk

    @admin.action(description=_("Sync now"))
    def sync_now(self, request, queryset):
        from creneau.agenda.sources.services import agenda_source_sync

        for source in queryset:
            outcome = agenda_source_sync(source=source)
            if outcome.ok:
                self.message_user(
                    request,
                    _("%(source)s: %(busy)s busy periods, %(removed)s slots taken out.")
                    % {
                        "source": source,
                        "busy": outcome.busy_periods,
                        "removed": outcome.slots_removed,
                    },
                    level=messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{source}: {outcome.error}", level=messages.WARNING)

    @admin.action(description=_("Test the connection"))
    def test_connection(self, request, queryset):
        from creneau.agenda.sources.services import agenda_source_test

        for source in queryset:
            ok, text = agenda_source_test(source=source)
            self.message_user(
                request, f"{source}: {text}", level=messages.SUCCESS if ok else messages.WARNING
            )

    @admin.action(description=_("New address of the bookings' calendar feed (shown once)"))
    def renew_feed(self, request, queryset):
        from django.conf import settings

        from creneau.agenda.sources.services import agenda_feed_renew

        for source in queryset:
            token = agenda_feed_renew(source=source)
            url = settings.CRENEAU_PUBLIC_URL.rstrip("/") + reverse(
                "practitioner_feed", args=[token]
            )
            self.message_user(
                request,
                _("%(source)s: %(url)s (shown once; the previous address no longer works)")
                % {"source": source, "url": url},
                level=messages.SUCCESS,
            )
