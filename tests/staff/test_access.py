"""Staff accesses: each role has its scope, inside its organisation."""

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from creneau.directory.models import Department
from creneau.staff.models import StaffAccess
from creneau.staff.queries import people_to_tell

pytestmark = pytest.mark.django_db


def test_a_role_without_its_scope_or_with_another_organisations_is_refused(
    aphp, pitie_neurosurgeon, private_neurosurgeon
):
    user = get_user_model().objects.create_user("s", "s@hopital.example", "x")
    private_department = Department.objects.filter(
        establishment=private_neurosurgeon.establishment
    ).first()
    assert private_department is not None
    for access, field in [
        (StaffAccess(user=user, organisation=aphp, role="secretary"), "department"),
        (StaffAccess(user=user, organisation=aphp, role="practitioner"), "practitioner"),
        (StaffAccess(user=user, organisation=aphp, role="est_admin"), "establishment"),
        (
            StaffAccess(
                user=user,
                organisation=aphp,
                role="secretary",
                department=private_department,
            ),
            "department",
        ),
    ]:
        with pytest.raises(ValidationError) as refused:
            access.full_clean()
        assert field in refused.value.message_dict
    fine = StaffAccess(
        user=user, organisation=aphp, role="secretary", department=pitie_neurosurgeon.department
    )
    fine.full_clean()
    fine.save()
    assert list(people_to_tell(pitie_neurosurgeon)) == [user]
    user.is_active = False
    user.save()
    assert list(people_to_tell(pitie_neurosurgeon)) == []
