"""The widget as a hospital's web team embeds it: a page on another site (localhost, while the
hub answers on 127.0.0.1) pastes the snippet; the booking completes inside the frame with
third-party cookies blocked; a page whose origin the channel does not list cannot show it; the
widget offers nothing outside its perimeter (one department of one hospital)."""

import urllib.request

import pytest
from playwright.sync_api import expect

from creneau.web.demo import serve_example_page
from tests.browser.conftest import CHROMIUM, FLAGS, new_page
from tests.cli import free_port

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def strict_browser(chromium):
    """A Chromium that blocks third-party cookies, as browsers now do."""
    browser = chromium.browser_type.launch(
        executable_path=CHROMIUM, args=[*FLAGS, "--test-third-party-cookie-phaseout"]
    )
    yield browser
    browser.close()


def widget_frame(page):
    page.wait_for_selector("iframe")
    frame = page.frames[1]
    frame.wait_for_load_state()
    return frame


def test_the_example_hospital_page_embeds_the_widget_and_a_booking_completes_in_it(
    demo, strict_browser, accessible
):
    page = new_page(strict_browser, locale="fr-FR")
    example = demo["widget"]["example_page"]
    assert example.startswith("http://localhost:")  # another site than the hub's 127.0.0.1
    page.goto(example)
    frame = widget_frame(page)
    assert frame.url.startswith(demo["base"] + "/embed/")
    # Only this department's specialty is offered, and only its hospital.
    options = frame.locator("#what option").all_inner_texts()
    assert "Neurochirurgie" in options
    assert "Cardiologie" not in options
    accessible(page, "widget-1-home", frame=frame)
    frame.select_option("#what", "s:neurosurgery")
    frame.get_by_role("button", name="Rechercher", exact=True).click()
    frame.wait_for_url("**/search/**")
    frame.wait_for_selector(".result")
    places = frame.locator(".result .place").all_inner_texts()
    assert places
    for place in places:
        assert "Hôpital de la Pitié-Salpêtrière — Service de neurochirurgie" in place
    accessible(page, "widget-2-results", frame=frame)
    # The frame told the page its height (postMessage, origin-checked both ways).
    page.wait_for_function("document.querySelector('iframe').style.height !== '640px'")

    frame.locator(".result button.slot").first.click()
    frame.wait_for_selector("#id_last_name")
    frame.fill("#id_last_name", "Moreau")
    frame.fill("#id_first_name", "Louis")
    frame.fill("#id_birth_date", "1990-01-30")
    frame.fill("#id_phone", "06 98 76 54 32")
    accessible(page, "widget-3-details", frame=frame)
    frame.get_by_role("button", name="Confirmer le rendez-vous").click()
    frame.wait_for_selector("#manage-link")
    expect(frame.get_by_role("heading", name="Votre rendez-vous est réservé")).to_be_visible()
    assert "Pitié-Salpêtrière" in frame.locator(".summary").inner_text()
    accessible(page, "widget-4-confirmation", frame=frame)
    # Nothing relied on a cookie: the whole flow ran without one.
    assert page.context.cookies() == []
    assert page.problems == []
    page.context.close()


def test_a_page_whose_origin_is_not_listed_cannot_show_the_widget(demo, chromium):
    port = free_port()
    server = serve_example_page(port=port, hub=demo["base"], key=demo["widget"]["key"])
    try:
        page = new_page(chromium, locale="fr-FR")
        page.goto(f"http://localhost:{port}/")
        page.wait_for_selector("iframe")
        page.wait_for_timeout(500)
        frame = page.frames[1]
        # Chromium refused to render the hub's page in this frame.
        assert frame.locator("#what").count() == 0
        assert any("frame-ancestors" in problem for problem in page.problems), page.problems
        page.context.close()
    finally:
        server.shutdown()
    headers = urllib.request.urlopen(f"{demo['base']}/embed/{demo['widget']['key']}/").headers
    policy = headers["Content-Security-Policy"]
    assert (
        f"frame-ancestors http://localhost:{demo['widget']['example_page'].split(':')[2]}"
        in (policy.replace("/;", ";").replace("/ ", " "))
        or "frame-ancestors http://localhost:" in policy
    )
    assert f"localhost:{port}" not in policy
    # The hub's own site may not be framed by anyone.
    site = urllib.request.urlopen(demo["base"] + "/").headers
    assert "frame-ancestors 'none'" in site["Content-Security-Policy"]
    assert site["X-Frame-Options"] == "DENY"
