"""Holds, appointments, idempotency keys and the waiting list.

Invariant 1 (no overbooking, no overlap) rests on the database: the slot's check constraints
(agenda), and on PostgreSQL an exclusion constraint on a practitioner's active appointments,
added by migration 0002 since SQLite has no such thing (there, every write transaction is
``BEGIN IMMEDIATE`` and the booking service checks the overlap under that lock).
"""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from creneau.agenda.models import Slot
from creneau.channels.models import ApiClient, Channel, OperatorCompany, PerimeterVersion
from creneau.dates import shown
from creneau.directory.models import (
    Establishment,
    Practitioner,
    PractitionerRole,
    PublicIdField,
    VisitType,
)

# The zone in which booking days and quotas are reckoned (establishments may set their own for
# their times).
PARIS = ZoneInfo("Europe/Paris")


def paris_midnight(day: date) -> datetime:
    """The instant a Paris day begins (what a "from" or "before" date means)."""
    return datetime.combine(day, time(), tzinfo=PARIS)


class Hold(models.Model):
    """A slot kept for a few minutes while a patient types. Counted in ``Slot.held`` while
    active; void once ``expires_at`` has passed, whether or not anything ran since."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        CONSUMED = "consumed", _("turned into an appointment")
        RELEASED = "released", _("released")

    class Purpose(models.TextChoices):
        BOOKING = "booking", _("booking")
        OFFER = "offer", _("waiting-list offer")

    public_id = PublicIdField()
    slot = models.ForeignKey(Slot, on_delete=models.CASCADE, related_name="holds")
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.BOOKING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    # A keyed hash of the client address, to cap the holds one visitor keeps at once.
    client = models.CharField(max_length=24, blank=True, default="")
    # What the platform whose link opened the hold said of where the patient comes from (SAS
    # origin and regulator, SMART source and booking-referral), carried to the appointment.
    referral = models.JSONField(default=dict, blank=True)
    # The hold the remote agenda gave for a slot of a FHIR source (its Appointment id there).
    external_id = models.CharField(max_length=200, blank=True, default="", editable=False)

    class Meta:
        indexes = [
            models.Index(
                fields=["slot", "expires_at"],
                condition=Q(status="active"),
                name="booking_hold_active",
            ),
            models.Index(
                fields=["client", "expires_at"],
                condition=Q(status="active"),
                name="booking_hold_active_client",
            ),
        ]

    def __str__(self) -> str:
        return self.public_id


ACTIVE_STATUSES = ("booked", "arrived", "no_show", "done")


class PatientRecord(models.Model):
    """Who the patient is, as they gave it, and the hash of the link that lets them manage it.
    No account: the manage token is the patient's key."""

    patient_last_name = models.CharField(_("last name"), max_length=100)
    patient_first_name = models.CharField(_("first name"), max_length=100)
    patient_birth_date = models.DateField(_("date of birth"))
    # E.164, any country, mobile or landline; empty for a person without a phone (booked by
    # the desk or a call centre, who say why in the field below).
    patient_phone = models.CharField(_("phone"), max_length=20, blank=True)
    patient_no_phone_reason = models.CharField(_("no phone: why"), max_length=200, blank=True)
    patient_email = models.EmailField(_("e-mail"), blank=True)
    patient_language = models.CharField(
        max_length=5, default="fr", verbose_name=_("language of the messages")
    )
    reason = models.CharField(_("reason for the visit"), max_length=500, blank=True)
    # SHA-256 of the patient's manage token: the token is 128 random bits, so a fast hash is
    # enough, and a leaked table gives no working link.
    manage_token_hash = models.CharField(
        max_length=64, editable=False, db_index=True, verbose_name=_("patient's link (hash)")
    )
    # The same token sealed (creneau.sealing) for the links in messages sent later.
    sealed_token = models.TextField(
        editable=False, blank=True, verbose_name=_("patient's link (sealed)")
    )
    # When the patient's identity was erased (on request, or by the purge a set time after
    # the appointment): names, phone, e-mail and reason emptied, the birth date kept to the
    # year, the link dead; the record stays for the anonymous statistics.
    identity_erased_at = models.DateTimeField(_("identity erased"), null=True, blank=True)

    class Meta:
        abstract = True


