"""Every page that shows a patient's identity writes a line of the access log (issue 27,
point 7): the desk's cancellation page, and the admin's lists, searches and records of
appointments and of the waiting list. A search's words are kept only as a keyed hash."""

from datetime import UTC, datetime

import pytest

from creneau.booking.services import waiting_list_join
from creneau.staff.models import PatientDataView
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db


def logged(user) -> list[tuple[str, int, list[str]]]:
    return [
        (view.kind, view.shown, [a.public_id for a in view.appointments.all()])
        for view in PatientDataView.objects.filter(user=user).order_by("pk")
    ]


def test_the_desk_s_cancellation_page_is_in_the_log(client, aphp, places, booked):
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)
    page = client.get(f"/staff/appointments/{booked.public_id}/cancel/")
    assert page.status_code == 200 and booked.patient_last_name.upper() in page.content.decode()
    assert logged(secretary) == [("appointment", 1, [booked.public_id])]


def test_the_admin_s_lists_searches_and_records_are_in_the_log(
    client, hospital_admin, booked, patient, public_scope
):
    waiting_list_join(
        scope=public_scope,
        patient=patient,
        visit_type=booked.visit_type,
        before=datetime(2027, 6, 1, tzinfo=UTC),
    )
    client.force_login(hospital_admin)
    listed = client.get("/admin/booking/appointment/")
    assert booked.patient_last_name in listed.content.decode()
    searched = client.get("/admin/booking/appointment/", {"q": booked.patient_last_name})
    assert booked.public_id in searched.content.decode()
    record = client.get(f"/admin/booking/appointment/{booked.pk}/change/")
    assert record.status_code == 200
    waiting = client.get("/admin/booking/waitinglistentry/")
    assert booked.patient_last_name in waiting.content.decode()
    assert logged(hospital_admin) == [
        ("admin_list", 1, [booked.public_id]),
        ("admin_list", 1, [booked.public_id]),
        ("admin_read", 1, [booked.public_id]),
        ("admin_list", 1, []),
    ]
    search = PatientDataView.objects.filter(user=hospital_admin).order_by("pk")[1]
    assert search.criteria_hash and booked.patient_last_name not in search.subject
    # An empty list shows nobody: nothing to log.
    client.get("/admin/booking/appointment/", {"q": "Personne"})
    assert PatientDataView.objects.filter(user=hospital_admin).count() == 4
