"""The admin keeps the developers' sections (OAuth2 tokens, one-time-code devices, task
results) for superusers: a staff account given every permission still does not see them."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

pytestmark = pytest.mark.django_db

DEVELOPER_PAGES = [
    "/admin/oauth2_provider/application/",
    "/admin/oauth2_provider/accesstoken/",
    "/admin/otp_totp/totpdevice/",
    "/admin/otp_static/staticdevice/",
    "/admin/django_tasks_database/dbtaskresult/",
]


def test_developer_sections_are_for_superusers_only(client, hospital_admin):
    staff = get_user_model().objects.create_user(
        "secretaire", "s@hopital.example", "correct horse battery", is_staff=True
    )
    staff.user_permissions.set(Permission.objects.all())
    client.force_login(staff)
    index = client.get("/admin/").content.decode()
    assert "/admin/agenda/" in index  # the hospital's own sections stay
    for page in DEVELOPER_PAGES:
        assert page not in index
        assert client.get(page).status_code == 403, page
    client.force_login(hospital_admin)
    index = client.get("/admin/").content.decode()
    for page in DEVELOPER_PAGES:
        assert page in index
        assert client.get(page).status_code == 200, page
