"""Every message to a patient, recorded before it is sent: what it is about, how it goes, where
it stands. The text is rendered when it is sent and kept nowhere (not here, not in logs)."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from creneau.directory.models import PublicIdField


def new_idempotency_key() -> str:
    return uuid.uuid4().hex


class Message(models.Model):
    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", _("confirmation")
        REMINDER = "reminder", _("reminder")
        MOVED = "moved", _("moved")
        CANCELLED = "cancelled", _("cancelled")
        OFFER = "offer", _("waiting-list offer")
        # Reported to the platform that brought the booking only (notify.platforms).
        NO_SHOW = "no_show", _("did not come")
        DONE = "done", _("visit done")
        # To the practitioner and their department's secretaries, not the patient: a booked
        # appointment now lies in time their external agenda says is busy.
        CONFLICT = "conflict", _("booked in busy time")

    class Medium(models.TextChoices):
        SMS = "sms", _("SMS")
        EMAIL = "email", _("e-mail")
        # Not to the patient: the SAS platform's FHIR base (INT_R03), the practitioner's
        # CalDAV calendar.
        FHIR = "fhir", _("platform (FHIR)")
        CALENDAR = "cal", _("practitioner's calendar")
        HIS = "his", _("hospital information system (HL7)")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed, will retry")
        GIVEN_UP = "given_up", _("given up")

    public_id = PublicIdField(verbose_name=_("reference"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    medium = models.CharField(_("medium"), max_length=5, choices=Medium.choices)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    appointment = models.ForeignKey(
        "booking.Appointment",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("appointment"),
    )
    offer = models.ForeignKey(
        "booking.WaitingListOffer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("offer"),
    )
    # What the text needs that the appointment no longer says (the time before a move, who
    # cancelled and why): never a name, a phone number or a token.
    context = models.JSONField(default=dict, blank=True, verbose_name=_("what the message says"))
    # A staff member's address, for a message to the hospital's staff (kind conflict); empty
    # for the patient's messages, which go to the record's own phone and e-mail.
    recipient = models.EmailField(blank=True, default="", verbose_name=_("staff address"))
    send_after = models.DateTimeField(_("due"))
    # Past this moment the message is no use any more (the appointment has begun, the offer
    # has expired): it is given up, never sent late.
    useful_until = models.DateTimeField(_("useful until"))
    next_attempt_at = models.DateTimeField(_("next attempt"))
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # While a worker sends, the message is its own until then; a worker killed mid-send leaves
    # it to be taken again once the lease has run out, with the same idempotency key.
    lease_until = models.DateTimeField(null=True, blank=True, verbose_name=_("being sent until"))
    idempotency_key = models.CharField(
        max_length=32,
        unique=True,
        default=new_idempotency_key,
        editable=False,
        verbose_name=_("idempotency key"),
    )
    provider_reference = models.CharField(_("gateway reference"), max_length=200, blank=True)
    answer = models.CharField(_("last answer"), max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["queued", "sending", "failed"]),
                name="notify_message_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(appointment__isnull=False) | Q(offer__isnull=False),
                name="notify_message_about_something",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.medium} {self.status}"
