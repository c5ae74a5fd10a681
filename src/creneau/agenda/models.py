"""Agendas: when practitioners receive patients (rules, absences) and the slots that follow.

A slot does not know where it came from beyond ``source``: Créneau's own rules fill it today,
external agendas (iCalendar, FHIR) will feed the same table, and search and booking read only
this table.
"""

import functools
import operator

from dateutil.rrule import rrulestr
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from creneau.dates import shown
from creneau.directory.models import (
    Department,
    Establishment,
    Practitioner,
    PractitionerRole,
    PublicIdField,
    Specialty,
    VisitType,
)


def validate_recurrence(value: str) -> None:
    """An RFC 5545 RRULE value (§3.3.10) without DTSTART, which comes from ``starts_on``."""
    text = value.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    if "DTSTART" in text.upper() or "\n" in text:
        raise ValidationError(
            _("Give the recurrence rule alone (FREQ=WEEKLY;BYDAY=MO…), without DTSTART."),
            code="recurrence",
        )
    try:
        rrulestr(text, ignoretz=True)
    except (ValueError, TypeError) as error:
        raise ValidationError(
            _("%(value)s is not a valid recurrence rule (RFC 5545): %(error)s"),
            code="recurrence",
            params={"value": value, "error": error},
        ) from error


class AvailabilityRule(models.Model):
    """A recurring opening period of one practitioner role, in the establishment's local time.

    Each occurrence opens ``start_time``-``end_time`` local time and is cut into slots for each
    visit type offered; a slot is as long as the visit type unless ``slot_minutes`` says
    otherwise. ``capacity`` above one makes a group session (six places per vaccination slot).
    """

    public_id = PublicIdField(verbose_name=_("reference"))
    practitioner_role = models.ForeignKey(
        PractitionerRole,
        on_delete=models.CASCADE,
        related_name="availability_rules",
        verbose_name=_("practitioner in one department"),
    )
    label = models.CharField(_("label"), max_length=200, blank=True)
    recurrence = models.CharField(
        _("recurrence rule"),
        max_length=500,
        default="FREQ=WEEKLY",
        validators=[validate_recurrence],
        help_text=_(
            "RFC 5545 RRULE: FREQ=WEEKLY;BYDAY=MO,TH (weekly), FREQ=WEEKLY;INTERVAL=2;BYDAY=TU "
            "(every other week), FREQ=MONTHLY;BYDAY=1MO (first Monday of the month)."
        ),
    )
    starts_on = models.DateField(_("first day"))
    ends_on = models.DateField(_("last day"), null=True, blank=True)
    start_time = models.TimeField(_("opens at (local time)"))
    end_time = models.TimeField(_("closes at (local time)"))
    visit_types = models.ManyToManyField(
        VisitType, related_name="availability_rules", verbose_name=_("visit types offered")
    )
    slot_minutes = models.PositiveSmallIntegerField(
        _("slot length (minutes)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(5), MaxValueValidator(480)],
        help_text=_("Empty: each visit type's own duration."),
    )
    capacity = models.PositiveSmallIntegerField(
        _("places per slot"), default=1, validators=[MinValueValidator(1), MaxValueValidator(500)]
    )
    open_on_public_holidays = models.BooleanField(_("open on public holidays"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("changed"))

    class Meta:
        verbose_name = _("availability rule")
        verbose_name_plural = _("availability rules")
        constraints = [
            models.CheckConstraint(
                condition=Q(end_time__gt=F("start_time")), name="agenda_rule_period_order"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=F("starts_on")),
                name="agenda_rule_dates_order",
            ),
            models.CheckConstraint(condition=Q(capacity__gte=1), name="agenda_rule_capacity"),
        ]

    def __str__(self) -> str:
        return self.label or f"{self.recurrence} {self.start_time:%H:%M}-{self.end_time:%H:%M}"

    def clean(self) -> None:
        errors = {}
        if self.start_time and self.end_time and self.end_time <= self.start_time:
            errors["end_time"] = _("The period must close after it opens.")
        if self.starts_on and self.ends_on and self.ends_on < self.starts_on:
            errors["ends_on"] = _("The last day cannot come before the first.")
        if errors:
            raise ValidationError(errors)


ABSENCE_SUBJECTS = ("practitioner_role", "practitioner", "department", "establishment")


def _one_of(fields: tuple[str, ...]) -> Q:
    """Exactly one of ``fields`` is set."""
    return functools.reduce(
        operator.or_,
        (Q(**{f"{name}__isnull": name != chosen for name in fields}) for chosen in fields),
    )


class Absence(models.Model):
    """Time when no slot may be offered: a practitioner's leave, a department's or a whole
    establishment's closure (its own holidays, works). French public holidays are built in."""

    public_id = PublicIdField(verbose_name=_("reference"))
    practitioner_role = models.ForeignKey(
        PractitionerRole,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="blocks",
        verbose_name=_("practitioner in one department"),
        help_text=_("Time blocked in this agenda only (the practitioner's others stay open)."),
    )
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="absences",
        verbose_name=_("practitioner"),
    )
    department = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
        verbose_name=_("department"),
    )
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="closures",
        verbose_name=_("hospital"),
    )
    starts_at = models.DateTimeField(_("from"))
    ends_at = models.DateTimeField(_("until"))
    reason = models.CharField(
        _("reason (staff only)"),
        max_length=200,
        blank=True,
        help_text=_("Never shown to patients."),
    )

    class Meta:
        verbose_name = _("absence or closure")
        verbose_name_plural = _("absences and closures")
        ordering = ["starts_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="agenda_absence_order"
            ),
            models.CheckConstraint(
                condition=_one_of(ABSENCE_SUBJECTS), name="agenda_absence_one_subject"
            ),
        ]

    def __str__(self) -> str:
        who = self.practitioner_role or self.practitioner or self.department or self.establishment
        return f"{who}: {shown(self.starts_at)} - {shown(self.ends_at)}"


