"""Peers ordered by a real 3-member etcd: one chain under concurrent writers, resume after restart, etcd faults.

Three peers of one consortium (node/consortium.py) run as embedded nodes with
their real stores and HTTP APIs; every submission goes through a peer's API.
"Identical" is checked byte for byte: every block header at every height, and
every state entry.
"""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import httpx
import pytest

from client.auth import RequestSigner
from etcd_consortium import Peers, chain_of, state_of, wait_until
from node.devnet import DEV_CUSTODIAN
from node.etcd_cluster import EtcdCluster
from processes import NodeProcess
from workload import enrollments_for

pytestmark = pytest.mark.slow


def assert_one_chain(peers: Peers) -> int:
    """Every running peer holds the same blocks, byte for byte, and the same state; returns the height."""
    height = peers.wait_in_step()
    stores = {node_id: node.peer.store for node_id, node in peers.nodes.items()}
    chains = {node_id: chain_of(store) for node_id, store in stores.items()}
    reference = chains["peer0"]
    assert len(reference) == height + 1
    for node_id, chain in chains.items():
        assert chain == reference, f"{node_id} differs from peer0 at height {next(h for h, (a, b) in enumerate(zip(chain, reference)) if a != b)}"
    states = {node_id: state_of(store) for node_id, store in stores.items()}
    assert all(state == states["peer0"] for state in states.values())
    for node_id, store in stores.items():  # each peer signs the same block hash, under its own node id
        checkpoint = store.latest_checkpoint()
        assert (checkpoint.checkpoint.node_id, checkpoint.checkpoint.height) == (node_id, height)
        assert checkpoint.checkpoint.block_hash == stores["peer0"].latest_checkpoint().checkpoint.block_hash
    return height


def test_peers_commit_byte_identical_blocks_under_concurrent_submissions(peers: Peers):
    results: dict[str, list[dict]] = {node_id: [] for node_id in peers.ids}
    batches = {node_id: [peers.enrollments(25) for _ in range(4)] for node_id in peers.ids}

    def write(node_id: str) -> None:
        for envelopes in batches[node_id]:
            results[node_id].extend(peers.submit(node_id, envelopes))

    writers = [threading.Thread(target=write, args=(node_id,)) for node_id in peers.ids]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert all(r["status"] == "committed" for rs in results.values() for r in rs), results
    assert sum(len(rs) for rs in results.values()) == 300
    height = assert_one_chain(peers)
    store = peers.nodes["peer0"].peer.store
    headers = [store.header(h) for h in range(1, height + 1)]
    assert [h.order_seq for h in headers] == list(range(1, height + 1))  # seq = height: the stream key's version
    assert sum(h.codes.count(0) for h in headers) == 300


def test_a_restarted_peer_resumes_from_its_position(peers: Peers):
    assert all(r["status"] == "committed" for r in peers.submit("peer2", peers.enrollments(10)))
    before = assert_one_chain(peers)
    peers.stop("peer2")
    for node_id in ("peer0", "peer1", "peer0"):
        assert all(r["status"] == "committed" for r in peers.submit(node_id, peers.enrollments(10)))
    peers.start("peer2")
    orderer = peers.nodes["peer2"].peer.orderer
    assert orderer.resumed_from_revision > 1  # from its saved position, not the start of the stream
    assert assert_one_chain(peers) >= before + 3
    assert orderer.fetched_blocks == 0  # everything came from etcd
    assert all(r["status"] == "committed" for r in peers.submit("peer2", peers.enrollments(10)))
    assert_one_chain(peers)


class Load:
    """Writers submitting 10 fresh enrollments at a time to peer0 and peer1 until stopped; every answer is kept."""

    def __init__(self, peers: Peers) -> None:
        self.peers = peers
        self.results: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._write, args=(n, node_id)) for n, node_id in enumerate(("peer0", "peer1"))]
        for thread in self._threads:
            thread.start()

    def _write(self, writer: int, node_id: str) -> None:
        consortium = self.peers.consortium
        for round_ in range(100_000):
            if self._stop.is_set():
                return
            envelopes = enrollments_for(consortium, consortium.network, 10, seed=(writer + 1) * 1_000_000 + round_)  # type: ignore[arg-type]
            answered = self.peers.submit(node_id, envelopes)
            with self._lock:
                self.results.extend((time.monotonic(), r) for r in answered)

    def committed_since(self, moment: float) -> int:
        with self._lock:
            return sum(1 for at, r in self.results if at > moment and r["status"] == "committed")

    def stop(self) -> list[dict]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        return [r for _, r in self.results]


