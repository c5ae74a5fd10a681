"""The staff's agendas and the role matrix: every staff view tried with every role, each
answering its scope and a 404 outside it (never a page of another department)."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from creneau.booking.models import PARIS
from creneau.booking.services import appointment_book
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db


ROLES = ["org_admin", "est_admin", "secretary", "secretary_b", "practitioner", "auditor"]


def urls(places) -> dict[str, str]:
    return {
        "role": f"/staff/agenda/practitioner/{places['role'].public_id}/",
        "other_role": f"/staff/agenda/practitioner/{places['other_role'].public_id}/",
        "elsewhere_role": f"/staff/agenda/practitioner/{places['elsewhere_role'].public_id}/",
        "department": f"/staff/agenda/department/{places['department'].pk}/",
        "other_department": f"/staff/agenda/department/{places['other_department'].pk}/",
        "establishment": f"/staff/agenda/establishment/{places['establishment'].public_id}/",
        "elsewhere": f"/staff/agenda/establishment/{places['elsewhere'].public_id}/",
        "patients": "/staff/patients/",
    }


# Who sees what (200) and gets a 404: rows are the roles, columns the pages above.
EVERYONE_BUT_AUDITORS = {"patients"}
MATRIX = {
    "org_admin": {
        "role",
        "other_role",
        "elsewhere_role",
        "department",
        "other_department",
        "establishment",
        "elsewhere",
    },
    "est_admin": {"role", "other_role", "department", "other_department", "establishment"},
    "secretary": {"role", "department", "establishment"},
    "secretary_b": {"other_role", "other_department", "establishment"},
    "practitioner": {"role", "department", "establishment"},
    "auditor": set(),
}


@pytest.mark.parametrize("role", ROLES)
def test_every_staff_view_with_every_role(client, aphp, places, role):
    client.force_login(member(role, aphp, places))
    assert client.get("/staff/").status_code == 200
    seen = {}
    for name, url in urls(places).items():
        for suffix in ("", "?view=week", "?print=1"):
            seen.setdefault(name, set()).add(client.get(url + suffix).status_code)
    allowed = MATRIX[role] | (EVERYONE_BUT_AUDITORS if role != "auditor" else set())
    assert {name for name, codes in seen.items() if codes == {200}} == allowed
    assert {name for name, codes in seen.items() if codes == {404}} == set(seen) - allowed


def test_without_both_factors_or_an_access_the_pages_send_to_sign_in(client, aphp, places):
    assert client.get("/staff/").status_code == 302
    nobody = get_user_model().objects.create_user("nobody", "n@hopital.example", "x")
    client.force_login(nobody)
    answer = client.get(urls(places)["role"])
    assert answer.status_code == 302 and "/staff/login/" in answer["Location"]


def test_the_day_shows_each_slot_state_and_the_appointment(
    client, aphp, places, open_agenda, public_scope, patient, clock
):
    role = places["role"]
    open_agenda(role)
    from creneau.agenda.models import Slot

    slots = list(
        Slot.objects.filter(
            practitioner_role=role,
            visit_type__code="neurosurgery-first",
            starts_at__gte=timezone.now() + timedelta(days=2),
        ).order_by("starts_at")[:3]
    )
    day = timezone.localtime(slots[0].starts_at, PARIS).date()
    appointment_book(scope=public_scope, patient=patient, slot=slots[1])
    client.force_login(member("secretary", aphp, places))

    page = client.get(urls(places)["role"], {"day": day.isoformat()}).content.decode()

    assert patient.last_name.upper() in page
    assert "Site public" in page or public_scope.channel.name in page
    assert "réservé" in page and "libre" in page
    printed = client.get(urls(places)["role"], {"day": day.isoformat(), "print": "1"})
    assert patient.last_name.upper() in printed.content.decode()


def test_a_patient_look_up_finds_only_inside_the_scope_and_every_view_is_logged(
    client, aphp, places, booked, patient
):
    from creneau.staff.models import PatientDataView

    role = places["role"]
    asked = {
        "last_name": patient.last_name.upper(),  # any case
        "birth_date": patient.birth_date.isoformat(),
        "phone": patient.phone,
    }
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)
    page = client.post("/staff/patients/", asked).content.decode()
    assert "1 rendez-vous trouvé" in page and role.practitioner.display_name in page
    view = PatientDataView.objects.get(user=secretary, kind="lookup")
    assert list(view.appointments.all()) == [booked] and view.criteria_hash
    assert patient.last_name not in view.subject

    other = member("secretary_b", aphp, places)
    client.force_login(other)
    page = client.post("/staff/patients/", asked).content.decode()
    assert "0 rendez-vous trouvé" in page
    assert PatientDataView.objects.get(user=other, kind="lookup").shown == 0

    # Opening the day that shows the patient is in the log too; an empty day is not.
    client.force_login(secretary)
    day = timezone.localtime(booked.starts_at, PARIS).date()
    client.get(urls(places)["role"], {"day": day.isoformat()})
    client.get(urls(places)["role"], {"day": (day - timedelta(days=30)).isoformat()})
    agenda = PatientDataView.objects.filter(user=secretary, kind="agenda")
    assert [list(v.appointments.all()) for v in agenda] == [[booked]]


def test_the_desk_marks_an_arrival_and_a_no_show_as_the_member_who_did(
    client, aphp, places, open_agenda, public_scope, patient, clock
):
    from creneau.agenda.models import Slot
    from creneau.booking.models import Appointment, AppointmentEvent

    role = places["role"]
    open_agenda(role)
    slots = Slot.objects.filter(
        practitioner_role=role,
        visit_type__code="neurosurgery-first",
        starts_at__gte=timezone.now() + timedelta(days=2),
    ).order_by("starts_at")[:2]
    first, second = (
        appointment_book(scope=public_scope, patient=patient, slot=slot).appointment
        for slot in slots
    )
    day = timezone.localtime(first.starts_at, PARIS).date().isoformat()
    secretary = member("secretary", aphp, places)
    client.force_login(secretary)
    page = client.get(urls(places)["role"], {"day": day}).content.decode()
    assert f"/staff/appointments/{first.public_id}/status/" in page
    printed = client.get(urls(places)["role"], {"day": day, "print": "1"}).content.decode()
    assert "/status/" not in printed

    back = f"{urls(places)['role']}?day={day}"
    answer = client.post(
        f"/staff/appointments/{first.public_id}/status/", {"status": "arrived", "next": back}
    )
    assert (answer.status_code, answer["Location"]) == (302, back)
    client.post(f"/staff/appointments/{second.public_id}/status/", {"status": "no_show"})
    assert Appointment.objects.get(pk=first.pk).status == "arrived"
    assert Appointment.objects.get(pk=second.pk).status == "no_show"
    assert AppointmentEvent.objects.get(appointment=first, action="status").by == secretary
    # Not twice: a no-show cannot become an arrival; a foreign address is not followed.
    refused = client.post(
        f"/staff/appointments/{second.public_id}/status/",
        {"status": "arrived", "next": "https://evil.example/"},
    )
    assert refused.status_code == 409
    assert "evil.example" not in refused.content.decode()
    # Another department's secretary, an auditor: no such appointment.
    for other in ("secretary_b", "auditor"):
        client.force_login(member(other, aphp, places))
        answer = client.post(f"/staff/appointments/{first.public_id}/status/", {"status": "done"})
        assert answer.status_code == 404
    assert Appointment.objects.get(pk=first.pk).status == "arrived"


def test_the_staff_pages_carry_the_hospitals_branding(client, aphp, places):
    aphp.brand_colour = "#7a1241"
    aphp.save(update_fields=["brand_colour"])
    sign_in = client.get("/staff/login/").content.decode()
    assert f"/branding/organisation/{aphp.public_id}.css" in sign_in
    client.force_login(member("secretary", aphp, places))
    home = client.get("/staff/").content.decode()
    assert f"/branding/organisation/{aphp.public_id}.css" in home
    assert f"{aphp.short_name or aphp.name} — Personnel hospitalier" in home
    css = client.get(f"/branding/organisation/{aphp.public_id}.css").content.decode()
    assert "--brand-colour: #7a1241;" in css


def test_too_many_look_ups_answer_429_with_when_to_try_again(client, aphp, places, settings):
    """Issue 27, point 17: a rate limit is a 429 with Retry-After, not a form error."""
    settings.CRENEAU_RATE_LIMITS = {**settings.CRENEAU_RATE_LIMITS, "staff_lookup": (2, 3600)}
    client.force_login(member("secretary", aphp, places))
    asked = {"last_name": "Durand", "birth_date": "1968-09-21", "phone": "06 45 67 89 01"}
    for _ in range(2):
        assert client.post("/staff/patients/", asked).status_code == 200
    refused = client.post("/staff/patients/", asked)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
