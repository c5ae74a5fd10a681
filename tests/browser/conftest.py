"""Chromium through Playwright, against a real hub served by gunicorn on loopback.

Debian's chromium, launched headless with the flags the machine needs; in CI a missing
browser is a failure, never a skip."""

import os
import shutil

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


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A demo hub of its own (four weeks of slots), for the pages a patient meets."""
    data_dir = tmp_path_factory.mktemp("browser-hub")
    env = hub_env(tmp_path_factory.mktemp("elsewhere"), CRENEAU_HORIZON_WEEKS="4")
    try:
        base, process = start_demo_hub(data_dir, env)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield base
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture
def page(chromium):
    context = chromium.new_context(locale="fr-FR")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.problems = problems
    yield page
    context.close()
