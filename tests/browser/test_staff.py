"""The staff's pages in Chromium, on the demo hub: the Pitié's neurosurgery secretary signs in
with a one-time code, opens today's list of the department, goes to the next day and to the
week, opens the print view; every page passes axe-core."""

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_a_secretary_opens_the_departments_agenda_with_the_keyboard(demo, hub, page, accessible):
    secretary = next(s for s in demo["staff"] if s["role"] == "secretary")
    page.goto(hub + "/staff/")
    expect(page).to_have_url(re.compile(r"/staff/login/"))
    accessible(page, "staff-1-login")
    page.fill("#id_username", secretary["username"])
    page.fill("#id_password", secretary["password"])
    page.fill("#id_otp_token", secretary["backup_codes"][1])
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Mes agendas")
    accessible(page, "staff-2-home")
    page.get_by_role("link", name=secretary["scope"]["department"]).focus()
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text(secretary["scope"]["department"])
    accessible(page, "staff-3-department-day")
    page.get_by_role("link", name="Jour suivant").click()
    expect(page).to_have_url(re.compile(r"day=\d{4}-\d{2}-\d{2}&view=day"))
    page.get_by_role("link", name="Vue de la semaine").click()
    expect(page).to_have_url(re.compile(r"view=week"))
    accessible(page, "staff-4-department-week")
    page.get_by_role("link", name="Imprimer la journée").click()
    expect(page).to_have_url(re.compile(r"print=1"))
    accessible(page, "staff-5-print")
