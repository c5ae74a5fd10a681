"""Idempotency keys for the writes a client may retry (DESIGN.md invariant 2), after
draft-ietf-httpapi-idempotency-key-header and Stripe's practice:

- the same key with the same body replays the first answer, and nothing is done twice;
- the same key with another body is refused (422);
- the same key while the first request still runs is refused (409), so that a client's
  impatient retry never races its own first attempt;
- keys are kept at least 24 hours (``CRENEAU_IDEMPOTENCY_HOURS``).

The claim is committed on its own before the work starts, so that a concurrent retry sees it;
the answer is recorded in the same transaction as the work, so a committed booking always has
its answer stored and a rolled-back one leaves the key free for the next try.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from creneau.booking.models import IdempotencyKey
from creneau.channels.models import Channel
from creneau.errors import DomainError

# A claim whose request died (the process was killed) is taken over after this long.
ABANDONED_AFTER = timedelta(seconds=60)
TOKEN_FIELD = "manage_token"  # noqa: S105 (a field name, not a secret)


class IdempotencyError(DomainError):
    pass


@dataclass(frozen=True)
class Claim:
    channel: Channel
    client: str
    key: str
    key_hash: str


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """The same request means the same method, path and JSON document (key order and spacing
    aside); a body that is not JSON is compared byte for byte."""
    try:
        canonical = json.dumps(json.loads(body or b"null"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = body.decode("latin-1")
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _check_key(key: str) -> None:
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise IdempotencyError(
            "invalid_idempotency_key",
            _("The Idempotency-Key header must be 1 to 255 printable ASCII characters."),
            status=422,
        )


def _xor_pad(key: str, raw: bytes) -> bytes:
    """XOR with a pad derived from the client's key: the same call seals and unseals."""
    pad = hashlib.sha256(b"creneau-seal\x00" + key.encode()).digest()
    pad = (pad * (len(raw) // len(pad) + 1))[: len(raw)]
    return bytes(a ^ b for a, b in zip(raw, pad, strict=True))


def _seal(key: str, token: str) -> str:
    return _xor_pad(key, token.encode()).hex()


def _unseal(key: str, sealed: str) -> str:
    return _xor_pad(key, bytes.fromhex(sealed)).decode()


def idempotency_claim(
    *, channel: Channel, client: str, key: str, fingerprint: str, now: datetime | None = None
) -> Claim | Replay:
    """Claim ``key`` for this request of ``client``, or return the answer already given to
    that client's request with the same key."""
    _check_key(key)
    now = now or timezone.now()
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    claim = Claim(channel=channel, client=client, key=key, key_hash=key_hash)
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(
                channel=channel,
                client=client,
                key_hash=key_hash,
                request_hash=fingerprint,
                created_at=now,
            )
        return claim
    except IntegrityError:
        pass
    found = IdempotencyKey.objects.get(channel=channel, client=client, key_hash=key_hash)
    if found.request_hash != fingerprint:
        raise IdempotencyError(
            "idempotency_key_reused",
            _("This Idempotency-Key was already used for a different request."),
            status=422,
        )
    if found.response_status is None:
        # Taken over only if its request is surely dead; the conditional update lets one
        # retry alone win the take-over.
        if found.created_at < now - ABANDONED_AFTER and IdempotencyKey.objects.filter(
            pk=found.pk, response_status__isnull=True, created_at=found.created_at
        ).update(created_at=now):
            return claim
        raise IdempotencyError(
            "idempotency_in_progress",
            _("A request with this Idempotency-Key is still being processed. Retry later."),
            status=409,
        )
    body = dict(found.response_body or {})
    if found.sealed_token:
        body[TOKEN_FIELD] = _unseal(key, found.sealed_token)
    return Replay(status=found.response_status, body=body)


def idempotency_record(*, claim: Claim, status: int, body: dict) -> None:
    """Store the answer; call it inside the transaction of the work it answers."""
    stored = dict(body)
    token = stored.pop(TOKEN_FIELD, None)
    IdempotencyKey.objects.filter(
        channel=claim.channel, client=claim.client, key_hash=claim.key_hash
    ).update(
        response_status=status,
        response_body=stored,
        sealed_token=_seal(claim.key, token) if token else "",
    )


def idempotency_release(*, claim: Claim) -> None:
    """Forget a claim whose request failed unexpectedly: the client may try again."""
    IdempotencyKey.objects.filter(
        channel=claim.channel,
        client=claim.client,
        key_hash=claim.key_hash,
        response_status__isnull=True,
    ).delete()


def idempotency_purge(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.CRENEAU_IDEMPOTENCY_HOURS)
    deleted, _counts = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


def idempotent(
    *,
    channel: Channel,
    client: str,
    key: str | None,
    fingerprint: str,
    run: Callable[[], tuple[int, dict]],
) -> tuple[int, dict, bool]:
    """Run a retryable write (``run`` answers a status and a JSON body) under ``key``, if the
    request has one: (status, body, replayed). A refusal (DomainError) is an answer too: the
    same retry gets the same refusal."""
    if key is None:
        with transaction.atomic():
            status, body = run()
        return status, body, False
    claim = idempotency_claim(channel=channel, client=client, key=key, fingerprint=fingerprint)
    if isinstance(claim, Replay):
        return claim.status, claim.body, True
    try:
        with transaction.atomic():
            status, body = run()
            # Stored as JSON and replayed from it: answer from the same form the first time.
            body = json.loads(json.dumps(body, cls=DjangoJSONEncoder))
            idempotency_record(claim=claim, status=status, body=body)
    except DomainError as error:
        with transaction.atomic():
            idempotency_record(
                claim=claim,
                status=error.status,
                body={"code": error.code, "message": error.message},
            )
        raise
    except BaseException:
        idempotency_release(claim=claim)
        raise
    return status, body, False
