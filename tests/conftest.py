"""Shared fixtures. The demo network is loaded once per test database and every test runs in a
transaction rolled back at its end, so tests start from the same directory."""

import os
import tempfile

os.environ.setdefault("CRENEAU_DATA_DIR", tempfile.mkdtemp(prefix="creneau-test-"))

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from creneau.channels.models import Channel
from creneau.channels.services import organisation_public_site_ensure
from creneau.directory.models import Establishment, Organisation


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from creneau.directory.demo import demo_directory_load

    with django_db_blocker.unblock():
        network = demo_directory_load()
        for organisation in Organisation.objects.all():
            organisation_public_site_ensure(organisation=organisation, via="tests")
        assert network.hospitals
    yield


@pytest.fixture
def aphp(db) -> Organisation:
    return Organisation.objects.get(runs_hub=True)


@pytest.fixture
def private_establishments(db) -> list[Establishment]:
    return list(Establishment.objects.filter(organisation__is_public=False))


@pytest.fixture
def public_site(aphp) -> Channel:
    return Channel.objects.get(organisation=aphp, kind=Channel.Kind.PUBLIC_SITE)


@pytest.fixture
def hospital_admin(db):
    """A staff member of the hospital's IT who manages channels and perimeters."""
    return get_user_model().objects.create_superuser("it-admin", "", "correct horse battery")


@pytest.fixture
def secretary(db):
    """Staff without admin rights on channels: a secretary of one hospital."""
    return get_user_model().objects.create_user(
        "secretary-a", "", "correct horse battery", is_staff=True
    )


@pytest.fixture
def dump_directory():
    """A snapshot of every directory and channel table, to prove a refused change left it."""

    def dump() -> str:
        from io import StringIO

        out = StringIO()
        call_command("dumpdata", "directory", "channels", stdout=out)
        return out.getvalue()

    return dump
