"""The perimeter policy: what a channel may see, applied inside every query that serves it."""

from dataclasses import dataclass, replace
from typing import Any

from django.db import router
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from creneau import rows
from creneau.channels.models import (
    Agent,
    ApiClient,
    Channel,
    Contract,
    OperatorCompany,
    Perimeter,
    PerimeterDepartment,
    PerimeterEstablishment,
    PerimeterPractitionerRole,
    PerimeterVersion,
    PlatformVisibility,
)
from creneau.channels.oauth import ACTION_SCOPES, TokenInvalid, bearer_for_request
from creneau.directory.models import (
    Establishment,
    Organisation,
    Practitioner,
    PractitionerRole,
    Specialty,
    VisitType,
)
from creneau.directory.text import fold
from creneau.errors import DomainError
from creneau.ratelimit import count_in_window

CHANNEL_HEADER = "X-Creneau-Channel"
CHANNEL_PARAMETER = "channel"


def perimeter_current_version(perimeter: Perimeter) -> PerimeterVersion | None:
    return PerimeterVersion.objects.filter(perimeter=perimeter).order_by("-number").first()


class QuotaExceeded(DomainError):
    status = 429

    def __init__(self, message: str, retry_after: int, code: str = "quota_exceeded") -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class ActionNotAllowed(DomainError):
    status = 403


@dataclass(frozen=True)
class ChannelScope:
    """A channel with the perimeter version in force for the request it serves.

    Each method returns a lazy queryset: callers filter further and the perimeter stays a
    sub-select of the final SQL, never a list of ids carried through Python.
    """

    channel: Channel
    version: PerimeterVersion
    contract: Contract | None = None
    # Who acts through an operator's channel: an agent (a user) at the console, or an API
    # client with the scopes of its token.
    agent: Any = None
    api_client: ApiClient | None = None
    token_scopes: frozenset[str] | None = None

    @property
    def operator(self) -> OperatorCompany | None:
        return self.contract.operator if self.contract is not None else None

    @property
    def sees_reserved_visits(self) -> bool:
        """Only the SAS platform's channel offers the visits reserved to professionals and
        regulators (TRE_R314 PRO, SNP); every other channel, the public site first, never
        offers nor books them."""
        operator = self.operator
        return operator is not None and operator.kind == OperatorCompany.Kind.SAS

    def reserved_visit_types(self) -> QuerySet[PlatformVisibility]:
        """The visits this channel may not offer (an empty set for the SAS), as a sub-select."""
        if self.sees_reserved_visits:
            return PlatformVisibility.objects.none().values("visit_type_id")
        return PlatformVisibility.objects.values("visit_type_id")

    def require(self, action: str) -> None:
        """Refuse an action the channel's contract does not allow (search, book, move,
        cancel), or that the request's token has no scope for; channels without a contract
        (the public site, widgets) allow them all."""
        if (
            self.contract is not None
            and action in Contract.ACTIONS
            and not self.contract.allows(action)
        ):
            raise ActionNotAllowed(
                "action_not_allowed",
                _("This channel's contract does not allow this action (%(action)s).")
                % {"action": action},
            )
        if self.token_scopes is not None and ACTION_SCOPES[action] not in self.token_scopes:
            raise ActionNotAllowed(
                "insufficient_scope",
                _("This access token lacks the scope %(scope)s.")
                % {"scope": ACTION_SCOPES[action]},
            )

    def _establishment_ids(self) -> QuerySet[PerimeterEstablishment]:
        return PerimeterEstablishment.objects.filter(version=self.version).values(
            "establishment_id"
        )

    def establishments(self) -> QuerySet[Establishment]:
        return Establishment.objects.filter(is_active=True, pk__in=self._establishment_ids())

    def practitioner_roles(self) -> QuerySet[PractitionerRole]:
        roles = PractitionerRole.objects.filter(
            is_active=True,
            establishment__is_active=True,
            establishment_id__in=self._establishment_ids(),
        )
        if self.version.narrowed_to_departments:
            roles = roles.filter(
                department_id__in=PerimeterDepartment.objects.filter(version=self.version).values(
                    "department_id"
                )
            )
        if self.version.narrowed_to_roles:
            roles = roles.filter(
                pk__in=PerimeterPractitionerRole.objects.filter(version=self.version).values(
                    "practitioner_role_id"
                )
            )
        return roles


class ChannelUnavailable(DomainError):
    status = 404


def _contract_in_force(channel: Channel, contract: Contract | None = None) -> Contract | None:
    """The channel's contract, if it has one (read here unless the caller already has it);
    refused unless active and within its dates."""
    if channel.kind not in (Channel.Kind.OPERATOR, Channel.Kind.PARTNER):
        return None
    if contract is None:
        contract = Contract.objects.filter(channel=channel).select_related("operator").first()
    if contract is None or not contract.in_force():
        raise ChannelUnavailable(
            "contract_not_in_force",
            _("This channel's contract is not in force (suspended, ended or not begun)."),
            status=403,
        )
    return contract


