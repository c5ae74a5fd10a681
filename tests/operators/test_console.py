"""The console, as an agent's browser sends it (htmx requests and plain forms)."""

import json
import re

import pytest

from creneau.booking.models import Appointment, AppointmentEvent, CallerLookup
from creneau.ledger.models import Entry
from creneau.notify.models import Message
from tests.conftest import PATIENT
from tests.operators.conftest import PITIE, agent_login, api_for

pytestmark = pytest.mark.django_db
HX = {"HX-Request": "true"}


def slot_links(html: str) -> list[str]:
    return re.findall(r'hx-get="/console/details/\?slot=([^"]+)"', html)


def visit_type_id(html: str) -> str:
    return re.search(r'<option value="([^"]+)"[^>]*>Première consultation — Neurochirurgie', html)[
        1
    ]


@pytest.fixture
def agent_client(client, alpha):
    assert agent_login(client, alpha.agent).status_code == 302
    return client


def test_an_agent_books_for_a_caller_and_the_caller_is_told(agent_client, alpha):
    page = agent_client.get("/console/").content.decode()
    visit = visit_type_id(page)
    slots = agent_client.get("/console/slots/", {"visit_type": visit}, headers=HX)
    assert slots.status_code == 200
    html = slots.content.decode()
    assert "<html" not in html  # the panel alone
    assert "Lariboisière" not in html and PITIE in html  # its perimeter only
    chosen = slot_links(html)[0]
    details = agent_client.get("/console/details/", {"slot": chosen}, headers=HX).content.decode()
    assert 'name="last_name"' in details and "autofocus" in details
    # A mistake comes back on the same panel with every field named.
    wrong = agent_client.post(
        "/console/book/", {**PATIENT, "phone": "12", "slot": chosen}, headers=HX
    )
    assert wrong.status_code == 422 and "phone" in wrong.content.decode()
    booked = agent_client.post("/console/book/", {**PATIENT, "slot": chosen}, headers=HX)
    assert booked.status_code == 201, booked.content.decode()[:500]
    appointment = Appointment.objects.get()
    assert appointment.public_id in booked.content.decode()
    assert (appointment.operator, appointment.agent, appointment.api_client) == (
        alpha.contract.operator,
        alpha.agent.agent.user,
        None,
    )
    assert set(
        Message.objects.filter(appointment=appointment).values_list("medium", flat=True)
    ) == {
        "sms",
        "email",
    }
    # Without scripts the same search is a whole page.
    whole = agent_client.get("/console/slots/", {"visit_type": visit}).content.decode()
    assert "<html" in whole and slot_links(whole)


def test_an_agent_books_a_caller_with_a_british_mobile_and_one_without_a_phone(agent_client, alpha):
    """Issue 28, point 1: the console takes the number the caller gives (a UK mobile, no
    e-mail), or none with a reason; nothing is texted to either, and the panel tells the agent
    so, with the number in its country's format."""
    page = agent_client.get("/console/").content.decode()
    links = slot_links(
        agent_client.get(
            "/console/slots/", {"visit_type": visit_type_id(page)}, headers=HX
        ).content.decode()
    )
    caller = {**PATIENT, "phone": "+44 7911 123456", "email": ""}
    booked = agent_client.post("/console/book/", {**caller, "slot": links[0]}, headers=HX)
    assert booked.status_code == 201, booked.content.decode()[:500]
    appointment = Appointment.objects.get()
    assert appointment.patient_phone == "+447911123456"
    assert not Message.objects.filter(appointment=appointment, medium__in=["sms", "email"])
    assert "Pas de SMS\u00a0: le +44 7911 123456 n\u2019est pas un mobile en France." in (
        booked.content.decode()
    )
    nobody = {**caller, "phone": "", "slot": links[1]}
    refused = agent_client.post("/console/book/", nobody, headers=HX)
    assert refused.status_code == 422 and "dites pourquoi" in refused.content.decode()
    booked = agent_client.post(
        "/console/book/", {**nobody, "no_phone_reason": "Sans téléphone"}, headers=HX
    )
    assert booked.status_code == 201
    assert Appointment.objects.filter(patient_phone="", patient_no_phone_reason="Sans téléphone")


