"""The operator console in Chromium, on the demo hub: an agent of one call centre signs in with
a one-time code and books for a caller with the keyboard, while another operator's software
books through the API; each sees its own bookings and statistics, the organisation sees both."""

import re

import pytest
import requests
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

CALLER = {
    "last_name": "Lefèvre",
    "first_name": "Agathe",
    "birth_date": "1975-02-03",
    "phone": "06 11 22 33 44",
}


def operator(demo, name: str) -> dict:
    return next(o for o in demo["operators"] if o["name"] == name)


def sign_in(page, hub: str, agent: dict, code: str) -> None:
    page.goto(hub + "/console/")
    expect(page).to_have_url(re.compile(r"/console/login/"))
    page.fill("#id_username", agent["username"])
    page.fill("#id_password", agent["password"])
    page.fill("#id_otp_token", code)
    page.keyboard.press("Enter")
    expect(page.locator("#search-title")).to_be_visible()


def test_an_agent_books_for_a_caller_with_the_keyboard(demo, hub, page, accessible):
    asd = operator(demo, "Accueil Santé Direct")
    sign_in(page, hub, asd["agent"], asd["agent"]["backup_codes"][0])
    accessible(page, "console-1-home")
    value = page.evaluate(
        """() => [...document.querySelectorAll('#id_visit_type option')]
            .find(o => o.textContent.startsWith('Première consultation — Neurochirurgie')).value"""
    )
    page.select_option("#id_visit_type", value)
    page.focus("#id_practitioner")
    page.keyboard.press("Enter")  # sends the search; the first slot takes the focus
    first = page.locator("#slots a.slot").first
    expect(first).to_be_focused()
    before = page.evaluate("() => window.performance.getEntriesByType('navigation').length")
    page.evaluate("() => { window.stillHere = true; }")
    page.keyboard.press("Enter")
    expect(page.locator("#id_last_name")).to_be_focused()
    page.keyboard.type(CALLER["last_name"])
    page.keyboard.press("Tab")
    page.keyboard.type(CALLER["first_name"])
    page.fill("#id_birth_date", CALLER["birth_date"])
    page.fill("#id_phone", CALLER["phone"])
    page.focus("#id_phone")
    page.keyboard.press("Enter")
    done = page.locator("#work h3")
    expect(done).to_have_text("Réservé")
    expect(done).to_be_focused()
    # One screen: no page was loaded for the search, the choice or the booking.
    assert page.evaluate("() => window.stillHere === true")
    assert page.evaluate("() => window.performance.getEntriesByType('navigation').length") == before
    reference = page.locator("#work code.appointment-id").inner_text()
    # The slot list, now out of date, is cleared for the next call.
    expect(page.locator("#slots a.slot")).to_have_count(0)
    accessible(page, "console-2-booked")
    # The caller calls back: found by name, birth date and phone.
    page.fill("#id_caller-last_name", "LEFEVRE")
    page.fill("#id_caller-birth_date", CALLER["birth_date"])
    page.fill("#id_caller-phone", "+33611223344")
    page.focus("#id_caller-phone")
    page.keyboard.press("Enter")
    expect(page.locator("#found")).to_contain_text(reference)
    # Every panel update kept to the page's policy: no inline style refused, no error.
    assert page.problems == [], page.problems
    expect(page.locator("#found")).to_contain_text(
        "Booked by Accueil Santé Direct".replace("Booked by", "Réservé par")
    )
    accessible(page, "console-3-found")
    # Move, then cancel, through the panels: still no refused style or error after each update.
    page.locator("#found a.button", has_text="Déplacer").first.click()
    expect(page.locator("#slots button.slot").first).to_be_visible()
    page.locator("#found a.button").nth(1).click()  # "Cancel it"
    expect(page.locator("#work h3")).to_have_text("Annuler ce rendez-vous ?")
    page.fill("#work input[name=reason]", "rappellera")
    page.locator("#work button[type=submit]").click()
    expect(page.locator("#work")).to_contain_text("Annulé")
    assert page.problems == [], page.problems
    # The company's bookings list it.
    page.goto(hub + "/console/appointments/")
    expect(page.locator("table")).to_contain_text(reference)


def operator_books(hub: str, company: dict, last_name: str, *, paris_only: bool = False) -> dict:
    """A booking by ``company``'s software through the API (OAuth2 client credentials); a
    Paris-only operator is offered only Paris's hospitals."""
    api = company["api_client"]
    token = requests.post(
        hub + api["token_url"],
        data={"grant_type": "client_credentials"},
        auth=(api["client_id"], api["client_secret"]),
        timeout=10,
    ).json()["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    slots = requests.get(
        hub + "/api/v1/slots", params={"specialty": "neurosurgery"}, headers=bearer, timeout=10
    ).json()["items"]
    assert slots
    if paris_only:
        assert all(s["establishment"]["city"].startswith("Paris") for s in slots)
    booked = requests.post(
        hub + "/api/v1/appointments",
        json={"slot": slots[-1]["id"], "patient": {**CALLER, "last_name": last_name}},
        headers=bearer,
        timeout=10,
    )
    assert booked.status_code == 201 and booked.json()["operator"]["name"] == company["name"]
    return bearer


def test_two_operators_each_see_their_own_and_the_organisation_both(demo, hub, page):
    taf = operator(demo, "Téléaccueil Francilien")
    asd = operator(demo, "Accueil Santé Direct")
    operator_books(hub, asd, "Lefèvre")
    bearer = operator_books(hub, taf, "Dubois", paris_only=True)
    own = requests.get(hub + "/api/v1/operator/appointments", headers=bearer, timeout=10).json()
    assert {a["operator"]["name"] for a in own["items"]} == {taf["name"]}
    stats = requests.get(hub + "/api/v1/operator/statistics", headers=bearer, timeout=10).json()
    assert stats["operator"] == taf["name"] and sum(d["bookings"] for d in stats["days"]) >= 1
    # The Accueil Santé Direct agent's statistics show its company only.
    sign_in(page, hub, asd["agent"], asd["agent"]["backup_codes"][1])
    page.goto(hub + "/console/statistics/")
    expect(page.locator(".statistics-totals")).to_contain_text("Accueil Santé Direct")
    expect(page.locator(".statistics-totals")).not_to_contain_text(taf["name"])
    # The organisation sees every operator side by side.
    page.goto(hub + "/admin/login/")
    page.fill("#id_username", demo["admin"]["username"])
    page.fill("#id_password", demo["admin"]["password"])
    page.fill("#id_otp_token", demo["admin"]["backup_codes"][0])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/admin/$"))
    page.goto(hub + "/admin/channels/operatorcompany/statistics/")
    totals = page.locator(".statistics-totals")
    expect(totals).to_contain_text(taf["name"])
    expect(totals).to_contain_text("Accueil Santé Direct")
