"""Building a citizen-enrollment transaction, as the identity authority's desk does it.

The national ID number is checked and committed to locally; only the salted
commitment leaves this function.
"""

from __future__ import annotations

import random

from ledger.crypto import KeyPair
from ledger.identity import check_character, commit_national_id
from ledger.tx import build_transaction

__all__ = ["enrollment_transaction", "synthetic_national_id"]


def enrollment_transaction(
    authority: KeyPair, citizen: KeyPair, network: bytes, national_id: str, salt: bytes, *, time_ms: int
) -> bytes:
    """The ``citizen.enroll`` envelope, signed by the authority and co-signed by the citizen."""
    return build_transaction(
        authority,
        network,
        "citizen.enroll",
        {"citizen_key": citizen.public_key, "id_commitment": commit_national_id(national_id, salt)},
        time_ms=time_ms,
        cosigners=[citizen],
    )


def synthetic_national_id(rng: random.Random) -> str:
    """A well-formed resident ID for demos, tests and benchmarks (region 370102, Jinan Lixia)."""
    first17 = f"370102{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first17 + check_character(first17)
