"""node/etcd_cluster.py with real etcd processes on loopback: a leader, member faults, restarts, compaction."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from etcd_consortium import wait_until
from node.etcd_cluster import EtcdCluster, EtcdClusterError, find_etcd
from node.ordering.etcd_gateway import Compacted, EtcdGateway

pytestmark = pytest.mark.slow


def local_value(gateway: EtcdGateway, endpoint: str, key: bytes) -> bytes | None:
    """What one member itself holds for ``key`` (a serializable read, answered without the leader)."""
    answer = gateway.call_member(endpoint, "/v3/kv/range", {"key": base64.b64encode(key).decode(), "serializable": True})
    kvs = answer.get("kvs") or []
    return base64.b64decode(kvs[0]["value"]) if kvs else None


def test_a_missing_etcd_names_the_setup_script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(EtcdClusterError) as caught:
        EtcdCluster.start(tmp_path / "etcd", binary=tmp_path / "no-such-etcd")
    assert caught.value.code == "etcd_missing"
    assert "etcd not found — run scripts/setup-etcd.sh (installs Debian's etcd-server)" in str(caught.value)
    monkeypatch.setenv("QCL_ETCD", str(tmp_path / "elsewhere"))
    with pytest.raises(EtcdClusterError, match="setup-etcd.sh"):
        find_etcd()
    assert not (tmp_path / "etcd").exists()


def test_three_members_elect_a_leader_and_survive_kill_stop_and_restart(tmp_path: Path):
    with EtcdCluster.start(tmp_path / "etcd", members=3) as cluster:
        gateway = EtcdGateway(cluster.endpoints)
        assert [m.name for m in cluster.members] == ["etcd0", "etcd1", "etcd2"]
        assert len(set(cluster.endpoints)) == 3 and all(m.client_url.startswith("http://127.0.0.1:") for m in cluster.members)
        assert all(m.pid is not None and m.data_dir.is_dir() for m in cluster.members)
        leader = cluster.leader()
        gateway.put(b"k", b"1")

        # SIGKILL a follower: the other two still commit; back, it holds what was written meanwhile.
        follower = next(m for m in cluster.members if m is not leader)
        pid = follower.pid
        cluster.kill(follower.name)
        assert follower.pid is None and follower not in cluster.running()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        gateway.put(b"k", b"2")
        cluster.restart(follower.name)
        cluster.wait_healthy(20)
        wait_until(lambda: local_value(gateway, follower.client_url, b"k") == b"2", 10, "the restarted member to catch up")

        # SIGTERM the leader: the two others elect a new one and commit; the old one rejoins as a follower.
        cluster.stop(leader.name)
        wait_until(lambda: _leader_name(cluster) not in (None, leader.name), 20, "a new leader")
        gateway.put(b"k", b"3")
        cluster.restart(leader.name)
        cluster.wait_healthy(20)
        assert len(cluster.running()) == 3
        wait_until(lambda: local_value(gateway, leader.client_url, b"k") == b"3", 10, "the old leader to catch up")

        # Another process finds the same members through cluster.json.
        loaded = EtcdCluster.load(tmp_path / "etcd")
        assert [(m.name, m.client_url, m.pid) for m in loaded.members] == [(m.name, m.client_url, m.pid) for m in cluster.members]
        assert loaded.leader().name == cluster.leader().name

        # Compaction: a watch from before the compacted revision is told so.
        revision = cluster.compact()
        assert revision == cluster.revision()
        stream = gateway.watch(b"k", 1, idle_s=5)
        try:
            assert list(stream) == [Compacted(revision)]
        finally:
            stream.close()
        gateway.close()
    assert all(m.pid is None for m in cluster.members)
    with pytest.raises(EtcdClusterError) as caught:
        cluster.kill("etcd0")
    assert caught.value.code == "not_running"


def _leader_name(cluster: EtcdCluster) -> str | None:
    try:
        return cluster.leader().name
    except EtcdClusterError:
        return None
