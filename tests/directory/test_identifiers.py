import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from creneau.directory.identifiers import (
    finess_with_key,
    rpps_with_key,
    validate_finess,
    validate_rpps,
)


def test_the_real_finess_of_aphp_is_accepted():
    validate_finess("750712184")  # AP-HP's legal entity in the national register


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("750712185", "finess_key"),
        ("750712148", "finess_key"),
        ("75071218", "finess_length"),
        ("7507121840", "finess_length"),
        ("75O712184", "finess_format"),
        ("AB0712184", "finess_format"),
    ],
)
def test_a_wrong_finess_is_refused_with_its_reason(value, code):
    with pytest.raises(ValidationError) as refused:
        validate_finess(value)
    assert refused.value.code == code


def test_corsican_finess_numbers_keep_their_letter():
    number = finess_with_key("2A000001")
    validate_finess(number)
    assert number.startswith("2A")


@given(st.from_regex(r"[0-9]{8}", fullmatch=True), st.integers(0, 7), st.integers(1, 9))
def test_every_single_digit_error_in_a_finess_is_caught(body, position, shift):
    number = finess_with_key(body)
    validate_finess(number)
    wrong = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    with pytest.raises(ValidationError):
        validate_finess(wrong)


@given(st.from_regex(r"1[0-9]{9}", fullmatch=True), st.integers(0, 10), st.integers(1, 9))
def test_every_single_digit_error_in_an_rpps_is_caught(body, position, shift):
    number = rpps_with_key(body)
    validate_rpps(number)
    wrong = number[:position] + str((int(number[position]) + shift) % 10) + number[position + 1 :]
    with pytest.raises(ValidationError):
        validate_rpps(wrong)


@pytest.mark.parametrize("value", ["1234567890", "123456789012", "1099000001x"])
def test_an_rpps_that_is_not_eleven_digits_is_refused(value):
    with pytest.raises(ValidationError) as refused:
        validate_rpps(value)
    assert refused.value.code == "rpps_format"


def test_slot_ids_are_opaque_unique_and_follow_the_second_they_were_made():
    from datetime import UTC, datetime

    import time_machine

    from creneau.directory.identifiers import new_public_ids

    with time_machine.travel(datetime(2027, 3, 28, 0, 59, 59, tzinfo=UTC), tick=False):
        earlier = new_public_ids(50_000)
    with time_machine.travel(datetime(2027, 3, 28, 1, 0, 0, tzinfo=UTC), tick=False):
        later = new_public_ids(50_000)
    ids = earlier + later
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 16 and set(i) <= set("0123456789abcdefghjkmnpqrstvwxyz") for i in ids)
    assert max(earlier) < min(later)  # the index receives them in order
    assert len({i[6:] for i in later}) == len(later)  # the rest is random, not a counter
