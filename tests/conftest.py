"""Shared fixtures: a development network in a temporary directory and enrollment workloads."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from node.devnet import NodeConfig, create_dev_network, load_node_config
from node.peer import Peer
from node.runtime import clock_ms, open_peer
from workload import enrollments_for

MakeEnrollments = Callable[[int], list[bytes]]


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


@pytest.fixture
def make_enrollments(dev_config: NodeConfig) -> MakeEnrollments:
    from ledger.genesis import network_id

    network = network_id(dev_config.genesis)
    return lambda count: enrollments_for(dev_config, network, count)
