"""Resident ID numbers (GB 11643-1999) and their salted commitments.

Check characters are computed here from the ISO 7064 MOD 11-2 definition
(the weighted sum including the check value is congruent to 1 modulo 11, with
weight 2^(i-1) for the i-th character counted from the right, and 10 written
"X"), not from the module's weight table.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import identity
from ledger.identity import NationalIdError, check_national_id, commit_national_id, new_salt

CONTEXT = b"quancheng-ledger/v1/national-id\x00"


def iso7064_mod11_2(first17: str) -> str:
    """The check character c with sum(a_i * 2^(i-1) for i = 2..18) + c ≡ 1 (mod 11)."""
    assert len(first17) == 17 and first17.isascii() and first17.isdigit()
    total = sum(int(digit) * pow(2, position, 11) for position, digit in zip(range(17, 0, -1), first17))
    for value in range(11):
        if (total + value) % 11 == 1:
            return "X" if value == 10 else str(value)
    raise AssertionError("unreachable")


digits17 = st.text(alphabet="0123456789", min_size=17, max_size=17)
salts = st.binary(min_size=32, max_size=32)


def valid_id(first17: str) -> str:
    return first17 + iso7064_mod11_2(first17)


# --- the checksum ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "national_id",
    [
        "11010519491231002X",  # the worked example of GB 11643-1999
        "11010519491231002x",
        "440524188001010014",
        "110101199003078515",
    ],
)
def test_known_valid_ids(national_id):
    assert iso7064_mod11_2(national_id[:17]) == national_id[17].upper()  # the reference agrees
    check_national_id(national_id)


@settings(max_examples=200, deadline=None)
@given(digits17)
def test_accepts_every_id_with_the_iso7064_check_character(first17):
    check_national_id(valid_id(first17))
    if valid_id(first17).endswith("X"):
        check_national_id(first17 + "x")


@settings(max_examples=200, deadline=None)
@given(digits17)
def test_check_character_helper_matches_iso7064(first17):
    helper = getattr(identity, "check_character", None)
    if helper is None:
        pytest.skip("ledger.identity has no check_character helper")
    assert helper(first17) == iso7064_mod11_2(first17)


@settings(max_examples=100, deadline=None)
@given(digits17)
def test_rejects_every_wrong_check_character(first17):
    right = iso7064_mod11_2(first17)
    for candidate in "0123456789X":
        if candidate != right:
            with pytest.raises(NationalIdError):
                check_national_id(first17 + candidate)


@settings(max_examples=200, deadline=None)
@given(digits17, st.integers(0, 16), st.integers(1, 9))
def test_detects_every_single_digit_error(first17, position, delta):
    national_id = valid_id(first17)
    wrong_digit = str((int(national_id[position]) + delta) % 10)
    with pytest.raises(NationalIdError):
        check_national_id(national_id[:position] + wrong_digit + national_id[position + 1 :])


@settings(max_examples=200, deadline=None)
@given(digits17, st.integers(0, 15))
def test_detects_adjacent_transpositions(first17, position):
    national_id = valid_id(first17)
    a, b = national_id[position], national_id[position + 1]
    swapped = national_id[:position] + b + a + national_id[position + 2 :]
    if a == b:
        check_national_id(swapped)
    else:
        with pytest.raises(NationalIdError):
            check_national_id(swapped)


@pytest.mark.parametrize(
    "national_id",
    [
        "",
        "1",
        "11010519491231002",  # 17 characters
        "11010519491231002X0",  # 19 characters
        "110105194912310020X",
        "1101051949123100 2X",
        "X1010519491231002X",
        "11010519491231002Y",
        "1101051949-231002X",
        "11010519491231002 ",
        "+1010519491231002X",
        "11010519491231002XX",
    ],
)
def test_rejects_malformed_ids(national_id):
    with pytest.raises(NationalIdError):
        check_national_id(national_id)


def test_national_id_error_is_a_value_error():
    assert issubclass(NationalIdError, ValueError)


@pytest.mark.parametrize(
    "translate",
    [
        {ord(d): chr(0xFF10 + int(d)) for d in "0123456789"},  # full-width ０-９
        {ord(d): chr(0x0660 + int(d)) for d in "0123456789"},  # Arabic-Indic ٠-٩
        {ord("2"): "\u00b2"},  # superscript two
    ],
    ids=["fullwidth", "arabic-indic", "superscript"],
)
def test_rejects_non_ascii_digits(translate):
    # str.isdigit() alone accepts these; int() then reads full-width and Arabic-Indic digits as
    # ASCII ones (and chokes on superscripts), and the commitment's .encode("ascii") would fail
    national_id = "11010519491231002X".translate(translate)
    assert national_id != "11010519491231002X"
    with pytest.raises(NationalIdError):
        check_national_id(national_id)
    with pytest.raises(NationalIdError):
        commit_national_id(national_id, bytes(32))


# --- errors never repeat the number -----------------------------------------------------------------

near_ids = st.one_of(
    digits17.map(lambda d: d + "X"),  # right shape, usually the wrong check character
    digits17.flatmap(lambda d: st.sampled_from([d, d + "12", d[:10], d + "0" + "7"])),
    st.text(alphabet="0123456789Xx -", min_size=6, max_size=24),
)


def assert_not_leaked(exc: BaseException, national_id: str) -> None:
    rendered = [str(exc), repr(exc), *map(str, exc.args)]
    for text in rendered:
        assert national_id not in text
        # not even the seventeen digits (or their first half) in a row
        if len(national_id) >= 12:
            assert national_id[:12] not in text


@settings(max_examples=200, deadline=None)
@given(near_ids)
def test_error_messages_never_contain_the_number(national_id):
    try:
        check_national_id(national_id)
    except NationalIdError as exc:
        assert_not_leaked(exc, national_id)
    try:
        commit_national_id(national_id, bytes(32))
    except NationalIdError as exc:
        assert_not_leaked(exc, national_id)


def test_error_message_for_a_wrong_check_character_does_not_contain_the_number():
    national_id = "110105194912310021"
    with pytest.raises(NationalIdError) as caught:
        check_national_id(national_id)
    assert_not_leaked(caught.value, national_id)
    assert caught.value.__cause__ is None


# --- commitments --------------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(digits17, salts)
def test_commitment_is_salted_sha256_of_the_number(first17, salt):
    national_id = valid_id(first17)
    expected = hashlib.sha256(CONTEXT + salt + national_id.encode("ascii")).digest()
    assert commit_national_id(national_id, salt) == expected
    assert commit_national_id(national_id, salt) == commit_national_id(national_id, salt)


@settings(max_examples=100, deadline=None)
@given(digits17, salts, salts)
def test_commitments_differ_per_salt(first17, salt_a, salt_b):
    national_id = valid_id(first17)
    if salt_a == salt_b:
        assert commit_national_id(national_id, salt_a) == commit_national_id(national_id, salt_b)
    else:
        assert commit_national_id(national_id, salt_a) != commit_national_id(national_id, salt_b)


@settings(max_examples=100, deadline=None)
@given(digits17, digits17, salts)
def test_commitments_differ_per_number(first_a, first_b, salt):
    a, b = valid_id(first_a), valid_id(first_b)
    assert (commit_national_id(a, salt) == commit_national_id(b, salt)) == (a == b)


def test_lowercase_x_commits_like_uppercase():
    salt = bytes(range(32))
    assert commit_national_id("11010519491231002x", salt) == commit_national_id("11010519491231002X", salt)
    assert commit_national_id("11010519491231002x", salt) == hashlib.sha256(CONTEXT + salt + b"11010519491231002X").digest()


def test_fresh_salts_give_unlinkable_commitments():
    national_id = "11010519491231002X"
    salts_drawn = [new_salt() for _ in range(20)]
    assert all(type(s) is bytes and len(s) == 32 for s in salts_drawn)
    assert len(set(salts_drawn)) == 20
    assert len({commit_national_id(national_id, s) for s in salts_drawn}) == 20


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_commitment_needs_a_32_byte_salt(size):
    with pytest.raises(ValueError):
        commit_national_id("11010519491231002X", bytes(size))


def test_commitment_refuses_an_invalid_number_before_hashing():
    with pytest.raises(NationalIdError) as caught:
        commit_national_id("110105194912310021", bytes(32))
    assert "110105194912310021" not in str(caught.value)
