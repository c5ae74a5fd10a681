"""The directory as a channel sees it: every list here is filtered by the channel's perimeter."""

from django.http import Http404, HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from creneau.channels import queries
from creneau.channels.queries import channel_scope_for_request
from creneau.dates import MAX_OFFSET

router = Router(tags=["directory"])

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class OrganisationOut(Schema):
    id: str
    name: str
    short_name: str


class EstablishmentOut(Schema):
    id: str
    finess: str
    name: str
    organisation: OrganisationOut
    address: str
    postcode: str
    city: str
    latitude: float | None
    longitude: float | None
    time_zone: str
    phone: str


class EstablishmentRef(Schema):
    id: str
    finess: str
    name: str
    city: str


class DepartmentOut(Schema):
    id: str
    code: str
    name: str


class SpecialtyOut(Schema):
    code: str
    label: str
    label_fr: str
    label_en: str


class RoleOut(Schema):
    id: str
    establishment: EstablishmentRef
    department: DepartmentOut | None
    specialties: list[str]


class PractitionerOut(Schema):
    id: str
    rpps: str
    title: str
    first_name: str
    last_name: str
    display_name: str
    roles: list[RoleOut]


class VisitTypeOut(Schema):
    id: str
    code: str
    label: str
    label_fr: str
    label_en: str
    specialty: str
    organisation: str
    duration_minutes: int
    new_patients_allowed: bool
    preparation: str


class ChannelOut(Schema):
    id: str
    name: str
    kind: str
    perimeter: str
    perimeter_version: int


class PageParams(Schema):
    limit: int = Field(PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class EstablishmentPage(Schema):
    channel: ChannelOut
    count: int
    limit: int
    offset: int
    items: list[EstablishmentOut]


class PractitionerPage(Schema):
    channel: ChannelOut
    count: int
    limit: int
    offset: int
    items: list[PractitionerOut]


class EstablishmentFilters(PageParams):
    specialty: str | None = Field(None, description="a specialty code")
    city: str | None = None
    postcode: str | None = None
    name: str | None = Field(None, description="part of the establishment's name")


class PractitionerFilters(PageParams):
    specialty: str | None = Field(None, description="a specialty code")
    establishment: str | None = Field(None, description="an establishment id or FINESS number")
    name: str | None = Field(None, description="part of the last or first name, any accents")


class VisitTypeFilters(Schema):
    specialty: str | None = Field(None, description="a specialty code")
    establishment: str | None = Field(None, description="an establishment id or FINESS number")


def channel_out(scope: queries.ChannelScope) -> dict:
    return {
        "id": scope.channel.public_id,
        "name": scope.channel.name,
        "kind": scope.channel.kind,
        "perimeter": scope.channel.perimeter.name,
        "perimeter_version": scope.version.number,
    }


def _establishment(establishment) -> dict:
    organisation = establishment.organisation
    return {
        "id": establishment.public_id,
        "finess": establishment.finess,
        "name": establishment.name,
        "organisation": {
            "id": organisation.public_id,
            "name": organisation.name,
            "short_name": organisation.short_name,
        },
        "address": establishment.address,
        "postcode": establishment.postcode,
        "city": establishment.city,
        "latitude": establishment.latitude,
        "longitude": establishment.longitude,
        "time_zone": establishment.time_zone,
        "phone": establishment.phone,
    }


def _practitioner(practitioner) -> dict:
    return {
        "id": practitioner.public_id,
        "rpps": practitioner.rpps,
        "title": practitioner.title,
        "first_name": practitioner.first_name,
        "last_name": practitioner.last_name,
        "display_name": practitioner.display_name,
        "roles": [
            {
                "id": role.public_id,
                "establishment": {
                    "id": role.establishment.public_id,
                    "finess": role.establishment.finess,
                    "name": role.establishment.name,
                    "city": role.establishment.city,
                },
                "department": (
                    {
                        "id": role.department.public_id,
                        "code": role.department.code,
                        "name": role.department.name,
                    }
                    if role.department_id
                    else None
                ),
                "specialties": sorted(s.code for s in role.specialties.all()),
            }
            for role in practitioner.visible_roles
        ],
    }


@router.get("/specialties", response=list[SpecialtyOut], summary="Specialties practised")
def specialties_list(request: HttpRequest):
    """The specialties practised somewhere inside the channel's perimeter."""
    scope = channel_scope_for_request(request)
    return [
        {"code": s.code, "label": s.label, "label_fr": s.label_fr, "label_en": s.label_en}
        for s in queries.specialties_in_scope(scope)
    ]


@router.get("/establishments", response=EstablishmentPage, summary="Establishments")
def establishments_list(request: HttpRequest, filters: Query[EstablishmentFilters]):
    scope = channel_scope_for_request(request)
    found = queries.establishments_in_scope(
        scope,
        specialty=filters.specialty,
        city=filters.city,
        postcode=filters.postcode,
        name=filters.name,
    )
    page = found[filters.offset : filters.offset + filters.limit]
    return {
        "channel": channel_out(scope),
        "count": found.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": [_establishment(e) for e in page],
    }


@router.get("/establishments/{establishment_id}", response=EstablishmentOut)
def establishment_detail(request: HttpRequest, establishment_id: str):
    scope = channel_scope_for_request(request)
    establishment = queries.establishments_in_scope(scope, ident=establishment_id).first()
    if establishment is None:
        raise Http404(_("No establishment %s in this channel's perimeter.") % establishment_id)
    return _establishment(establishment)


@router.get("/practitioners", response=PractitionerPage, summary="Practitioners")
def practitioners_list(request: HttpRequest, filters: Query[PractitionerFilters]):
    scope = channel_scope_for_request(request)
    found = queries.practitioners_in_scope(
        scope,
        specialty=filters.specialty,
        establishment=filters.establishment,
        name=filters.name,
    )
    page = found[filters.offset : filters.offset + filters.limit]
    return {
        "channel": channel_out(scope),
        "count": found.count(),
        "limit": filters.limit,
        "offset": filters.offset,
        "items": [_practitioner(p) for p in page],
    }


@router.get("/practitioners/{practitioner_id}", response=PractitionerOut)
def practitioner_detail(request: HttpRequest, practitioner_id: str):
    scope = channel_scope_for_request(request)
    practitioner = queries.practitioners_in_scope(scope, ident=practitioner_id).first()
    if practitioner is None:
        raise Http404(_("No practitioner %s in this channel's perimeter.") % practitioner_id)
    return _practitioner(practitioner)


@router.get("/visit-types", response=list[VisitTypeOut], summary="Visit types")
def visit_types_list(request: HttpRequest, filters: Query[VisitTypeFilters]):
    """Visit types offered inside the perimeter: by an organisation with a practitioner of the
    visit type's specialty in one of the perimeter's establishments."""
    scope = channel_scope_for_request(request)
    return [
        {
            "id": v.public_id,
            "code": v.code,
            "label": v.label,
            "label_fr": v.label_fr,
            "label_en": v.label_en,
            "specialty": v.specialty.code,
            "organisation": v.organisation.public_id,
            "duration_minutes": v.duration_minutes,
            "new_patients_allowed": v.new_patients_allowed,
            "preparation": v.preparation,
        }
        for v in queries.visit_types_in_scope(
            scope, specialty=filters.specialty, establishment=filters.establishment
        )
    ]
