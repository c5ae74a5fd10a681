"""Channels (the ways in) and the perimeters that bound what each of them may offer."""

import secrets
from datetime import date
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from creneau.dates import shown
from creneau.directory.models import (
    Branding,
    Department,
    Establishment,
    Organisation,
    PractitionerRole,
    PublicIdField,
    VisitType,
)


def parse_origins(text: str) -> list[str]:
    """The origins of a widget channel, one per line, normalised (scheme://host[:port])."""
    origins = []
    for line in text.splitlines():
        line = line.strip().rstrip("/")
        if not line:
            continue
        parts = urlsplit(line)
        if (
            parts.scheme not in {"https", "http"}
            or not parts.hostname
            or parts.path
            or parts.query
            or parts.fragment
            or parts.username
            or "*" in line
        ):
            raise ValidationError(
                _(
                    "%(origin)s is not an origin: write scheme and host only, such as "
                    "https://www.example-hospital.fr."
                ),
                params={"origin": line[:100]},
            )
        port = f":{parts.port}" if parts.port else ""
        origins.append(f"{parts.scheme}://{parts.hostname}{port}")
    return origins


def validate_origins(text: str) -> None:
    parse_origins(text)


def new_channel_key() -> str:
    return secrets.token_urlsafe(18)


class Perimeter(models.Model):
    """A named set of establishments, versioned: a change publishes a new version, never edits."""

    public_id = PublicIdField(verbose_name=_("reference"))
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="perimeters",
        verbose_name=_("organisation"),
    )
    name = models.CharField(_("name"), max_length=200)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("perimeter")
        verbose_name_plural = _("perimeters")
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="channels_perimeter_name_unique"
            )
        ]

    def __str__(self) -> str:
        return self.name


class PerimeterVersion(models.Model):
    """One immutable state of a perimeter, with who published it and when.

    A practitioner role is inside the version when its establishment is listed and, where the
    version is narrowed, its department (or the role itself) is listed too.
    """

    public_id = PublicIdField()
    perimeter = models.ForeignKey(Perimeter, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    published_at = models.DateTimeField(_("published at"), auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published by"),
    )
    # Who published when no staff account did (the import command, the demo loader).
    published_via = models.CharField(_("published via"), max_length=60, blank=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    # Set once at publication: whether departments or roles narrow the establishments, so that
    # the perimeter filter knows which joins it needs without counting rows on every request.
    narrowed_to_departments = models.BooleanField(default=False, editable=False)
    narrowed_to_roles = models.BooleanField(default=False, editable=False)
    establishments = models.ManyToManyField(
        Establishment, through="PerimeterEstablishment", related_name="perimeter_versions"
    )
    departments = models.ManyToManyField(
        Department, through="PerimeterDepartment", related_name="perimeter_versions"
    )
    practitioner_roles = models.ManyToManyField(
        PractitionerRole, through="PerimeterPractitionerRole", related_name="perimeter_versions"
    )

    class Meta:
        verbose_name = _("perimeter version")
        verbose_name_plural = _("perimeter versions")
        ordering = ["perimeter", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["perimeter", "number"], name="channels_perimeter_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.perimeter.name} v{self.number}"


class PerimeterEstablishment(models.Model):
    version = models.ForeignKey(PerimeterVersion, on_delete=models.CASCADE)
    establishment = models.ForeignKey(Establishment, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "establishment"], name="channels_perimeter_establishment_unique"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id}: {self.establishment_id}"


class PerimeterDepartment(models.Model):
    version = models.ForeignKey(PerimeterVersion, on_delete=models.CASCADE)
    department = models.ForeignKey(Department, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "department"], name="channels_perimeter_department_unique"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id}: {self.department_id}"


class PerimeterPractitionerRole(models.Model):
    version = models.ForeignKey(PerimeterVersion, on_delete=models.CASCADE)
    practitioner_role = models.ForeignKey(PractitionerRole, on_delete=models.PROTECT)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["version", "practitioner_role"], name="channels_perimeter_role_unique"
            )
        ]

    def __str__(self) -> str:
        return f"v{self.version_id}: {self.practitioner_role_id}"


