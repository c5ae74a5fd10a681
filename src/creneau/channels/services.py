"""Every change to channels and perimeters: one function each, one transaction each."""

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from oauth2_provider.models import AccessToken, Application

from creneau.channels.models import (
    PLATFORM_KINDS,
    Agent,
    ApiClient,
    Channel,
    ChannelEvent,
    Contract,
    Desk,
    OperatorCompany,
    Perimeter,
    PerimeterDepartment,
    PerimeterEstablishment,
    PerimeterPractitionerRole,
    PerimeterVersion,
    Platform,
    parse_origins,
)
from creneau.channels.queries import perimeter_current_version
from creneau.directory.models import Department, Establishment, Organisation, PractitionerRole
from creneau.errors import DomainError
from creneau.ledger import payloads
from creneau.ledger.services import entry_append
from creneau.sealing import keyed_hash
from creneau.second_factor import SecondFactor, second_factor_issue


class ChannelError(DomainError):
    pass


def perimeter_check(
    *,
    establishments: Iterable[Establishment],
    departments: Iterable[Department],
    practitioner_roles: Iterable[PractitionerRole],
) -> None:
    """Refuse a narrowing outside the perimeter's establishments (it would silently match none)."""
    establishment_ids = {e.pk for e in establishments}
    for department in departments:
        if department.establishment_id not in establishment_ids:
            raise ChannelError(
                "perimeter_inconsistent",
                _("Department %(department)s is not in an establishment of the perimeter.")
                % {"department": department.name},
            )
    for role in practitioner_roles:
        if role.establishment_id not in establishment_ids:
            raise ChannelError(
                "perimeter_inconsistent",
                _("Practitioner role %(role)s is not in an establishment of the perimeter.")
                % {"role": role.public_id},
            )


@transaction.atomic
def _staff(by: AbstractBaseUser | None, via: str) -> dict:
    """Who made a change, for the ledger: a keyed hash of the staff account (an identifier
    that names nobody and reveals no sequence), or the tool it came through."""
    return {"by": keyed_hash(f"staff:{by.pk}", 16) if by is not None else "", "via": via}


def _ledger_channel(channel: Channel, action: str, by: AbstractBaseUser | None, via: str) -> None:
    entry_append(
        kind="channel",
        payload={
            "channel": channel.public_id,
            "name": channel.name,
            "channel_kind": channel.kind,
            "perimeter": channel.perimeter.public_id,
            "action": action,
            **_staff(by, via),
        },
    )


def perimeter_publish(
    *,
    perimeter: Perimeter,
    establishments: Iterable[Establishment],
    departments: Iterable[Department] = (),
    practitioner_roles: Iterable[PractitionerRole] = (),
    by: AbstractBaseUser | None = None,
    via: str = "",
    note: str = "",
) -> PerimeterVersion:
    """Publish a new version of ``perimeter``; publishing the current content again is a no-op."""
    wanted_establishments = set(establishments)
    wanted_departments = set(departments)
    wanted_roles = set(practitioner_roles)
    perimeter_check(
        establishments=wanted_establishments,
        departments=wanted_departments,
        practitioner_roles=wanted_roles,
    )
    # The row lock serialises publications of one perimeter, so version numbers never collide.
    Perimeter.objects.select_for_update().get(pk=perimeter.pk)
    current = perimeter_current_version(perimeter)
    if current is not None and (
        set(current.establishments.all()) == wanted_establishments
        and set(current.departments.all()) == wanted_departments
        and set(current.practitioner_roles.all()) == wanted_roles
    ):
        return current
    last = perimeter.versions.aggregate(last=Max("number"))["last"] or 0
    version = PerimeterVersion.objects.create(
        perimeter=perimeter,
        number=last + 1,
        published_by=by,
        published_via=via,
        note=note,
        narrowed_to_departments=bool(wanted_departments),
        narrowed_to_roles=bool(wanted_roles),
    )
    PerimeterEstablishment.objects.bulk_create(
        PerimeterEstablishment(version=version, establishment=e) for e in wanted_establishments
    )
    PerimeterDepartment.objects.bulk_create(
        PerimeterDepartment(version=version, department=d) for d in wanted_departments
    )
    PerimeterPractitionerRole.objects.bulk_create(
        PerimeterPractitionerRole(version=version, practitioner_role=r) for r in wanted_roles
    )
    entry_append(
        kind="perimeter", payload={**payloads.perimeter_version(version), **_staff(by, via)}
    )
    return version