def test_an_agent_finds_a_caller_and_moves_then_cancels(agent_client, client, alpha, beta):
    # The caller booked through Beta; they now call Alpha.
    b = api_for(client, beta.api)
    items = b.get("/slots", {"specialty": "neurosurgery", "limit": 100}).json()["items"]
    slot = next(s["id"] for s in items if s["establishment"]["name"] == PITIE)
    theirs = b.post("/appointments", {"slot": slot, "patient": PATIENT}).json()
    # By id alone, Alpha's agent reaches nothing.
    for method in (agent_client.get, agent_client.post):
        guessed = method(f"/console/appointments/{theirs['id']}/cancel/", headers=HX)
        assert guessed.status_code == 404
    found = agent_client.post(
        "/console/lookup/",
        {
            "caller-last_name": "martin",
            "caller-birth_date": PATIENT["birth_date"],
            "caller-phone": "+33612345678",
        },
        headers=HX,
    )
    assert found.status_code == 200 and theirs["id"] in found.content.decode()
    assert "Téléaccueil Beta" in found.content.decode()
    lookup = CallerLookup.objects.get()
    assert lookup.agent == alpha.agent.agent.user and lookup.found_count == 1
    move_link = re.search(r'hx-get="(/console/slots/\?[^"]*move=[^"]+)"', found.content.decode())[1]
    choices = agent_client.get(move_link.replace("&amp;", "&"), headers=HX).content.decode()
    new_slot = re.findall(r'name="slot" value="([^"]+)"', choices)[1]
    moved = agent_client.post(
        f"/console/appointments/{theirs['id']}/move/", {"slot": new_slot}, headers=HX
    )
    assert moved.status_code == 200, moved.content.decode()[:400]
    asked = agent_client.get(f"/console/appointments/{theirs['id']}/cancel/", headers=HX)
    assert asked.status_code == 200 and 'name="reason"' in asked.content.decode()
    assert Appointment.objects.get(public_id=theirs["id"]).status == "booked"  # not yet
    cancelled = agent_client.post(
        f"/console/appointments/{theirs['id']}/cancel/",
        {"reason": "rendez-vous pris ailleurs"},
        headers=HX,
    )
    assert cancelled.status_code == 200
    appointment = Appointment.objects.get(public_id=theirs["id"])
    assert appointment.status == "cancelled_operator"
    assert appointment.cancel_reason == "rendez-vous pris ailleurs"
    # The patient is told who cancelled, and why.
    from creneau.notify.texts import render

    told = render(appointment.messages.get(kind="cancelled", medium="email"))
    assert "Centre d'appels Alpha" in told.body and "rendez-vous pris ailleurs" in told.body
    assert (
        "Centre d'appels Alpha"
        in render(appointment.messages.get(kind="cancelled", medium="sms")).sms
    )
    assert appointment.operator == beta.contract.operator  # still Beta's booking
    actions = list(
        AppointmentEvent.objects.filter(appointment=appointment).values_list(
            "action", "operator__name"
        )
    )
    assert actions == [
        ("booked", "Téléaccueil Beta"),
        ("moved", "Centre d'appels Alpha"),
        ("cancelled", "Centre d'appels Alpha"),
    ]


def test_the_console_counts_against_the_contracts_quotas(agent_client, alpha):
    alpha.contract.requests_per_minute = 2
    alpha.contract.save()
    assert agent_client.get("/console/").status_code == 200
    assert agent_client.get("/console/").status_code == 200
    refused = agent_client.get("/console/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) <= 60


def test_an_agent_sees_only_its_companys_bookings_and_statistics(agent_client, client, beta):
    b = api_for(client, beta.api)
    slot = b.get("/slots", {"specialty": "neurosurgery"}).json()["items"][0]["id"]
    theirs = b.post("/appointments", {"slot": slot, "patient": PATIENT}).json()
    ours = agent_client.get("/console/appointments/").content.decode()
    assert theirs["id"] not in ours
    stats = agent_client.get("/console/statistics/").content.decode()
    assert "Centre d&#x27;appels Alpha" in stats and "Beta" not in stats
    csv = agent_client.get("/console/statistics/", {"format": "csv"}).content.decode()
    assert "Beta" not in csv and csv.startswith("operator,day")


def test_a_slot_beyond_the_perimeter_is_refused_and_recorded(agent_client, client, alpha, beta):
    b = api_for(client, beta.api)
    items = b.get("/slots", {"specialty": "neurosurgery", "limit": 100}).json()["items"]
    beyond = next(s["id"] for s in items if s["establishment"]["name"] != PITIE)
    assert agent_client.get("/console/details/", {"slot": beyond}, headers=HX).status_code == 404
    refused = agent_client.post("/console/book/", {**PATIENT, "slot": beyond}, headers=HX)
    assert refused.status_code == 403 and "out_of_perimeter" in refused.content.decode()
    assert not Appointment.objects.exists()
    refusal = Entry.objects.filter(kind="refusal").latest("pk")
    data = json.loads(refusal.data)
    assert (data["channel"], data["operator"]) == (
        alpha.contract.channel.public_id,
        alpha.contract.operator.public_id,
    )


def test_the_console_speaks_english_under_en(client, alpha):
    assert "Agent sign-in" in client.get("/en/console/login/").content.decode()
    agent_login(client, alpha.agent)
    page = client.get("/en/console/").content.decode()
    assert "1. Find a slot" in page and "Find a caller's appointments" in page
    assert "Trouver un créneau" in client.get("/console/").content.decode()
