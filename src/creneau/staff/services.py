"""What the staff's pages change: the access log of the patients' details they show."""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from creneau.booking.models import Appointment
from creneau.booking.operators import CallerCriteria, criteria_hash
from creneau.booking.queries import with_details
from creneau.directory.text import fold
from creneau.staff.models import PatientDataView
from creneau.staff.scope import StaffScope

# How far back a look-up reaches: the past year's appointments, and every coming one.
LOOKUP_PAST = timedelta(days=366)


@transaction.atomic
def patient_data_view_record(
    *,
    user,
    kind: str,
    subject: str,
    appointments: list[Appointment],
    criteria: str = "",
    now: datetime | None = None,
) -> PatientDataView | None:
    """One line of the access log for a page that showed patients' details (none when it
    showed none)."""
    if not appointments and kind != PatientDataView.Kind.LOOKUP:
        return None
    view = PatientDataView.objects.create(
        user=user,
        kind=kind,
        subject=subject[:200],
        criteria_hash=criteria,
        shown=len(appointments),
        at=now or timezone.now(),
    )
    view.appointments.set(appointments)
    return view


def patient_lookup(
    *, scope: StaffScope, user, criteria: CallerCriteria, now: datetime | None = None
) -> list[Appointment]:
    """A patient's appointments inside the member's scope (the past year's and the coming
    ones, any status), by last name (any case or accents), birth date and phone; recorded in
    the access log, found or not."""
    now = now or timezone.now()
    wanted = fold(criteria.last_name)
    candidates = with_details(
        Appointment.objects.filter(
            patient_birth_date=criteria.birth_date,
            patient_phone=criteria.phone,
            starts_at__gte=now - LOOKUP_PAST,
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
        )
    ).order_by("-starts_at", "pk")
    found = [a for a in candidates if fold(a.patient_last_name) == wanted]
    patient_data_view_record(
        user=user,
        kind=PatientDataView.Kind.LOOKUP,
        subject="look-up",
        appointments=found,
        criteria=criteria_hash(criteria),
        now=now,
    )
    return found