def test_submissions_keep_committing_when_an_etcd_member_is_killed(peers: Peers, cluster: EtcdCluster):
    load = Load(peers)
    try:
        wait_until(lambda: load.committed_since(0) >= 20, 20, "the load to commit")
        leader = cluster.leader()
        follower = next(m for m in cluster.members if m is not leader)

        killed_at = time.monotonic()
        cluster.kill(follower.name)
        wait_until(lambda: load.committed_since(killed_at) >= 40, 30, "commits with a follower killed")
        cluster.restart(follower.name)
        cluster.wait_healthy(20)

        killed_at = time.monotonic()
        cluster.kill(leader.name)
        wait_until(lambda: load.committed_since(killed_at) >= 1, 30, "the first commit after the leader was killed")
        resumed_after = time.monotonic() - killed_at
        wait_until(lambda: load.committed_since(killed_at) >= 40, 30, "commits with the leader killed")
        assert cluster.leader().name != leader.name
        cluster.restart(leader.name)
        cluster.wait_healthy(20)
    finally:
        results = load.stop()
    assert results and all(r["status"] == "committed" for r in results), [r for r in results if r["status"] != "committed"][:3]
    height = assert_one_chain(peers)
    print(f"\n{len(results)} transactions committed through a follower kill and a leader kill; "
          f"first commit {resumed_after:.2f} s after the leader kill; {height} blocks on every peer")


def test_a_peer_process_killed_under_load_restarts_and_catches_up(cluster: EtcdCluster, tmp_path: Path):
    """Peers as `qcl node start` processes; SIGKILL one while the other commits, start it again."""
    consortium = Peers.create(tmp_path / "consortium", peers=2, etcd_endpoints=cluster.endpoints).consortium
    signer = RequestSigner(consortium.admin_key(DEV_CUSTODIAN))  # the custodian: an auditor, may read every header
    workload = Peers(consortium)
    processes = {peer.node_id: NodeProcess(peer.data_dir, peer.port) for peer in consortium.peers}
    acknowledged: list[str] = []

    def submit(node_id: str, count: int) -> None:
        body = {"transactions": [base64.b64encode(e).decode() for e in workload.enrollments(count)]}
        answer = httpx.post(processes[node_id].url + "/v1/transactions", json=body, auth=signer, timeout=60).json()
        assert all(r["status"] == "committed" for r in answer["results"]), answer
        acknowledged.extend(r["tx_id"] for r in answer["results"])

    def headers(node_id: str) -> list[str]:
        height = httpx.get(processes[node_id].url + "/healthz").json()["height"]
        return httpx.get(f"{processes[node_id].url}/v1/log/headers?start=0&end={height + 1}", auth=signer).json()["headers"]

    try:
        starting = [threading.Thread(target=process.start) for process in processes.values()]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        submit("peer1", 10)
        killer = threading.Timer(0.3, processes["peer1"].kill)
        killer.start()
        for _ in range(6):  # keeps committing on peer0 while peer1 dies
            submit("peer0", 20)
        killer.join()
        processes["peer1"].start()
        submit("peer1", 10)
        wait_until(lambda: len(headers("peer1")) == len(headers("peer0")), 20, "peer1 to catch up")
        assert headers("peer1") == headers("peer0")
        for process in processes.values():  # nothing acknowledged was lost, on either peer
            with httpx.Client(base_url=process.url, auth=signer) as client:
                assert all(client.get(f"/v1/transactions/{tx_id}").json()["status"] == "committed" for tx_id in acknowledged)
    finally:
        for process in processes.values():
            process.stop()
