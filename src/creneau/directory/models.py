"""The directory: who offers appointments, where, in which specialties, for which visits."""

from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from creneau.directory.branding import (
    FONT_CHOICES,
    font_stack,
    validate_brand_colour,
    validate_logo,
)
from creneau.directory.identifiers import new_public_id, validate_finess, validate_rpps
from creneau.directory.text import fold


def validate_time_zone(value: str) -> None:
    if value not in _TIME_ZONES:
        raise ValidationError(
            _("%(value)s is not an IANA time zone (such as Europe/Paris)."),
            code="time_zone",
            params={"value": value},
        )


_TIME_ZONES = frozenset(available_timezones())


class PublicIdField(models.CharField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 16)
        kwargs.setdefault("unique", True)
        kwargs.setdefault("default", new_public_id)
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)


def branding_upload_to(instance, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower()
    return f"branding/{instance.public_id}-{new_public_id()}.{extension}"


class Branding(models.Model):
    """How patient pages look: a colour, a font and a logo, all served by the hub."""

    brand_colour = models.CharField(
        _("brand colour"),
        max_length=7,
        blank=True,
        validators=[validate_brand_colour],
        help_text=_("#rrggbb, dark enough for white text on it (WCAG AA); blank for the default."),
    )
    font = models.CharField(_("font"), max_length=20, choices=FONT_CHOICES, blank=True)
    logo = models.FileField(
        _("logo"),
        upload_to=branding_upload_to,
        blank=True,
        validators=[validate_logo],
        help_text=_("PNG, JPEG, WebP or SVG, under 512 KB; served by the hub itself."),
    )

    class Meta:
        abstract = True

    @property
    def font_stack(self) -> str:
        return font_stack(self.font) if self.font else ""


class BilingualLabel(models.Model):
    """French and English labels, the one shown following the active language."""

    label_fr = models.CharField(_("label (French)"), max_length=200)
    label_en = models.CharField(_("label (English)"), max_length=200)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.label_fr

    @property
    def label(self) -> str:
        return self.label_en if (get_language() or "fr").startswith("en") else self.label_fr


class Organisation(Branding):
    public_id = PublicIdField(verbose_name=_("reference"))
    name = models.CharField(_("name"), max_length=200)
    short_name = models.CharField(_("short name"), max_length=40, blank=True)
    finess_ej = models.CharField(
        _("FINESS number of the legal entity"),
        max_length=9,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_finess],
    )
    runs_hub = models.BooleanField(
        _("runs this hub"),
        default=False,
        help_text=_("A request that names no channel is served by this organisation's site."),
    )
    is_public = models.BooleanField(_("public hospital organisation"), default=False)
    website = models.URLField(_("website"), blank=True)

    class Meta:
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["runs_hub"],
                condition=models.Q(runs_hub=True),
                name="directory_one_organisation_runs_hub",
            ),
        ]

    def __str__(self) -> str:
        return self.short_name or self.name


class Establishment(models.Model):
    public_id = PublicIdField(verbose_name=_("reference"))
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="establishments",
        verbose_name=_("organisation"),
    )
    finess = models.CharField(
        _("FINESS number"), max_length=9, unique=True, validators=[validate_finess]
    )
    name = models.CharField(_("name"), max_length=200)
    address = models.CharField(_("street address"), max_length=200, blank=True)
    postcode = models.CharField(_("postcode"), max_length=10, blank=True, db_index=True)
    city = models.CharField(_("city"), max_length=100, db_index=True)
    latitude = models.FloatField(
        _("latitude"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-90), MaxValueValidator(90)],
    )
    longitude = models.FloatField(
        _("longitude"),
        null=True,
        blank=True,
        validators=[MinValueValidator(-180), MaxValueValidator(180)],
    )
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Europe/Paris", validators=[validate_time_zone]
    )
    phone = models.CharField(_("switchboard phone"), max_length=30, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("establishment")
        verbose_name_plural = _("establishments")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.finess})"

    @property
    def zone(self) -> ZoneInfo:
        """The establishment's time zone, where its times are shown and reckoned."""
        return ZoneInfo(self.time_zone)


class Specialty(BilingualLabel):
    code = models.SlugField(_("code"), max_length=60, unique=True)
    # The national code published to the SAS and in FHIR, beside the hub's own code.
    ordinal_code = models.CharField(
        _("national code (TRE_R38)"),
        max_length=10,
        blank=True,
        help_text=_("The specialty's code in the ANS table TRE_R38 (SM41 for pulmonology)."),
    )

    class Meta:
        verbose_name = _("specialty")
        verbose_name_plural = _("specialties")
        ordering = ["label_fr"]


class Department(models.Model):
    public_id = PublicIdField(verbose_name=_("reference"))
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.PROTECT,
        related_name="departments",
        verbose_name=_("hospital"),
    )
    code = models.SlugField(_("code"), max_length=60)
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["establishment__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["establishment", "code"], name="directory_department_code_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} — {self.establishment.name}"


