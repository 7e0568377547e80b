"""``qcl network up|status|down`` for real: 3 etcd members and 3 peers, each its own process, on loopback.

A write load (``qcl network load``) goes in through every peer at once; ``status --json`` must then
show every peer at the same height and root (signed checkpoints), and ``down``
must leave no process of the network behind; ``up`` on the same directory resumes the same network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from node.consortium import load_consortium
from node.etcd_cluster import EtcdCluster
from node.localnet import ETCD_DIR, NetworkRecord, is_running, load_record, stop_network

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PEERS = 3
TXS = 180  # 6 requests of 30, two through each peer


def qcl(*args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "client.cli", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.fixture
def network_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "net"
    yield directory
    stop_network(directory, timeout_s=5.0)  # whatever the test did, nothing it started survives it


def processes_naming(directory: Path) -> list[int]:
    """Live (non-zombie) processes whose command line mentions ``directory``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
            continue
        if str(directory) in cmdline and state != "Z":
            found.append(int(proc.name))
    return found


def status_when_in_step(directory: Path, tree_size: int, timeout_s: float = 20.0) -> dict[str, Any]:
    """``qcl network status --json`` once it reports every peer in step with ``tree_size`` log entries."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = qcl("network", "status", "--dir", str(directory), "--json")
        report = json.loads(result.stdout)
        if (result.returncode == 0 and report["in_step"] and report["peers"][0]["tree_size"] == tree_size) or time.monotonic() > deadline:
            return report
        time.sleep(0.2)


def metric(url: str, name: str) -> float | None:
    for line in httpx.get(f"{url}/metrics", timeout=5.0).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_up_load_status_down(network_dir: Path) -> None:
    started = time.monotonic()
    up = qcl("network", "up", "--peers", str(PEERS), "--dir", str(network_dir))
    assert up.returncode == 0, up.stdout + up.stderr
    up_seconds = time.monotonic() - started
    record = load_record(network_dir)
    consortium = load_consortium(network_dir)
    assert isinstance(record, NetworkRecord)
    etcd_members = EtcdCluster.load(network_dir / ETCD_DIR).running()
    assert [p.name for p in record.peers] == ["peer0", "peer1", "peer2"]
    assert [m.name for m in etcd_members] == ["etcd0", "etcd1", "etcd2"]
    assert all(is_running(p) for p in record.peers)
    pids = {p.pid for p in record.peers} | {m.pid for m in etcd_members}
    data_dirs = {p.marker for p in record.peers} | {str(m.data_dir) for m in etcd_members}
    assert len(pids) == len(data_dirs) == 6  # each its own process and data directory

    # The load goes in through every peer at once: etcd orders all peers' batches into one stream.
    load = qcl("network", "load", "--dir", str(network_dir), "--txs", str(TXS), "--per-request", "30", "--json")
    assert load.returncode == 0, load.stdout + load.stderr
    assert json.loads(load.stdout)["outcomes"] == {"committed": TXS}
    assert json.loads(load.stdout)["peers"] == PEERS
    tree_size = 1 + 7 + TXS  # genesis, the catalogue defined once, the load: every transaction once in every log

    report = status_when_in_step(network_dir, tree_size)
    assert report["healthy"] and report["in_step"], report
    peers = report["peers"]
    assert [peer["node_id"] for peer in peers] == ["peer0", "peer1", "peer2"]
    assert len({(peer["height"], peer["tree_size"], peer["root"], peer["block_hash"]) for peer in peers}) == 1
    assert all(peer["lag"] == 0 and peer["healthy"] and peer["running"] for peer in peers)
    assert peers[0]["tree_size"] == tree_size
    etcd = report["etcd"]
    assert etcd["quorum"] and len(etcd["members"]) == 3 and all(member["healthy"] for member in etcd["members"])
    assert [member["name"] for member in etcd["members"] if member["leader"]] == [etcd["leader"]]
    for peer in consortium.peers:
        assert metric(peer.url, "qcl_block_height") == peers[0]["height"]
        assert metric(peer.url, "qcl_etcd_connected") == 1

    table = qcl("network", "status", "--dir", str(network_dir))
    assert table.returncode == 0 and "all peers at the same height and root" in table.stdout, table.stdout
    again = qcl("network", "up", "--dir", str(network_dir))
    assert again.returncode == 1 and again.stderr.startswith("error already_running:"), again.stderr

    stopping = time.monotonic()
    down = qcl("network", "down", "--dir", str(network_dir))
    assert down.returncode == 0, down.stderr
    down_seconds = time.monotonic() - stopping
    assert not any(is_running(p) for p in record.peers)
    assert EtcdCluster.load(network_dir / ETCD_DIR).running() == []
    assert processes_naming(network_dir) == []  # no peer, precheck worker or etcd member left
    assert load_record(network_dir) is None
    assert qcl("network", "status", "--dir", str(network_dir)).returncode == 1  # nothing running: error contract

    # Up again on the same directory: the same network resumes (etcd on its data, peers from their heads).
    resumed = qcl("network", "up", "--dir", str(network_dir))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert qcl("network", "load", "--dir", str(network_dir), "--txs", "30", "--per-request", "10").returncode == 0
    after = status_when_in_step(network_dir, tree_size + 30)
    assert after["healthy"] and after["peers"][0]["tree_size"] == tree_size + 30, after
    assert qcl("network", "down", "--dir", str(network_dir)).returncode == 0
    assert processes_naming(network_dir) == []
    print(f"\nnetwork up {up_seconds:.1f} s, down {down_seconds:.1f} s, {TXS} txs, height {peers[0]['height']}")
