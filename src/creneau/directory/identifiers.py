"""National identifiers of French health care: FINESS (establishments) and RPPS (practitioners).

Both end with a check key computed with the Luhn algorithm (ISO/IEC 7812-1 annex B) over the
preceding characters, which is how the FINESS and RPPS registers (ANS, DREES) define it.
"""

import base64
import secrets
import string
import time

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Corsica's départements are "2A" and "2B": their FINESS numbers carry a letter in second place.
# We compute the key with that letter read as 0; no public text of the register on those
# numbers' key was at hand, so this is a choice to revisit against real Corsican numbers.
_CORSICA = {"2A": "20", "2B": "20"}


def luhn_checksum_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def luhn_key(body: str) -> str:
    for key in string.digits:
        if luhn_checksum_ok(body + key):
            return key
    raise AssertionError("every body has exactly one Luhn key")


def _finess_digits(value: str) -> str:
    return _CORSICA.get(value[:2], value[:2]) + value[2:]


def validate_finess(value: str) -> None:
    if len(value) != 9:
        raise ValidationError(
            _("A FINESS number has 9 characters (%(value)s has %(length)s)."),
            code="finess_length",
            params={"value": value, "length": len(value)},
        )
    if not (value[:2] in _CORSICA or value[:2].isdigit()) or not value[2:].isdigit():
        raise ValidationError(
            _("A FINESS number is a département code and 7 digits (%(value)s is not)."),
            code="finess_format",
            params={"value": value},
        )
    if not luhn_checksum_ok(_finess_digits(value)):
        raise ValidationError(
            _("The check key of FINESS number %(value)s is wrong."),
            code="finess_key",
            params={"value": value},
        )


def validate_rpps(value: str) -> None:
    if len(value) != 11 or not value.isdigit():
        raise ValidationError(
            _("An RPPS number has 11 digits (%(value)s does not)."),
            code="rpps_format",
            params={"value": value},
        )
    if not luhn_checksum_ok(value):
        raise ValidationError(
            _("The check key of RPPS number %(value)s is wrong."),
            code="rpps_key",
            params={"value": value},
        )


def finess_with_key(first_eight: str) -> str:
    """The valid FINESS number whose first eight characters are given."""
    return first_eight + luhn_key(_finess_digits(first_eight + "0")[:8])


def rpps_with_key(first_ten: str) -> str:
    return first_ten + luhn_key(first_ten)


_PUBLIC_ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32, lower case
# RFC 4648 base 32 maps to Crockford's alphabet character for character.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _PUBLIC_ID_ALPHABET.encode())


def new_public_id() -> str:
    """An opaque identifier shown outside: 80 random bits in 16 characters, so it reveals
    neither order nor volume. Slot generation makes millions of them: one call to the
    system's random source each, not one per character."""
    return base64.b32encode(secrets.token_bytes(10)).translate(_TO_CROCKFORD).decode()


# Slots' public ids start with the second they were made, counted from 2025 in 30 bits (until
# 2059, when the count starts again at zero: the ten random characters keep them unique).
_SECOND_ZERO = 1_735_689_600  # 2025-01-01T00:00:00Z


def new_public_ids(count: int) -> list[str]:
    """``count`` public ids for slot generation, from one draw of the system's random source:
    six characters of the second they were made, then ten random ones (50 bits). Made in
    order, a roll's ids land together at the end of the slots' unique index rather than each
    on a random page of it, which makes a national roll a fifth faster. They tell when a slot
    was opened (which nobody needs to hide), not how many were.

    Two ids of the same second collide once in 2^50 pairs: generation draws again when the
    unique index refuses one (``agenda.services._insert_slots``)."""
    second = (int(time.time()) - _SECOND_ZERO) & (2**30 - 1)
    prefix = "".join(
        _PUBLIC_ID_ALPHABET[(second >> shift) & 31] for shift in (25, 20, 15, 10, 5, 0)
    )
    text = base64.b32encode(secrets.token_bytes(10 * count)).translate(_TO_CROCKFORD).decode()
    return [prefix + text[n : n + 10] for n in range(0, 16 * count, 16)]
