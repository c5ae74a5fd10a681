"""Operators under contract: a call centre's channel serves only what its contract allows, within
its dates and quotas; suspending or ending the contract refuses its next request."""

import json
from datetime import date

import pytest

from creneau.channels.models import Contract
from creneau.channels.services import contract_status_set, operator_register, perimeter_create
from creneau.ledger.models import Entry
from tests.conftest import NOW, PATIENT

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def call_centre(aphp, pitie_neurosurgeon, open_agenda, clock) -> Contract:
    open_agenda(pitie_neurosurgeon)
    perimeter = perimeter_create(
        organisation=aphp,
        name="Accueil téléphonique",
        establishments=[pitie_neurosurgeon.establishment],
    )
    return operator_register(
        organisation=aphp,
        name="Centre d'appels Alpha",
        kind="call_centre",
        perimeter=perimeter,
        starts_on=date(2027, 3, 1),
        ends_on=date(2027, 12, 31),
        actions=("search", "book"),
        bookings_per_day=2,
        requests_per_minute=30,
    )


def slots_for(client, contract: Contract):
    return client.get(
        "/api/v1/slots", {"specialty": "neurosurgery", "channel": contract.channel.key}
    )


def book(client, contract: Contract, slot_id: str):
    return post(
        client,
        f"/api/v1/appointments?channel={contract.channel.key}",
        {"slot": slot_id, "patient": PATIENT},
    )


def test_a_contract_allows_its_actions_only_and_counts_its_bookings(client, call_centre):
    found = slots_for(client, call_centre)
    assert found.status_code == 200
    items = found.json()["items"]
    assert items and all(
        i["establishment"]["finess"]
        == call_centre.channel.perimeter.versions.get().establishments.get().finess
        for i in items
    )
    first = book(client, call_centre, items[0]["id"])
    assert first.status_code == 201
    assert book(client, call_centre, items[1]["id"]).status_code == 201
    # Two bookings a day: the third is refused until tomorrow, with the time to wait.
    third = book(client, call_centre, items[2]["id"])
    assert (third.status_code, third.json()["code"]) == (429, "quota_exceeded")
    assert 0 < int(third["Retry-After"]) <= 86400
    # Moving and cancelling are not in this contract.
    token = {"X-Manage-Token": first.json()["manage_token"]}
    path = f"/api/v1/appointments/{first.json()['id']}"
    cancel = post(client, f"{path}/cancel?channel={call_centre.channel.key}", {}, **token)
    assert (cancel.status_code, cancel.json()["code"]) == (403, "action_not_allowed")


def test_suspending_or_ending_a_contract_refuses_the_next_request(client, call_centre):
    assert slots_for(client, call_centre).status_code == 200
    contract_status_set(contract=call_centre, status="suspended", via="tests")
    refused = slots_for(client, call_centre)
    assert (refused.status_code, refused.json()["code"]) == (403, "channel_disabled")
    contract_status_set(contract=call_centre, status="active", via="tests")
    assert slots_for(client, call_centre).status_code == 200
    contract_status_set(contract=call_centre, status="ended", via="tests")
    assert slots_for(client, call_centre).status_code == 403
    # Each change is in the ledger, as the channel's.
    actions = [
        json.loads(e.data)["action"]
        for e in Entry.objects.filter(kind="channel", channel=call_centre.channel.public_id)
    ]
    assert actions == ["created", "disabled", "enabled", "disabled"]


def test_outside_its_dates_a_contract_serves_nothing(client, call_centre, clock):
    clock.move_to(NOW.replace(year=2028))
    refused = slots_for(client, call_centre)
    assert (refused.status_code, refused.json()["code"]) == (403, "contract_not_in_force")


def test_requests_per_minute_are_capped_with_retry_after(client, call_centre, settings):
    call_centre.requests_per_minute = 3
    call_centre.save()
    answers = [slots_for(client, call_centre) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "quota_exceeded"
    assert 1 <= int(answers[-1]["Retry-After"]) <= 60


def test_the_organisation_registers_and_suspends_an_operator_in_the_admin(
    client, hospital_admin, aphp, public_site, clock
):
    client.force_login(hospital_admin)
    added = client.post(
        "/admin/channels/contract/add/",
        {
            "operator_name": "Plateforme Beta",
            "operator_kind": "partner",
            "organisation": aphp.pk,
            "perimeter": public_site.perimeter.pk,
            "starts_on": "2027-03-01",
            "ends_on": "",
            "may_search": "on",
            "may_book": "on",
            "bookings_per_day": 100,
            "requests_per_minute": 60,
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    contract = Contract.objects.get(operator__name="Plateforme Beta")
    assert contract.channel.kind == "partner" and not contract.may_move
    assert slots_for(client, contract).status_code == 200
    suspended = client.post(
        "/admin/channels/contract/",
        {"action": "suspend", "_selected_action": [contract.pk]},
    )
    assert suspended.status_code == 302
    assert slots_for(client, contract).status_code == 403
    # Dates that end before they begin are refused, and nothing is registered.
    refused = client.post(
        "/admin/channels/contract/add/",
        {
            "operator_name": "Gamma",
            "operator_kind": "call_centre",
            "organisation": aphp.pk,
            "perimeter": public_site.perimeter.pk,
            "starts_on": "2027-03-10",
            "ends_on": "2027-03-01",
            "bookings_per_day": 1,
            "requests_per_minute": 1,
        },
    )
    assert refused.status_code == 200
    assert not Contract.objects.filter(operator__name="Gamma").exists()
