"""The hospital's own people and what each may see and do: one row per grant (a secretary of
two departments has two). The scope narrows from the organisation to an establishment, a
department, or one practitioner's own agenda."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from creneau.channels.models import ApiClient, OperatorCompany
from creneau.dates import shown
from creneau.directory.models import Department, Establishment, Organisation, Practitioner


class StaffAccess(models.Model):
    class Role(models.TextChoices):
        ORGANISATION_ADMIN = "org_admin", _("organisation administrator")
        ESTABLISHMENT_ADMIN = "est_admin", _("establishment administrator")
        SECRETARY = "secretary", _("department secretary")
        PRACTITIONER = "practitioner", _("practitioner")
        AUDITOR = "auditor", _("auditor")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="staff_accesses",
        verbose_name=_("user"),
    )
    role = models.CharField(_("role"), max_length=12, choices=Role.choices)
    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="+", verbose_name=_("organisation")
    )
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("establishment"),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staff_accesses",
        verbose_name=_("department"),
    )
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="staff_accesses",
        verbose_name=_("practitioner"),
    )

    # Given by the hospital's sign-on from the provider's claims, and replaced at each sign-in;
    # the accesses set in the admin stay as they are.
    from_sign_on = models.BooleanField(_("from the hospital's sign-on"), default=False)

    class Meta:
        verbose_name = _("staff access")
        verbose_name_plural = _("staff accesses")
        constraints = [
            models.UniqueConstraint(
                fields=[
                    "user",
                    "role",
                    "organisation",
                    "establishment",
                    "department",
                    "practitioner",
                ],
                name="staff_access_unique",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        scope = self.department or self.practitioner or self.establishment or self.organisation
        return f"{self.user}: {self.get_role_display()} — {scope}"

    def clean(self) -> None:
        """Each role has its scope: a department for a secretary, a practitioner for a
        practitioner, an establishment for its administrator, all within the organisation."""
        needs = (
            {
                self.Role.SECRETARY: ("department", self.department_id),
                self.Role.PRACTITIONER: ("practitioner", self.practitioner_id),
                self.Role.ESTABLISHMENT_ADMIN: ("establishment", self.establishment_id),
            }.get(self.Role(self.role))
            if self.role
            else None
        )
        if needs and not needs[1]:
            raise ValidationError(
                {needs[0]: _("This role needs it: it is the scope of what the person sees.")}
            )
        if (
            self.department_id
            and self.department.establishment.organisation_id != self.organisation_id
        ):
            raise ValidationError({"department": _("This department is another organisation's.")})
        if self.establishment_id and self.establishment.organisation_id != self.organisation_id:
            raise ValidationError(
                {"establishment": _("This establishment is another organisation's.")}
            )


class SignOnIdentity(models.Model):
    """Who a staff account is at the hospital's OpenID Connect provider (its ``sub`` claim):
    the account a sign-on opens, whatever the name or e-mail the provider sends."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="sign_on",
        verbose_name=_("user"),
    )
    subject = models.CharField(_("identifier at the provider"), max_length=255, unique=True)
    last_sign_on_at = models.DateTimeField(_("last sign-on"), null=True, blank=True)

    class Meta:
        verbose_name = _("hospital sign-on identity")
        verbose_name_plural = _("hospital sign-on identities")

    def __str__(self) -> str:
        return f"{self.user} = {self.subject}"


class PatientDataView(models.Model):
    """The access log of every view of patients' details, by the hospital's staff and by
    operators: who saw which appointments, when, on which page or call (an agenda, its print
    view, a look-up, an operator's list). A look-up's criteria are kept only as a keyed hash,
    as an operator's are (booking.CallerLookup)."""

    class Kind(models.TextChoices):
        AGENDA = "agenda", _("agenda")
        PRINT = "print", _("printed day")
        LOOKUP = "lookup", _("patient look-up")
        APPOINTMENT = "appointment", _("appointment page")
        BLOCKED = "blocked", _("appointments in blocked time")
        OPERATOR_LOOKUP = "op_lookup", _("operator's caller look-up")
        OPERATOR_LIST = "op_list", _("operator's list of bookings")
        OPERATOR_READ = "op_read", _("operator's view of an appointment")
        EXPORT = "export", _("patient's data exported")
        ADMIN_LIST = "admin_list", _("admin's list or search of patients")
        ADMIN_READ = "admin_read", _("admin's page of a patient's record")
        SLIP = "slip", _("appointment slip printed")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="patient_data_views",
        verbose_name=_("user"),
    )
    operator = models.ForeignKey(
        OperatorCompany,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("operator"),
    )
    api_client = models.ForeignKey(
        ApiClient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("API client"),
    )
    kind = models.CharField(_("page"), max_length=12, choices=Kind.choices)
    subject = models.CharField(_("what was opened"), max_length=200)
    criteria_hash = models.CharField(
        max_length=64, blank=True, db_index=True, verbose_name=_("criteria (keyed hash)")
    )
    appointments = models.ManyToManyField(
        "booking.Appointment",
        related_name="staff_views",
        blank=True,
        verbose_name=_("appointments"),
    )
    shown = models.PositiveIntegerField(_("appointments shown"), default=0)
    at = models.DateTimeField(_("at"), db_index=True)

    class Meta:
        verbose_name = _("view of patients' details")
        verbose_name_plural = _("views of patients' details")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.who} {self.get_kind_display()} {shown(self.at)}"

    @property
    def who(self) -> str:
        """The account, and the operator company it acted for."""
        actor = self.user.get_username() if self.user_id else str(self.api_client or "")
        return f"{actor} ({self.operator})" if self.operator_id else actor