@transaction.atomic
def perimeter_create(
    *,
    organisation: Organisation,
    name: str,
    establishments: Iterable[Establishment],
    departments: Iterable[Department] = (),
    practitioner_roles: Iterable[PractitionerRole] = (),
    by: AbstractBaseUser | None = None,
    via: str = "",
    note: str = "",
) -> Perimeter:
    if Perimeter.objects.filter(organisation=organisation, name=name).exists():
        raise ChannelError(
            "perimeter_exists",
            _("%(organisation)s already has a perimeter named %(name)s.")
            % {"organisation": organisation, "name": name},
        )
    perimeter = Perimeter.objects.create(organisation=organisation, name=name)
    perimeter_publish(
        perimeter=perimeter,
        establishments=establishments,
        departments=departments,
        practitioner_roles=practitioner_roles,
        by=by,
        via=via,
        note=note,
    )
    return perimeter


def _check_perimeter_owner(organisation: Organisation, perimeter: Perimeter) -> None:
    if perimeter.organisation_id != organisation.pk:
        raise ChannelError(
            "perimeter_of_other_organisation",
            _("A channel can only be bound to a perimeter of its own organisation."),
        )


@transaction.atomic
def channel_create(
    *,
    organisation: Organisation,
    name: str,
    kind: str,
    perimeter: Perimeter,
    key: str | None = None,
    by: AbstractBaseUser | None = None,
    via: str = "",
) -> Channel:
    if kind not in Channel.Kind.values:
        raise ChannelError("channel_kind_unknown", _("Unknown channel kind: %s.") % kind)
    _check_perimeter_owner(organisation, perimeter)
    channel = Channel(organisation=organisation, name=name, kind=kind, perimeter=perimeter)
    if key:
        channel.key = key
    try:
        # A savepoint, so that a refused duplicate leaves the caller's transaction usable.
        with transaction.atomic():
            channel.save()
    except IntegrityError:
        if kind == Channel.Kind.PUBLIC_SITE:
            raise ChannelError(
                "public_site_exists",
                _("%(organisation)s already has its public-site channel.")
                % {"organisation": organisation},
            ) from None
        raise ChannelError("channel_key_taken", _("This channel key is already used.")) from None
    ChannelEvent.objects.create(
        channel=channel, action=ChannelEvent.Action.CREATED, perimeter=perimeter, by=by, via=via
    )
    _ledger_channel(channel, "created", by, via)
    return channel


@transaction.atomic
def channel_rebind(
    *,
    channel: Channel,
    perimeter: Perimeter,
    by: AbstractBaseUser | None = None,
    via: str = "",
) -> Channel:
    _check_perimeter_owner(channel.organisation, perimeter)
    if channel.perimeter_id == perimeter.pk:
        return channel
    channel.perimeter = perimeter
    channel.save(update_fields=["perimeter"])
    ChannelEvent.objects.create(
        channel=channel, action=ChannelEvent.Action.REBOUND, perimeter=perimeter, by=by, via=via
    )
    _ledger_channel(channel, "rebound", by, via)
    return channel


@transaction.atomic
def channel_set_active(
    *, channel: Channel, active: bool, by: AbstractBaseUser | None = None, via: str = ""
) -> Channel:
    if channel.is_active == active:
        return channel
    channel.is_active = active
    channel.save(update_fields=["is_active"])
    action = ChannelEvent.Action.ENABLED if active else ChannelEvent.Action.DISABLED
    ChannelEvent.objects.create(
        channel=channel, action=action, perimeter=channel.perimeter, by=by, via=via
    )
    _ledger_channel(channel, "enabled" if active else "disabled", by, via)
    return channel


@transaction.atomic
def channel_update(
    *,
    channel: Channel,
    name: str,
    perimeter: Perimeter,
    is_active: bool,
    by: AbstractBaseUser | None = None,
    via: str = "",
) -> Channel:
    """Apply an edit from the admin: each real change goes through its own service."""
    if channel.name != name:
        channel.name = name
        channel.save(update_fields=["name"])
    channel_rebind(channel=channel, perimeter=perimeter, by=by, via=via)
    return channel_set_active(channel=channel, active=is_active, by=by, via=via)


@transaction.atomic
def channel_appearance_set(
    *,
    channel: Channel,
    allowed_origins: str,
    brand_colour: str = "",
    font: str = "",
    logo=None,
) -> Channel:
    """A widget's embedding origins and look. The origins are checked and stored normalised,
    one per line; they become the frame-ancestors of every page of the widget."""
    try:
        origins = parse_origins(allowed_origins)
    except ValidationError as error:
        raise ChannelError("invalid_origin", " ".join(error.messages), status=422) from None
    channel.allowed_origins = "\n".join(dict.fromkeys(origins))
    channel.brand_colour = brand_colour
    channel.font = font
    if logo is not None:
        channel.logo = logo or ""
    channel.full_clean(validate_unique=False, validate_constraints=False)
    channel.save(update_fields=["allowed_origins", "brand_colour", "font", "logo"])
    return channel