# Free means: offered, not full, and no other appointment of the practitioner overlapping it.
# The partial indexes below hold only such slots, so "earliest free" walks a short index.
SLOT_FREE = Q(is_offered=True, booked__lt=F("capacity"), overlaps=0)


class Slot(models.Model):
    class Source(models.TextChoices):
        BUILTIN = "builtin", _("Créneau agenda")
        ICS = "ics", _("iCalendar or CalDAV calendar")
        FHIR = "fhir", _("external agenda (FHIR)")

    public_id = PublicIdField(verbose_name=_("reference"))
    # The practitioner role is the slot's owner and, for a sharded deployment, its
    # distribution key; the next four columns copy what search filters on, so that the search
    # query touches this table alone.
    # Every index costs each of the millions of rows a roll writes: the role is found through
    # the unique key (which starts with it), the practitioner through its time index.
    # The role and the visit type must exist: on PostgreSQL checked by triggers (migration
    # 0015), once per statement for a whole COPY, not by foreign keys, whose check runs once
    # per row (half of a roll's time there); SQLite keeps its foreign keys.
    practitioner_role = models.ForeignKey(
        PractitionerRole,
        on_delete=models.PROTECT,
        related_name="slots",
        db_constraint=False,
        db_index=False,
        verbose_name=_("practitioner in one department"),
    )
    # Copies of the role's: checked through the role's own foreign key, so the database is
    # spared one trigger and one index per copy.
    practitioner = models.ForeignKey(
        Practitioner,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        verbose_name=_("practitioner"),
    )
    establishment = models.ForeignKey(
        Establishment,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        verbose_name=_("hospital"),
    )
    # Searched through the partial index of free slots below; the full index would only serve
    # the refusal to delete a visit type that has slots, a rare admin action.
    visit_type = models.ForeignKey(
        VisitType,
        on_delete=models.PROTECT,
        related_name="slots",
        db_constraint=False,
        db_index=False,
        verbose_name=_("visit"),
    )
    specialty = models.ForeignKey(
        Specialty,
        on_delete=models.PROTECT,
        related_name="+",
        db_constraint=False,
        db_index=False,
        verbose_name=_("specialty"),
    )
    starts_at = models.DateTimeField(verbose_name=_("start"))
    ends_at = models.DateTimeField(verbose_name=_("end"))
    # Minutes after local midnight, for "mornings only" without time-zone arithmetic in SQL.
    local_minute = models.PositiveSmallIntegerField(
        verbose_name=_("minute of the day (local time)")
    )
    # The visit type's booking window, copied at generation: offered from ``bookable_from``
    # until ``bookable_until``.
    bookable_from = models.DateTimeField(verbose_name=_("bookable from"))
    bookable_until = models.DateTimeField(verbose_name=_("bookable until"))
    capacity = models.PositiveSmallIntegerField(default=1, verbose_name=_("places"))
    booked = models.PositiveSmallIntegerField(default=0, verbose_name=_("places booked"))
    # Holds counted against capacity; ``held_until`` is the latest of their expiries, so that
    # once it has passed every one of them is void and the slot is free without a job running.
    held = models.PositiveSmallIntegerField(default=0, verbose_name=_("places held"))
    held_until = models.DateTimeField(null=True, blank=True, verbose_name=_("held until"))
    # Active appointments of the same practitioner on other slots that overlap this one (two
    # visit types offered over the same period): the slot is not free while above zero.
    overlaps = models.PositiveSmallIntegerField(
        default=0, verbose_name=_("overlapping appointments")
    )
    # Until when a hold on another slot of the same practitioner over the same time keeps this
    # one out of reach (a patient holding a 45-minute visit holds the practitioner's time, not
    # only their slot). The latest of those holds' expiries: once passed, the slot is free
    # again with no job having run, like ``held_until``.
    blocked_until = models.DateTimeField(null=True, blank=True, verbose_name=_("blocked until"))
    is_offered = models.BooleanField(default=True, verbose_name=_("offered to patients"))
    source = models.CharField(
        max_length=10, choices=Source.choices, default=Source.BUILTIN, verbose_name=_("origin")
    )
    rule = models.ForeignKey(
        AvailabilityRule,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="slots",
        db_constraint=False,
        db_index=False,
        verbose_name=_("opening period"),
    )
    external_id = models.CharField(
        max_length=200, blank=True, verbose_name=_("identifier in the external agenda")
    )

    class Meta:
        verbose_name = _("slot")
        verbose_name_plural = _("slots")
        constraints = [
            models.UniqueConstraint(
                fields=["practitioner_role", "visit_type", "starts_at"],
                name="agenda_slot_unique",
            ),
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="agenda_slot_order"
            ),
            # Invariant 1: never more bookings and holds than places, whatever Python does.
            models.CheckConstraint(
                condition=Q(capacity__gte=1) & Q(booked__gte=0) & Q(held__gte=0),
                name="agenda_slot_counts_positive",
            ),
            models.CheckConstraint(
                condition=Q(booked__lte=F("capacity") - F("held")),
                name="agenda_slot_capacity",
            ),
        ]
        indexes = [
            models.Index(
                fields=["visit_type", "starts_at"],
                condition=SLOT_FREE,
                name="agenda_slot_free_by_visit",
            ),
            models.Index(
                fields=["specialty", "starts_at"],
                condition=SLOT_FREE,
                name="agenda_slot_free_by_specialty",
            ),
            # Overlap counting and the slot picker; a role's own slots are found through the
            # unique key above, which starts with the role.
            models.Index(fields=["practitioner", "starts_at"], name="agenda_slot_practitioner"),
        ]

    def __str__(self) -> str:
        return f"{shown(self.starts_at)} ({self.public_id})"


