"""What the booking services write to the ledger, in their own transactions: a booking, a move,
a cancellation, and a refusal when a channel asks for a slot outside its perimeter. Entries hold
public identifiers only, never patient data; the booking's answer carries its receipt."""

import json

import pytest

from creneau.agenda.models import Slot
from creneau.ledger.models import Entry
from tests.conftest import NOW, PATIENT

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def neurosurgery(pitie_neurosurgeon, private_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    return pitie_neurosurgeon


def entries(kind: str) -> list[dict]:
    return [json.loads(e.data) for e in Entry.objects.filter(kind=kind).order_by("id")]


def test_book_move_and_cancel_are_recorded_with_public_identifiers_only(
    client, neurosurgery, public_site, clock
):
    slots = list(
        Slot.objects.filter(practitioner_role=neurosurgery, bookable_until__gt=NOW).order_by(
            "starts_at"
        )
    )
    answer = post(client, "/api/v1/appointments", {"slot": slots[0].public_id, "patient": PATIENT})
    assert answer.status_code == 201
    booked = answer.json()
    [entry] = entries("booking")
    assert entry["appointment"] == booked["id"] and entry["slot"] == slots[0].public_id
    assert entry["channel"] == public_site.public_id
    assert entry["finess"] == neurosurgery.establishment.finess
    assert entry["rpps"] == neurosurgery.practitioner.rpps
    # The receipt: the entry's id and its index in the log, sequenced once the booking
    # committed.
    assert booked["ledger"]["index"] is not None
    assert booked["ledger"]["index"] == Entry.objects.get(kind="booking").leaf_index

    token = {"X-Manage-Token": booked["manage_token"]}
    path = f"/api/v1/appointments/{booked['id']}"
    moved = post(client, path + "/reschedule", {"slot": slots[1].public_id}, **token)
    assert moved.status_code == 200
    assert moved.json()["ledger"]["index"] == Entry.objects.get(kind="move").leaf_index
    assert post(client, path + "/cancel", {"reason": "unavailable"}, **token).status_code == 200
    [move] = entries("move")
    assert (move["from_slot"], move["slot"]) == (slots[0].public_id, slots[1].public_id)
    [cancel] = entries("cancel")
    assert (cancel["appointment"], cancel["by"]) == (booked["id"], "patient")

    everything = " ".join(e.data for e in Entry.objects.all())
    for secret in (PATIENT["last_name"], PATIENT["first_name"], "612345678", "1980", "@"):
        assert secret not in everything
    assert booked["manage_token"] not in everything


def test_an_out_of_perimeter_attempt_is_refused_and_recorded(
    client, neurosurgery, private_neurosurgeon, public_site, clock
):
    private = Slot.objects.filter(practitioner_role=private_neurosurgeon).first()
    answer = post(client, "/api/v1/holds", {"slot": private.public_id})
    assert answer.status_code == 403
    # The refused hold was rolled back; its refusal stays on the record.
    [refusal] = entries("refusal")
    assert refusal["code"] == "out_of_perimeter"
    assert refusal["slot"] == private.public_id
    assert refusal["finess"] == private_neurosurgeon.establishment.finess
    assert refusal["channel"] == public_site.public_id
    # The same through the patient pages.
    client.post("/hold/", {"slot": private.public_id})
    assert len(entries("refusal")) == 2
