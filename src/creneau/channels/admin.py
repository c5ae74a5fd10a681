"""Channels and perimeters in the admin. Every save goes through the services, so that a
perimeter change publishes a new version and a channel change leaves its event."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import password_validation
from django.core.exceptions import PermissionDenied
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from creneau.channels import services
from creneau.channels.models import (
    Agent,
    ApiClient,
    Channel,
    ChannelEvent,
    Contract,
    OperatorCompany,
    Perimeter,
    PerimeterVersion,
    Platform,
    PlatformVisibility,
)
from creneau.channels.queries import perimeter_current_version
from creneau.directory.models import Department, Establishment, Organisation, PractitionerRole
from creneau.second_factor import SecondFactor


class PerimeterForm(forms.ModelForm):
    establishments = forms.ModelMultipleChoiceField(
        Establishment.objects.select_related("organisation").order_by("name"),
        required=False,
        widget=FilteredSelectMultiple(_("establishments"), is_stacked=False),
        label=_("Establishments"),
    )
    departments = forms.ModelMultipleChoiceField(
        Department.objects.select_related("establishment").order_by("establishment__name", "name"),
        required=False,
        widget=FilteredSelectMultiple(_("departments"), is_stacked=False),
        label=_("Only these departments"),
        help_text=_("Leave empty for every department of the establishments."),
    )
    practitioner_roles = forms.ModelMultipleChoiceField(
        PractitionerRole.objects.select_related("practitioner", "establishment", "department"),
        required=False,
        widget=FilteredSelectMultiple(_("practitioner roles"), is_stacked=False),
        label=_("Only these practitioner roles"),
        help_text=_("Leave empty for every practitioner of the establishments."),
    )
    note = forms.CharField(label=_("Note on this version"), required=False, max_length=300)

    class Meta:
        model = Perimeter
        fields = ["organisation", "name"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            current = perimeter_current_version(self.instance)
            if current is not None:
                self.initial["establishments"] = list(current.establishments.all())
                self.initial["departments"] = list(current.departments.all())
                self.initial["practitioner_roles"] = list(current.practitioner_roles.all())

    def clean(self):
        data = super().clean()
        try:
            services.perimeter_check(
                establishments=data.get("establishments") or [],
                departments=data.get("departments") or [],
                practitioner_roles=data.get("practitioner_roles") or [],
            )
        except services.ChannelError as error:
            raise forms.ValidationError(error.message, code=error.code) from None
        return data


class PerimeterVersionInline(admin.TabularInline):
    model = PerimeterVersion
    extra = 0
    can_delete = False
    fields = ["number", "published_at", "published_by", "published_via", "note", "size"]
    readonly_fields = fields
    ordering = ["-number"]

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("establishments"))
    def size(self, version):
        return version.establishments.count()


@admin.register(Perimeter)
class PerimeterAdmin(admin.ModelAdmin):
    form = PerimeterForm
    list_display = ["name", "organisation", "current_version", "establishment_count"]
    list_filter = ["organisation"]
    search_fields = ["name"]
    inlines = [PerimeterVersionInline]
    fields = [
        "organisation",
        "name",
        "establishments",
        "departments",
        "practitioner_roles",
        "note",
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["organisation", "name"] if obj is not None else []

    @admin.display(description=_("version"))
    def current_version(self, perimeter):
        version = perimeter_current_version(perimeter)
        return version.number if version else "—"

    @admin.display(description=_("establishments"))
    def establishment_count(self, perimeter):
        version = perimeter_current_version(perimeter)
        return version.establishments.count() if version else 0

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        content = {
            "establishments": data["establishments"],
            "departments": data["departments"],
            "practitioner_roles": data["practitioner_roles"],
            "by": request.user,
            "via": "admin",
            "note": data["note"],
        }
        if change:
            services.perimeter_publish(perimeter=obj, **content)
        else:
            created = services.perimeter_create(
                organisation=data["organisation"], name=data["name"], **content
            )
            obj.pk, obj.public_id, obj.created_at = (
                created.pk,
                created.public_id,
                created.created_at,
            )


class ChannelForm(forms.ModelForm):
    class Meta:
        model = Channel
        fields = ["organisation", "name", "kind", "perimeter", "is_active"]

    def clean(self):
        data = super().clean()
        organisation, perimeter = data.get("organisation"), data.get("perimeter")
        if self.instance.pk:
            organisation = self.instance.organisation
        if organisation and perimeter and perimeter.organisation_id != organisation.pk:
            self.add_error(
                "perimeter", _("A channel can only be bound to a perimeter of its organisation.")
            )
        return data


class ChannelEventInline(admin.TabularInline):
    model = ChannelEvent
    extra = 0
    can_delete = False
    fields = ["at", "action", "perimeter", "by", "via"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "organisation", "perimeter", "is_active", "key"]
    list_filter = ["kind", "is_active", "organisation"]
    search_fields = ["name", "key"]
    list_select_related = ["organisation", "perimeter"]
    inlines = [ChannelEventInline]

    def get_fields(self, request, obj=None):
        fields = ["organisation", "name", "kind", "perimeter", "is_active"]
        look = ["allowed_origins", "brand_colour", "font", "logo"]
        if obj is None:
            return [*fields, *look]
        extra = ["snippet", "preview"] if obj.kind == Channel.Kind.EMBED else ["try_it"]
        return [*fields, "key", *look, *extra]

    def get_readonly_fields(self, request, obj=None):
        return ["organisation", "kind", "key", "try_it", "snippet", "preview"] if obj else []

    def get_form(self, request, obj=None, **kwargs):
        self._hub = request.build_absolute_uri("/").rstrip("/")
        return super().get_form(request, obj, **kwargs)

    @admin.display(description=_("Try it"))
    def try_it(self, channel):
        url = f"/api/v1/establishments?channel={channel.key}"
        return format_html('<a href="{}">{}</a>', url, url)

    @admin.display(description=_("Snippet for the hospital's page"))
    def snippet(self, channel):
        hub = getattr(self, "_hub", "")
        script = f'<script src="{hub}/embed.js" data-channel="{channel.key}" async></script>'
        frame = (
            f'<iframe src="{hub}/embed/{channel.key}/" title="Prendre rendez-vous" '
            'style="width:100%;height:700px;border:0"></iframe>'
        )
        return format_html(
            '<p>{}</p><textarea readonly rows="2" cols="90" aria-label="{}">{}</textarea>'
            '<p>{}</p><textarea readonly rows="3" cols="90" aria-label="{}">{}</textarea>'
            "<p>{}</p>",
            _("With JavaScript (the frame resizes to its content):"),
            _("Snippet with JavaScript"),
            script,
            _("Without JavaScript:"),
            _("Snippet without JavaScript"),
            frame,
            _("Only the origins listed above may show the widget: list the hospital site's."),
        )

    @admin.display(description=_("Preview"))
    def preview(self, channel):
        url = f"/embed/{channel.key}/"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>', url, _("Open the widget")
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            stored = services.channel_create(
                organisation=data["organisation"],
                name=data["name"],
                kind=data["kind"],
                perimeter=data["perimeter"],
                by=request.user,
                via="admin",
            )
            if not data["is_active"]:
                services.channel_set_active(
                    channel=stored, active=False, by=request.user, via="admin"
                )
            obj.pk, obj.key, obj.public_id = stored.pk, stored.key, stored.public_id
        else:
            stored = Channel.objects.get(pk=obj.pk)
            services.channel_update(
                channel=stored,
                name=data["name"],
                perimeter=data["perimeter"],
                is_active=data["is_active"],
                by=request.user,
                via="admin",
            )
        services.channel_appearance_set(
            channel=stored,
            allowed_origins=data.get("allowed_origins", ""),
            brand_colour=data.get("brand_colour", ""),
            font=data.get("font", ""),
            logo=data.get("logo") if "logo" in form.changed_data else None,
        )


class ContractForm(forms.ModelForm):
    """A new contract registers its operator company and makes its channel; afterwards the
    actions, dates and quotas are edited here, and its status through the actions above the
    list (so that suspending also closes the channel)."""

    operator_name = forms.CharField(label=_("Operator company"), max_length=200, required=False)
    operator_kind = forms.ChoiceField(
        label=_("Kind of operator"), choices=OperatorCompany.Kind.choices, required=False
    )
    organisation = forms.ModelChoiceField(
        label=_("Organisation"), queryset=Organisation.objects.all(), required=False
    )
    perimeter = forms.ModelChoiceField(
        label=_("Perimeter"), queryset=Perimeter.objects.all(), required=False
    )

    class Meta:
        model = Contract
        fields = [
            "starts_on",
            "ends_on",
            "may_search",
            "may_book",
            "may_move",
            "may_cancel",
            "bookings_per_day",
            "holds_at_once",
            "requests_per_minute",
        ]

    def clean(self):
        data = super().clean()
        if not self.instance.pk:
            for name in ("operator_name", "operator_kind", "organisation", "perimeter"):
                if not data.get(name):
                    self.add_error(name, _("Needed to register a new operator."))
            organisation, perimeter = data.get("organisation"), data.get("perimeter")
            if organisation and perimeter and perimeter.organisation_id != organisation.pk:
                self.add_error("perimeter", _("The perimeter must be the organisation's."))
        return data


@admin.register(OperatorCompany)
class OperatorCompanyAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "organisation", "created_at"]
    list_filter = ["kind", "organisation"]
    search_fields = ["name"]
    readonly_fields = ["public_id", "organisation", "created_at"]
    change_list_template = "admin/channels/operatorcompany/change_list.html"

    def has_add_permission(self, request):
        return False  # registered with a contract (Contracts → Add)

    def get_urls(self):
        return [
            path(
                "statistics/",
                self.admin_site.admin_view(self.statistics_view),
                name="channels_operatorcompany_statistics",
            ),
            *super().get_urls(),
        ]

    def statistics_view(self, request):
        """Every operator side by side (table and chart), per day, and the CSV."""
        from creneau.web.console import statistics_page

        if not self.has_view_permission(request):
            raise PermissionDenied
        return statistics_page(
            request,
            OperatorCompany.objects.all(),
            template="admin/channels/operatorcompany/statistics.html",
            context={
                **self.admin_site.each_context(request),
                "title": _("Operators' statistics"),
                "opts": self.model._meta,
            },
        )


class AgentForm(forms.ModelForm):
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, min_length=12, strip=False
    )
    email = forms.EmailField(label=_("E-mail"), required=False)

    class Meta:
        model = Agent
        fields = ["operator"]

    def clean_password(self):
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


def _show_once(admin_obj, request, text: str) -> None:
    admin_obj.message_user(request, text, level=messages.WARNING)


def _second_factor_text(factor: SecondFactor) -> str:
    return _(
        "Shown once. Authenticator app: %(uri)s (secret %(secret)s). Backup codes: %(codes)s."
    ) % {
        "uri": factor.otp_uri,
        "secret": factor.otp_secret,
        "codes": " ".join(factor.backup_codes),
    }


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    """Agents of operator companies: the second factor is made with the account and shown
    once; "reset" makes a new one."""

    list_display = ["user", "operator", "created_at"]
    list_filter = ["operator"]
    search_fields = ["user__username"]
    actions = ["reset_second_factor"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AgentForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return ["user", "operator", "created_at"] if obj else []

    def get_fields(self, request, obj=None):
        return (
            ["user", "operator", "created_at"]
            if obj
            else ["operator", "username", "password", "email"]
        )

    def save_model(self, request, obj, form, change):
        if change:
            return
        data = form.cleaned_data
        credentials = services.agent_create(
            operator=data["operator"],
            username=data["username"],
            password=data["password"],
            email=data.get("email") or "",
        )
        obj.pk = credentials.agent.pk
        obj.user = credentials.agent.user
        _show_once(self, request, _second_factor_text(credentials.factor))

    @admin.action(description=_("Reset the second factor (new secret and backup codes)"))
    def reset_second_factor(self, request, queryset):
        for agent in queryset:
            credentials = services.agent_second_factor_reset(agent=agent)
            _show_once(self, request, f"{agent}: {_second_factor_text(credentials.factor)}")


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """Operators' software: the secret is shown once at creation or rotation, stored hashed."""

    list_display = ["name", "contract", "client_id", "rotated_at", "previous_valid_until"]
    list_filter = ["contract__operator"]
    actions = ["rotate", "end_previous", "revoke"]

    @admin.display(description=_("client id"))
    def client_id(self, obj):
        return obj.application.client_id

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["contract", "name"]
        return ["contract", "name", "client_id", "created_at", "rotated_at", "previous_valid_until"]

    def get_readonly_fields(self, request, obj=None):
        return (
            ["contract", "client_id", "created_at", "rotated_at", "previous_valid_until"]
            if obj
            else []
        )

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
            return
        made = services.api_client_create(
            contract=form.cleaned_data["contract"], name=form.cleaned_data["name"]
        )
        obj.pk, obj.application = made.client.pk, made.client.application
        _show_once(self, request, _secret_text(made))

    @admin.action(description=_("Rotate the secret (the previous one works 24 more hours)"))
    def rotate(self, request, queryset):
        for client in queryset:
            _show_once(self, request, _secret_text(services.api_client_rotate(client=client)))

    @admin.action(description=_("End the previous secret now"))
    def end_previous(self, request, queryset):
        for client in queryset:
            services.api_client_revoke(client=client, previous_only=True)

    @admin.action(description=_("Revoke (no secret or token works any more)"))
    def revoke(self, request, queryset):
        for client in queryset:
            services.api_client_revoke(client=client)


