"""The attacks of issue 14 (points 3 to 8, and 10) replayed by bench/attacks.py against a real
``creneau serve`` with three gunicorn workers: on SQLite and PostgreSQL with the counters in
the database. Every limit holds exactly, whatever worker answers. (With the counters in Redis,
through two servers behind a proxy: tests/scale/test_beyond_one_server.py.)"""

import os
from datetime import UTC, datetime, timedelta

from bench.attacks import Client, Slots, database, patient, run_attacks, served_hub

from tests.cli import demo_copied, suite_engine

EXPECTED = {
    "3 operator holds (cap 20 at once)": {
        "holds asked": 40,
        "answers": {"201": 20, "429 holds_limit_reached": 20},
    },
    "4 cross-site writes": {
        "text/plain from evil.example": "403 cross_site_request",
        "JSON from evil.example": "403 cross_site_request",
        "form-encoded body": "415 unsupported_media_type",
    },
    "5 limits shared by every worker": {
        "holds per address (limit 30 per 10 min)": {"201": 30, "429 too_many_requests": 10},
        "bookings per phone (limit 5 a day)": {"201": 5, "429 too_many_requests": 3},
        "bookings per address (limit 20 an hour)": {"201": 20, "429 too_many_requests": 10},
        "console sign-ins per address and account (limit 10 per 10 min)": {"200": 10, "429": 5},
        "operator requests per minute (limit 1,200)": {"200": 1200, "429 quota_exceeded": 104},
    },
    "6 forged X-Forwarded-For": {
        # One visitor, whatever it claims: its cap of three holds, then its rate of thirty.
        "holds with 50 forged addresses": {
            "201": 3,
            "429 too_many_holds": 27,
            "429 too_many_requests": 20,
        }
    },
    "7 text messages to any number": {
        "+86 mobile": "422 invalid_patient patient.phone",
        "+234 mobile": "422 invalid_patient patient.phone",
        "Paris landline": "422 invalid_patient patient.phone",
    },
    "8 idempotency keys of another client": {
        "first client": "201",
        "second client, same key and body": "409 slot_taken",
        "second client got a manage token": False,
    },
}


def test_the_attacks_get_exactly_what_the_limits_allow(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    with database(suite_engine()) as engine_env:
        demo_copied(tmp_path, {**engine_env, "CRENEAU_HORIZON_WEEKS": "2"})  # as served_hub's
        hub = served_hub(tmp_path, {**env, **engine_env}, workers=3)
        with hub as (base, credentials):
            report = run_attacks(base, credentials)
            secrets_used = open_appointment_every_way(base)
    assert report == EXPECTED
    # Point 10: the server's log (gunicorn's access log and Django's lines) holds none of them.
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "/a/[redacted]" in log and "404" in log
    for secret in secrets_used:
        assert secret not in log


def open_appointment_every_way(base: str) -> list[str]:
    """Book, then open the appointment by its SMS short link, its manage page, the API's
    header, and a wrong short link (a 404, which Django logs with its path)."""
    client = Client(base, "127.0.0.20")
    slots = Slots(client, "dermatology", (datetime.now(UTC) + timedelta(days=7)).date().isoformat())
    status, booked = client.post(
        "/api/v1/appointments", {"slot": slots.take(), "patient": patient(3)}
    )
    assert status == 201, booked
    token, appointment = booked["manage_token"], booked["id"]
    wrong = "Zz" + token[2:]
    assert client.get(f"/a/{token}")[0] == 302
    assert client.get(f"/appointments/{appointment}/?token={token}")[0] == 200
    assert client.get(f"/api/v1/appointments/{appointment}", **{"X-Manage-Token": token})[0] == 200
    assert client.get(f"/a/{wrong}")[0] == 404
    return [token, wrong, token[:12]]