class AgendaSource(models.Model):
    """Where a practitioner role's agenda is kept (DESIGN.md, "Agenda sources"). ``builtin``:
    Créneau's own rules. ``calendar``: an iCalendar feed (read) whose busy time takes the
    built-in slots out of search. A source that has not synced successfully within its
    freshness limit has its slots withdrawn from search (``stale_after``: no job needs to run
    for that), until it syncs again."""

    class Kind(models.TextChoices):
        BUILTIN = "builtin", _("Créneau agenda")
        CALENDAR = "calendar", _("calendar (iCalendar feed)")
        CALDAV = "caldav", _("CalDAV calendar")
        FHIR = "fhir", _("another agenda's FHIR server")
        HIS = "his", _("hospital information system (HL7 SIU)")

    public_id = PublicIdField(verbose_name=_("reference"))
    practitioner_role = models.OneToOneField(
        PractitionerRole,
        on_delete=models.CASCADE,
        related_name="agenda_source",
        verbose_name=_("practitioner role"),
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    url = models.URLField(_("address"), max_length=500, blank=True)
    username = models.CharField(_("user name"), max_length=200, blank=True)
    # The password or client secret, sealed (creneau.sealing): never shown again, never logged.
    sealed_secret = models.TextField(blank=True, editable=False, verbose_name=_("secret (sealed)"))
    # The hospital runs the calendar: the patient's name may be written to it.
    hosted_by_hospital = models.BooleanField(_("hosted by the hospital"), default=False)
    freshness_minutes = models.PositiveIntegerField(
        _("freshness limit (minutes)"),
        default=60,
        validators=[MinValueValidator(5), MaxValueValidator(7 * 24 * 60)],
        help_text=_("Past this long without a successful sync, its slots leave search."),
    )
    sync_minutes = models.PositiveIntegerField(
        _("sync every (minutes)"), default=15, validators=[MinValueValidator(1)]
    )
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_success_at = models.DateTimeField(_("last successful sync"), null=True, blank=True)
    next_sync_at = models.DateTimeField(_("next sync"), null=True, blank=True)
    # last_success_at + freshness: once passed, the role's slots leave search.
    stale_after = models.DateTimeField(_("withdrawn from search after"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    # What the last sync saw (busy periods, slots taken out, booked slots in busy time).
    last_report = models.JSONField(_("last report"), default=dict, blank=True)
    etag = models.CharField(max_length=200, blank=True, editable=False, verbose_name=_("ETag"))
    # The SHA-256 of the secret in the address of the practitioner's private feed of their
    # bookings (for a calendar the hub cannot write to); a new one revokes the old.
    feed_token_hash = models.CharField(
        max_length=64, blank=True, editable=False, db_index=True, verbose_name=_("feed link (hash)")
    )
    # CalDAV: the collection's sync-token (RFC 6578) after the last successful sync.
    sync_token = models.CharField(
        max_length=500, blank=True, editable=False, verbose_name=_("sync token")
    )
    # FHIR: the remote Schedule whose free slots the hub offers as its own, and the visit type
    # given to a remote slot whose service type names none of the organisation's.
    remote_schedule = models.CharField(_("remote schedule id"), max_length=200, blank=True)

    class RemoteApi(models.TextChoices):
        IHE = "ihe", _("IHE ITI Scheduling ($hold, $book)")
        REST = "rest", _("FHIR REST (Appointment create and update)")

    remote_api = models.CharField(
        _("how the remote books"), max_length=4, choices=RemoteApi.choices, default="ihe"
    )
    default_visit_type = models.ForeignKey(
        VisitType,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("visit type of remote slots without a known one"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))

    class Meta:
        verbose_name = _("agenda source")
        verbose_name_plural = _("agenda sources")
        indexes = [models.Index(fields=["stale_after"], name="agenda_source_stale")]

    def __str__(self) -> str:
        return f"{self.practitioner_role}: {self.get_kind_display()}"


class BusyInterval(models.Model):
    """Busy time an external agenda gave for a role (RFC 4791 §7.10), expanded from its
    recurrences: the slot generation treats it as an absence of the role. Replaced whole at
    each successful sync."""

    source = models.ForeignKey(AgendaSource, on_delete=models.CASCADE, related_name="busy")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    # The hospital system's appointment (SIU SCH-2, else SCH-1) this busy time is: its later
    # messages move or cancel it. Empty for a calendar's busy time, replaced whole at each sync.
    external_id = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["source", "starts_at"], name="agenda_busy_source_start")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gt=F("starts_at")), name="agenda_busy_order"
            )
        ]

    def __str__(self) -> str:
        return f"{shown(self.starts_at)} - {shown(self.ends_at)}"


class CalendarObject(models.Model):
    """A CalDAV calendar's object as last synced (RFC 6578: only what changed comes in each
    sync, so the busy time is computed from this copy)."""

    source = models.ForeignKey(
        AgendaSource, on_delete=models.CASCADE, related_name="calendar_objects"
    )
    href = models.CharField(max_length=500)
    data = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "href"], name="agenda_object_unique")
        ]

    def __str__(self) -> str:
        return self.href


class AgendaRoll(models.Model):
    """How far the nightly roll has opened every agenda (one row). The next roll opens only
    what lies beyond it: rules, absences and external agendas regenerate their own slots over
    the whole horizon when they change, so the weeks already opened need no second look
    (``creneau slots generate`` still reconciles everything)."""

    opened_until = models.DateTimeField(verbose_name=_("agendas opened until"))

    class Meta:
        verbose_name = _("nightly roll")
        verbose_name_plural = _("nightly rolls")

    def __str__(self) -> str:
        return shown(self.opened_until)
