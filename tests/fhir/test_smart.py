"""SMART Scheduling Links: manifest → NDJSON files (each line a valid FHIR resource) → a
slot's deep link books it, attributed to the finder, with its source and booking-referral;
ETag, Last-Modified and 304 for a finder that polls; _since lists what changed."""

import json
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils.http import http_date
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.schedule import Schedule
from fhir.resources.R4B.slot import Slot as FhirSlot

from creneau.booking.models import Appointment
from creneau.fhir.smart import EXTENSIONS
from tests.conftest import NOW, PATIENT
from tests.fhir.conftest import Fhir, bearer, register

pytestmark = pytest.mark.django_db

MODELS = {"Location": Location, "Schedule": Schedule, "Slot": FhirSlot}


@pytest.fixture
def finder(aphp):
    return register(aphp, "smart_finder", "Trouve-un-rendez-vous")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path.removeprefix("/fhir/") + (f"?{parts.query}" if parts.query else "")


def read_all(fhir: Fhir) -> dict[str, list[dict]]:
    manifest = fhir.client.get("/fhir/$bulk-publish", headers=fhir.headers)
    assert manifest.status_code == 200, manifest.content
    body = manifest.json()
    assert set(body) == {"transactionTime", "request", "output", "error"}
    assert body["error"] == []
    found: dict[str, list[dict]] = {"Location": [], "Schedule": [], "Slot": []}
    for item in body["output"]:
        answer = fhir.get(path_of(item["url"]))
        assert answer.status_code == 200, answer.content
        assert answer["Content-Type"] == "application/fhir+ndjson"
        for line in answer.content.decode().splitlines():
            resource = json.loads(line)
            assert resource["resourceType"] == item["type"]
            MODELS[item["type"]].model_validate(resource)
            found[item["type"]].append(resource)
    return found


def extension(slot: dict, name: str):
    return next((e for e in slot.get("extension", []) if e["url"] == EXTENSIONS + name), {})


def test_manifest_files_and_public_deep_links(
    client, pitie_neurosurgeon, private_neurosurgeon, open_agenda
):
    open_agenda(pitie_neurosurgeon)
    open_agenda(private_neurosurgeon)
    found = read_all(Fhir(client))
    places = {place["id"] for place in found["Location"]}
    assert pitie_neurosurgeon.establishment.public_id in places
    assert private_neurosurgeon.establishment.public_id not in places
    schedules = {s["id"]: s for s in found["Schedule"]}
    assert schedules[pitie_neurosurgeon.public_id]["actor"][0]["reference"] == (
        f"Location/{pitie_neurosurgeon.establishment.public_id}"
    )
    mine = [
        s
        for s in found["Slot"]
        if s["schedule"]["reference"] == f"Schedule/{pitie_neurosurgeon.public_id}"
    ]
    assert mine and all(
        s["schedule"]["reference"].split("/")[1] in schedules for s in found["Slot"]
    )
    slot = mine[0]
    assert extension(slot, "slot-capacity")["valueInteger"] == 1
    assert extension(slot, "booking-phone")["valueString"].startswith("+331990")
    # The public site's link is its practitioner page: it opens nothing a patient cannot see.
    link = extension(slot, "booking-deep-link")["valueUrl"]
    page = client.get(urlsplit(link).path + "?" + urlsplit(link).query)
    assert page.status_code == 200 and slot["id"] in page.content.decode()


def test_a_finder_s_deep_link_books_through_its_channel(
    client, finder, pitie_neurosurgeon, open_agenda
):
    open_agenda(pitie_neurosurgeon)
    fhir = bearer(client, finder)
    slots = read_all(fhir)["Slot"]
    slot = next(
        s for s in slots if s["schedule"]["reference"].endswith(pitie_neurosurgeon.public_id)
    )
    link = urlsplit(extension(slot, "booking-deep-link")["valueUrl"])
    assert link.path.startswith(f"/p/{finder.key}/link/")
    page = client.get(link.path, {"source": "trouve-un-rdv.fr", "booking-referral": "r-1234"})
    assert page.status_code == 200
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode())
    )
    held = client.post(link.path, fields)
    assert held.status_code == 303
    booked = client.post(held["Location"], PATIENT)
    assert booked.status_code == 303, booked.content[:800]
    appointment = Appointment.objects.get(slot__public_id=slot["id"])
    assert appointment.channel == finder.contract.channel
    assert appointment.referral == {"source": "trouve-un-rdv.fr", "booking-referral": "r-1234"}