def _count_request(contract: Contract) -> None:
    """The contract's requests per minute."""
    limit = contract.requests_per_minute
    if not limit:
        return
    count, retry_after = count_in_window(f"creneau:quota:{contract.pk}", 60)
    if count > limit:
        raise QuotaExceeded(
            _("This channel has used its %(limit)s requests of this minute.") % {"limit": limit},
            retry_after=retry_after,
        )


def _scope(
    channel: Channel, contract: Contract | None = None, version: PerimeterVersion | None = None
) -> ChannelScope:
    if not channel.is_active:
        raise ChannelUnavailable("channel_disabled", _("This channel is disabled."), status=403)
    contract = _contract_in_force(channel, contract)
    version = version or perimeter_current_version(channel.perimeter)
    if version is None:
        raise ChannelUnavailable(
            "perimeter_unpublished", _("This channel's perimeter has no published version.")
        )
    return ChannelScope(channel=channel, version=version, contract=contract)


# Column names from the models' metadata; the values are always parameters.
_CHANNEL_WITH_VERSION = f"""
    SELECT {rows.columns(Channel, "c")}, {rows.columns(Perimeter, "p")},
           {rows.columns(Organisation, "o")}, {rows.columns(PerimeterVersion, "v")}
    FROM channels_channel c
    JOIN channels_perimeter p ON p.id = c.perimeter_id
    JOIN directory_organisation o ON o.id = c.organisation_id
    LEFT JOIN channels_perimeterversion v ON v.perimeter_id = c.perimeter_id AND v.number = (
        SELECT MAX(number) FROM channels_perimeterversion WHERE perimeter_id = c.perimeter_id)
"""  # noqa: S608


def _channel_and_version(
    where: str, params: list
) -> tuple[Channel, PerimeterVersion | None] | None:
    """A channel, its perimeter and organisation, and the perimeter's version in force: one
    statement (every request that names a channel starts here)."""
    database = router.db_for_read(Channel)
    found = rows.read_one(
        database,
        f"{_CHANNEL_WITH_VERSION} WHERE {where} ORDER BY c.id LIMIT 1",
        params,
        [Channel, Perimeter, Organisation, PerimeterVersion],
    )
    if found is None:
        return None
    channel, perimeter, organisation, version = found
    Channel.perimeter.field.set_cached_value(channel, perimeter)
    Channel.organisation.field.set_cached_value(channel, organisation)
    if version is not None:
        PerimeterVersion.perimeter.field.set_cached_value(version, perimeter)
    return channel, version


def channel_scope_for_key(key: str | None) -> ChannelScope:
    """The scope of the channel named by ``key``, or the hub's public site when no key is given."""
    if key:
        found = _channel_and_version("c.key = %s", [key])
        if found is None:
            raise ChannelUnavailable(
                "channel_not_found", _("No channel has the key %(key)s.") % {"key": key[:40]}
            )
    else:
        found = _channel_and_version("c.kind = %s AND o.runs_hub", [Channel.Kind.PUBLIC_SITE])
        if found is None:
            raise ChannelUnavailable(
                "public_site_missing",
                _("This hub has no public-site channel yet: load a directory first."),
            )
    channel, version = found
    if version is None:
        raise ChannelUnavailable(
            "perimeter_unpublished", _("This channel's perimeter has no published version.")
        )
    return _scope(channel, version=version)


def channel_scope_for_request(request: HttpRequest) -> ChannelScope:
    """The channel a request names by ``?channel=KEY`` or the X-Creneau-Channel header, or
    the channel its OAuth2 bearer token is bound to. An operator's channel answers only with
    its own token."""
    cached = getattr(request, "_creneau_scope", None)
    if cached is not None:
        return cached
    key = request.GET.get(CHANNEL_PARAMETER) or request.headers.get(CHANNEL_HEADER)
    bearer = bearer_for_request(request)
    if bearer is not None:
        contract = bearer.client.contract
        channel = contract.channel
        if key and key != channel.key:
            raise ChannelUnavailable(
                "token_channel_mismatch",
                _("This access token is bound to another channel."),
                status=403,
            )
        scope = replace(
            _scope(channel, contract), api_client=bearer.client, token_scopes=bearer.scopes
        )
    else:
        scope = channel_scope_for_key(key)
        if scope.contract is not None:
            raise TokenInvalid(
                "token_required",
                _("This channel is an operator's: send its OAuth2 access token."),
            )
    if scope.contract is not None:
        _count_request(scope.contract)
    request._creneau_scope = scope
    return scope


