"""The waiting room (issue 18, point 3): when a crowd arrives, patients are let in in the
order they came, at the rate set, and told their place; their signed ticket brings them in when
their turn comes, and nothing else does. Operators never wait."""

from datetime import date, timedelta

import pytest
from django.test import Client, RequestFactory, override_settings

from creneau.booking import waiting_room
from creneau.channels.queries import channel_scope_for_contract
from tests.fhir.conftest import register

pytestmark = pytest.mark.django_db

CROWD = {"CRENEAU_WAITING_ROOM_RATE": 2, "CRENEAU_WAITING_ROOM_BURST": 3}


@pytest.fixture
def agenda(pitie_neurosurgeon, open_agenda):
    open_agenda(pitie_neurosurgeon)


def search(client: Client, **headers):
    return client.get("/api/v1/slots", {"visit_type": "neurosurgery-first"}, headers=headers)


@override_settings(**CROWD)
def test_a_crowd_is_let_in_in_its_order_of_arrival(clock, agenda):
    patients = [Client() for _ in range(8)]
    answers = [search(patient) for patient in patients]
    # The first four are in at once (a burst of three ahead of now, and now); the others wait,
    # each told a later place and turn.
    assert [answer.status_code for answer in answers] == [200] * 4 + [429] * 4
    waiting = [answer.json() for answer in answers[4:]]
    assert {body["code"] for body in waiting} == {"waiting_room"}
    assert [body["position"] for body in waiting] == [1, 2, 3, 4]
    assert [body["retry_after"] for body in waiting] == [1, 1, 2, 2]
    assert answers[5]["Retry-After"] == "1"
    tickets = [answer["X-Creneau-Ticket"] for answer in answers]
    assert all(tickets) and len(set(tickets)) == 8

    # A second later, the next two are in with their tickets (the cookie, or the header of an
    # API client); the last two still wait, at the same place: asking again keeps it.
    clock.shift(timedelta(seconds=1))
    assert search(patients[4]).status_code == 200
    api_client = Client()
    assert search(api_client, **{"X-Creneau-Ticket": tickets[5]}).status_code == 200
    assert [search(patients[n]).json()["position"] for n in (6, 7)] == [1, 2]
    # Holding and booking wait too.
    slot = search(patients[0]).json()["items"][0]["id"]
    held = patients[7].post("/api/v1/holds", {"slot": slot}, content_type="application/json")
    assert held.status_code == 429 and held.json()["code"] == "waiting_room"
    clock.shift(timedelta(seconds=2))
    assert search(patients[7]).status_code == 200


@override_settings(**CROWD)
def test_a_forged_or_expired_ticket_goes_to_the_end_of_the_queue(clock, agenda):
    for _ in range(4):
        assert search(Client()).status_code == 200
    forged = search(Client(), **{"X-Creneau-Ticket": "eyJhdCI6MH0:forged:signature"})
    assert forged.status_code == 429 and forged.json()["position"] == 1
    # A ticket whose pass has run out takes a new turn.
    late = Client()
    first = search(late)
    clock.shift(timedelta(minutes=16))
    for _ in range(10):
        search(Client())
    again = search(late)
    assert again["X-Creneau-Ticket"] != first["X-Creneau-Ticket"]


@override_settings(**CROWD)
def test_operators_never_wait(clock, agenda, aphp):
    for _ in range(10):
        search(Client())
    platform = register(aphp, "fhir_partner", "Agenda Partenaire")
    scope = channel_scope_for_contract(platform.contract)
    waiting_room.admit(RequestFactory().get("/api/v1/slots"), scope)  # no Waiting raised