class Practitioner(models.Model):
    public_id = PublicIdField(verbose_name=_("reference"))
    rpps = models.CharField(
        _("RPPS number"), max_length=11, unique=True, validators=[validate_rpps]
    )
    title = models.CharField(_("title"), max_length=20, blank=True, help_text=_("Dr, Pr…"))
    first_name = models.CharField(_("first name"), max_length=100)
    last_name = models.CharField(_("last name"), max_length=100)
    # Names folded to lower-case ASCII, so that "Lefèvre" is found from "lefevre" on SQLite as
    # on PostgreSQL without an extension.
    search_name = models.CharField(
        max_length=210, editable=False, db_index=True, verbose_name=_("name as searched")
    )

    class Meta:
        verbose_name = _("practitioner")
        verbose_name_plural = _("practitioners")
        ordering = ["last_name", "first_name"]
        indexes = [models.Index(Lower("last_name"), name="directory_practitioner_last")]

    def __str__(self) -> str:
        return f"{self.display_name} (RPPS {self.rpps})" if self.rpps else self.display_name

    @property
    def display_name(self) -> str:
        return " ".join(part for part in (self.title, self.first_name, self.last_name) if part)

    def refresh_search_name(self) -> None:
        self.search_name = fold(f"{self.last_name} {self.first_name}")


class PractitionerRole(models.Model):
    """A practitioner practising in one establishment (and department), in some specialties."""

    public_id = PublicIdField(verbose_name=_("reference"))
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="roles", verbose_name=_("practitioner")
    )
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.PROTECT,
        related_name="practitioner_roles",
        verbose_name=_("hospital"),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.PROTECT,
        related_name="practitioner_roles",
        null=True,
        blank=True,
        verbose_name=_("department"),
    )
    specialties = models.ManyToManyField(
        Specialty, related_name="practitioner_roles", verbose_name=_("specialties")
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("practitioner role")
        verbose_name_plural = _("practitioner roles")
        constraints = [
            # Two partial constraints rather than nulls_distinct=False, which SQLite lacks.
            models.UniqueConstraint(
                fields=["practitioner", "establishment", "department"],
                condition=models.Q(department__isnull=False),
                name="directory_role_unique_in_department",
            ),
            models.UniqueConstraint(
                fields=["practitioner", "establishment"],
                condition=models.Q(department__isnull=True),
                name="directory_role_unique_without_department",
            ),
        ]

    def __str__(self) -> str:
        """Enough to tell two namesakes apart: specialties, department, hospital (the
        specialties are read from a prefetch where the caller made one)."""
        specialties = ", ".join(str(s) for s in self.specialties.all())
        where = ", ".join(
            part
            for part in (
                self.department.name if self.department_id else "",
                self.establishment.name,
            )
            if part
        )
        return " — ".join(part for part in (str(self.practitioner), specialties, where) if part)


class VisitType(BilingualLabel):
    """A kind of appointment an organisation offers in a specialty (a first consultation…)."""

    public_id = PublicIdField(verbose_name=_("reference"))
    organisation = models.ForeignKey(
        Organisation,
        on_delete=models.PROTECT,
        related_name="visit_types",
        verbose_name=_("organisation"),
    )
    code = models.SlugField(_("code"), max_length=60)
    specialty = models.ForeignKey(
        Specialty, on_delete=models.PROTECT, related_name="visit_types", verbose_name=_("specialty")
    )
    duration_minutes = models.PositiveSmallIntegerField(
        _("duration (minutes)"), validators=[MinValueValidator(5), MaxValueValidator(480)]
    )
    new_patients_allowed = models.BooleanField(_("new patients may book"), default=True)
    preparation_fr = models.TextField(_("preparation instructions (French)"), blank=True)
    preparation_en = models.TextField(_("preparation instructions (English)"), blank=True)
    # How late and how far ahead a patient may book, checked at search and at booking.
    min_notice_minutes = models.PositiveIntegerField(
        _("minimum notice (minutes)"),
        default=120,
        help_text=_("Slots starting sooner than this are no longer offered."),
    )
    max_horizon_days = models.PositiveSmallIntegerField(
        _("maximum horizon (days)"),
        default=182,
        validators=[MinValueValidator(1), MaxValueValidator(730)],
        help_text=_("Slots further ahead than this are not offered yet."),
    )
    reminder_hours = models.PositiveSmallIntegerField(
        _("reminder (hours before)"),
        null=True,
        blank=True,
        validators=[MaxValueValidator(24 * 14)],
        help_text=_(
            "When the patient is reminded, in hours before the appointment (local time); empty "
            "for the hub's default (48), 0 for no reminder."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("visit type")
        verbose_name_plural = _("visit types")
        ordering = ["specialty__label_fr", "label_fr"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "code"], name="directory_visit_type_code_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(duration_minutes__gte=5, duration_minutes__lte=480),
                name="directory_visit_type_duration_range",
            ),
        ]

    @property
    def preparation(self) -> str:
        if (get_language() or "fr").startswith("en"):
            return self.preparation_en or self.preparation_fr
        return self.preparation_fr
