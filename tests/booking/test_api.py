"""The booking API over HTTP, through the whole middleware stack, as a patient's client uses it."""

import json
from datetime import timedelta

import pytest

from creneau.agenda.models import Slot
from creneau.booking.idempotency import idempotency_claim, request_fingerprint
from creneau.booking.models import Appointment
from tests.conftest import NOW, PATIENT

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    return client.post(path, json.dumps(body), content_type="application/json", headers=headers)


@pytest.fixture
def neurosurgery(pitie_neurosurgeon, private_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon, codes=("neurosurgery-first", "neurosurgery-spine"))
    open_agenda(private_neurosurgeon)
    return pitie_neurosurgeon


def test_find_hold_book_move_and_cancel_the_earliest_public_neurosurgery_slot(
    client, neurosurgery, private_neurosurgeon
):
    found = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 50}).json()
    assert found["channel"]["kind"] == "public_site"
    items = found["items"]
    assert items and all(
        i["establishment"]["finess"] != private_neurosurgeon.establishment.finess for i in items
    )
    starts = [i["starts_at"] for i in items]
    assert starts == sorted(starts)
    assert items[0]["local_starts_at"].endswith("+01:00")
    earliest = items[0]

    hold = post(client, "/api/v1/holds", {"slot": earliest["id"]})
    assert hold.status_code == 201, hold.content
    assert hold.json()["expires_in_seconds"] == 600
    taken = post(client, "/api/v1/holds", {"slot": earliest["id"]})
    assert (taken.status_code, taken.json()["code"]) == (409, "slot_taken")

    booking = {"hold": hold.json()["id"], "patient": PATIENT, "reason": "Hernie discale"}
    booked = post(client, "/api/v1/appointments", booking, **{"Idempotency-Key": "k-1"})
    assert booked.status_code == 201, booked.content
    appointment = booked.json()
    token = appointment["manage_token"]
    assert appointment["status"] == "booked" and appointment["starts_at"] == earliest["starts_at"]

    seen = client.get(
        f"/api/v1/appointments/{appointment['id']}", headers={"X-Manage-Token": token}
    )
    assert seen.status_code == 200 and seen.json()["manage_token"] is None
    for wrong in ({"X-Manage-Token": token[:-1] + "x"}, {}):
        refused = client.get(f"/api/v1/appointments/{appointment['id']}", headers=wrong)
        assert (refused.status_code, refused.json()["code"]) == (404, "not_found")

    later = next(i for i in items[1:] if i["visit_type"]["id"] == earliest["visit_type"]["id"])
    moved = post(
        client,
        f"/api/v1/appointments/{appointment['id']}/reschedule",
        {"slot": later["id"]},
        **{"X-Manage-Token": token},
    )
    assert moved.status_code == 200, moved.content
    assert moved.json()["starts_at"] == later["starts_at"]
    again = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 50}).json()
    ids = [i["id"] for i in again["items"]]
    assert earliest["id"] in ids and later["id"] not in ids

    cancelled = post(
        client,
        f"/api/v1/appointments/{appointment['id']}/cancel",
        {"reason": "Plus besoin"},
        **{"X-Manage-Token": token},
    )
    assert cancelled.json()["status"] == "cancelled_patient"
    final = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 50}).json()
    assert later["id"] in [i["id"] for i in final["items"]]


def test_idempotency_key_replays_refuses_another_body_and_a_concurrent_twin(
    client, neurosurgery, public_site
):
    slot = Slot.objects.filter(practitioner_role=neurosurgery, bookable_until__gt=NOW).first()
    body = {"slot": slot.public_id, "patient": PATIENT}
    first = post(client, "/api/v1/appointments", body, **{"Idempotency-Key": "retry-me"})
    replay = post(client, "/api/v1/appointments", body, **{"Idempotency-Key": "retry-me"})
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert Appointment.objects.filter(slot=slot).count() == 1

    other = {**body, "reason": "autre chose"}
    refused = post(client, "/api/v1/appointments", other, **{"Idempotency-Key": "retry-me"})
    assert (refused.status_code, refused.json()["code"]) == (422, "idempotency_key_reused")

    # A first request still running holds its key: its twin is told to wait.
    running = {"slot": slot.public_id, "patient": {**PATIENT, "first_name": "Zoé"}}
    from creneau.booking.throttling import _keyed

    idempotency_claim(
        channel=public_site,
        client=f"addr:{_keyed('127.0.0.1')}",
        key="in-flight",
        fingerprint=request_fingerprint(
            "POST", "/api/v1/appointments", json.dumps(running).encode()
        ),
    )
    busy = post(client, "/api/v1/appointments", running, **{"Idempotency-Key": "in-flight"})
    assert (busy.status_code, busy.json()["code"]) == (409, "idempotency_in_progress")

    # A refusal is an answer too: the same retry gets the same 409, not a new attempt.
    taken_body = {"slot": slot.public_id, "patient": PATIENT}
    taken = post(client, "/api/v1/appointments", taken_body, **{"Idempotency-Key": "late"})
    retried = post(client, "/api/v1/appointments", taken_body, **{"Idempotency-Key": "late"})
    assert taken.status_code == retried.status_code == 409
    assert taken.json()["code"] == retried.json()["code"] == "slot_taken"