@override_settings(**CROWD)
def test_the_search_page_shows_the_place_and_comes_back_by_itself(clock, agenda):
    for _ in range(4):
        search(Client())
    page = Client().get("/search/", {"what": "s:neurosurgery"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "Salle d\u2019attente" in text and 'http-equiv="refresh"' in text
    assert "ticket=" in text
    english = Client().get("/en/search/", {"what": "s:neurosurgery"}).content.decode()
    assert "Waiting room" in english and "ahead of you" in english


@override_settings(**CROWD)
def test_once_nothing_is_left_the_waiting_patients_read_it_at_once(
    clock, agenda, pitie_neurosurgeon, open_agenda
):
    """A search an admitted patient found empty lets the same search through the room at once:
    nobody waits minutes to read that nothing is left. The search is run, not replayed: a
    place opened meanwhile is found, and then the room holds that search again."""
    june = {"visit_type": "neurosurgery-first", "from_date": "2027-06-07"}
    for _ in range(4):  # the burst: these are in
        assert search(Client()).status_code == 200
    in_turn = Client()
    assert search(in_turn).status_code == 429  # the room is full
    # A patient let in searches June: nothing there.
    clock.shift(timedelta(seconds=1))
    empty = in_turn.get("/api/v1/slots", june)
    assert empty.status_code == 200 and empty.json()["items"] == []
    # The crowd behind, asking the same, is told at once, without taking a turn...
    for _ in range(5):
        late = Client().get("/api/v1/slots", june)
        assert late.status_code == 200 and late.json()["items"] == []
        assert "X-Creneau-Ticket" not in late
    # ...and so is the search page's crowd; other searches still wait their turn.
    page = Client().get(
        "/search/", {"what": "s:neurosurgery", "when": "date", "date": "2027-06-07"}
    )
    assert page.status_code == 200 and "Salle d\u2019attente" not in page.content.decode()
    assert search(Client()).status_code == 429

    # June opens: the next patient let through finds it, and the room holds June again.
    open_agenda(pitie_neurosurgeon, starts_on=date(2027, 6, 7), horizon_weeks=13)
    found = Client().get("/api/v1/slots", june)
    assert found.status_code == 200 and found.json()["items"]
    assert Client().get("/api/v1/slots", june).status_code == 429
    # What is known empty is forgotten after a while, unless found empty again.
    clock.shift(timedelta(seconds=waiting_room.EMPTY_SECONDS + 1))
    for _ in range(8):  # a crowd again
        search(Client())
    page = Client().get(
        "/search/", {"what": "s:neurosurgery", "when": "date", "date": "2027-06-07"}
    )
    assert "Salle d\u2019attente" in page.content.decode()


@override_settings(CRENEAU_WAITING_ROOM_RATE=1, CRENEAU_WAITING_ROOM_BURST=0)
def test_a_patient_far_back_comes_back_within_a_minute(clock, agenda):
    """Told their place and turn, but asked to come back sooner: if everything goes meanwhile,
    they read it then, not minutes later at their turn."""
    for _ in range(100):
        search(Client())
    far = search(Client())
    body = far.json()
    assert body["position"] == 100 and body["turn_in_seconds"] == 100
    assert body["retry_after"] == waiting_room.POLL_SECONDS == 60 and far["Retry-After"] == "60"
    page = Client().get("/en/search/", {"what": "s:neurosurgery"}).content.decode()
    assert 'content="60;url=' in page and "in about 101 seconds" in page


QUEUED = {"CRENEAU_WAITING_ROOM_RATE": 1, "CRENEAU_WAITING_ROOM_BURST": 0}


def _crowd(count: int) -> None:
    for n in range(count):
        search(Client(REMOTE_ADDR=f"10.1.{n // 250}.{n % 250 + 1}"))


@override_settings(**QUEUED)
def test_every_door_to_the_slots_is_behind_the_room(clock, agenda, pitie_neurosurgeon):
    """Issue 27, point 3: no page of the patient flow, nor the public FHIR Slot search, skips
    the queue the API keeps."""
    from creneau.agenda.models import Slot

    slot = Slot.objects.filter(practitioner_role=pitie_neurosurgeon, booked=0).first()
    _crowd(40)
    late = Client(REMOTE_ADDR="10.9.9.9")
    assert (
        late.post(
            "/api/v1/holds", {"slot": slot.public_id}, content_type="application/json"
        ).status_code
        == 429
    )
    held = late.post("/hold/", {"slot": slot.public_id})
    assert held.status_code == 429 and "salle d" in held.content.decode().lower()
    week = late.get(f"/practitioners/{pitie_neurosurgeon.practitioner.public_id}/").content
    assert "Salle d\u2019attente" in week.decode() and slot.public_id not in week.decode()
    assert (
        late.get(
            "/fhir/Slot", {"schedule.actor": f"PractitionerRole/{pitie_neurosurgeon.public_id}"}
        ).status_code
        == 429
    )
    assert not slot.holds.exists()


def test_a_ticket_admits_its_holder_only_and_a_bounded_number_of_times(clock, agenda, settings):
    # All through the settings fixture: mixed with override_settings, its restore would bring
    # the waiting room back into the next tests.
    for name, value in {**QUEUED, "CRENEAU_WAITING_ROOM_PASS_REQUESTS": 5}.items():
        setattr(settings, name, value)
    first = Client(REMOTE_ADDR="10.2.0.1")
    answer = search(first)
    assert answer.status_code == 200
    ticket = answer["X-Creneau-Ticket"]
    _crowd(20)
    # Ten other addresses with the same ticket: each takes a turn of its own, behind the crowd.
    borrowed = [
        search(Client(REMOTE_ADDR=f"10.3.0.{n}"), **{"X-Creneau-Ticket": ticket}).status_code
        for n in range(1, 11)
    ]
    assert borrowed == [429] * 10
    # Its holder is in with it five times; the sixth request waits.
    assert [search(first).status_code for _ in range(5)] == [200] * 5
    assert search(first).status_code == 429