def test_polling_gets_304_until_something_changes(client, pitie_neurosurgeon, open_agenda, clock):
    open_agenda(pitie_neurosurgeon)
    fhir = Fhir(client)
    manifest = client.get("/fhir/$bulk-publish").json()
    assert client.get("/fhir/$bulk-publish")["Cache-Control"] == "public, max-age=60"
    week = next(i["url"] for i in manifest["output"] if i["type"] == "Slot")
    first = fhir.get(path_of(week))
    etag, modified = first["ETag"], first["Last-Modified"]
    assert etag and modified == http_date(NOW.timestamp())
    clock.shift(timedelta(seconds=20))
    assert fhir.get(path_of(week), **{"If-None-Match": etag}).status_code == 304
    assert fhir.get(path_of(week), **{"If-Modified-Since": modified}).status_code == 304
    for item in manifest["output"]:
        fhir.get(path_of(item["url"]))  # every file served once more, unchanged
    # A booking in that week changes its file, and only that one.
    slot_id = json.loads(first.content.decode().splitlines()[0])["id"]
    clock.shift(timedelta(minutes=3))
    assert (
        client.post(
            "/api/v1/appointments",
            json.dumps({"slot": slot_id, "patient": PATIENT}),
            content_type="application/json",
        ).status_code
        == 201
    )
    again = fhir.get(path_of(week), **{"If-None-Match": etag})
    assert again.status_code == 200 and again["ETag"] != etag
    assert slot_id not in again.content.decode()
    since = (NOW + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    changed = client.get("/fhir/$bulk-publish", {"_since": since}).json()["output"]
    assert [i["url"].split("/")[-1].split(".")[0] for i in changed] == [
        week.split("/")[-1].split(".")[0]
    ]
    assert client.get("/fhir/$bulk-publish", {"_since": "yesterday"}).status_code == 400
    assert fhir.get("$bulk-publish/Slot-1999-W01.ndjson").status_code == 404


def test_a_file_s_offer_is_in_the_ledger_once_per_version_not_per_download(
    client, pitie_neurosurgeon, open_agenda, clock, settings
):
    """Issue 27, point 9: the same bytes downloaded again add nothing to the ledger."""
    from creneau.ledger.models import Entry

    open_agenda(pitie_neurosurgeon)
    fhir = Fhir(client)
    manifest = client.get("/fhir/$bulk-publish").json()
    week = path_of(next(i["url"] for i in manifest["output"] if i["type"] == "Slot"))
    offers = Entry.objects.filter(kind="offer")
    before = offers.count()
    first = fhir.get(week)
    for _ in range(9):
        assert fhir.get(week).content == first.content
    assert offers.count() == before + 1
    slot_id = json.loads(first.content.decode().splitlines()[0])["id"]
    clock.shift(timedelta(minutes=3))
    booked = client.post(
        "/api/v1/appointments",
        json.dumps({"slot": slot_id, "patient": PATIENT}),
        content_type="application/json",
    )
    assert booked.status_code == 201
    after_booking = offers.count()
    fhir.get(week)  # a new version: offered once more
    fhir.get(week)
    assert offers.count() == after_booking + 1


def test_anonymous_bulk_downloads_are_rate_limited(
    client, pitie_neurosurgeon, open_agenda, clock, settings
):
    settings.CRENEAU_RATE_LIMITS = {**settings.CRENEAU_RATE_LIMITS, "bulk": (3, 600)}
    open_agenda(pitie_neurosurgeon)
    fhir = Fhir(client)
    answers = [fhir.get("$bulk-publish/Location.ndjson").status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    refused = fhir.get("$bulk-publish/Location.ndjson")
    assert refused.json()["resourceType"] == "OperationOutcome" and int(refused["Retry-After"]) > 0


def test_a_finder_s_file_keeps_its_bytes_within_the_hour(
    client, finder, pitie_neurosurgeon, open_agenda, clock
):
    """Its signed links expire at the top of an hour, so its files have versions, not one a
    second (each version's offer being in the ledger)."""
    open_agenda(pitie_neurosurgeon)
    fhir = bearer(client, finder)
    manifest = client.get("/fhir/$bulk-publish", headers=fhir.headers).json()
    week = path_of(next(i["url"] for i in manifest["output"] if i["type"] == "Slot"))
    first = fhir.get(week)
    clock.shift(timedelta(minutes=10))
    assert first.status_code == 200, first.content[:300]
    assert fhir.get(week)["ETag"] == first["ETag"]
    clock.shift(timedelta(hours=1))
    later = bearer(client, finder).get(week)  # a new token: the first has expired
    assert later.status_code == 200 and later["ETag"] != first["ETag"]


def test_since_is_answered_from_the_stored_versions(
    client, pitie_neurosurgeon, open_agenda, clock, monkeypatch
):
    """Issue 27, point 13: ``_since`` makes no Slot file; a week changed but not yet served is
    listed all the same (its state was never served)."""
    from creneau.fhir import smart

    open_agenda(pitie_neurosurgeon)
    fhir = Fhir(client)
    manifest = client.get("/fhir/$bulk-publish").json()
    for item in manifest["output"]:
        fhir.get(path_of(item["url"]))
    weeks = [item["url"] for item in manifest["output"] if item["type"] == "Slot"]
    slot_id = json.loads(fhir.get(path_of(weeks[1])).content.decode().splitlines()[0])["id"]
    clock.shift(timedelta(minutes=3))
    made = []
    real = smart.file_body

    def noted(scope, file, now):
        made.append(file.name)
        return real(scope, file, now)

    monkeypatch.setattr(smart, "file_body", noted)
    since = (NOW + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    assert client.get("/fhir/$bulk-publish", {"_since": since}).json()["output"] == []
    booked = client.post(
        "/api/v1/appointments",
        json.dumps({"slot": slot_id, "patient": PATIENT}),
        content_type="application/json",
    )
    assert booked.status_code == 201
    listed = client.get("/fhir/$bulk-publish", {"_since": since}).json()["output"]
    assert [item["url"] for item in listed] == [weeks[1]]
    assert all(not name.startswith("Slot") for name in made), made
