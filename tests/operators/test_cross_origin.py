"""No site can make its visitors' browsers hold or book through the API; JSON bodies only; CORS
for a widget's allowed origins only; operators' software with its bearer token is unaffected
(issue 14, point 4)."""

import json

import pytest

from creneau.agenda.models import Slot
from creneau.booking.models import Hold
from tests.conftest import NOW
from tests.operators.conftest import api_for

pytestmark = pytest.mark.django_db

EVIL = "http://evil.example"
HOSPITAL = "https://www.example-hospital.fr"  # the widget fixture's allowed origin


@pytest.fixture
def slots(pitie_neurosurgeon, agendas):
    found = Slot.objects.filter(
        practitioner_role=pitie_neurosurgeon, bookable_from__lte=NOW, bookable_until__gt=NOW
    ).order_by("starts_at")
    return [slot.public_id for slot in found[:6]]


def hold(client, slot: str, content_type="application/json", body=None, **headers):
    data = json.dumps({"slot": slot}) if body is None else body
    return client.post("/api/v1/holds", data, content_type=content_type, headers=headers)


def test_another_sites_page_cannot_make_a_browser_hold_or_book(client, slots, clock):
    attacks = [
        # The issue's: a "simple" request, no preflight, from a browser on another site.
        {"content_type": "text/plain", "Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another site's page too
        {"Origin": EVIL},  # an older browser without Fetch Metadata
    ]
    for number, headers in enumerate(attacks):
        answer = hold(client, slots[number], **headers)
        assert (answer.status_code, answer.json()["code"]) == (403, "cross_site_request"), headers
    booked = client.post(
        "/api/v1/appointments",
        json.dumps({"slot": slots[0], "patient": {"last_name": "X"}}),
        content_type="application/json",
        headers={"Origin": EVIL, "Sec-Fetch-Site": "cross-site"},
    )
    assert booked.status_code == 403
    assert not Hold.objects.exists()

    # The hub's own pages, and clients that are not browsers, still hold.
    assert hold(client, slots[4], **{"Sec-Fetch-Site": "same-origin"}).status_code == 201
    assert hold(client, slots[5], Origin="http://testserver").status_code == 201


def test_only_json_bodies_are_read(client, slots, clock):
    form = client.post("/api/v1/holds", {"slot": slots[0]})  # multipart
    assert (form.status_code, form.json()["code"]) == (415, "unsupported_media_type")
    urlencoded = hold(
        client, slots[0], content_type="application/x-www-form-urlencoded", body=f"slot={slots[0]}"
    )
    assert urlencoded.status_code == 415
    # A JSON document sent as text/plain is not read as JSON either.
    assert hold(client, slots[0], content_type="text/plain").status_code == 415
    assert not Hold.objects.exists()
    assert hold(client, slots[0]).status_code == 201


def test_an_operators_software_keeps_working_with_its_token(register_operator, client, clock):
    operator = register_operator("Centre d'appels Alpha")
    api = api_for(client, operator.api)
    found = api.get("/slots", {"specialty": "neurosurgery"}).json()["items"]
    answer = api.post(
        "/holds", {"slot": found[0]["id"]}, Origin=EVIL, **{"Sec-Fetch-Site": "cross-site"}
    )
    assert answer.status_code == 201


def test_cors_lets_a_widgets_allowed_origins_read_and_nobody_else(client, widget, slots, clock):
    path = f"/api/v1/slots?specialty=neurosurgery&channel={widget.key}"
    read = client.get(path, headers={"Origin": HOSPITAL})
    assert read.status_code == 200
    assert read["Access-Control-Allow-Origin"] == HOSPITAL
    assert "Origin" in read["Vary"]
    other = client.get(path, headers={"Origin": EVIL})
    assert "Access-Control-Allow-Origin" not in other
    public = client.get("/api/v1/slots?specialty=neurosurgery", headers={"Origin": HOSPITAL})
    assert "Access-Control-Allow-Origin" not in public

    # A browser's preflight carries no custom header: the key must be in the address.
    preflight = client.options(
        f"/api/v1/slots?channel={widget.key}",
        headers={"Origin": HOSPITAL, "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 204
    assert preflight["Access-Control-Allow-Origin"] == HOSPITAL
    assert "POST" not in preflight["Access-Control-Allow-Methods"]
    for origin, method in [(EVIL, "GET"), (HOSPITAL, "POST"), (HOSPITAL, "DELETE")]:
        refused = client.options(
            f"/api/v1/holds?channel={widget.key}",
            headers={"Origin": origin, "Access-Control-Request-Method": method},
        )
        assert refused.status_code == 403
        assert "Access-Control-Allow-Origin" not in refused