def _secret_text(made: services.ClientSecret) -> str:
    return _("Shown once. %(name)s: client id %(id)s, client secret %(secret)s") % {
        "name": made.client.name,
        "id": made.client_id,
        "secret": made.client_secret,
    }


@admin.register(Contract)
class ContractAdmin(admin.ModelAdmin):
    form = ContractForm
    list_display = [
        "operator",
        "status",
        "starts_on",
        "ends_on",
        "bookings_per_day",
        "holds_at_once",
        "channel",
    ]
    list_filter = ["status", "operator__kind"]
    actions = ["suspend", "resume", "end"]

    def get_fields(self, request, obj=None):
        fields = list(ContractForm.Meta.fields)
        if obj is None:
            return ["operator_name", "operator_kind", "organisation", "perimeter", *fields]
        return ["operator", "channel", "status", *fields]

    def get_readonly_fields(self, request, obj=None):
        return ["operator", "channel", "status"] if obj else []

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            obj.save()
            return
        stored = services.operator_register(
            organisation=data["organisation"],
            name=data["operator_name"],
            kind=data["operator_kind"],
            perimeter=data["perimeter"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
            actions=[a for a in Contract.ACTIONS if data.get(f"may_{a}")],
            bookings_per_day=data["bookings_per_day"],
            holds_at_once=data["holds_at_once"],
            requests_per_minute=data["requests_per_minute"],
            by=request.user,
            via="admin",
        )
        obj.pk, obj.public_id = stored.pk, stored.public_id
        obj.operator, obj.channel, obj.status = stored.operator, stored.channel, stored.status

    def _set(self, request, queryset, status: str) -> None:
        for contract in queryset:
            try:
                services.contract_status_set(
                    contract=contract, status=status, by=request.user, via="admin"
                )
            except services.ChannelError as error:
                self.message_user(request, f"{contract}: {error.message}", level="warning")

    @admin.action(description=_("Suspend (refused at the next request)"))
    def suspend(self, request, queryset):
        self._set(request, queryset, Contract.Status.SUSPENDED)

    @admin.action(description=_("Resume"))
    def resume(self, request, queryset):
        self._set(request, queryset, Contract.Status.ACTIVE)

    @admin.action(description=_("End the contract"))
    def end(self, request, queryset):
        self._set(request, queryset, Contract.Status.ENDED)


class PlatformVisibilityInline(admin.TabularInline):
    model = PlatformVisibility
    extra = 1
    autocomplete_fields = ["visit_type"]


@admin.register(Platform)
class PlatformAdmin(admin.ModelAdmin):
    """A publishing platform's settings (made with its contract: Contracts → Add, kind SAS,
    SMART finder or FHIR partner): how it is recognised, and which visits the SAS shows to
    professionals or regulators only (reserved: no other channel offers them)."""

    list_display = ["__str__", "kind", "certificate_subject", "feedback_url"]
    fields = [
        "contract",
        "certificate_subject",
        "feedback_url",
        "regulator_identifier",
        "link_hours",
    ]
    readonly_fields = ["contract"]
    inlines = [PlatformVisibilityInline]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("kind"))
    def kind(self, platform):
        return platform.contract.operator.get_kind_display()
