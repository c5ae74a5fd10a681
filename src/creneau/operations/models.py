from django.db import models


class ScheduledJob(models.Model):
    """When a periodic job runs next. A worker claims a run by moving ``next_run_at`` forward in
    one conditional update, so two workers never start the same run."""

    name = models.CharField(max_length=50, primary_key=True)
    next_run_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
