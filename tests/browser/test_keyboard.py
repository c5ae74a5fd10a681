"""Keyboard only: a patient who cannot use a mouse finds a slot and books it, meets the errors of
a wrong form with the focus already on the first one, and moves from week to week; the week
picker loads in place with htmx and still works where scripts are off."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.keyboard import tab_to

pytestmark = pytest.mark.browser


def test_a_patient_books_with_the_keyboard_alone(hub, page, accessible):
    page.goto(hub + "/")
    page.keyboard.press("Tab")
    # The first stop skips the header and lands on the search.
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    tab_to(page, "#what")
    page.keyboard.type("Neurochirurgie")  # a focused list picks the option typed
    assert page.eval_on_selector("#what", "e => e.value") == "s:neurosurgery"
    tab_to(page, "form.search button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".result")

    tab_to(page, ".result button.slot")
    page.keyboard.press("Enter")
    page.wait_for_selector("form.details")

    # Sent empty: the page comes back on the first field in error, its error read with it.
    tab_to(page, "form.details button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector(".notice-error")
    assert page.evaluate("document.activeElement.id") == "id_last_name"
    described = page.get_attribute("#id_last_name", "aria-describedby")
    assert "obligatoire" in page.locator(f"#{described}").inner_text()
    # The summary links to each field in error, in the form's order.
    summary = page.locator(".notice-error a").evaluate_all("links => links.map(a => a.hash)")
    assert summary[:4] == ["#id_last_name", "#id_first_name", "#id_birth_date", "#id_phone"]
    accessible(page, "fr-keyboard-1-errors")

    # The fields follow each other in reading order; typing fills them.
    page.keyboard.type("Lefèvre")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_first_name"
    page.keyboard.type("Anne")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "id_birth_date"
    # Day and month alike: the date field's order follows the browser's own language.
    page.keyboard.type("06061975")
    assert page.eval_on_selector("#id_birth_date", "e => e.value") == "1975-06-06"
    # Tab leaves the date field once past its own parts (and its calendar button).
    assert set(tab_to(page, "#id_phone", limit=4)) == {"id_birth_date", "id_phone"}
    page.keyboard.type("06 12 34 56 78")
    page.keyboard.press("Enter")  # Enter in a field sends the form

    page.wait_for_selector("#manage-link")
    expect(page.get_by_role("heading", name="Votre rendez-vous est réservé")).to_be_visible()
    # The form came back once with status 422, which Chromium logs; nothing else may be logged.
    assert [p for p in page.problems if "422" not in p] == []


def open_practitioner(page, hub: str) -> None:
    page.goto(hub + "/search/?what=s%3Aneurosurgery&when=soon")
    page.locator(".result h3 a").first.click()
    page.wait_for_selector(".day")


def test_the_week_picker_loads_the_next_week_in_place(hub, page):
    open_practitioner(page, hub)
    first_title = page.locator("#week-title").inner_text()
    first_url = page.url
    page.evaluate("window.keptAcrossWeeks = true")  # lost if the whole page were reloaded
    tab_to(page, ".week-nav a:last-child")
    page.keyboard.press("Enter")
    page.wait_for_function(
        "(before) => document.getElementById('week-title').innerText !== before", arg=first_title
    )
    assert page.evaluate("window.keptAcrossWeeks") is True
    assert re.search(r"[?&]week=", page.url) and page.url != first_url  # the address follows
    # The focus moves to the new week's title, as on a new page.
    page.wait_for_function("() => document.activeElement.id === 'week-title'", timeout=5000)
    assert page.locator(".day").count() == 7
    # Back goes to the first week again.
    page.go_back()
    page.wait_for_function(
        "(before) => document.getElementById('week-title').innerText === before", arg=first_title
    )
    assert page.problems == []


def test_the_week_picker_works_without_scripts(hub, chromium):
    context = chromium.new_context(locale="fr-FR", java_script_enabled=False)
    page = context.new_page()
    try:
        open_practitioner(page, hub)
        first_title = page.locator("#week-title").inner_text()
        page.get_by_role("link", name="Semaine suivante").click()
        page.wait_for_selector(".day")
        assert page.locator("#week-title").inner_text() != first_title
        assert re.search(r"[?&]week=", page.url)
    finally:
        context.close()
