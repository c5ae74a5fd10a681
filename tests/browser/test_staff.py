"""The staff's pages in Chromium, on the demo hub: the Pitié's neurosurgery secretary signs in
with a one-time code, opens today's list of the department, goes to the next day and to the
week, opens the print view; every page passes axe-core."""

import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.keyboard import tab_to

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


# ---------------------------------------------------------------------------------------------
# A secretary's morning, with the mouse and with the keyboard alone


class Hands:
    """The secretary's hands: the mouse, or the keyboard alone (Tab to each control, Enter to
    follow or press it, typing in fields)."""

    def __init__(self, page, keyboard: bool):
        self.page, self.keyboard = page, keyboard

    def press(self, selector: str) -> None:
        """Follow a link or press a button: each of the morning's opens a new page."""
        with self.page.expect_navigation():
            if self.keyboard:
                tab_to(self.page, selector, limit=600)
                self.page.keyboard.press("Enter")
            else:
                self.page.locator(selector).first.click()

    def link(self, name: str) -> None:
        """Follow the link named ``name`` (by its address, for the keyboard's Tab)."""
        href = self.page.get_by_role("link", name=name, exact=True).first.get_attribute("href")
        self.press(f'a[href="{href}"]')

    def fill(self, selector: str, text: str) -> None:
        if self.keyboard:
            tab_to(self.page, selector, limit=600)
            self.page.keyboard.type(text)
        else:
            self.page.fill(selector, text)

    def birth_date(self, iso: str) -> None:
        if self.keyboard:
            # The field's order of day and month follows the browser's own language, not the
            # page's: the callers' birthdays have the same day and month.
            year, month, day = iso.split("-")
            self.fill("#id_birth_date", day + month + year)
        else:
            self.page.fill("#id_birth_date", iso)


TIME = re.compile(r"(\d{2}):(\d{2})")


def _free_in_one_half(page, wanted: int) -> list[str] | None:
    """The book links of the half-day (morning or afternoon) of this page's day that has at
    least ``wanted`` free times, or None."""
    halves: dict[bool, dict[str, str]] = {True: {}, False: {}}
    for link in page.locator("a.book-slot").all():
        hour, minute = TIME.search(link.inner_text()).groups()
        halves[int(hour) < 13].setdefault(f"{hour}:{minute}", link.get_attribute("href"))
    for times in halves.values():
        if len(times) >= wanted:
            return [times[key] for key in sorted(times)]
    return None


def _outbox(demo) -> list[dict]:
    path = demo["data_dir"] / "outbox" / "sms.jsonl"
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    # The worker may be writing a line as the test reads: only whole lines count.
    whole = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in whole.splitlines()]


def secretary_morning(page, demo, hub, accessible, *, keyboard: bool, code: int, tag: str):
    hands = Hands(page, keyboard)
    secretary = next(s for s in demo["staff"] if s["role"] == "secretary")
    doctor = next(s for s in demo["staff"] if s["role"] == "practitioner")["scope"]["practitioner"]
    page.goto(hub + "/staff/login/")
    hands.fill("#id_username", secretary["username"])
    hands.fill("#id_password", secretary["password"])
    hands.fill("#id_otp_token", secretary["backup_codes"][code])
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Mes agendas")

    # Today's list of the department's neurosurgeon.
    hands.link(doctor)
    expect(page.locator("h1")).to_contain_text(doctor)
    accessible(page, f"staff-{tag}-1-today")
    # The callers of the morning ask for the first half-day, two days on or later, with four
    # free times.
    hands.press("a[rel=next]")
    hands.press("a[rel=next]")
    for _ in range(28):
        if _free_in_one_half(page, 4):
            break
        hands.press("a[rel=next]")
    day = page.url

    callers = [
        ("Arnaud", "Bruno", "1961-04-04", "06 11 11 11 11"),
        ("Bertin", "Chloé", "1988-09-09", "06 22 22 22 22"),
        ("Carrel", "Denis", "1972-12-12", "06 33 33 33 33"),
        ("Dumas", "Élise", "1990-07-07", "06 44 44 44 44"),
    ]
    booked = []
    for number, (last, first, born, phone) in enumerate(callers):
        free = _free_in_one_half(page, 4 - number)
        assert free, f"no free time left for caller {number + 1}"
        hands.press(f'a[href="{free[0]}"]')
        expect(page.locator("h1")).to_have_text("Réserver à l’accueil")  # noqa: RUF001
        if number == 0:
            accessible(page, f"staff-{tag}-2-book")
        hands.fill("#id_last_name", last)
        hands.fill("#id_first_name", first)
        hands.birth_date(born)
        hands.fill("#id_phone", phone)
        hands.press("form.details button[type=submit]")
        expect(page.locator(".notice-success")).to_contain_text("Réservé")
        booked.append(page.url.split("/appointments/")[1].split("/")[0])
        if number == 0:
            accessible(page, f"staff-{tag}-3-booked")
            if not keyboard:  # the cancellation asks first, with the reason the patient is told
                page.get_by_role("link", name="Annuler ce rendez-vous…").click()
                expect(page.locator("h1")).to_have_text("Annuler le rendez-vous")
                accessible(page, f"staff-{tag}-3b-cancel")
                page.get_by_role("link", name="Garder le rendez-vous").click()
        hands.press("a.back-to-agenda")
    expect(page.locator("main")).to_contain_text("ARNAUD")

    # The first caller arrives, the second does not come.
    hands.press(f'form[action*="{booked[0]}"] button[value="arrived"]')
    expect(page.locator("main")).to_contain_text("ARNAUD Bruno\n(arrivé)")
    hands.press(f'form[action*="{booked[1]}"] button[value="no_show"]')
    expect(page.locator("main")).to_contain_text("BERTIN Chloé\n(non venu)")

    # The practitioner is called away for that half-day: block it with the two patients left.
    last_time = page.locator(f'a[href*="/staff/appointments/{booked[3]}/"]')
    row = last_time.locator("xpath=ancestor::tr").inner_text()
    hour = int(TIME.search(row).group(1))
    hands.press("a.block-morning" if hour < 13 else "a.block-afternoon")
    hands.fill("#id_reason", "Urgence au bloc")
    hands.press("form.details button[type=submit]")
    preview = page.locator(".preview")
    expect(preview).to_contain_text("2 rendez-vous sont dedans")
    expect(preview).to_contain_text("CARREL Denis")
    expect(preview).to_contain_text("DUMAS Élise")
    accessible(page, f"staff-{tag}-4-block-preview")
    hands.press("button[name=confirm]")
    expect(page.locator("h1")).to_contain_text("Temps bloqué")
    accessible(page, f"staff-{tag}-5-blocked")
    for _patient in (2, 3):
        hands.press("button.move-to")
        expect(page.locator(".notice-success")).to_contain_text("Déplacé")
    expect(page.locator("main")).to_contain_text("Plus aucun rendez-vous dans ce temps.")

    # Their messages leave through the outbox (the demo's phone).
    for phone in ("+33633333333", "+33644444444"):
        for _ in range(120):
            if any(m["to"] == phone and "déplacé" in m["text"] for m in _outbox(demo)):
                break
            page.wait_for_timeout(500)
        else:
            raise AssertionError(f"no message to {phone} says the appointment moved")

    # The day's list for the desk, printed.
    page.goto(day)
    hands.press("a.print-day")
    expect(page).to_have_url(re.compile(r"print=1"))
    expect(page.locator("main")).to_contain_text("ARNAUD Bruno")
    accessible(page, f"staff-{tag}-6-print")


