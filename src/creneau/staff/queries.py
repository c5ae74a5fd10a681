"""Who among the hospital's staff is concerned by what."""

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from creneau.directory.models import PractitionerRole
from creneau.staff.models import StaffAccess


def people_to_tell(role: PractitionerRole) -> QuerySet:
    """The practitioner themselves and the secretaries of the role's department (of its
    establishment when it has none): active accounts with an e-mail address."""
    concerned = Q(role=StaffAccess.Role.PRACTITIONER, practitioner_id=role.practitioner_id)
    if role.department_id:
        concerned |= Q(role=StaffAccess.Role.SECRETARY, department_id=role.department_id)
    else:
        concerned |= Q(
            role=StaffAccess.Role.SECRETARY, department__establishment_id=role.establishment_id
        )
    users = StaffAccess.objects.filter(concerned).values("user_id")
    return (
        get_user_model()
        .objects.filter(pk__in=users, is_active=True)
        .exclude(email="")
        .order_by("pk")
    )
