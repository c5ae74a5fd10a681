"""Both catalogues complete, compiled, and used by the pages."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest

import creneau

LOCALE = Path(creneau.__file__).parent / "locale"


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_catalogue_is_complete_and_compiled(language):
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    assert len(po) > 100
    assert po.untranslated_entries() == []
    assert po.fuzzy_entries() == []
    mo = polib.mofile(str(LOCALE / language / "LC_MESSAGES" / "django.mo"))
    compiled = {(e.msgid, e.msgstr) for e in mo if not e.msgid_plural}
    assert {(e.msgid, e.msgstr) for e in po.translated_entries() if not e.msgid_plural} <= compiled


def test_every_string_of_the_code_is_in_the_catalogue(tmp_path):
    """makemessages on the sources finds nothing the French catalogue lacks."""
    if shutil.which("xgettext") is None:
        pytest.skip("GNU gettext is not installed")
    copy = tmp_path / "creneau"
    shutil.copytree(Path(creneau.__file__).parent, copy, ignore=shutil.ignore_patterns("*.pyc"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "fr", "-i", "*/migrations/*"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "creneau.settings"},
    )
    po = polib.pofile(str(copy / "locale" / "fr" / "LC_MESSAGES" / "django.po"))
    assert [e.msgid for e in po.untranslated_entries() + po.fuzzy_entries()] == []


@pytest.mark.django_db
def test_the_home_page_speaks_french_by_default_and_english_on_request(client):
    french = client.get("/").content.decode()
    assert "Nos hôpitaux" in french
    assert '<html lang="fr">' in french
    # The language switch is a link to the same page under /en/ (no cookie needed).
    assert 'href="/en/" hreflang="en"' in french
    english = client.get("/en/").content.decode()
    assert "Our hospitals" in english
    assert '<html lang="en">' in english
    assert 'href="/" hreflang="fr"' in english
