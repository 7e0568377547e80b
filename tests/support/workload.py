"""Realistic transaction workloads for tests: enrollments with well-formed synthetic ID numbers."""

from __future__ import annotations

import random

from client.enrollment import enrollment_transaction, synthetic_national_id
from ledger.crypto import KeyPair
from ledger.identity import new_salt
from node.devnet import NodeConfig
from node.runtime import clock_ms


def enrollments_for(config: NodeConfig, network: bytes, count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    authority = config.admin_key("jinan-bigdata")
    now = clock_ms()
    return [
        enrollment_transaction(authority, KeyPair.generate(), network, synthetic_national_id(rng), new_salt(), time_ms=now)
        for _ in range(count)
    ]
