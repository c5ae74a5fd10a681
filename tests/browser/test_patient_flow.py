"""A patient finds a neurosurgeon of the public hospitals, books, moves and cancels, in French
on a desktop and in English on a phone, in headless Chromium against a real hub. Every page is
checked with axe-core and kept as a screenshot."""

import re
from pathlib import Path

import icalendar
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PRIVATE = re.compile(r"Horizon|Clinique|privé", re.IGNORECASE)
TEXT = {
    "fr": {
        "search": "Rechercher",
        "confirm": "Confirmer le rendez-vous",
        "booked": "Votre rendez-vous est réservé",
        "calendar": "Ajouter à mon agenda",
        "move": "Déplacer ce rendez-vous",
        "moved": "Votre rendez-vous a été déplacé",
        "cancel_open": "Annuler ce rendez-vous",
        "cancel": "Annuler le rendez-vous",
        "cancelled": "Votre rendez-vous a été annulé",
        "kept": "Ce créneau vous est réservé jusqu\u2019à",
    },
    "en": {
        "search": "Search",
        "confirm": "Confirm the appointment",
        "booked": "Your appointment is booked",
        "calendar": "Add to my calendar",
        "move": "Move this appointment",
        "moved": "Your appointment has been moved",
        "cancel_open": "Cancel this appointment",
        "cancel": "Cancel the appointment",
        "cancelled": "Your appointment has been cancelled",
        "kept": "This slot is kept for you until",
    },
}


def book_move_cancel(page, start: str, language: str, phone: str, accessible, label: str):
    text = TEXT[language]
    page.goto(start)
    accessible(page, f"{label}-1-home")
    page.select_option("#what", "s:neurosurgery")
    page.get_by_role("button", name=text["search"], exact=True).click()
    page.wait_for_selector(".result")  # the results page has loaded
    results = page.locator(".result")
    assert results.count() >= 3
    # The public site offers the public hospitals' neurosurgeons only, never a private clinic.
    for place in page.locator(".result .place").all_inner_texts():
        assert not PRIVATE.search(place), place
    accessible(page, f"{label}-2-results")

    page.locator(".result button.slot").first.click()
    assert text["kept"] in page.locator(".timer").inner_text()
    # The countdown runs in the page.
    assert re.search(r"\d+:\d\d", page.locator("[data-countdown]").inner_text())
    accessible(page, f"{label}-3-details")
    page.fill("#id_last_name", "Lefèvre")
    page.fill("#id_first_name", "Anne")
    page.fill("#id_birth_date", "1975-06-14")
    page.fill("#id_phone", phone)
    page.get_by_role("button", name=text["confirm"]).click()
    page.wait_for_selector("#manage-link")
    expect(page.get_by_role("heading", name=text["booked"])).to_be_visible()
    link = page.locator("#manage-link").inner_text()
    assert "token=" in link
    when = page.locator(".summary .when").inner_text()
    booked = page.locator(".summary").inner_text()
    accessible(page, f"{label}-4-confirmation")

    with page.expect_download() as download:
        page.get_by_role("link", name=text["calendar"]).click()
    ics = Path(download.value.path()).read_bytes()
    event = icalendar.Calendar.from_ical(ics).walk("VEVENT")[0]
    starts = event.decoded("dtstart")
    assert str(starts.tzinfo) == "Europe/Paris"
    assert f"{starts:%H:%M}" in when

    page.goto(link)  # the link alone opens the appointment
    page.get_by_role("link", name=text["move"]).click()
    page.wait_for_selector("form.week")  # the move page has loaded
    accessible(page, f"{label}-5-move")
    page.locator("button.slot").first.click()
    expect(page.get_by_role("heading", name=text["moved"])).to_be_visible()
    assert page.locator(".summary").inner_text() != booked

    page.get_by_text(text["cancel_open"]).click()
    page.select_option("#id_reason", "unavailable")
    page.get_by_role("button", name=text["cancel"]).click()
    expect(page.get_by_role("heading", name=text["cancelled"])).to_be_visible()
    accessible(page, f"{label}-6-cancelled")
    # Once cancelled, the link shows the appointment but offers no change any more.
    assert page.get_by_role("link", name=text["move"]).count() == 0
    assert page.problems == []