def test_a_secretarys_morning(demo, hub, page, accessible):
    secretary_morning(page, demo, hub, accessible, keyboard=False, code=2, tag="morning")


def test_a_secretarys_morning_with_the_keyboard_alone(demo, hub, page, accessible):
    secretary_morning(page, demo, hub, accessible, keyboard=True, code=3, tag="keyboard")


def test_an_opening_period_in_words_with_its_preview(demo, hub, page, accessible):
    secretary = next(s for s in demo["staff"] if s["role"] == "secretary")
    doctor = next(s for s in demo["staff"] if s["role"] == "practitioner")["scope"]["practitioner"]
    page.goto(hub + "/staff/login/")
    page.fill("#id_username", secretary["username"])
    page.fill("#id_password", secretary["password"])
    page.fill("#id_otp_token", secretary["backup_codes"][4])
    page.keyboard.press("Enter")
    page.get_by_role("link", name=doctor, exact=True).first.click()
    page.locator("a.rules-link").click()
    expect(page.locator("h1")).to_contain_text("Plages d’ouverture")  # noqa: RUF001
    accessible(page, "staff-rules-1-list")
    page.get_by_role("link", name="Ajouter une plage d’ouverture").click()  # noqa: RUF001
    page.get_by_label("samedi").check()
    page.fill("#id_start_time", "10:00")
    page.fill("#id_end_time", "11:00")
    page.locator("input[name=visit_types]").first.check()
    page.get_by_role("button", name="Voir les créneaux qu’elle ouvre").click()  # noqa: RUF001
    preview = page.locator(".preview")
    expect(preview).to_contain_text("créneaux ouvrent")
    expect(preview.locator(".preview-slots li").first).to_contain_text("sam ")
    accessible(page, "staff-rules-2-preview")
    page.get_by_role("button", name="Enregistrer cette plage").click()
    expect(page.locator(".notice-success")).to_contain_text("Enregistré")
    expect(page.locator("main")).to_contain_text("Chaque semaine le samedi, 10:00")


def test_the_patients_look_up_and_the_access_log(demo, hub, page, accessible):
    secretary = next(s for s in demo["staff"] if s["role"] == "secretary")
    auditor = next(s for s in demo["staff"] if s["role"] == "auditor")
    page.goto(hub + "/staff/login/")
    page.fill("#id_username", secretary["username"])
    page.fill("#id_password", secretary["password"])
    page.fill("#id_otp_token", secretary["backup_codes"][0])
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Trouver un patient").click()
    page.fill("#id_last_name", "Inconnu")
    page.fill("#id_birth_date", "1970-01-01")
    page.fill("#id_phone", "06 99 99 99 99")
    page.get_by_role("button", name="Rechercher").click()
    expect(page.locator("#found")).to_contain_text("0 rendez-vous trouvé")
    accessible(page, "staff-patients")
    page.get_by_role("button", name=re.compile("Se déconnecter")).click()

    page.fill("#id_username", auditor["username"])
    page.fill("#id_password", auditor["password"])
    page.fill("#id_otp_token", auditor["backup_codes"][0])
    page.keyboard.press("Enter")
    page.get_by_role("link", name="Journal des accès").click()
    expect(page.locator("h1")).to_have_text("Journal des accès")
    expect(page.locator("main")).to_contain_text("recherche de patient")
    accessible(page, "staff-access-log")
    page.get_by_role("link", name="Rapports").click()
    expect(page.locator("h1")).to_have_text("Rapports")
    expect(page.locator("main")).to_contain_text("Les opérateurs côte à côte")
    accessible(page, "staff-reports")
