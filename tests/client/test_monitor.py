"""The checkpoint monitor against three real peers: honest peers agree, a peer that alters its history is named.

Most tests use three embedded peers (LevelDB + HTTP on loopback) of one
network, each with its own node key named in the genesis, started from one
copied store and fed the same transactions in the same order: they hold the
same leaves while their blocks differ, and a test can give each peer a
different log size. The last test runs the real thing: peers of a consortium
ordered by an etcd process, following one stream. Tampering is done as a
dishonest operator would: stop the peer, rewrite a leaf in its LevelDB and
recompute every Merkle node (optionally re-signing its old checkpoints too),
start it again.
"""

from __future__ import annotations

import json
import shutil
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Iterator, Sequence

import pytest
from typer.testing import CliRunner

from client.cli import app
from client.monitor import (
    Basis,
    Conflict,
    Misbehaviour,
    Monitor,
    MonitorError,
    MonitorReport,
    MonitorState,
    Witness,
    verify_evidence,
)
from client.sdk import LedgerClient
from client.wallet import save_wallet_key
from ledger.checkpoint import SignedCheckpoint
from ledger.crypto import KeyPair
from ledger.genesis import network_id
from ledger.merkle import CompactRange, hash_leaf
from ledger.storage import schema
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from node.devnet import NodeConfig, load_node_config, write_dev_genesis
from node.embedded import EmbeddedNode, embedded_node, free_port
from node.keyfile import load_key, save_key
from node.runtime import clock_ms, open_peer
from etcd_consortium import Peers
from node.etcd_cluster import EtcdCluster
from workload import enrollments_for

pytestmark = pytest.mark.slow

PEERS = {"peer0": "jinan-bigdata", "peer1": "qilu-bank", "peer2": "taiping-insurance"}
REGULATOR = "pbc-jinan"
PASSPHRASE = "monitor passphrase"


