"""The second factor of every account that signs in (the organisation's staff, operators'
agents), through django-otp: an authenticator app (TOTP) and backup codes (static tokens)."""

import base64
import re
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

BACKUP_CODES = 5
TOTP_CODE = re.compile(r"^\d{6}$")


@dataclass(frozen=True)
class SecondFactor:
    """Shown once: the authenticator app's link (otpauth URI) and its secret in base32, and the
    backup codes."""

    otp_uri: str
    otp_secret: str
    backup_codes: list[str]


@transaction.atomic
def second_factor_issue(*, user) -> SecondFactor:
    """A new authenticator secret and new backup codes for ``user``; the old ones stop
    working."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    device = TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=True)
    backup = StaticDevice.objects.create(user=user, name=_("Backup codes"), confirmed=True)
    codes = [StaticToken.random_token() for _i in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create([StaticToken(device=backup, token=code) for code in codes])
    return SecondFactor(
        otp_uri=device.config_url,
        otp_secret=base64.b32encode(device.bin_key).decode().rstrip("="),
        backup_codes=codes,
    )


@transaction.atomic
def second_factor_verify(*, user, code: str) -> Device | None:
    """The device that accepts ``code``: six digits go to the authenticator app, anything else to
    the backup codes (each used once). Only that device is tried, so that a right code never
    counts as a failure against the other, and each device's own slowing after wrong codes
    applies."""
    code = code.replace(" ", "").strip()
    if not code:
        return None
    model = TOTPDevice if TOTP_CODE.match(code) else StaticDevice
    device = model.objects.filter(user=user, confirmed=True).first()
    if device is None:
        return None
    allowed, _extra = device.verify_is_allowed()
    if not allowed or not device.verify_token(code):
        return None
    return device
