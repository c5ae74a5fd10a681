"""Two practitioners of the same name are told apart wherever staff pick one: their specialties,
department and hospital are shown, on the staff's pages and in the admin's pickers."""

import pytest

from creneau.directory.models import Practitioner, PractitionerRole
from tests.staff.conftest import member

pytestmark = pytest.mark.django_db


@pytest.fixture
def namesakes(places):
    """Dr Léa Bertrand twice: in the Pitié's neurosurgery and in another of its departments."""
    found = []
    for role, rpps in ((places["role"], "10100000001"), (places["other_role"], "10100000002")):
        twin = Practitioner(title="Dr", first_name="Léa", last_name="Bertrand", rpps=rpps)
        twin.refresh_search_name()
        twin.save()
        copy = PractitionerRole.objects.create(
            practitioner=twin, establishment=role.establishment, department=role.department
        )
        copy.specialties.set(role.specialties.all())
        found.append(copy)
    return found


def test_the_staff_find_a_practitioner_by_name_and_tell_namesakes_apart(
    client, aphp, places, namesakes
):
    client.force_login(member("est_admin", aphp, places))
    page = client.get("/staff/", {"q": "bertrand lea"}).content.decode()
    assert page.count("RPPS 1010000000") == 2
    for role in namesakes:
        assert f"/staff/agenda/practitioner/{role.public_id}/" in page
        assert role.department.name in page and "RPPS " + role.practitioner.rpps in page
    assert places["role"].practitioner.display_name not in page  # only the name asked for

    client.force_login(member("secretary", aphp, places))
    page = client.get("/staff/", {"q": "BERTRAND"}).content.decode()
    assert page.count("RPPS 1010000000") == 1  # the other department is not in the scope
    assert f"/staff/agenda/practitioner/{namesakes[1].public_id}/" not in page


def test_the_admins_picker_names_specialty_department_and_hospital(
    client, hospital_admin, namesakes
):
    client.force_login(hospital_admin)
    answer = client.get(
        "/admin/autocomplete/",
        {
            "term": "Bertrand",  # the demo has other Bertrands
            "app_label": "agenda",
            "model_name": "availabilityrule",
            "field_name": "practitioner_role",
        },
    )
    labels = sorted(
        item["text"] for item in answer.json()["results"] if "RPPS 1010000000" in item["text"]
    )
    expected = sorted(
        f"Dr Léa Bertrand (RPPS {role.practitioner.rpps}) — "
        f"{', '.join(str(s) for s in role.specialties.all())} — "
        f"{role.department.name}, {role.establishment.name}"
        for role in namesakes
    )
    assert labels == expected and labels[0] != labels[1]
