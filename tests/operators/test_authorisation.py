"""Object-level authorisation between operators, through the API and the console: an operator
reaches its own bookings, and another's only when the caller asks it (a look-up by last name,
birth date and phone, inside its perimeter, written to the access log); never by naming an id."""

import pytest

from creneau.booking.models import Appointment, AppointmentEvent, CallerLookup
from creneau.channels.services import contract_status_set
from creneau.ledger.models import Entry
from tests.conftest import OTHER_PATIENT, PATIENT
from tests.operators.conftest import (
    LARIBOISIERE,
    PITIE,
    Api,
    agent_login,
    api_for,
)

pytestmark = pytest.mark.django_db

LOOKUP = {k: PATIENT[k] for k in ("last_name", "birth_date", "phone")}


def first_slot(api: Api, hospital: str) -> str:
    found = api.get("/slots", {"specialty": "neurosurgery", "limit": 100}).json()["items"]
    return next(s["id"] for s in found if s["establishment"]["name"] == hospital)


def book(api: Api, hospital: str, patient=PATIENT) -> dict:
    answer = api.post("/appointments", {"slot": first_slot(api, hospital), "patient": patient})
    assert answer.status_code == 201, answer.content
    return answer.json()


@pytest.fixture
def apis(client, alpha, beta):
    return api_for(client, alpha.api), api_for(client, beta.api)


def test_an_operator_reaches_only_its_own_bookings_by_id(apis, alpha, beta):
    a, b = apis
    mine = book(a, PITIE)
    theirs_in_my_perimeter = book(b, PITIE, OTHER_PATIENT)
    theirs_elsewhere = book(b, LARIBOISIERE)
    assert a.get(f"/appointments/{mine['id']}").status_code == 200
    for other in (theirs_in_my_perimeter, theirs_elsewhere):
        path = f"/appointments/{other['id']}"
        for answer in (
            a.get(path),
            a.post(f"{path}/cancel"),
            a.post(f"{path}/reschedule", {"slot": first_slot(a, PITIE)}),
        ):
            assert (answer.status_code, answer.json()["code"]) == (404, "not_found")
    # An unknown id answers the same: nothing tells that another's exists.
    unknown = a.get("/appointments/doesnotexist0000")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
    # Each lists its own bookings only, with its name on them.
    listed_a = a.get("/operator/appointments").json()
    listed_b = b.get("/operator/appointments").json()
    assert [x["id"] for x in listed_a["items"]] == [mine["id"]]
    assert {x["id"] for x in listed_b["items"]} == {
        theirs_in_my_perimeter["id"],
        theirs_elsewhere["id"],
    }
    assert {x["operator"]["name"] for x in listed_b["items"]} == {"Téléaccueil Beta"}
    assert Appointment.objects.get(public_id=mine["id"]).operator == alpha.contract.operator
    assert (
        Appointment.objects.get(public_id=mine["id"]).api_client == alpha.api.client
    )  # attributed to the API client


def test_a_callers_lookup_opens_another_operators_booking_inside_the_perimeter_only(
    apis, alpha, beta
):
    a, b = apis
    at_pitie = book(b, PITIE)
    at_lariboisiere = book(b, LARIBOISIERE)
    found = a.post("/operator/lookup", {**LOOKUP, "last_name": "MARTIN"})
    assert found.status_code == 200
    # Lariboisière is beyond Alpha's perimeter: the look-up does not show it.
    assert [x["id"] for x in found.json()["items"]] == [at_pitie["id"]]
    assert a.get(f"/appointments/{at_lariboisiere['id']}").status_code == 404
    # The caller asked Alpha: Alpha may now move it, recorded as a change by Alpha to a booking
    # made through Beta's channel.
    moved = a.post(f"/appointments/{at_pitie['id']}/reschedule", {"slot": first_slot(a, PITIE)})
    assert moved.status_code == 200, moved.content
    event = AppointmentEvent.objects.filter(appointment__public_id=at_pitie["id"]).last()
    assert (event.action, event.operator, event.api_client) == (
        "moved",
        alpha.contract.operator,
        alpha.api.client,
    )
    entry = Entry.objects.get(public_id=moved.json()["ledger"]["entry"])
    data = __import__("json").loads(entry.data)
    assert data["operator"] == alpha.contract.operator.public_id
    assert data["booked_via"] == beta.contract.channel.public_id
    for detail in ("Martin", "Camille", "612345678", "1980-05-17", "example.org"):
        assert detail not in entry.data
    # The access log holds who looked and what was found, not who the caller is.
    lookup = CallerLookup.objects.get()
    assert (lookup.operator, lookup.api_client, lookup.found_count) == (
        alpha.contract.operator,
        alpha.api.client,
        1,
    )
    assert "martin" not in lookup.criteria_hash.lower()