class Appointment(PatientRecord):
    class Status(models.TextChoices):
        BOOKED = "booked", _("booked")
        CANCELLED_BY_PATIENT = "cancelled_patient", _("cancelled by the patient")
        CANCELLED_BY_STAFF = "cancelled_staff", _("cancelled by the hospital")
        CANCELLED_BY_OPERATOR = "cancelled_operator", _("cancelled by a call centre, as asked")
        ARRIVED = "arrived", _("arrived")
        NO_SHOW = "no_show", _("did not come")
        DONE = "done", _("done")

    public_id = PublicIdField(verbose_name=_("reference"))
    # The slot it occupies; the appointment keeps its own copy of where and when, so that it
    # stays whole if the slot is regenerated away after a move.
    slot = models.ForeignKey(
        Slot,
        on_delete=models.SET_NULL,
        null=True,
        related_name="appointments",
        verbose_name=_("slot"),
    )
    practitioner_role = models.ForeignKey(
        PractitionerRole,
        on_delete=models.PROTECT,
        related_name="appointments",
        verbose_name=_("practitioner in one department"),
    )
    practitioner = models.ForeignKey(
        Practitioner, on_delete=models.PROTECT, related_name="+", verbose_name=_("practitioner")
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="+", verbose_name=_("hospital")
    )
    visit_type = models.ForeignKey(
        VisitType, on_delete=models.PROTECT, related_name="+", verbose_name=_("visit")
    )
    starts_at = models.DateTimeField(verbose_name=_("start"))
    ends_at = models.DateTimeField(verbose_name=_("end"))
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.BOOKED
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="appointments", verbose_name=_("channel")
    )
    # Who booked: the operator company under contract, and its agent or API client.
    operator = models.ForeignKey(
        OperatorCompany,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("operator"),
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agent"),
    )
    api_client = models.ForeignKey(
        ApiClient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="appointments",
        verbose_name=_("API client"),
    )
    perimeter_version = models.ForeignKey(
        PerimeterVersion,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("perimeter version"),
    )
    # Where a platform's link said the patient came from (see Hold.referral).
    referral = models.JSONField(_("referred by"), default=dict, blank=True)
    # The patient's identifier in the system of the partner that booked through IHE ITI
    # Scheduling, so that it finds its appointments by it (ITI-118); seen by that partner only.
    partner_patient_id = models.CharField(
        max_length=200,
        blank=True,
        editable=False,
        verbose_name=_("patient's identifier at the partner"),
    )
    # The appointment's id in the remote agenda it was booked through (a FHIR source).
    external_id = models.CharField(
        _("id in the remote agenda"), max_length=200, blank=True, editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("changed"))
    cancelled_at = models.DateTimeField(null=True, blank=True, verbose_name=_("cancelled"))
    cancel_reason = models.CharField(_("cancellation reason"), max_length=300, blank=True)
    # The patient's receipt: the transparency ledger's entry of the booking, or of its last
    # move (its public id; its index once sequenced: /ledger/entry/ID).
    ledger_entry = models.CharField(_("ledger entry"), max_length=16, blank=True, editable=False)

    class Meta:
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="booking_appointment_order"
            )
        ]
        indexes = [
            models.Index(fields=["practitioner", "starts_at"], name="booking_appt_practitioner"),
            models.Index(fields=["establishment", "starts_at"], name="booking_appt_establishment"),
        ]

    def __str__(self) -> str:
        return f"{shown(self.starts_at)} ({self.public_id})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class AppointmentEvent(models.Model):
    """The appointment's history, written by the service that makes each change."""

    class Action(models.TextChoices):
        BOOKED = "booked", _("booked")
        MOVED = "moved", _("moved")
        CANCELLED = "cancelled", _("cancelled")
        STATUS = "status", _("status changed")

    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20, choices=Action.choices)
    status = models.CharField(max_length=20)
    channel = models.ForeignKey(Channel, on_delete=models.PROTECT, related_name="+")
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # The operator (and its API client; its agent is ``by``) that made the change, which may
    # not be the one that booked.
    operator = models.ForeignKey(
        OperatorCompany, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    api_client = models.ForeignKey(
        ApiClient, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    previous_starts_at = models.DateTimeField(null=True, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.appointment_id} {self.action}"


class IdempotencyKey(models.Model):
    """A client's ``Idempotency-Key`` and the answer it got (draft-ietf-httpapi-idempotency-key
    -header): the same key and body replay the answer; another body is refused.

    The key itself is stored hashed, and the manage token of the answer is sealed with a pad
    derived from the key: a copy of this table alone opens no appointment.
    """

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="+")
    # Whose key it is: an operator's API client or agent, or a patient's browser (a keyed hash
    # of its address). Keys are scoped to their client, so nobody else can replay its answer
    # (a manage token) or take a key first to make its booking fail.
    client = models.CharField(max_length=64, default="")
    key_hash = models.CharField(max_length=64)
    request_hash = models.CharField(max_length=64)
    # Null while the first request runs: a second one with the same key then gets 409.
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.JSONField(null=True)
    sealed_token = models.CharField(max_length=128, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "client", "key_hash"], name="booking_idempotency_client_key"
            )
        ]
        indexes = [models.Index(fields=["created_at"], name="booking_idempotency_age")]

    def __str__(self) -> str:
        return self.key_hash[:12]


