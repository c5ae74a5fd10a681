"""Secrets the hub must be able to read back later (a patient's manage token, for the link in a
reminder sent two days after the booking), sealed with a key derived from SECRET_KEY: a copy of
the database alone opens nothing. Older keys in SECRET_KEY_FALLBACKS still open what they sealed."""

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


def _fernet(secret: str) -> Fernet:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"creneau sealed tokens v1"
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


@cache
def _keys(secret: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(secret), *(_fernet(old) for old in fallbacks)])


def _current() -> MultiFernet:
    return _keys(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def seal(value: str) -> str:
    return _current().encrypt(value.encode()).decode()


def unseal(sealed: str) -> str | None:
    """The value, or None when there is none or the key that sealed it is gone."""
    if not sealed:
        return None
    try:
        return _current().decrypt(sealed.encode()).decode()
    except InvalidToken:
        return None


def keyed_hash(value: str, length: int) -> str:
    """A short HMAC of ``value`` under SECRET_KEY: a stable identifier that reveals neither the
    value (a client address, a staff account) nor any order."""
    digest = hmac.new(settings.SECRET_KEY.encode(), value.encode(), hashlib.sha256)
    return digest.hexdigest()[:length]