def test_an_idempotency_key_belongs_to_its_client_alone(client, neurosurgery):
    """Another client sending the same key and body gets its own answer, never the first
    client's (and its manage token); a key someone else used first does not stop a booking."""
    slots = Slot.objects.filter(
        practitioner_role=neurosurgery,
        bookable_until__gt=NOW,
        visit_type__code="neurosurgery-first",
    ).order_by("starts_at")[:2]
    body = {"slot": slots[0].public_id, "patient": PATIENT}
    first = post(client, "/api/v1/appointments", body, **{"Idempotency-Key": "shared-key"})
    assert first.status_code == 201
    other_browser = client.post(
        "/api/v1/appointments",
        json.dumps(body),
        content_type="application/json",
        headers={"Idempotency-Key": "shared-key"},
        REMOTE_ADDR="192.0.2.44",
    )
    assert (other_browser.status_code, other_browser.json()["code"]) == (409, "slot_taken")
    assert "manage_token" not in other_browser.json()
    assert "Idempotent-Replayed" not in other_browser.headers

    # Someone claims a key first, with another body: the patient's own booking still works.
    squatted = {"slot": slots[1].public_id, "patient": {**PATIENT, "first_name": "Zoé"}}
    squatter = client.post(
        "/api/v1/appointments",
        json.dumps({**squatted, "slot": "0000000000000000"}),
        content_type="application/json",
        headers={"Idempotency-Key": "patients-key"},
        REMOTE_ADDR="192.0.2.45",
    )
    assert squatter.status_code == 404
    mine = post(client, "/api/v1/appointments", squatted, **{"Idempotency-Key": "patients-key"})
    assert mine.status_code == 201


def test_errors_are_json_with_a_code(client, neurosurgery, private_neurosurgeon, clock):
    private_slot = Slot.objects.filter(practitioner_role=private_neurosurgeon).first()
    refused = post(client, "/api/v1/holds", {"slot": private_slot.public_id})
    assert (refused.status_code, refused.json()["code"]) == (403, "out_of_perimeter")

    slot = Slot.objects.filter(practitioner_role=neurosurgery, bookable_until__gt=NOW).first()
    hold = post(client, "/api/v1/holds", {"slot": slot.public_id}).json()
    clock.shift(timedelta(minutes=11))
    expired = post(client, "/api/v1/appointments", {"hold": hold["id"], "patient": PATIENT})
    assert (expired.status_code, expired.json()["code"]) == (410, "hold_expired")

    bad_phone = post(
        client,
        "/api/v1/appointments",
        {"slot": slot.public_id, "patient": {**PATIENT, "phone": "12", "first_name": "R2D2"}},
    )
    assert (bad_phone.status_code, bad_phone.json()["code"]) == (422, "invalid_patient")
    # Every field in error is named at once, not one per attempt.
    assert [e["field"] for e in bad_phone.json()["errors"]] == [
        "patient.first_name",
        "patient.phone",
    ]
    missing = post(client, "/api/v1/appointments", {"slot": slot.public_id})
    assert (missing.status_code, missing.json()["code"]) == (422, "invalid_request")
    both = post(
        client,
        "/api/v1/appointments",
        {"slot": slot.public_id, "hold": hold["id"], "patient": PATIENT},
    )
    assert both.json()["code"] == "slot_or_hold_required"
    assert client.get("/api/v1/slots").json()["code"] == "visit_type_or_specialty_required"
    assert (
        client.get("/api/v1/slots", {"specialty": "neurosurgery", "cursor": "zz"}).status_code
        == 422
    )
    assert not Appointment.objects.exists()


def test_pages_follow_each_other_by_cursor_without_gaps_or_repeats(
    client, neurosurgery, django_assert_max_num_queries
):
    whole = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 30}).json()["items"]
    seen, cursor = [], None
    with django_assert_max_num_queries(12):
        page = client.get("/api/v1/slots", {"specialty": "neurosurgery", "limit": 10}).json()
    while len(seen) < 30:
        params = {"specialty": "neurosurgery", "limit": 10} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/slots", params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [i["id"] for i in whole]


def test_filters_by_time_of_day_date_and_distance(client, neurosurgery):
    mornings = client.get(
        "/api/v1/slots",
        {"visit_type": "neurosurgery-first", "from_time": "10:30", "to_time": "11:30"},
    ).json()["items"]
    assert mornings and {i["local_starts_at"][11:16] for i in mornings} <= {"10:30", "11:00"}
    dated = client.get(
        "/api/v1/slots", {"visit_type": "neurosurgery-first", "from_date": "2027-03-30", "limit": 3}
    ).json()["items"]
    assert dated[0]["local_starts_at"].startswith("2027-03-30T09:00:00+02:00")
    # The Pitié is about 1 km from the Gare d'Austerlitz, Bicêtre about 5 km.
    near = client.get(
        "/api/v1/slots",
        {"specialty": "neurosurgery", "near": "48.8422,2.3655", "within_km": 3},
    ).json()["items"]
    assert near and all(i["distance_km"] < 3 for i in near)
    far = client.get(
        "/api/v1/slots", {"specialty": "neurosurgery", "near": "43.2965,5.3698", "within_km": 20}
    ).json()
    assert far["items"] == []


