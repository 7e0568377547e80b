"""Citizen identity: commitments to national ID numbers.

The ledger never stores a national ID number. The identity authority checks a
citizen's ID, draws a 32-byte random salt, and puts only the commitment
SHA-256(context || salt || id) on chain; the salt stays with the citizen and
the authority, so the number cannot be brute-forced from the chain (an
unsalted hash of an 18-digit number with a checksum and a birth date would be).
"""

from __future__ import annotations

import secrets

from ledger.crypto import sha256

__all__ = ["NationalIdError", "check_character", "check_national_id", "commit_national_id", "new_salt"]

CONTEXT_NATIONAL_ID = b"quancheng-ledger/v1/national-id\x00"
SALT_SIZE = 32
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARACTERS = "10X98765432"


class NationalIdError(ValueError):
    """Raised when a string is not a well-formed resident ID number (GB 11643-1999)."""


def check_national_id(national_id: str) -> None:
    """Raise NationalIdError unless ``national_id`` has 18 characters and a valid check digit.

    The message never repeats the number: it is personal data and errors get logged.
    """
    if len(national_id) != 18 or not (national_id[:17].isascii() and national_id[:17].isdigit()):
        raise NationalIdError("a resident ID number has 17 digits and a check character")
    if check_character(national_id[:17]) != national_id[17].upper():
        raise NationalIdError("the check character of the resident ID number is wrong")


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS))
    return _CHECK_CHARACTERS[total % 11]


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_SIZE)


def commit_national_id(national_id: str, salt: bytes) -> bytes:
    """Return the on-chain commitment to ``national_id`` under ``salt``."""
    check_national_id(national_id)
    if len(salt) != SALT_SIZE:
        raise ValueError(f"the salt is {SALT_SIZE} bytes")
    return sha256(CONTEXT_NATIONAL_ID + salt + national_id.upper().encode("ascii"))
