"""A regulator of the SAS opens a slot's link from the platform, in Chromium against a real
demo hub: the link's page, the booking form, the confirmation, in French and in English, each
checked with axe-core; the booking is the SAS's."""

import base64
import json
import urllib.request

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def sas_get(demo, url: str) -> dict:
    """A GET as the SAS, with the token of its demo API client."""
    sas = next(p for p in demo["platforms"] if p["kind"] == "sas")
    pair = base64.b64encode(f"{sas['client_id']}:{sas['client_secret']}".encode()).decode()
    request = urllib.request.Request(
        demo["base"] + sas["token_url"],
        data=b"grant_type=client_credentials",
        headers={"Authorization": f"Basic {pair}"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        token = json.load(answer)["access_token"]
    query = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(query, timeout=30) as answer:
        return json.load(answer)


def sas_first_link(demo) -> str:
    bundle = sas_get(demo, demo["fhir"]["sas_query"])
    slots = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Slot"]
    # A slot a day ahead at least, so that its minimum notice leaves it bookable.
    return slots[-1]["comment"]


@pytest.mark.parametrize("language", ["fr", "en"])
def test_a_regulator_books_through_the_sas_link(demo, page, accessible, language, tmp_path):
    link = sas_first_link(demo)
    if language == "en":
        link = link.replace("/p/", "/en/p/", 1)
    page.goto(link + "?origin=sas&regulator=810000000042")
    heading = {"fr": "Réserver ce créneau", "en": "Book this slot"}[language]
    expect(page.get_by_role("heading", name=heading)).to_be_visible()
    assert "Service d" in page.content()
    accessible(page, f"sas-link-{language}-1")
    button = {
        "fr": "Garder ce créneau et saisir les coordonnées du patient",
        "en": "Keep this slot and enter the patient's details",
    }[language]
    page.get_by_role("button", name=button).click()
    page.wait_for_selector("#id_last_name")
    accessible(page, f"sas-link-{language}-2-details")
    page.fill("#id_last_name", "Durand")
    page.fill("#id_first_name", "Paul")
    page.fill("#id_birth_date", "1962-11-02")
    page.fill("#id_phone", "0611223344" if language == "fr" else "0622334455")
    confirm = {"fr": "Confirmer le rendez-vous", "en": "Confirm the appointment"}[language]
    page.get_by_role("button", name=confirm).click()
    page.wait_for_selector("#manage-link")
    accessible(page, f"sas-link-{language}-3-confirmation")
    assert page.problems == []
    # The booking is the SAS's: its own list of appointments holds it.
    appointment = page.url.split("/appointments/")[1].split("/")[0]
    mine = sas_get(demo, demo["base"] + "/api/v1/operator/appointments?limit=200")
    assert appointment in {item["id"] for item in mine["items"]}
