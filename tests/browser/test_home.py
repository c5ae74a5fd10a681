"""The hub's front page in a real browser: French first, English on request, keyboard first."""

import pytest

pytestmark = pytest.mark.browser


def test_the_front_page_is_french_lists_the_hospitals_and_switches_to_english(hub, page):
    page.goto(hub + "/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert page.get_by_text("Hôpital Bicêtre").count() >= 1
    # Keyboard first: the first Tab reaches the skip link, which leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.url == hub + "/en/"
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Our hospitals").count() == 1
    # The strict content security policy blocked nothing the page needs.
    assert page.problems == []