def test_a_patient_books_moves_and_cancels_in_french_on_a_desktop(hub, page, accessible):
    book_move_cancel(page, hub + "/", "fr", "06 11 22 33 44", accessible, "fr-desktop")


def test_a_patient_books_moves_and_cancels_in_english_on_a_phone(hub, phone_page, accessible):
    book_move_cancel(phone_page, hub + "/en/", "en", "+33 7 55 44 33 22", accessible, "en-phone")
    width = phone_page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows the phone's screen sideways


def test_the_other_patient_pages_are_accessible_too(hub, page, accessible):
    """The practitioner's week, the waiting list (form, its errors, the request's page) and an
    error page: axe-core on each."""
    page.goto(hub + "/search/?what=s%3Aneurosurgery&when=soon")
    page.locator(".result h3 a").first.click()
    page.wait_for_selector(".day")
    assert page.locator(".day").count() == 7
    assert page.locator(".day button.slot").count() >= 1
    accessible(page, "fr-desktop-7-practitioner")

    page.goto(hub + "/waiting-list/?specialty=neurosurgery")
    accessible(page, "fr-desktop-8-waiting-list")
    page.get_by_role("button", name="S’inscrire sur la liste d’attente").click()  # noqa: RUF001
    assert page.locator(".error").count() >= 4
    accessible(page, "fr-desktop-9-waiting-list-errors")
    # The form came back with status 422, which Chromium logs; nothing else may be logged.
    assert [p for p in page.problems if "422" not in p] == []
    page.problems.clear()
    page.fill("#id_before", "2099-01-01")
    page.fill("#id_last_name", "Petit")
    page.fill("#id_first_name", "Hugo")
    page.fill("#id_birth_date", "2001-02-03")
    page.fill("#id_phone", "06 22 33 44 55")
    page.get_by_role("button", name="S’inscrire sur la liste d’attente").click()  # noqa: RUF001
    expect(page.get_by_role("heading", name="Vous êtes sur la liste d’attente")).to_be_visible()  # noqa: RUF001
    accessible(page, "fr-desktop-10-waiting-list-entry")
    assert page.problems == []

    page.goto(hub + "/appointments/aaaaaaaaaaaaaaaa/?token=nope")
    expect(page.get_by_role("heading", name="Lien non valide")).to_be_visible()
    accessible(page, "fr-desktop-11-invalid-link")


def test_a_visitor_with_a_british_mobile_books_with_an_e_mail(hub, phone_page, accessible):
    """Issue 28, point 1: a number abroad is a contact like any other, but gets no text
    message; alone on the site, the patient is asked for an e-mail address on that field at the
    first try, and the confirmation says what is sent where."""
    page = phone_page
    page.goto(hub + "/en/")
    page.select_option("#what", "s:neurosurgery")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector(".result")
    page.locator(".result button.slot").first.click()
    page.fill("#id_last_name", "Smith")
    page.fill("#id_first_name", "Jane")
    page.fill("#id_birth_date", "1981-03-09")
    page.fill("#id_phone", "+44 7911 123456")
    page.get_by_role("button", name="Confirm the appointment").click()
    expect(page.locator(".notice-error")).to_contain_text("give an e-mail address")
    expect(page.locator("#id_email_error")).to_contain_text("give an e-mail address")
    # Every other detail is kept.
    expect(page.locator("#id_phone")).to_have_value("+44 7911 123456")
    accessible(page, "landline-1-email-asked")
    page.fill("#id_email", "jane.smith@example.org")
    page.get_by_role("button", name="Confirm the appointment").click()
    page.wait_for_selector("#manage-link")
    plan = page.locator(".messages-plan")
    expect(plan).to_contain_text("No text message: +44 7911 123456 is not a mobile number")
    expect(plan).to_contain_text("A confirmation e-mail goes to jane.smith@example.org.")
    accessible(page, "landline-2-booked")
