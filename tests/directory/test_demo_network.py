from creneau.directory.demo import demo_directory_load
from creneau.directory.models import (
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)


def test_the_demo_network_has_the_hospitals_and_clinics_the_issue_asks_for(aphp):
    assert aphp.name == "Assistance Publique – Hôpitaux de Paris"  # noqa: RUF001
    assert Establishment.objects.filter(organisation=aphp).count() >= 38
    private = Establishment.objects.exclude(organisation=aphp)
    assert private.count() >= 6
    assert Organisation.objects.filter(is_public=False).count() >= 2
    assert 780 <= Practitioner.objects.count() <= 820
    assert Specialty.objects.filter(practitioner_roles__isnull=False).distinct().count() >= 25
    neurosurgery = PractitionerRole.objects.filter(specialties__code="neurosurgery")
    assert neurosurgery.filter(establishment__organisation=aphp).exists()
    assert neurosurgery.exclude(establishment__organisation=aphp).exists()
    assert VisitType.objects.filter(specialty__code="neurosurgery", organisation=aphp).exists()


def test_every_identifier_of_the_demo_passes_its_check_key(db):
    for establishment in Establishment.objects.all():
        establishment.full_clean()
    for practitioner in Practitioner.objects.all()[:200]:
        practitioner.full_clean()


def test_loading_the_demo_again_changes_nothing_because_it_is_seeded(db, dump_directory):
    before = dump_directory()
    demo_directory_load()
    assert dump_directory() == before
