"""Perimeters: versioned, validated, and applied inside the queries that serve a channel."""

import pytest

from creneau.channels import services
from creneau.channels.models import Channel
from creneau.channels.queries import ChannelScope, channel_scope_for_key
from creneau.directory.models import Department, Establishment, PractitionerRole


@pytest.fixture
def two_hospitals(aphp):
    return list(Establishment.objects.filter(organisation=aphp).order_by("name")[:2])


def test_each_publication_is_a_new_version_and_the_old_ones_are_kept(
    aphp, two_hospitals, hospital_admin
):
    first, second = two_hospitals
    perimeter = services.perimeter_create(
        organisation=aphp, name="Standard", establishments=[first], by=hospital_admin
    )
    version_2 = services.perimeter_publish(
        perimeter=perimeter, establishments=[first, second], by=hospital_admin, note="ajout"
    )
    assert version_2.number == 2
    assert version_2.published_by == hospital_admin
    history = list(perimeter.versions.order_by("number"))
    assert [list(v.establishments.all()) for v in history] == [[first], [first, second]]


def test_publishing_the_same_content_again_makes_no_new_version(aphp, two_hospitals):
    perimeter = services.perimeter_create(
        organisation=aphp, name="Stable", establishments=two_hospitals
    )
    again = services.perimeter_publish(perimeter=perimeter, establishments=two_hospitals)
    assert again.number == 1
    assert perimeter.versions.count() == 1


def test_a_department_outside_the_perimeters_establishments_is_refused(aphp, two_hospitals):
    first, second = two_hospitals
    elsewhere = Department.objects.filter(establishment=second).first()
    with pytest.raises(services.ChannelError) as refused:
        services.perimeter_create(
            organisation=aphp, name="Incohérent", establishments=[first], departments=[elsewhere]
        )
    assert refused.value.code == "perimeter_inconsistent"


def test_a_department_narrowing_keeps_only_that_departments_practitioners(aphp):
    neuro = Department.objects.get(
        establishment__name="Hôpital de la Pitié-Salpêtrière", code="neurosurgery"
    )
    perimeter = services.perimeter_create(
        organisation=aphp,
        name="Neurochirurgie Pitié",
        establishments=[neuro.establishment],
        departments=[neuro],
    )
    channel = services.channel_create(
        organisation=aphp, name="Widget neuro", kind=Channel.Kind.EMBED, perimeter=perimeter
    )
    scope = channel_scope_for_key(channel.key)
    roles = list(scope.practitioner_roles())
    assert roles
    assert {role.department_id for role in roles} == {neuro.pk}
    assert PractitionerRole.objects.filter(establishment=neuro.establishment).count() > len(roles)


def test_a_role_narrowing_keeps_only_those_roles(aphp):
    role = PractitionerRole.objects.filter(establishment__organisation=aphp).first()
    perimeter = services.perimeter_create(
        organisation=aphp,
        name="Un praticien",
        establishments=[role.establishment],
        practitioner_roles=[role],
    )
    channel = services.channel_create(
        organisation=aphp, name="Widget praticien", kind=Channel.Kind.EMBED, perimeter=perimeter
    )
    assert list(channel_scope_for_key(channel.key).practitioner_roles()) == [role]


def test_the_perimeter_filter_is_a_subquery_of_the_final_sql(public_site):
    scope = channel_scope_for_key(public_site.key)
    assert isinstance(scope, ChannelScope)
    sql = str(scope.practitioner_roles().query)
    assert "channels_perimeterestablishment" in sql


def test_a_channel_cannot_use_another_organisations_perimeter(aphp, private_establishments):
    other = private_establishments[0].organisation
    foreign = services.perimeter_create(
        organisation=other, name="Privé", establishments=[private_establishments[0]]
    )
    with pytest.raises(services.ChannelError) as refused:
        services.channel_create(
            organisation=aphp, name="Détournement", kind=Channel.Kind.EMBED, perimeter=foreign
        )
    assert refused.value.code == "perimeter_of_other_organisation"


def test_an_organisation_has_one_public_site(aphp, public_site):
    with pytest.raises(services.ChannelError) as refused:
        services.channel_create(
            organisation=aphp,
            name="Second site",
            kind=Channel.Kind.PUBLIC_SITE,
            perimeter=public_site.perimeter,
        )
    assert refused.value.code == "public_site_exists"
    assert services.organisation_public_site_ensure(organisation=aphp) == public_site


def test_channel_changes_are_recorded_with_who_made_them(aphp, public_site, hospital_admin):
    perimeter = services.perimeter_create(
        organisation=aphp,
        name="Autre",
        establishments=[Establishment.objects.filter(organisation=aphp).first()],
    )
    channel = services.channel_create(
        organisation=aphp,
        name="Plateforme",
        kind=Channel.Kind.PARTNER,
        perimeter=public_site.perimeter,
        by=hospital_admin,
    )
    services.channel_rebind(channel=channel, perimeter=perimeter, by=hospital_admin)
    services.channel_set_active(channel=channel, active=False, by=hospital_admin)
    actions = list(channel.events.order_by("id").values_list("action", "by"))
    assert actions == [
        ("created", hospital_admin.pk),
        ("rebound", hospital_admin.pk),
        ("disabled", hospital_admin.pk),
    ]
