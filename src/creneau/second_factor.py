"""The second factor of every account that signs in (the organisation's staff, operators'
agents), through django-otp: an authenticator app (TOTP) and backup codes (static tokens)."""

import base64
import re
from dataclasses import dataclass

from django import forms
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
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


class OneTimeCodeMixin(forms.Form):
    """For a sign-in form (Django's AuthenticationForm or the admin's): after the password, the
    one-time code. The device that accepted it is left on the user, where django-otp's login
    signal records it on the session."""

    otp_token = forms.CharField(
        label=gettext_lazy("One-time code"),
        max_length=16,
        help_text=gettext_lazy("The 6 digits of your authenticator app, or a backup code."),
        widget=forms.TextInput({"autocomplete": "one-time-code"}),
    )

    def confirm_second_factor_allowed(self, user) -> None:
        """Refuse an account that may not sign in here (before its code is tried)."""

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()  # type: ignore[attr-defined]
        if user is not None:
            self.confirm_second_factor_allowed(user)
            device = second_factor_verify(user=user, code=cleaned.get("otp_token", ""))
            if device is None:
                raise forms.ValidationError(_("The one-time code is not valid."))
            user.otp_device = device
        return cleaned
