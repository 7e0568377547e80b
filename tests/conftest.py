"""Shared fixtures: a development network in a temporary directory and enrollment workloads."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Iterator

import pytest

from client.enrollment import enrollment_transaction
from ledger.crypto import KeyPair
from ledger.identity import check_character, new_salt
from node.devnet import NodeConfig, create_dev_network, load_node_config
from node.peer import Peer
from node.runtime import clock_ms, open_peer

MakeEnrollments = Callable[[int], list[bytes]]


def synthetic_national_id(rng: random.Random) -> str:
    """A well-formed resident ID (region 370102 = Jinan Lixia, a 1950–2005 birth date)."""
    first17 = f"370102{rng.randint(1950, 2005)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    return first17 + check_character(first17)


@pytest.fixture
def dev_dir(tmp_path: Path) -> Path:
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    create_dev_network(data_dir, clock_ms())
    return data_dir


@pytest.fixture
def dev_config(dev_dir: Path) -> NodeConfig:
    return load_node_config(dev_dir)


@pytest.fixture
def peer(dev_dir: Path) -> Iterator[Peer]:
    running = open_peer(dev_dir)
    yield running
    running.stop()


def enrollments_for(config: NodeConfig, network: bytes, count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    authority = config.admin_key("jinan-bigdata")
    now = clock_ms()
    return [
        enrollment_transaction(authority, KeyPair.generate(), network, synthetic_national_id(rng), new_salt(), time_ms=now)
        for _ in range(count)
    ]


@pytest.fixture
def make_enrollments(dev_config: NodeConfig) -> MakeEnrollments:
    from ledger.genesis import network_id

    network = network_id(dev_config.genesis)
    return lambda count: enrollments_for(dev_config, network, count)
