"""Realistic transaction workloads for tests: enrollments with well-formed synthetic ID numbers."""

from __future__ import annotations

import random

from client.enrollment import enrollment_transaction
from ledger.crypto import KeyPair
from ledger.identity import check_character, new_salt
from node.devnet import NodeConfig
from node.runtime import clock_ms


def synthetic_national_id(rng: random.Random) -> str:
    """A well-formed resident ID (region 370102 = Jinan Lixia, a 1950–2005 birth date)."""
    first17 = f"370102{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first17 + check_character(first17)


def enrollments_for(config: NodeConfig, network: bytes, count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    authority = config.admin_key("jinan-bigdata")
    now = clock_ms()
    return [
        enrollment_transaction(authority, KeyPair.generate(), network, synthetic_national_id(rng), new_salt(), time_ms=now)
        for _ in range(count)
    ]