@transaction.atomic
def organisation_public_site_ensure(
    *, organisation: Organisation, by: AbstractBaseUser | None = None, via: str = ""
) -> Channel:
    """The organisation's public-site channel, created on first need with a perimeter of the
    organisation's own active establishments (later changes are explicit publications)."""
    existing = Channel.objects.filter(
        organisation=organisation, kind=Channel.Kind.PUBLIC_SITE
    ).first()
    if existing is not None:
        return existing
    # Names are data: written in the hub's own language, whatever the caller's.
    with translation.override(settings.LANGUAGE_CODE):
        return _public_site_create(organisation=organisation, by=by, via=via)


def _public_site_create(
    *, organisation: Organisation, by: AbstractBaseUser | None, via: str
) -> Channel:
    perimeter = perimeter_create(
        organisation=organisation,
        name=_("Public site"),
        establishments=organisation.establishments.filter(is_active=True),
        by=by,
        via=via,
        note=_("The organisation's own establishments."),
    )
    return channel_create(
        organisation=organisation,
        name=_("Public site — %(organisation)s") % {"organisation": organisation},
        kind=Channel.Kind.PUBLIC_SITE,
        perimeter=perimeter,
        by=by,
        via=via,
    )


def desk_channel_ensure(*, establishment: Establishment, department: Department | None) -> Desk:
    """The desk channel of a department (or of an establishment's practitioners outside any
    department), created on first need with a perimeter of that department alone. Two staff
    members asking at once get the same desk."""
    desks = Desk.objects.select_related("channel__perimeter", "channel__organisation")
    found = desks.filter(establishment=establishment, department=department).first()
    if found is not None:
        return found
    place = department or establishment
    organisation = establishment.organisation
    with translation.override(settings.LANGUAGE_CODE):
        name = _("Desk — %(place)s") % {
            "place": f"{department.name}, {establishment.name}" if department else establishment
        }
        try:
            with transaction.atomic():
                perimeter = perimeter_create(
                    organisation=organisation,
                    name=f"{name} ({place.pk})",
                    establishments=[establishment],
                    departments=[department] if department else [],
                    via="desk",
                    note=_("What the desk's staff may book for patients."),
                )
                channel = channel_create(
                    organisation=organisation,
                    name=name,
                    kind=Channel.Kind.DESK,
                    perimeter=perimeter,
                    via="desk",
                )
                Desk.objects.create(
                    channel=channel, establishment=establishment, department=department
                )
        except (IntegrityError, ChannelError):
            # Created meanwhile by another request: theirs is the desk.
            pass
    return desks.get(establishment=establishment, department=department)


# ---------------------------------------------------------------------------------------------
# Operators and their contracts


@transaction.atomic
def operator_register(
    *,
    organisation: Organisation,
    name: str,
    kind: str,
    perimeter: Perimeter,
    starts_on,
    ends_on=None,
    actions: Iterable[str] = Contract.ACTIONS,
    bookings_per_day: int = 500,
    requests_per_minute: int = 600,
    holds_at_once: int = 20,
    certificate_subject: str = "",
    feedback_url: str = "",
    regulator_identifier: str = "",
    by: AbstractBaseUser | None = None,
    via: str = "",
) -> Contract:
    """Register an operator company under contract: its own channel bound to ``perimeter``, the
    actions it may take, its validity dates and quotas. A publishing platform (SAS, SMART
    finder, FHIR partner) gets its platform settings too: the subject of its client
    certificate, and for the SAS where its bookings are reported and who booked by default."""
    if kind not in OperatorCompany.Kind.values:
        raise ChannelError("operator_kind_unknown", _("Unknown operator kind: %s.") % kind)
    if ends_on is not None and ends_on < starts_on:
        raise ChannelError(
            "contract_dates", _("A contract cannot end before it begins."), status=422
        )
    unknown = set(actions) - set(Contract.ACTIONS)
    if unknown:
        raise ChannelError(
            "contract_action_unknown",
            _("Unknown actions: %(actions)s.") % {"actions": ", ".join(sorted(unknown))},
            status=422,
        )
    operator, _created = OperatorCompany.objects.get_or_create(
        organisation=organisation, name=name, defaults={"kind": kind}
    )
    channel = channel_create(
        organisation=organisation,
        name=name,
        kind=Channel.Kind.OPERATOR
        if kind == OperatorCompany.Kind.CALL_CENTRE
        else Channel.Kind.PARTNER,
        perimeter=perimeter,
        by=by,
        via=via,
    )
    contract = Contract.objects.create(
        operator=operator,
        channel=channel,
        starts_on=starts_on,
        ends_on=ends_on,
        bookings_per_day=bookings_per_day,
        requests_per_minute=requests_per_minute,
        holds_at_once=holds_at_once,
        **{f"may_{action}": action in set(actions) for action in Contract.ACTIONS},
    )
    if kind in PLATFORM_KINDS:
        if (
            certificate_subject
            and Platform.objects.filter(certificate_subject=certificate_subject).exists()
        ):
            raise ChannelError(
                "certificate_taken",
                _("Another platform is registered with this client certificate."),
                status=422,
            )
        platform = Platform(
            contract=contract,
            certificate_subject=certificate_subject,
            feedback_url=feedback_url,
            regulator_identifier=regulator_identifier,
        )
        platform.full_clean()
        platform.save()
    return contract


