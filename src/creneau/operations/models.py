from django.db import models
from django.utils.translation import gettext_lazy as _


class ScheduledJob(models.Model):
    """When a periodic job runs next. A worker claims a run by moving ``next_run_at`` forward in
    one conditional update, so two workers never start the same run."""

    name = models.CharField(max_length=50, primary_key=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name


class RateCounter(models.Model):
    """One window's count of one limit (creneau.ratelimit) when no shared cache is configured:
    every process and every server counts in the same row, incremented atomically."""

    name = models.CharField(max_length=200, primary_key=True)
    count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.name


class WaitingRoom(models.Model):
    """The waiting room's one row (booking.waiting_room): the admission time the next patient
    arriving takes, as seconds since the epoch."""

    next_admission = models.FloatField(default=0.0)

    class Meta:
        verbose_name = _("waiting room")
        verbose_name_plural = _("waiting room")

    def __str__(self) -> str:
        return str(self.next_admission)
