"""The attacks of issue 14 (points 3 to 8, and 10) and of issue 27 (points 1, 3, 4, 6, 9, 12 and
14) replayed by bench/attacks.py against a real ``creneau serve`` with three gunicorn workers:
on SQLite and PostgreSQL with the counters in the database. Every limit holds exactly, whatever
worker answers. (With the counters in Redis, through two servers behind a proxy:
tests/scale/test_beyond_one_server.py.)"""

import os
from datetime import UTC, datetime, timedelta

from bench.attacks import (
    CROWD,
    Client,
    Reader,
    Slots,
    crowd_attack,
    database,
    patient,
    run_attacks,
    run_surface_attacks,
    served_hub,
)

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
        "+86 mobile": "422 invalid_patient patient.email",
        "+234 mobile": "422 invalid_patient patient.email",
        "Paris landline": "422 invalid_patient patient.email",
    },
    "8 idempotency keys of another client": {
        "first client": "201",
        "second client, same key and body": "409 slot_taken",
        "second client got a manage token": False,
    },
}
TOO_MUCH = "Le calendrier demande trop de travail pour être lu"
SURFACES = {
    "27.1 a platform link's hold": {
        "hold page, another slot": "409",
        "hold page, its own slot": "303",
        "hold page again, once booked": "410",
        "hold page after its release": "410",
    },
    "27.4 visitors by a finder's links": {
        "visitors' holds by its links": {"303": 21},
        "the finder's own API hold": "201",
        "the next patient by a link": "303",
    },
    "27.14 MLLP": {
        "TQ1-8 99991231235959-1400": "AE TQ1-8: '99991231235959-1400' is not a valid date and time",
        "SCH-9 1e308": "AE SCH-9: a duration must be positive and at most 31 days",
        "SCH-9 inf": "AE SCH-9: a duration must be positive and at most 31 days",
        "SCH-9 nan": "AE SCH-9: a duration must be positive and at most 31 days",
        "30 half-open connections: kept open": 20,
    },
}
CROWDED = {
    "the first arrival": "200",
    "API hold": "429 waiting_room",
    "POST /hold/": "429",
    "FHIR Slot search": "429",
    "one admitted ticket from ten addresses": {"429 waiting_room": 10},
}


def test_the_attacks_get_exactly_what_the_limits_allow(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRENEAU_")}
    with database(suite_engine()) as engine_env:
        demo_copied(tmp_path, {**engine_env, "CRENEAU_HORIZON_WEEKS": "2"})  # as served_hub's
        hub_env = {**env, **engine_env}
        with served_hub(tmp_path, hub_env, workers=3) as (base, credentials):
            report = run_attacks(base, credentials)
            secrets_used = open_appointment_every_way(base)
            surfaces = run_surface_attacks(
                base, credentials, Reader(tmp_path, hub_env), hub_env, tmp_path
            )
        log = (tmp_path / "serve.log").read_text(encoding="utf-8")
        with served_hub(tmp_path, hub_env, workers=3, **CROWD) as (base, credentials):
            crowded = crowd_attack(base, credentials)
    assert report == EXPECTED
    slow = surfaces["27.14 MLLP"].pop("a message a byte every 0.5 s: closed after")
    assert float(slow.split()[0]) < 6, slow  # its message's 3 s, not renewed by each byte
    for name, expected in SURFACES.items():
        assert surfaces[name] == expected, name
    files = surfaces["27.9 anonymous SMART files"]
    assert files["ten downloads of a week's file"].endswith(" 1 ledger entries added"), files
    assert files["310 downloads from one address (limit 300 per 10 min)"] == {"200": 300, "429": 10}
    feeds = surfaces["27.6 and 27.12 agenda feeds"]
    for label, said in feeds.items():
        seconds, why = said.split(" s: ", 1)
        assert float(seconds) < 20, (label, said)
        assert (TOO_MUCH in why) if "FREQ" in label else ("trop de temps" in why), (label, said)
    assert crowded == CROWDED
    # Point 10: the server's log (gunicorn's access log and Django's lines) holds none of them.
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