@transaction.atomic
def contract_status_set(
    *, contract: Contract, status: str, by: AbstractBaseUser | None = None, via: str = ""
) -> Contract:
    """Suspend, resume or end a contract: its channel is disabled (or enabled again) in the
    same transaction, so the next request is refused (or served). An ended contract stays
    ended."""
    if status not in Contract.Status.values:
        raise ChannelError("contract_status_unknown", _("Unknown contract status."), status=422)
    if contract.status == Contract.Status.ENDED and status != Contract.Status.ENDED:
        raise ChannelError("contract_ended", _("An ended contract cannot be resumed."))
    contract.status = status
    contract.save(update_fields=["status", "changed_at"])
    channel_set_active(
        channel=contract.channel, active=status == Contract.Status.ACTIVE, by=by, via=via
    )
    return contract


# ---------------------------------------------------------------------------------------------
# Agents and API clients of an operator


@dataclass(frozen=True)
class AgentCredentials:
    """An agent and its second factor, shown once."""

    agent: Agent
    factor: SecondFactor


def _with_second_factor(agent: Agent) -> AgentCredentials:
    return AgentCredentials(agent=agent, factor=second_factor_issue(user=agent.user))


@transaction.atomic
def agent_create(
    *, operator: OperatorCompany, username: str, password: str, email: str = ""
) -> AgentCredentials:
    """An agent account of ``operator``, with its second factor (an authenticator app's secret
    and backup codes, returned once). Not a staff account: it opens the console only."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ChannelError(
            "username_taken", _("The user name %(name)s is taken.") % {"name": username[:60]}
        )
    user = User.objects.create_user(username=username, password=password, email=email)
    return _with_second_factor(Agent.objects.create(user=user, operator=operator))


@transaction.atomic
def agent_second_factor_reset(*, agent: Agent) -> AgentCredentials:
    """A new authenticator secret and new backup codes (the old ones stop working)."""
    return _with_second_factor(agent)


@dataclass(frozen=True)
class ClientSecret:
    client: ApiClient
    client_id: str
    client_secret: str


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@transaction.atomic
def api_client_create(*, contract: Contract, name: str) -> ClientSecret:
    """An API client of the operator, bound to ``contract``: its client id and secret (shown
    once, stored hashed)."""
    secret = _new_secret()
    application = Application.objects.create(
        name=f"{contract.operator.name}: {name}"[:255],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS,
        client_secret=secret,
        hash_client_secret=True,
    )
    client = ApiClient.objects.create(contract=contract, application=application, name=name)
    return ClientSecret(client=client, client_id=application.client_id, client_secret=secret)


@transaction.atomic
def api_client_rotate(
    *, client: ApiClient, grace: timedelta = timedelta(hours=24), now: datetime | None = None
) -> ClientSecret:
    """A new secret for the client; the previous one still opens tokens for ``grace``, so that
    the operator's servers switch without downtime. Tokens already issued run to their end."""
    now = now or timezone.now()
    application = Application.objects.select_for_update().get(pk=client.application_id)
    secret = _new_secret()
    client.previous_secret = application.client_secret  # already hashed
    client.previous_valid_until = now + grace
    client.rotated_at = now
    client.save(update_fields=["previous_secret", "previous_valid_until", "rotated_at"])
    application.client_secret = secret
    application.save(update_fields=["client_secret"])
    return ClientSecret(client=client, client_id=application.client_id, client_secret=secret)


@transaction.atomic
def api_client_revoke(*, client: ApiClient, previous_only: bool = False) -> None:
    """End the previous secret's grace at once, or (``previous_only=False``) cut the client
    off: no secret works any more and its tokens are revoked."""
    client.previous_secret = ""
    client.previous_valid_until = None
    client.save(update_fields=["previous_secret", "previous_valid_until"])
    if not previous_only:
        application = client.application
        application.client_secret = make_password(None)
        application.save(update_fields=["client_secret"])
        AccessToken.objects.filter(application=application).delete()
