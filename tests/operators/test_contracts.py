"""Operators under contract: a call centre's channel serves only what its contract allows, within
its dates and quotas; suspending or ending the contract refuses its next request."""

import json
from datetime import date

import pytest

from creneau.agenda.models import Slot
from creneau.booking.services import appointment_book, hold_create, hold_release
from creneau.channels.models import Contract
from creneau.channels.queries import QuotaExceeded, channel_scope_for_key
from creneau.channels.services import api_client_create, contract_status_set
from creneau.ledger.models import Entry
from tests.conftest import NOW, PATIENT
from tests.operators.conftest import Api, Operator, api_for, token_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def call_centre(register_operator) -> Operator:
    return register_operator(
        "Centre d'appels Alpha",
        actions=("search", "book"),
        bookings_per_day=2,
        requests_per_minute=30,
    )


@pytest.fixture
def api(client, call_centre) -> Api:
    return api_for(client, call_centre.api)


def slots_for(api: Api):
    return api.get("/slots", {"specialty": "neurosurgery"})


def book(api: Api, slot_id: str):
    return api.post("/appointments", {"slot": slot_id, "patient": PATIENT})


def test_a_contract_allows_its_actions_only_and_counts_its_bookings(api, call_centre):
    found = slots_for(api)
    assert found.status_code == 200
    items = found.json()["items"]
    assert items and all(
        i["establishment"]["finess"]
        == call_centre.contract.channel.perimeter.versions.get().establishments.get().finess
        for i in items
    )
    first = book(api, items[0]["id"])
    assert first.status_code == 201
    assert first.json()["operator"]["name"] == "Centre d'appels Alpha"
    assert book(api, items[1]["id"]).status_code == 201
    # Two bookings a day: the third is refused until tomorrow, with the time to wait.
    third = book(api, items[2]["id"])
    assert (third.status_code, third.json()["code"]) == (429, "quota_exceeded")
    assert 0 < int(third["Retry-After"]) <= 86400
    # Moving and cancelling are not in this contract.
    cancel = api.post(f"/appointments/{first.json()['id']}/cancel")
    assert (cancel.status_code, cancel.json()["code"]) == (403, "action_not_allowed")


def test_suspending_or_ending_a_contract_refuses_the_next_request(client, api, call_centre):
    contract = call_centre.contract
    assert slots_for(api).status_code == 200
    contract_status_set(contract=contract, status="suspended", via="tests")
    # The token already issued is refused at its next request, and no new one is issued.
    refused = slots_for(api)
    assert (refused.status_code, refused.json()["code"]) == (403, "channel_disabled")
    assert token_request(client, call_centre.api).json()["error"] == "invalid_client"
    contract_status_set(contract=contract, status="active", via="tests")
    assert slots_for(api).status_code == 200
    contract_status_set(contract=contract, status="ended", via="tests")
    assert slots_for(api).status_code == 403
    # Each change is in the ledger, as the channel's.
    actions = [
        json.loads(e.data)["action"]
        for e in Entry.objects.filter(kind="channel", channel=contract.channel.public_id).order_by(
            "pk"
        )
    ]
    assert actions == ["created", "disabled", "enabled", "disabled"]


def test_outside_its_dates_a_contract_serves_nothing(client, api, call_centre, clock):
    call_centre.contract.ends_on = date(2027, 3, 14)  # yesterday
    call_centre.contract.save()
    refused = slots_for(api)
    assert (refused.status_code, refused.json()["code"]) == (403, "contract_not_in_force")
    assert token_request(client, call_centre.api).json()["error"] == "invalid_client"
    clock.move_to(NOW.replace(year=2028))
    expired = slots_for(api)  # an hour's token, a year later
    assert (expired.status_code, expired.json()["code"]) == (401, "invalid_token")
    assert expired["WWW-Authenticate"].startswith("Bearer")


def test_requests_per_minute_are_capped_with_retry_after(api, call_centre):
    call_centre.contract.requests_per_minute = 3
    call_centre.contract.save()
    answers = [slots_for(api) for _ in range(4)]
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
            "holds_at_once": 5,
            "requests_per_minute": 60,
        },
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    contract = Contract.objects.get(operator__name="Plateforme Beta")
    assert contract.channel.kind == "partner" and not contract.may_move
    assert contract.holds_at_once == 5
    api = api_for(client, api_client_create(contract=contract, name="servers"))
    assert slots_for(api).status_code == 200
    suspended = client.post(
        "/admin/channels/contract/",
        {"action": "suspend", "_selected_action": [contract.pk]},
    )
    assert suspended.status_code == 302
    assert slots_for(api).status_code == 403
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
            "holds_at_once": 1,
            "requests_per_minute": 1,
        },
    )
    assert refused.status_code == 200
    assert not Contract.objects.filter(operator__name="Gamma").exists()


def bookable_slots(scope, count: int) -> list:
    return list(
        Slot.objects.filter(
            practitioner_role_id__in=scope.practitioner_roles().values("pk"),
            bookable_from__lte=NOW,
            bookable_until__gt=NOW,
        ).order_by("starts_at")[:count]
    )


def test_an_operators_holds_are_capped_by_its_contract(register_operator, client, patient, clock):
    platform = register_operator(
        "Plateforme Partenaire", kind="partner", actions=("search", "book"), holds_at_once=3
    )
    scope = channel_scope_for_key(platform.key)
    slots = bookable_slots(scope, 6)
    holds = [hold_create(scope=scope, slot=slot) for slot in slots[:3]]
    with pytest.raises(QuotaExceeded) as capped:
        hold_create(scope=scope, slot=slots[3])
    assert (capped.value.code, capped.value.status) == ("holds_limit_reached", 429)
    assert 0 < capped.value.retry_after <= 600
    hold_release(hold=holds[0])
    hold_create(scope=scope, slot=slots[3])

    # Through its API: the same refusal, with the time to wait.
    api = api_for(client, platform.api)
    answer = api.post("/holds", {"slot": slots[4].public_id})
    assert (answer.status_code, answer.json()["code"]) == (429, "holds_limit_reached")
    assert int(answer["Retry-After"]) > 0
    # Booked, a hold stops counting: the platform can hold again.
    appointment_book(scope=scope, hold=holds[1], patient=patient)
    assert api.post("/holds", {"slot": slots[4].public_id}).status_code == 201


def test_an_operators_holds_count_against_its_daily_quota(register_operator, clock):
    platform = register_operator(
        "Plateforme Partenaire", kind="partner", bookings_per_day=2, holds_at_once=0
    )
    scope = channel_scope_for_key(platform.key)
    slots = bookable_slots(scope, 5)
    for slot in slots[:4]:
        hold_release(hold=hold_create(scope=scope, slot=slot))
    with pytest.raises(QuotaExceeded) as quota:
        hold_create(scope=scope, slot=slots[4])
    assert quota.value.code == "holds_quota_exceeded"