class Channel(Branding):
    class Kind(models.TextChoices):
        PUBLIC_SITE = "public_site", _("public site")
        EMBED = "embed", _("embedded widget")
        OPERATOR = "operator", _("call-centre operator")
        PARTNER = "partner", _("partner platform")
        DESK = "desk", _("hospital desk")

    public_id = PublicIdField(verbose_name=_("reference"))
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="channels",
        verbose_name=_("organisation"),
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    key = models.CharField(
        _("public key"),
        max_length=40,
        unique=True,
        default=new_channel_key,
        help_text=_("Named by widgets and clients (?channel=KEY); public, not a secret."),
    )
    perimeter = models.ForeignKey(
        Perimeter, on_delete=models.PROTECT, related_name="channels", verbose_name=_("perimeter")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    allowed_origins = models.TextField(
        _("origins allowed to embed"),
        blank=True,
        validators=[validate_origins],
        help_text=_(
            "For a widget: the sites whose pages may show it, one origin per line "
            "(https://www.example-hospital.fr). No other page can frame it."
        ),
    )

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["organisation__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation"],
                condition=models.Q(kind="public_site"),
                name="channels_one_public_site_per_organisation",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def origins(self) -> list[str]:
        return parse_origins(self.allowed_origins)


class Desk(models.Model):
    """The desk of a department (or of an establishment, for its practitioners outside any
    department): the channel through which its staff book for patients on the phone or at the
    counter, bound to a perimeter of that department alone."""

    channel = models.OneToOneField(
        Channel, on_delete=models.PROTECT, related_name="desk", verbose_name=_("channel")
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="+", verbose_name=_("hospital")
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("department"),
    )

    class Meta:
        verbose_name = _("hospital desk")
        verbose_name_plural = _("hospital desks")
        constraints = [
            models.UniqueConstraint(
                fields=["department"],
                condition=models.Q(department__isnull=False),
                name="channels_one_desk_per_department",
            ),
            models.UniqueConstraint(
                fields=["establishment"],
                condition=models.Q(department__isnull=True),
                name="channels_one_desk_per_establishment",
            ),
        ]

    def __str__(self) -> str:
        return str(self.channel)


class ChannelEvent(models.Model):
    """Who created, rebound, disabled or re-enabled a channel, and when."""

    class Action(models.TextChoices):
        CREATED = "created", _("created")
        REBOUND = "rebound", _("rebound to another perimeter")
        DISABLED = "disabled", _("disabled")
        ENABLED = "enabled", _("enabled")

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20, choices=Action.choices)
    perimeter = models.ForeignKey(Perimeter, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(auto_now_add=True)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    via = models.CharField(max_length=60, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {shown(self.at)}"


class OperatorCompany(models.Model):
    """A company that books for the hospital under contract: a call centre, or a partner
    booking platform. Registered by the organisation; it reaches the agendas through its
    contract's channel only."""

    class Kind(models.TextChoices):
        CALL_CENTRE = "call_centre", _("call centre")
        PARTNER = "partner", _("partner platform")
        # Platforms that publish the hub's slots elsewhere and book through FHIR (fhir app).
        SAS = "sas", _("national SAS platform")
        SMART_FINDER = "smart_finder", _("SMART Scheduling Links finder")
        FHIR_PARTNER = "fhir_partner", _("FHIR or IHE partner")

    public_id = PublicIdField(verbose_name=_("reference"))
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="operators",
        verbose_name=_("organisation"),
    )
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("operator company")
        verbose_name_plural = _("operator companies")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "name"], name="channels_operator_unique_name"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Contract(models.Model):
    """What an operator may do, where, when and how much: its channel (and so its perimeter),
    its validity dates, the actions allowed, its quotas. Suspending or ending it takes effect at
    the next request."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        ENDED = "ended", _("ended")

    ACTIONS = ("search", "book", "move", "cancel")

    public_id = PublicIdField(verbose_name=_("reference"))
    operator = models.ForeignKey(
        OperatorCompany,
        on_delete=models.PROTECT,
        related_name="contracts",
        verbose_name=_("operator"),
    )
    channel = models.OneToOneField(
        Channel, on_delete=models.PROTECT, related_name="contract", verbose_name=_("channel")
    )
    starts_on = models.DateField(_("valid from"))
    ends_on = models.DateField(_("valid until"), null=True, blank=True)
    may_search = models.BooleanField(_("may search"), default=True)
    may_book = models.BooleanField(_("may book"), default=True)
    may_move = models.BooleanField(_("may move"), default=True)
    may_cancel = models.BooleanField(_("may cancel"), default=True)
    bookings_per_day = models.PositiveIntegerField(
        _("bookings per day"), default=500, help_text=_("0: no limit")
    )
    holds_at_once = models.PositiveIntegerField(
        _("slots on hold at once"),
        default=20,
        help_text=_(
            "0: no limit. Holds taken in a day are also limited to twice the bookings per day."
        ),
    )
    requests_per_minute = models.PositiveIntegerField(
        _("requests per minute"), default=600, help_text=_("0: no limit")
    )
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE
    )
    changed_at = models.DateTimeField(_("status changed at"), auto_now=True)

    class Meta:
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_on__isnull=True)
                | models.Q(ends_on__gte=models.F("starts_on")),
                name="channels_contract_dates",
            )
        ]

    def __str__(self) -> str:
        return f"{self.operator} ({self.get_status_display()})"

    def allows(self, action: str) -> bool:
        return bool(getattr(self, f"may_{action}"))

    def in_force(self, today: date | None = None) -> bool:
        """Active, and ``today`` (the hub's local day by default) within its dates."""
        today = today or timezone.localdate()
        return (
            self.status == self.Status.ACTIVE
            and self.starts_on <= today
            and (self.ends_on is None or today <= self.ends_on)
        )


class Agent(models.Model):
    """A staff account of an operator company: signs in to the console with a password and a
    one-time code, and books through its company's contract."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent",
        verbose_name=_("user"),
    )
    operator = models.ForeignKey(
        OperatorCompany,
        on_delete=models.PROTECT,
        related_name="agents",
        verbose_name=_("operator company"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("agent")
        verbose_name_plural = _("agents")
        ordering = ["operator__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user.get_username()} ({self.operator})"


class ApiClient(models.Model):
    """An operator's software, known by an OAuth2 application (client credentials). Its
    secret is stored hashed; after a rotation the previous one still opens tokens until
    ``previous_valid_until``, so that the operator's servers switch without downtime."""

    public_id = PublicIdField(verbose_name=_("reference"))
    # The contract (and so the channel, perimeter and quotas) every token of this client is
    # bound to.
    contract = models.ForeignKey(
        Contract, on_delete=models.PROTECT, related_name="api_clients", verbose_name=_("contract")
    )
    application = models.OneToOneField(
        "oauth2_provider.Application",
        on_delete=models.CASCADE,
        related_name="api_client",
        verbose_name=_("OAuth2 application"),
    )
    name = models.CharField(_("name"), max_length=200)
    previous_secret = models.CharField(
        max_length=255, blank=True, editable=False, verbose_name=_("previous secret (hash)")
    )
    previous_valid_until = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    rotated_at = models.DateTimeField(_("secret rotated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["contract__operator__name", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def operator(self) -> OperatorCompany:
        return self.contract.operator


PLATFORM_KINDS = (
    OperatorCompany.Kind.SAS,
    OperatorCompany.Kind.SMART_FINDER,
    OperatorCompany.Kind.FHIR_PARTNER,
)


class Platform(models.Model):
    """What a publishing platform's contract adds to an operator's: how the platform is
    recognised without a token (its client certificate, behind the TLS proxy), where the SAS
    wants to hear of its bookings, and how long the links it publishes stay valid."""

    contract = models.OneToOneField(
        Contract, on_delete=models.CASCADE, related_name="platform", verbose_name=_("contract")
    )
    certificate_subject = models.CharField(
        _("client certificate subject"),
        max_length=500,
        blank=True,
        help_text=_(
            "The subject of the platform's client certificate, exactly as the TLS proxy puts "
            "it in its header (CRENEAU_CLIENT_CERT_HEADER). Empty: OAuth2 only."
        ),
    )
    feedback_url = models.URLField(
        _("appointment feedback URL"),
        blank=True,
        help_text=_(
            "For the SAS: the FHIR base where each booking it brought is reported "
            "(INT_R03, POST then PUT Appointment). Empty: nothing is reported."
        ),
    )
    regulator_identifier = models.CharField(
        _("regulator identifier"),
        max_length=40,
        blank=True,
        help_text=_(
            "For the SAS: who booked, when the link the platform opened names no regulator "
            "(the RPPS-based national identifier of the regulation centre's physician)."
        ),
    )
    link_hours = models.PositiveSmallIntegerField(
        _("booking links valid for (hours)"),
        default=72,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 30)],
    )

    class Meta:
        verbose_name = _("platform")
        verbose_name_plural = _("platforms")
        constraints = [
            models.UniqueConstraint(
                fields=["certificate_subject"],
                condition=~models.Q(certificate_subject=""),
                name="channels_platform_certificate_unique",
            )
        ]

    def __str__(self) -> str:
        return str(self.contract.operator)


class PlatformVisibility(models.Model):
    """A visit that a SAS platform shows to health professionals or regulators only (TRE_R314
    PRO, SNP). Such visits are reserved: no other channel offers or books them. Visits not
    listed are PUBLIC."""

    class Audience(models.TextChoices):
        PRO = "PRO", _("health professionals")
        SNP = "SNP", _("regulators of unscheduled care")
        PRO_SNP = "PRO_SNP", _("health professionals and regulators")

    platform = models.ForeignKey(Platform, on_delete=models.CASCADE, related_name="visibility")
    visit_type = models.ForeignKey(
        VisitType, on_delete=models.CASCADE, related_name="+", verbose_name=_("visit type")
    )
    audience = models.CharField(_("shown to"), max_length=10, choices=Audience.choices)

    class Meta:
        verbose_name = _("reserved visit")
        verbose_name_plural = _("reserved visits")
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "visit_type"], name="channels_platform_visit_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.visit_type}: {self.audience}"

    @property
    def codes(self) -> list[str]:
        return self.audience.split("_")
