"""Bad input gets a clear 4xx, never a server error (issue 14, points 11 and 12): out-of-range
numbers and dates, a forged cursor, Unicode digits, NUL characters anywhere, on SQLite and
PostgreSQL. Nothing already stored is touched."""

import base64
import json

import pytest

from creneau.booking.models import Appointment
from tests.operators.conftest import agent_login, api_for

pytestmark = pytest.mark.django_db

HUGE = "9223372036854775808"


@pytest.fixture
def operator_api(client, alpha):
    return api_for(client, alpha.api)


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def assert_refused(answer, *, json_body=True):
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.content[:300])
    if json_body:
        body = answer.json()
        assert body["code"] and body["message"], body


def test_out_of_range_numbers_and_dates_are_refused_not_crashed(
    client, operator_api, alpha, pitie_neurosurgeon, clock
):
    practitioner = pitie_neurosurgeon.practitioner.public_id
    for path in ["/api/v1/establishments", "/api/v1/practitioners"]:
        assert_refused(client.get(path, {"offset": HUGE}))
    assert_refused(operator_api.get("/operator/appointments", {"offset": HUGE}))
    for params in [
        {"specialty": "neurosurgery", "to_date": "9999-12-31"},
        {"specialty": "neurosurgery", "from_date": "0001-01-01"},
        {"specialty": "neurosurgery", "cursor": cursor("0001-01-01T00:00:00+14:00|zz")},
        {"specialty": "neurosurgery", "cursor": cursor("9999-12-31T23:59:59-14:00|zz")},
    ]:
        assert_refused(client.get("/api/v1/slots", params))
    for params in [{"to_date": "9999-12-31"}, {"from_date": "0001-01-01"}]:
        assert_refused(operator_api.get("/operator/appointments", params))
        assert_refused(operator_api.get("/operator/statistics", params))
    assert_refused(operator_api.get("/operator/statistics", {"from_date": "2001-01-01"}))
    for week in ["9999-12-31", "0001-01-01"]:
        assert_refused(
            client.get(f"/api/v1/practitioners/{practitioner}/availability", {"week": week})
        )
        page = client.get(f"/practitioners/{practitioner}/", {"week": week})
        assert page.status_code in (200, 400), page.status_code  # the current week, or 400
    for name in ["start", "end", "index", "size"]:
        for digit in ["²", "¹", "٣", HUGE]:
            answer = client.get("/ledger/entries", {"start": "0", "end": "1", name: digit})
            assert_refused(answer)
            assert_refused(client.get("/ledger/proof/inclusion", {"index": digit, "size": "1"}))
            assert_refused(client.get("/ledger/proof/consistency", {"first": digit, "second": "2"}))


def test_console_statistics_far_dates_fall_back_to_the_default_period(client, alpha, clock):
    assert agent_login(client, alpha.agent).status_code == 302
    for params in [
        {"to": "9999-12-31"},
        {"from": "0001-01-01"},
        {"from": "0001-01-01", "to": "9999-12-31"},
    ]:
        answer = client.get("/console/statistics/", params)
        assert answer.status_code == 200
        csv = client.get("/console/statistics/", {**params, "format": "csv"})
        assert csv.status_code == 200


NUL = "\x00"


def test_a_nul_character_anywhere_is_refused(client, alpha, pitie_neurosurgeon, clock):
    practitioner = pitie_neurosurgeon.practitioner.public_id
    stored = Appointment.objects.count()
    patient = {
        "last_name": "Mar" + NUL + "tin",
        "first_name": "Camille",
        "birth_date": "1980-05-17",
        "phone": "0612345678",
    }
    attempts = [
        client.get("/api/v1/practitioners", {"name": "Mo" + NUL + "rin"}),
        client.get("/api/v1/slots", {"specialty": "neuro" + NUL}),
        client.get("/api/v1/slots", {"specialty": "neurosurgery", "cursor": NUL}),
        client.get(f"/api/v1/practitioners/{practitioner}{NUL}"),
        client.get("/api/v1/establishments/%00abc"),
        client.get("/api/v1/slots", {"specialty": "neurosurgery", "channel": "key" + NUL}),
        client.get("/api/v1/specialties", headers={"X-Creneau-Channel": "key" + NUL}),
        client.post(
            "/api/v1/appointments",
            json.dumps({"slot": "abc", "patient": patient}),
            content_type="application/json",
        ),
        client.post(
            "/api/v1/holds", json.dumps({"slot": "ab" + NUL}), content_type="application/json"
        ),
        client.post(
            "/api/v1/operator/lookup",
            json.dumps({"last_name": NUL, "birth_date": "1980-01-01", "phone": "0612345678"}),
            content_type="application/json",
        ),
    ]
    for answer in attempts:
        assert_refused(answer)
        assert answer.json()["code"] in ("invalid_character",), answer.json()
    for page in [
        client.get("/search/", {"what": "s:neurosurgery", "where": "Pa" + NUL}),
        client.get(f"/practitioners/{practitioner}/", {"visit": NUL}),
        client.get("/embed/key" + NUL + "/"),
        client.get("/a/tok" + NUL + "en"),
        client.post("/hold/", {"slot": NUL}),
        client.get("/ledger/entry/" + NUL),
    ]:
        assert page.status_code == 400, page.status_code
    assert agent_login(client, alpha.agent).status_code == 302
    console = client.get("/console/slots/", {"visit_type": NUL, "practitioner": "Du" + NUL})
    assert console.status_code == 400
    assert Appointment.objects.count() == stored