def test_a_lookup_with_a_wrong_detail_finds_nothing_and_opens_nothing(apis):
    a, b = apis
    theirs = book(b, PITIE)
    for wrong in (
        {"phone": "06 99 99 99 99"},
        {"birth_date": "1980-05-18"},
        {"last_name": "Dupont"},
    ):
        answer = a.post("/operator/lookup", {**LOOKUP, **wrong})
        assert answer.status_code == 200 and answer.json()["items"] == []
    assert a.get(f"/appointments/{theirs['id']}").status_code == 404
    bad = a.post("/operator/lookup", {**LOOKUP, "phone": "12"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (422, "phone")


def test_a_token_is_bound_to_its_channel_and_its_scopes(client, apis, alpha, beta):
    a, _b = apis
    # Naming another operator's channel with one's own token is refused.
    crossed = a.get("/slots", {"specialty": "neurosurgery", "channel": beta.key})
    assert (crossed.status_code, crossed.json()["code"]) == (403, "token_channel_mismatch")
    # An operator's channel without its token answers nothing.
    bare = client.get("/api/v1/slots", {"specialty": "neurosurgery", "channel": alpha.key})
    assert (bare.status_code, bare.json()["code"]) == (401, "token_required")
    forged = Api(client=client, token="not-a-token")
    assert forged.get("/slots", {"specialty": "neurosurgery"}).status_code == 401
    # A read-only token cannot book.
    reader = api_for(client, alpha.api, scope="slots:read")
    refused = reader.post("/appointments", {"slot": first_slot(reader, PITIE), "patient": PATIENT})
    assert (refused.status_code, refused.json()["code"]) == (403, "insufficient_scope")
    # A scope the contract does not grant is not issued.
    narrow = alpha.contract
    narrow.may_search = False
    narrow.save()
    from tests.operators.conftest import token_request

    assert token_request(client, alpha.api, scope="slots:read").json()["error"] == "invalid_scope"


def test_statistics_are_each_operators_own(client, apis, alpha, beta):
    a, b = apis
    book(a, PITIE)
    book(b, PITIE, OTHER_PATIENT)
    beyond = a.post(
        "/appointments", {"slot": first_slot(b, LARIBOISIERE), "patient": OTHER_PATIENT}
    )
    assert (beyond.status_code, beyond.json()["code"]) == (403, "out_of_perimeter")
    days_a = a.get("/operator/statistics").json()
    days_b = b.get("/operator/statistics").json()
    assert days_a["operator"] == "Centre d'appels Alpha"
    assert days_b["operator"] == "Téléaccueil Beta"
    (day_a,) = days_a["days"]
    (day_b,) = days_b["days"]
    assert (day_a["bookings"], day_b["bookings"]) == (1, 1)
    assert day_a["searches"] >= 1 and day_b["searches"] >= 1
    assert (day_a["refusals"], day_b["refusals"]) == (1, 0)
    csv = a.get("/operator/statistics", {"format": "csv"})
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("operator,day,searches,bookings")
    assert all("Beta" not in line for line in lines)


def test_an_agent_of_a_suspended_contract_is_refused_at_the_next_request(client, alpha):
    assert agent_login(client, alpha.agent).status_code == 302
    assert client.get("/console/").status_code == 200
    contract_status_set(contract=alpha.contract, status="suspended", via="tests")
    refused = client.get("/console/")
    assert refused.status_code == 403
    assert "contract_not_in_force" in refused.content.decode()


def test_a_token_of_one_operator_opens_no_console(client, apis, alpha, beta):
    a, _b = apis
    for path in ("/console/", "/console/appointments/", "/console/statistics/"):
        answer = client.get(path, headers={"Authorization": f"Bearer {a.token}"})
        assert answer.status_code == 302 and answer["Location"].startswith("/console/login/")
    htmx = client.post(
        "/console/lookup/",
        LOOKUP,
        headers={"Authorization": f"Bearer {a.token}", "HX-Request": "true"},
    )
    assert htmx.status_code == 401 and htmx["HX-Redirect"] == "/console/login/"
    # A password without the one-time code, or another company's code, opens nothing either.
    wrong = agent_login(client, alpha.agent, code="000000")
    assert wrong.status_code == 200 and "/console/" not in wrong.get("Location", "")
    assert client.get("/console/").status_code == 302


def test_every_endpoint_keeps_another_operators_objects_out_of_reach(client, apis, alpha, beta):
    """Each endpoint that names an object, tried by Alpha (API and console) on Beta's."""
    a, b = apis
    theirs = book(b, PITIE)  # inside Alpha's perimeter, but not Alpha's
    hold = b.post("/holds", {"slot": first_slot(b, PITIE)})
    assert hold.status_code == 201
    mine = first_slot(a, PITIE)
    path = f"/appointments/{theirs['id']}"
    api_attempts = {
        "GET appointment": a.get(path),
        "POST cancel": a.post(f"{path}/cancel"),
        "POST reschedule": a.post(f"{path}/reschedule", {"slot": mine}),
        "DELETE hold": a.client.delete(f"/api/v1/holds/{hold.json()['id']}", headers=a.headers()),
        "POST book through B's hold": a.post(
            "/appointments", {"hold": hold.json()["id"], "patient": OTHER_PATIENT}
        ),
    }
    assert {name: answer.status_code for name, answer in api_attempts.items()} == {
        name: 404 for name in api_attempts
    }
    listed = a.get("/operator/appointments").json()["items"]
    assert theirs["id"] not in {x["id"] for x in listed}
    visit_type = next(
        v["id"] for v in a.get("/visit-types").json() if v["code"] == "neurosurgery-first"
    )
    assert agent_login(client, alpha.agent).status_code == 302
    hx = {"HX-Request": "true"}
    console_attempts = {
        "GET cancel": client.get(f"/console/appointments/{theirs['id']}/cancel/", headers=hx),
        "POST cancel": client.post(f"/console/appointments/{theirs['id']}/cancel/", headers=hx),
        "POST move": client.post(
            f"/console/appointments/{theirs['id']}/move/", {"slot": mine}, headers=hx
        ),
        "GET slots to move it": client.get(
            "/console/slots/",
            {"visit_type": visit_type, "move": theirs["id"]},
            headers=hx,
        ),
    }
    assert {name: answer.status_code for name, answer in console_attempts.items()} == {
        name: 404 for name in console_attempts
    }
    stored = Appointment.objects.get(public_id=theirs["id"])
    assert (stored.status, stored.slot.public_id != mine) == ("booked", True)
