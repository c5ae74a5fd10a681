"""Chromium through Playwright, against a real hub served by gunicorn on loopback.

Debian's chromium, launched headless with the flags the machine needs; in CI a missing
browser is a failure, never a skip."""

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.cli import hub_env, start_demo_hub

CHROMIUM = os.environ.get("CRENEAU_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium is not installed at {CHROMIUM}: CI needs it")
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """A demo hub of its own (four weeks of slots) and its credentials, for every browser test."""
    data_dir = tmp_path_factory.mktemp("browser-hub")
    env = hub_env(tmp_path_factory.mktemp("elsewhere"), CRENEAU_HORIZON_WEEKS="4")
    try:
        base, process = start_demo_hub(data_dir, env)
    except RuntimeError as error:
        pytest.fail(str(error))
    credentials = json.loads((data_dir / "demo-credentials.json").read_text(encoding="utf-8"))
    yield {"base": base, "data_dir": data_dir, **credentials}
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
def hub(demo):
    return demo["base"]


def new_page(browser, **options):
    context = browser.new_context(**options)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    return page


@pytest.fixture
def page(chromium):
    page = new_page(chromium, locale="fr-FR")
    yield page
    page.context.close()


@pytest.fixture
def phone_page(chromium):
    """A phone-sized screen, touch and all."""
    page = new_page(
        chromium,
        locale="fr-FR",
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    yield page
    page.context.close()


SCREENSHOTS = Path(
    os.environ.get("CRENEAU_SCREENSHOTS", Path(__file__).parents[2] / "build" / "screenshots")
)


@pytest.fixture(scope="session")
def screenshot():
    """Save a full-page screenshot as a test artefact (build/screenshots/NAME.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture(scope="session")
def accessible():
    """Check a page (or a widget's frame) with axe-core and keep a screenshot of it."""
    from tests.browser.axe import check_accessibility

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    record = SCREENSHOTS / "axe.json"

    def check(page, name: str, *, frame=None) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        check_accessibility(frame or page, name, record)

    return check
