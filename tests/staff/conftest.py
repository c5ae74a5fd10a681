"""The places and people of the staff's tests: the Pitié's neurosurgery and one member per
role over it."""

import pytest
from django.contrib.auth import get_user_model

from creneau.directory.models import Department, PractitionerRole
from creneau.staff.models import StaffAccess
from tests.conftest import role_in


@pytest.fixture
def places(aphp, pitie_neurosurgeon):
    """The Pitié neurosurgeon's role and department; another department of the Pitié with a
    practitioner; another hospital's practitioner."""
    pitie = pitie_neurosurgeon.establishment
    other_department = (
        Department.objects.filter(establishment=pitie, practitioner_roles__isnull=False)
        .exclude(pk=pitie_neurosurgeon.department_id)
        .distinct()
        .first()
    )
    other_role = PractitionerRole.objects.filter(department=other_department).first()
    elsewhere = role_in("Hôpital Bicêtre", "neurosurgery")
    return {
        "role": pitie_neurosurgeon,
        "department": pitie_neurosurgeon.department,
        "establishment": pitie,
        "other_role": other_role,
        "other_department": other_department,
        "elsewhere_role": elsewhere,
        "elsewhere": elsewhere.establishment,
    }


def member(role: str, aphp, places) -> object:
    user = get_user_model().objects.create_user(role, f"{role}@hopital.example", "x")
    scope = {
        "org_admin": {"role": "org_admin"},
        "est_admin": {"role": "est_admin", "establishment": places["establishment"]},
        "secretary": {"role": "secretary", "department": places["department"]},
        "secretary_b": {"role": "secretary", "department": places["other_department"]},
        "practitioner": {"role": "practitioner", "practitioner": places["role"].practitioner},
        "auditor": {"role": "auditor"},
    }[role]
    StaffAccess.objects.create(user=user, organisation=aphp, **scope)
    return user


@pytest.fixture
def booked(places, open_agenda, public_scope, patient, clock):
    """The patient's appointment with the Pitié's neurosurgeon, a first visit two days ahead
    or more, booked on the public site."""
    from datetime import timedelta

    from django.utils import timezone

    from creneau.agenda.models import Slot
    from creneau.booking.services import appointment_book

    role = places["role"]
    open_agenda(role)
    slot = (
        Slot.objects.filter(
            practitioner_role=role,
            visit_type__code="neurosurgery-first",
            starts_at__gte=timezone.now() + timedelta(days=2),
        )
        .order_by("starts_at")
        .first()
    )
    return appointment_book(scope=public_scope, patient=patient, slot=slot).appointment
