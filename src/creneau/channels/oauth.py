"""OAuth2 client credentials for operators' and partners' software (django-oauth-toolkit).

A client's tokens are bound to its contract: a token is issued only while the contract is in
force, with no scope beyond what the contract allows, and every API call made with it is served
through the contract's channel (its perimeter, actions and quotas)."""

import functools
import hashlib
from dataclasses import dataclass

from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _
from oauth2_provider.models import AccessToken
from oauth2_provider.oauth2_validators import OAuth2Validator

from creneau.channels.models import ApiClient, Contract
from creneau.errors import DomainError

# What each action of the API needs of a token (on top of the contract's own allowances).
ACTION_SCOPES = {
    "search": "slots:read",
    "book": "appointments:write",
    "move": "appointments:write",
    "cancel": "appointments:write",
    "read": "appointments:read",
    "statistics": "statistics:read",
}


def contract_scopes(contract: Contract) -> list[str]:
    """The scopes a client under ``contract`` may hold."""
    scopes = ["appointments:read", "statistics:read"]
    if contract.may_search:
        scopes.append("slots:read")
    if contract.may_book or contract.may_move or contract.may_cancel:
        scopes.append("appointments:write")
    return sorted(scopes)


class ContractValidator(OAuth2Validator):
    """django-oauth-toolkit's validator, bounded by the client's contract, and accepting the
    previous secret of a rotated client until its grace period ends."""

    _previous_secret = ""

    def _load_application(self, client_id, request):
        application = super()._load_application(client_id, request)
        self._previous_secret = ""
        if application is None:
            return None
        client = (
            ApiClient.objects.filter(application=application)
            .select_related("contract__channel")
            .first()
        )
        if client is None or not (client.contract.in_force() and client.contract.channel.is_active):
            request.client = None
            return None
        previous_until = client.previous_valid_until
        if client.previous_secret and previous_until and previous_until > timezone.now():
            self._previous_secret = client.previous_secret
        request.creneau_client = client
        return application

    def _check_secret(self, provided_secret, stored_secret):
        if super()._check_secret(provided_secret, stored_secret):
            return True
        return bool(self._previous_secret) and super()._check_secret(
            provided_secret, self._previous_secret
        )

    def _allowed(self, request) -> set[str]:
        client = getattr(request, "creneau_client", None)
        return set(contract_scopes(client.contract)) if client else set()

    def validate_scopes(self, client_id, scopes, client, request, *args, **kwargs):
        return super().validate_scopes(client_id, scopes, client, request, *args, **kwargs) and set(
            scopes
        ) <= self._allowed(request)

    def get_default_scopes(self, client_id, request, *args, **kwargs):
        defaults = super().get_default_scopes(client_id, request, *args, **kwargs)
        return [scope for scope in defaults if scope in self._allowed(request)]


class BearerValidator(ContractValidator):
    """Checking a token at each API call: DOT's own checks (expiry, revocation, audience), with
    the token's client, contract, operator and channel read in the same query."""

    def _load_access_token(self, token):
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        found = list(
            AccessToken.objects.select_related(
                "application__api_client__contract__operator",
                "application__api_client__contract__channel__perimeter",
                "application__api_client__contract__channel__organisation",
            )
            .filter(token_checksum=checksum)
            .order_by()[:1]  # unique: no ORDER BY to plan
        )
        return found[0] if found else None


@functools.cache
def _resource_server():
    """One oauthlib server per process for checking tokens (it keeps no per-request state):
    building it costs more than the check itself."""
    from oauth2_provider.oauth2_backends import OAuthLibCore
    from oauth2_provider.settings import oauth2_settings

    return OAuthLibCore(
        oauth2_settings.OAUTH2_SERVER_CLASS(BearerValidator(), **oauth2_settings.server_kwargs)
    )


class TokenInvalid(DomainError):
    status = 401


@dataclass(frozen=True)
class Bearer:
    client: ApiClient
    scopes: frozenset[str]


def bearer_for_request(request: HttpRequest) -> Bearer | None:
    """The API client of the request's bearer token; None without an Authorization header.
    A token that is unknown, expired or revoked is refused (401)."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    if not header.lower().startswith("bearer "):
        raise TokenInvalid(
            "invalid_token", _("Send an OAuth2 access token: Authorization: Bearer TOKEN.")
        )
    valid, oauth_request = _resource_server().verify_request(request, scopes=[])
    token: AccessToken | None = getattr(oauth_request, "access_token", None)
    if not valid or token is None or token.application_id is None:
        raise TokenInvalid("invalid_token", _("This access token is unknown, expired or revoked."))
    client = getattr(token.application, "api_client", None)
    if client is None:
        raise TokenInvalid("invalid_token", _("This access token belongs to no API client."))
    return Bearer(client=client, scopes=frozenset(token.scope.split()))
