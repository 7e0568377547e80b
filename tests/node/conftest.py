"""Shared fixtures of the node tests that need etcd: a 3-member cluster per module, 3 fresh peers per test."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from etcd_consortium import Peers
from node.etcd_cluster import EtcdCluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster.start(tmp_path_factory.mktemp("etcd") / "etcd", members=3) as running:
        yield running


@pytest.fixture
def peers(cluster: EtcdCluster, tmp_path: Path) -> Iterator[Peers]:
    running = Peers.create(tmp_path / "consortium", peers=3, etcd_endpoints=cluster.endpoints)
    running.start()
    try:
        yield running
    finally:
        running.close()