class Consortium:
    """Three peers of one network, fed identically; each can be stopped, tampered with and restarted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dirs = {node: root / node for node in PEERS}
        node_keys = {node: KeyPair.generate() for node in PEERS}
        first = self.dirs["peer0"]
        write_dev_genesis(first, clock_ms(), {org: [(node, node_keys[node].public_key)] for node, org in PEERS.items()})
        self._configure(first, "peer0", node_keys["peer0"])
        open_peer(first).stop()  # the genesis block (and the development catalogue), copied to every peer
        for node in ("peer1", "peer2"):
            shutil.copytree(first, self.dirs[node])
            self._configure(self.dirs[node], node, node_keys[node])
        self.config: NodeConfig = load_node_config(first)
        self.network = network_id(self.config.genesis)
        self.node_keys = {key.public_key: node for node, key in node_keys.items()}
        self.regulator = self.config.admin_key(REGULATOR)
        self.nodes: dict[str, EmbeddedNode] = {}
        self._running: dict[str, AbstractContextManager[EmbeddedNode]] = {}
        self._seed = 0

    @staticmethod
    def _configure(data_dir: Path, node_id: str, key: KeyPair) -> None:
        save_key(data_dir / "keys" / "node.key", key)
        (data_dir / "node.json").write_text(json.dumps({"node_id": node_id}))

    def start(self, node_id: str) -> None:
        running = embedded_node(self.dirs[node_id])
        self.nodes[node_id] = running.__enter__()
        self._running[node_id] = running

    def stop(self, node_id: str) -> None:
        del self.nodes[node_id]
        self._running.pop(node_id).__exit__(None, None, None)

    def close(self) -> None:
        for node_id in list(self._running):
            self.stop(node_id)

    def transactions(self, count: int) -> list[bytes]:
        self._seed += 1
        return enrollments_for(self.config, self.network, count, seed=self._seed)

    def feed(self, envelopes: Sequence[bytes], *, to: Sequence[str] = tuple(PEERS)) -> None:
        """Commit the same transactions, in the same order, on each peer in ``to``."""
        for node_id in to:
            results = self.nodes[node_id].peer.submit(envelopes)
            assert [r.status for r in results] == ["committed"] * len(envelopes), [r.reason for r in results]

    def size(self, node_id: str) -> int:
        return self.nodes[node_id].peer.store.head().tree_size

    def monitor(self, *node_ids: str) -> tuple[Monitor, list[LedgerClient]]:
        clients = [LedgerClient(self.nodes[node].url, key=self.regulator) for node in node_ids or PEERS]
        return Monitor(dict(zip(node_ids or PEERS, clients))), clients

    def run(self, *node_ids: str, state: MonitorState | None = None) -> MonitorReport:
        monitor, clients = self.monitor(*node_ids)
        try:
            return monitor.run(state)
        finally:
            for client in clients:
                client.close()


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[Consortium]:
    network = Consortium(tmp_path / "net")
    try:
        for node_id in PEERS:
            network.start(node_id)
        yield network
    finally:
        network.close()


def rewrite_history(data_dir: Path, index: int, forged: bytes, *, resign: bool) -> None:
    """On a stopped peer: replace leaf ``index`` and recompute every Merkle node, so the store hangs together.

    With ``resign`` the peer also re-signs each of its stored checkpoints with
    the rewritten roots, so that it serves a coherent, signed false history.
    """
    kv = LevelDBStore(data_dir / "ledger")
    try:
        store = LedgerStore(kv)
        head = store.head()
        leaves = list(store.leaves(0, head.tree_size))
        assert leaves[index] != forged
        leaves[index] = forged
        batch = kv.batch()
        batch.put(schema.leaf_key(index), forged)
        tree = CompactRange()
        roots = {}
        for leaf in leaves:
            for level, node_index, node_hash in tree.append(hash_leaf(leaf)):
                batch.put(schema.node_key(level, node_index), node_hash)
            roots[tree.size] = tree.root()
        if resign:
            key = load_key(data_dir / "keys" / "node.key")
            for height in range(head.height + 1):
                signed = store.checkpoint(height)
                if signed is not None and signed.node_key == key.public_key:
                    forged_checkpoint = replace(signed.checkpoint, root_hash=roots[signed.checkpoint.tree_size])
                    batch.put(schema.checkpoint_key(height), forged_checkpoint.sign(key).encode())
        kv.write(batch)
    finally:
        kv.close()


def corrupt_nodes(data_dir: Path, start: int, end: int) -> int:
    """On a stopped peer: flip a bit in every stored Merkle node that covers only leaves in [start, end)."""
    kv = LevelDBStore(data_dir / "ledger")
    try:
        batch = kv.batch()
        count = 0
        for key, value in kv.iterate(schema.KeySpace.NODE.value):
            level, index = schema.decode_node_key(key)
            if start <= index << level and (index + 1) << level <= end:
                batch.put(key, bytes([value[0] ^ 1]) + value[1:])
                count += 1
        kv.write(batch)
        return count
    finally:
        kv.close()


def named(report: MonitorReport) -> set[str]:
    return {node for item in report.evidence for node in item.named}


def consistent(report: MonitorReport) -> dict[str, bool]:
    return {peer.node_id: not peer.named for peer in report.peers}


# --- honest peers ----------------------------------------------------------------


def test_honest_peers_of_different_sizes_are_consistent_now_and_on_the_next_run(consortium: Consortium, tmp_path: Path) -> None:
    first, second, third = consortium.transactions(20), consortium.transactions(7), consortium.transactions(5)
    consortium.feed(first)
    consortium.feed(second, to=["peer0", "peer1"])
    consortium.feed(third, to=["peer0"])
    sizes = {node: consortium.size(node) for node in PEERS}
    assert sizes["peer2"] < sizes["peer1"] < sizes["peer0"]  # every pair needs a consistency proof

    report = consortium.run()
    assert report.ok and report.evidence == ()
    assert {peer.node_id: peer.checkpoint.checkpoint.tree_size for peer in report.peers} == sizes
    assert set(report.state.checkpoints) == set(PEERS) and report.state.network == consortium.network
    path = tmp_path / "monitor.json"
    report.state.save(path)

    consortium.feed(second, to=["peer2"])
    consortium.feed(third, to=["peer1", "peer2"])
    consortium.feed(consortium.transactions(10))
    again = consortium.run(state=MonitorState.load(path))
    assert again.ok, again.to_json()
    assert len({peer.checkpoint.checkpoint.root_hash for peer in again.peers}) == 1  # same leaves, same root
    with pytest.raises(MonitorError) as caught:
        consortium.run(state=MonitorState(network=bytes(32)))  # recorded for another network
    assert caught.value.code == "state_invalid"
    path.write_text(path.read_text().replace('"version": 1', '"version": 7'))
    with pytest.raises(MonitorError) as caught:
        MonitorState.load(path)
    assert caught.value.code == "state_invalid"

    signed = {peer.node_id: peer.checkpoint for peer in again.peers}
    framed = Misbehaviour(Conflict.SAME_SIZE, signed["peer0"], signed["peer1"], ("peer1",), Basis.MINORITY)
    with pytest.raises(MonitorError) as caught:
        verify_evidence(framed, consortium.node_keys)  # an honest peer cannot be framed with its own checkpoint
    assert caught.value.code == "evidence_invalid"
    assert {node: signed.checkpoint.tree_size for node, signed in again.state.checkpoints.items()} == {
        node: consortium.size(node) for node in PEERS
    }


def test_a_peer_that_cannot_back_its_root_is_accused_not_proven_until_another_peer_proves_it(consortium: Consortium) -> None:
    consortium.feed(consortium.transactions(20))
    extra = consortium.transactions(5)
    consortium.feed(extra, to=["peer2"])
    start, end = consortium.size("peer0"), consortium.size("peer2")
    consortium.stop("peer2")
    assert corrupt_nodes(consortium.dirs["peer2"], start, end) >= 5  # its signed checkpoint stays; its proofs break
    consortium.start("peer2")

    report = consortium.run()
    assert named(report) == {"peer2"} and not report.ok
    assert {item.conflict for item in report.evidence} == {Conflict.UNPROVEN}
    for item in report.evidence:
        assert not item.conclusive and item.basis is Basis.MINORITY
        assert "peer2" in item.detail and "peer0" in item.detail  # what was tried, and how it failed
        with pytest.raises(MonitorError) as caught:
            verify_evidence(item, consortium.node_keys)
        assert caught.value.code == "evidence_inconclusive"

    consortium.feed(extra, to=["peer0"])  # now an honest peer holds the same tree and serves a valid proof
    assert consortium.run().ok


# --- a peer that alters its history -------------------------------------------------


def test_a_peer_that_altered_its_store_is_named_with_evidence_that_verifies_offline(consortium: Consortium, tmp_path: Path) -> None:
    consortium.feed(consortium.transactions(30))
    consortium.stop("peer2")
    rewrite_history(consortium.dirs["peer2"], 12, consortium.transactions(1)[0], resign=False)
    consortium.start("peer2")
    consortium.feed(consortium.transactions(8))  # peer2 signs new checkpoints over its altered log
    extra = consortium.transactions(9)
    consortium.feed(extra[:4], to=["peer2"])
    consortium.feed(extra, to=["peer0"])
    assert consortium.size("peer1") < consortium.size("peer2") < consortium.size("peer0")

    report = consortium.run()
    assert consistent(report) == {"peer0": True, "peer1": True, "peer2": False}
    assert len(report.evidence) == 2 and named(report) == {"peer2"}
    witnesses = set()
    for item in report.evidence:
        assert item.conflict is Conflict.PREFIX_MISMATCH and item.basis is Basis.MINORITY and item.named == ("peer2",)
        verify_evidence(item, consortium.node_keys)
        verify_evidence(Misbehaviour.from_json(json.loads(json.dumps(item.to_json()))), consortium.node_keys)
        witnesses.add(item.witness.served_by)
    assert witnesses == {"peer2", "peer0"}  # the larger signer of each pair: the liar's own proof convicts it too

    evidence = report.evidence[0]
    rejected = {
        "the smaller root as the prefix root": replace(evidence, witness=replace(evidence.witness, prefix_root=evidence.first.checkpoint.root_hash)),
        "a flipped proof node": replace(
            evidence, witness=replace(evidence.witness, nodes=(bytes(32), *evidence.witness.nodes[1:]))
        ),
        "a checkpoint with a forged signature": replace(
            evidence, second=SignedCheckpoint(evidence.second.checkpoint, evidence.second.node_key, bytes(64))
        ),
        "self-contradiction claimed between two peers": replace(evidence, basis=Basis.SELF, named=("peer2",)),
    }
    for what, forged in rejected.items():
        with pytest.raises(MonitorError) as caught:
            verify_evidence(forged, consortium.node_keys)
        assert caught.value.code == "evidence_invalid", what
    without_peer2 = {key: node for key, node in consortium.node_keys.items() if node != "peer2"}
    with pytest.raises(MonitorError, match="no node key of the network"):
        verify_evidence(evidence, without_peer2)

    # Two honest checkpoints cannot be dressed up as a conflict: no proof reproduces the larger root with another prefix.
    honest = {peer.node_id: peer.checkpoint for peer in report.peers}
    accusation = Misbehaviour(
        Conflict.PREFIX_MISMATCH, honest["peer1"], honest["peer0"], ("peer1",), Basis.MINORITY,
        Witness("peer0", evidence.witness.nodes, bytes(32)),
    )
    with pytest.raises(MonitorError) as caught:
        verify_evidence(accusation, consortium.node_keys)
    assert caught.value.code == "evidence_invalid"

    consortium.feed(extra[:4], to=["peer1"])  # now peer1 and peer2 sign the same tree size
    assert consortium.size("peer1") == consortium.size("peer2")
    same_size = [item for item in consortium.run().evidence if item.conflict is Conflict.SAME_SIZE]
    assert len(same_size) == 1 and same_size[0].named == ("peer2",) and same_size[0].witness is None
    verify_evidence(same_size[0], consortium.node_keys)


def test_a_peer_that_rewrites_history_after_it_was_recorded_contradicts_itself(consortium: Consortium, tmp_path: Path) -> None:
    consortium.feed(consortium.transactions(25))
    recorded = consortium.run()
    assert recorded.ok
    earlier = recorded.state.checkpoints["peer1"]

    consortium.stop("peer1")
    rewrite_history(consortium.dirs["peer1"], 9, consortium.transactions(1)[0], resign=True)
    consortium.start("peer1")
    consortium.feed(consortium.transactions(6))

    alone = consortium.run("peer1", state=recorded.state)  # no other peer needed: its own signatures convict it
    assert {(item.conflict, item.basis, item.named) for item in alone.evidence} == {
        (Conflict.SAME_SIZE, Basis.SELF, ("peer1",)),  # what it now serves for the recorded height
        (Conflict.PREFIX_MISMATCH, Basis.SELF, ("peer1",)),  # its latest checkpoint, by its own consistency proof
    }
    for item in alone.evidence:
        assert item.first == earlier
        assert {item.first.checkpoint.node_id, item.second.checkpoint.node_id} == {"peer1"}
        verify_evidence(item, consortium.node_keys)
    assert alone.state.checkpoints["peer1"] == earlier  # the state keeps what it signed before, so the evidence stays reproducible

    everyone = consortium.run(state=recorded.state)
    assert named(everyone) == {"peer1"}
    assert {item.basis for item in everyone.evidence} == {Basis.SELF, Basis.MINORITY}
    for item in everyone.evidence:
        verify_evidence(item, consortium.node_keys)
    assert everyone.state.checkpoints["peer1"] == earlier
    assert everyone.state.checkpoints["peer0"] != recorded.state.checkpoints["peer0"]


def test_qcl_regulator_monitor_prints_the_peers_and_the_evidence_and_exits_1(consortium: Consortium, tmp_path: Path) -> None:
    wallet = tmp_path / "regulator.wallet"
    save_wallet_key(wallet, consortium.regulator, PASSPHRASE, ops="interactive")
    state = tmp_path / "monitor.json"
    env = {"QCL_PASSPHRASE": PASSPHRASE, "COLUMNS": "200"}
    command = ["regulator", "monitor", *(arg for node in PEERS for arg in ("--peer", consortium.nodes[node].url)),
               "--wallet", str(wallet), "--state", str(state)]
    runner = CliRunner()

    consortium.feed(consortium.transactions(10))
    clean = runner.invoke(app, command, env=env)
    assert clean.exit_code == 0, clean.stdout + clean.stderr
    assert "every pair of checkpoints is consistent" in clean.stdout
    assert set(json.loads(state.read_text())["checkpoints"]) == set(PEERS)
    down = f"http://127.0.0.1:{free_port()}"
    partial = runner.invoke(app, [*command, "--peer", down, "--json"], env=env)
    assert partial.exit_code == 1 and partial.stderr.startswith("error unavailable: "), partial.stdout + partial.stderr
    rows = {peer["node_id"]: peer for peer in json.loads(partial.stdout)["peers"]}
    assert rows[down]["consistent"] is None and "cannot ask" in rows[down]["problems"][0]
    assert all(rows[node]["consistent"] for node in PEERS)

    consortium.stop("peer0")
    rewrite_history(consortium.dirs["peer0"], 3, consortium.transactions(1)[0], resign=True)
    consortium.start("peer0")
    consortium.feed(consortium.transactions(3))
    command[command.index("--peer") + 1] = consortium.nodes["peer0"].url  # it restarted on a new port

    found = runner.invoke(app, [*command, "--json"], env=env)
    assert found.exit_code == 1, found.stdout + found.stderr
    assert found.stderr.startswith("error misbehaviour: ")
    output = json.loads(found.stdout)
    assert not output["ok"] and {tuple(item["named"]) for item in output["evidence"]} == {("peer0",)}
    assert [peer["consistent"] for peer in output["peers"]] == [False, True, True]
    for item in output["evidence"]:
        verify_evidence(Misbehaviour.from_json(item), consortium.node_keys)

    shown = runner.invoke(app, command, env=env)
    assert shown.exit_code == 1
    assert "misbehaviour 1: peer0 (contradicts its own earlier checkpoint; proof, verifiable offline)" in shown.stdout
    assert "outside the majority of peers" in shown.stdout


def test_in_an_etcd_ordered_consortium_a_peer_that_rewrites_its_history_is_detected(tmp_path: Path) -> None:
    with EtcdCluster.start(tmp_path / "etcd", members=1) as cluster:
        peers = Peers.create(tmp_path / "net", peers=3, etcd_endpoints=cluster.endpoints)
        regulator = peers.consortium.admin_key(REGULATOR)
        node_keys = {load_key(peer.data_dir / "keys" / "node.key").public_key: peer.node_id for peer in peers.consortium.peers}

        def run(state: MonitorState | None) -> MonitorReport:
            clients = {node: LedgerClient(peers.nodes[node].url, key=regulator) for node in peers.ids}
            try:
                return Monitor(clients).run(state)
            finally:
                for client in clients.values():
                    client.close()

        try:
            peers.start()
            peers.nodes["peer0"].peer.submit(peers.enrollments(20))
            peers.wait_in_step()
            recorded = run(None)
            assert recorded.ok
            assert len({peer.checkpoint.checkpoint.block_hash for peer in recorded.peers}) == 1  # one stream, one chain

            peers.stop("peer2")
            rewrite_history(peers.consortium.peer("peer2").data_dir, 4, peers.enrollments(1)[0], resign=True)
            peers.start("peer2")
            peers.nodes["peer1"].peer.submit(peers.enrollments(5))
            peers.wait_in_step()  # peer2 keeps following the stream, now over its altered log

            report = run(recorded.state)
            assert consistent(report) == {"peer0": True, "peer1": True, "peer2": False}
            assert named(report) == {"peer2"} and {item.basis for item in report.evidence} == {Basis.SELF, Basis.MINORITY}
            for item in report.evidence:
                verify_evidence(item, node_keys)
        finally:
            peers.close()