def channel_scope_for_contract(contract: Contract) -> ChannelScope:
    """The scope of a contract's channel for a platform recognised otherwise than by a token
    (its client certificate), with the contract's checks and request quota."""
    scope = _scope(contract.channel, contract)
    _count_request(contract)
    return scope


def agent_contract(user) -> Contract | None:
    """The contract an agent works under: its company's contract in force, if any (the most
    recent when it has several)."""
    agent = Agent.objects.filter(user=user).first() if user.is_authenticated else None
    if agent is None:
        return None
    return (
        Contract.objects.filter(operator_id=agent.operator_id, status=Contract.Status.ACTIVE)
        .select_related("channel__perimeter", "channel__organisation", "operator")
        .order_by("-starts_on", "-pk")
        .first()
    )


def channel_scope_for_agent(user) -> ChannelScope:
    """The console's scope for a signed-in agent: its company's channel, refused as soon as
    the contract is suspended, ended or out of its dates."""
    contract = agent_contract(user)
    if contract is None:
        raise ChannelUnavailable(
            "contract_not_in_force",
            _("Your company has no contract in force: the console is closed."),
            status=403,
        )
    scope = replace(_scope(contract.channel, contract), agent=user)
    _count_request(contract)
    return scope


def channel_scope_for_desk(channel: Channel, user) -> ChannelScope:
    """A hospital desk's scope for a signed-in staff member: what they book is theirs."""
    return replace(_scope(channel), agent=user)


# ---------------------------------------------------------------------------------------------
# The directory seen through a channel


def _ident_filter(ident: str, natural_key: str) -> Q:
    return Q(public_id=ident) | Q(**{natural_key: ident})


def specialties_in_scope(scope: ChannelScope) -> QuerySet[Specialty]:
    return Specialty.objects.filter(
        pk__in=scope.practitioner_roles().values("specialties")
    ).order_by("label_fr")


def establishments_in_scope(
    scope: ChannelScope,
    *,
    ident: str | None = None,
    specialty: str | None = None,
    city: str | None = None,
    postcode: str | None = None,
    name: str | None = None,
) -> QuerySet[Establishment]:
    found = scope.establishments().select_related("organisation")
    if ident:
        found = found.filter(_ident_filter(ident, "finess"))
    if specialty:
        found = found.filter(
            pk__in=scope.practitioner_roles()
            .filter(specialties__code=specialty)
            .values("establishment_id")
        )
    if city:
        found = found.filter(city__iexact=city.strip())
    if postcode:
        found = found.filter(postcode__startswith=postcode.strip())
    if name:
        found = found.filter(name__icontains=name.strip())
    return found.order_by("name", "pk")


def _establishment_ids(ident: str) -> QuerySet[Establishment]:
    return Establishment.objects.filter(_ident_filter(ident, "finess")).values("pk")


def practitioners_in_scope(
    scope: ChannelScope,
    *,
    ident: str | None = None,
    specialty: str | None = None,
    establishment: str | None = None,
    name: str | None = None,
) -> QuerySet[Practitioner]:
    """Practitioners with a role inside the scope; each carries ``visible_roles``: only those
    of its roles that the scope holds (a role elsewhere is never disclosed)."""
    roles = scope.practitioner_roles()
    if specialty:
        roles = roles.filter(specialties__code=specialty)
    if establishment:
        roles = roles.filter(establishment_id__in=_establishment_ids(establishment))
    found = Practitioner.objects.filter(pk__in=roles.values("practitioner_id"))
    if ident:
        found = found.filter(_ident_filter(ident, "rpps"))
    if name:
        for word in fold(name).split():
            found = found.filter(search_name__contains=word)
    visible = (
        scope.practitioner_roles()
        .select_related("establishment", "department")
        .prefetch_related("specialties")
        .order_by("establishment__name", "pk")
    )
    return found.order_by("last_name", "first_name", "pk").prefetch_related(
        Prefetch("roles", queryset=visible, to_attr="visible_roles")
    )


def visit_types_in_scope(
    scope: ChannelScope, *, specialty: str | None = None, establishment: str | None = None
) -> QuerySet[VisitType]:
    roles = scope.practitioner_roles()
    if establishment:
        roles = roles.filter(establishment_id__in=_establishment_ids(establishment))
    offered = roles.filter(
        establishment__organisation_id=OuterRef("organisation_id"),
        specialties=OuterRef("specialty_id"),
    )
    found = VisitType.objects.filter(is_active=True).filter(Exists(offered))
    if specialty:
        found = found.filter(specialty__code=specialty)
    return found.select_related("specialty", "organisation").order_by(
        "specialty__label_fr", "label_fr", "pk"
    )
