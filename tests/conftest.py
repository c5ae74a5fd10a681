"""Shared fixtures. The demo network is loaded once per test database and every test runs in a
transaction rolled back at its end, so tests start from the same directory."""

import os
import tempfile

os.environ.setdefault("CRENEAU_DATA_DIR", tempfile.mkdtemp(prefix="creneau-test-"))

from datetime import UTC, date, datetime, time

import django.test
import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_static.models import StaticDevice

from creneau.agenda.services import availability_rule_save
from creneau.booking.patients import patient_details_clean
from creneau.channels.models import Channel
from creneau.channels.queries import channel_scope_for_key
from creneau.channels.services import organisation_public_site_ensure
from creneau.directory.models import Establishment, Organisation, PractitionerRole, VisitType


def pytest_configure(config):
    """The run's directory of demos loaded once (tests/cli.py, ``demo_copied``), made by the
    main process before it starts pytest-xdist's workers, which inherit its environment."""
    from tests.cli import TEMPLATES

    if not hasattr(config, "workerinput") and TEMPLATES not in os.environ:
        os.environ[TEMPLATES] = tempfile.mkdtemp(prefix="creneau-demos-")
        config.creneau_templates = os.environ[TEMPLATES]


def pytest_unconfigure(config):
    from pathlib import Path

    from tests.cli import templates_drop

    if root := getattr(config, "creneau_templates", None):
        templates_drop(Path(root))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    from creneau.directory.demo import demo_directory_load

    with django_db_blocker.unblock():
        network = demo_directory_load()
        for organisation in Organisation.objects.all():
            organisation_public_site_ensure(organisation=organisation, via="tests")
        assert network.hospitals
    yield


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Each test starts with no request counted against the per-client limits: the database's
    counts are rolled back with each test's transaction, the cache's are cleared."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def aphp(db) -> Organisation:
    return Organisation.objects.get(runs_hub=True)


@pytest.fixture
def private_establishments(db) -> list[Establishment]:
    return list(Establishment.objects.filter(organisation__is_public=False))


@pytest.fixture
def public_site(aphp) -> Channel:
    return Channel.objects.get(organisation=aphp, kind=Channel.Kind.PUBLIC_SITE)


class Client(django.test.Client):
    """The test client; ``force_login`` of a staff account also records a second factor on the
    session, as the admin's sign-in does with a one-time code (tested for real in
    tests/operators/test_credentials.py)."""

    def force_login(self, user, backend=None):
        super().force_login(user, backend)
        if user.is_staff or user.staff_accesses.exists():
            device, _ = StaticDevice.objects.get_or_create(
                user=user, name="tests", defaults={"confirmed": True}
            )
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = device.persistent_id
            session.save()


@pytest.fixture
def client():
    return Client()


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


# ---------------------------------------------------------------------------------------------
# Agendas and bookings. The clock is pinned to a Monday two weeks before the spring clock
# change of 2027 (28 March) and Easter Monday (29 March), so every agenda test crosses both.

NOW = datetime(2027, 3, 15, 7, 0, tzinfo=UTC)  # Monday 08:00 in Paris
PATIENT = {
    "last_name": "Martin",
    "first_name": "Camille",
    "birth_date": "1980-05-17",
    "phone": "06 12 34 56 78",
    "email": "camille.martin@example.org",
}
OTHER_PATIENT = {
    "last_name": "Nguyen",
    "first_name": "Louis",
    "birth_date": "1954-11-02",
    "phone": "+33 7 81 23 45 67",
}


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def patient():
    return patient_details_clean(
        **{**PATIENT, "birth_date": date.fromisoformat(PATIENT["birth_date"])}
    )


@pytest.fixture
def other_patient():
    details = {**OTHER_PATIENT, "birth_date": date.fromisoformat(OTHER_PATIENT["birth_date"])}
    return patient_details_clean(**details)


def role_in(establishment_name: str, specialty: str) -> PractitionerRole:
    return (
        PractitionerRole.objects.filter(
            establishment__name=establishment_name, specialties__code=specialty
        )
        .select_related("establishment", "practitioner")
        .order_by("pk")
        .first()
    )


@pytest.fixture
def pitie_neurosurgeon(db) -> PractitionerRole:
    return role_in("Hôpital de la Pitié-Salpêtrière", "neurosurgery")


@pytest.fixture
def private_neurosurgeon(db) -> PractitionerRole:
    return (
        PractitionerRole.objects.filter(
            establishment__organisation__is_public=False, specialties__code="neurosurgery"
        )
        .select_related("establishment", "practitioner")
        .order_by("pk")
        .first()
    )


@pytest.fixture
def open_agenda(clock):
    """Open a practitioner role's agenda through the service staff use, four weeks ahead."""

    def open_(role, codes=("neurosurgery-first",), **rule):
        visit_types = VisitType.objects.filter(
            organisation_id=role.establishment.organisation_id, code__in=codes
        )
        assert visit_types.count() == len(codes)
        rule.setdefault("recurrence", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR")
        rule.setdefault("starts_on", date(2027, 3, 1))
        rule.setdefault("start_time", time(9))
        rule.setdefault("end_time", time(12))
        rule.setdefault("horizon_weeks", 4)
        return availability_rule_save(practitioner_role=role, visit_types=list(visit_types), **rule)

    return open_


@pytest.fixture
def public_scope(public_site):
    return channel_scope_for_key(public_site.key)


@pytest.fixture
def widget(aphp, pitie_neurosurgeon) -> Channel:
    """A widget of the Pitié's neurosurgery department, embedded by the hospital's site."""
    from creneau.channels import services
    from creneau.directory.models import Department

    department = Department.objects.get(pk=pitie_neurosurgeon.department_id)
    perimeter = services.perimeter_create(
        organisation=aphp,
        name="Neurochirurgie Pitié",
        establishments=[department.establishment],
        departments=[department],
    )
    channel = services.channel_create(
        organisation=aphp, name="Widget", kind=Channel.Kind.EMBED, perimeter=perimeter
    )
    return services.channel_appearance_set(
        channel=channel,
        allowed_origins="https://www.example-hospital.fr/\n",
        brand_colour="#6b2d5c",
    )