def test_a_practitioners_week_for_the_slot_picker(client, neurosurgery):
    rpps = neurosurgery.practitioner.rpps
    week = client.get(f"/api/v1/practitioners/{rpps}/availability", {"week": "2027-03-24"}).json()
    assert week["week_start"] == "2027-03-22"
    days = {d["date"]: len(d["slots"]) for d in week["days"]}
    assert len(days) == 7
    # Two visit types over 09:00-12:00: six first consultations and six spine consultations.
    assert days["2027-03-22"] == 12 and days["2027-03-27"] == 0
    assert week["next_available"]["local_starts_at"].startswith("2027-03-30T09:00")
    unknown = client.get("/api/v1/practitioners/00000000000/availability")
    assert unknown.status_code == 404


def test_waiting_list_through_the_api(client, neurosurgery, clock):
    joined = post(
        client,
        "/api/v1/waiting-list",
        {"visit_type": "neurosurgery-first", "before": "2027-03-20", "patient": PATIENT},
    )
    assert joined.status_code == 201, joined.content
    entry = joined.json()
    token = entry["manage_token"]
    slot = Slot.objects.filter(
        practitioner_role=neurosurgery,
        visit_type__code="neurosurgery-first",
        bookable_until__gt=NOW,
    ).first()
    booked = post(
        client, "/api/v1/appointments", {"slot": slot.public_id, "patient": PATIENT}
    ).json()
    post(
        client,
        f"/api/v1/appointments/{booked['id']}/cancel",
        {},
        **{"X-Manage-Token": booked["manage_token"]},
    )
    seen = client.get(f"/api/v1/waiting-list/{entry['id']}", headers={"X-Manage-Token": token})
    assert seen.json()["status"] == "offered"
    assert seen.json()["offer"]["slot"]["id"] == slot.public_id
    accepted = post(
        client, f"/api/v1/waiting-list/{entry['id']}/accept", {}, **{"X-Manage-Token": token}
    )
    assert accepted.status_code == 201 and accepted.json()["manage_token"]
    assert client.get(f"/api/v1/waiting-list/{entry['id']}").status_code == 404


def test_one_connection_cannot_hold_every_slot(client, neurosurgery, settings):
    """Holds, bookings and waiting-list requests are limited per client address, with a 429
    that says when to come back; another address is not affected."""
    settings.CRENEAU_RATE_LIMITS = {**settings.CRENEAU_RATE_LIMITS, "hold": (3, 600)}
    # One visit type: slots that do not overlap, so that no hold keeps another's time.
    slots = Slot.objects.filter(
        practitioner_role=neurosurgery,
        bookable_until__gt=NOW,
        visit_type__code="neurosurgery-first",
    )
    ids = [s.public_id for s in slots.order_by("starts_at")[:5]]
    answers = [post(client, "/api/v1/holds", {"slot": slot}) for slot in ids[:4]]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    refused = answers[-1]
    assert refused.json()["code"] == "too_many_requests"
    assert 0 < int(refused.headers["Retry-After"]) <= 600
    other = client.post(
        "/api/v1/holds",
        json.dumps({"slot": ids[4]}),
        content_type="application/json",
        REMOTE_ADDR="192.0.2.7",
    )
    assert other.status_code == 201
    assert Slot.objects.get(public_id=ids[3]).held == 0


def test_x_forwarded_for_is_believed_only_from_the_proxies_named(rf, settings):
    """By default nobody's X-Forwarded-For counts; from a trusted proxy, the last address no
    trusted proxy added (what the client wrote to the left is theirs to invent)."""
    import ipaddress

    from creneau.booking.throttling import client_address

    forged = "203.0.113.9, 198.51.100.4"
    settings.CRENEAU_TRUSTED_PROXIES = ()
    direct = rf.get("/", HTTP_X_FORWARDED_FOR=forged, REMOTE_ADDR="192.0.2.50")
    assert client_address(direct) == "192.0.2.50"
    settings.CRENEAU_TRUSTED_PROXIES = (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("127.0.0.1"),
    )
    assert client_address(direct) == "192.0.2.50"  # not from a trusted proxy: ignored
    through_proxy = rf.get("/", HTTP_X_FORWARDED_FOR=forged, REMOTE_ADDR="127.0.0.1")
    assert client_address(through_proxy) == "198.51.100.4"
    two_proxies = rf.get("/", HTTP_X_FORWARDED_FOR=forged + ", 10.1.2.3", REMOTE_ADDR="127.0.0.1")
    assert client_address(two_proxies) == "198.51.100.4"
