"""The access log of patients' details (staff.PatientDataView): one line per page, call or
export that showed them, written by the staff's pages, the operators' console and API, and the
personal-data commands. Imports nothing above the models, so that every app may record."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from creneau.booking.models import Appointment
from creneau.staff.models import PatientDataView

# A look-up is logged even when it found nobody: the question itself is a view.
LOOKUPS = {PatientDataView.Kind.LOOKUP, PatientDataView.Kind.OPERATOR_LOOKUP}


@transaction.atomic
def patient_data_view_record(
    *,
    user=None,
    kind: str,
    subject: str,
    appointments: list[Appointment],
    criteria: str = "",
    operator=None,
    api_client=None,
    shown: int | None = None,
    now: datetime | None = None,
) -> PatientDataView | None:
    """One line of the access log for a page that showed patients' details (none when it
    showed none). ``shown`` counts what the page showed when it is not only appointments (the
    waiting list's entries)."""
    shown = len(appointments) if shown is None else shown
    if not shown and kind not in LOOKUPS:
        return None
    view = PatientDataView.objects.create(
        user=user if user is not None and user.is_authenticated else None,
        operator=operator,
        api_client=api_client,
        kind=kind,
        subject=subject[:200],
        criteria_hash=criteria,
        shown=shown,
        at=now or timezone.now(),
    )
    view.appointments.set(appointments)
    return view