class WaitingListEntry(PatientRecord):
    """A patient who wants an earlier slot than they have, for a visit type, before a date."""

    class Status(models.TextChoices):
        WAITING = "waiting", _("waiting")
        OFFERED = "offered", _("offer pending")
        SATISFIED = "satisfied", _("booked from an offer")
        CANCELLED = "cancelled", _("withdrawn")
        EXPIRED = "expired", _("date passed")

    public_id = PublicIdField(verbose_name=_("reference"))
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    visit_type = models.ForeignKey(
        VisitType, on_delete=models.PROTECT, related_name="+", verbose_name=_("visit")
    )
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("hospital"),
    )
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("practitioner"),
    )
    before = models.DateTimeField(_("wanted before"))
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.WAITING, verbose_name=_("status")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    appointment = models.ForeignKey(
        Appointment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("appointment"),
    )

    class Meta:
        verbose_name = _("waiting-list entry")
        verbose_name_plural = _("waiting-list entries")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["visit_type", "created_at"],
                condition=Q(status="waiting"),
                name="booking_waiting_by_visit",
            )
        ]

    def __str__(self) -> str:
        return self.public_id


class WaitingListOffer(models.Model):
    """A freed slot offered to one waiting patient alone, through an exclusive hold."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        ACCEPTED = "accepted", _("accepted")
        DECLINED = "declined", _("declined")
        EXPIRED = "expired", _("expired")

    public_id = PublicIdField()
    entry = models.ForeignKey(WaitingListEntry, on_delete=models.CASCADE, related_name="offers")
    hold = models.OneToOneField(Hold, on_delete=models.CASCADE, related_name="offer")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["expires_at"], condition=Q(status="pending"), name="booking_offer_pending"
            )
        ]

    def __str__(self) -> str:
        return self.public_id


class CallerLookup(models.Model):
    """The access log of operators' look-ups of a caller's appointments (by last name, birth
    date and phone): who looked, when, through which channel, and which appointments were
    found. The criteria are kept only as a keyed hash, so that the organisation can answer
    "was this patient looked up?" without the log holding who they are. An appointment found
    stays open to the operator for ``CRENEAU_LOOKUP_MINUTES``."""

    operator = models.ForeignKey(
        OperatorCompany,
        on_delete=models.PROTECT,
        related_name="lookups",
        verbose_name=_("operator"),
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.PROTECT, related_name="+", verbose_name=_("channel")
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("agent"),
    )
    api_client = models.ForeignKey(
        ApiClient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("API client"),
    )
    criteria_hash = models.CharField(
        max_length=64, db_index=True, verbose_name=_("criteria (keyed hash)")
    )
    found = models.ManyToManyField(
        Appointment, related_name="lookups", blank=True, verbose_name=_("appointments found")
    )
    found_count = models.PositiveIntegerField(default=0, verbose_name=_("found"))
    at = models.DateTimeField(db_index=True, verbose_name=_("when"))

    class Meta:
        verbose_name = _("caller look-up")
        verbose_name_plural = _("caller look-ups")
        ordering = ["-at", "-pk"]

    def __str__(self) -> str:
        return f"{self.operator} {shown(self.at)}"
