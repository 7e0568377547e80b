"""Catch-up from peers (node/sync.py): after etcd compacted past a stopped peer, it fetches, verifies, follows again.

Real etcd (3 members), real peers (embedded nodes with their HTTP APIs). A
dishonest serving peer is a proxy in front of an honest one that alters what
it serves; the catching-up peer must refuse it with a fork error naming it,
having stored nothing from it.
"""

from __future__ import annotations

import shutil

import pytest

from etcd_consortium import Peers, TamperingProxy, chain_of, state_of, wait_until
from node.etcd_cluster import EtcdCluster
from node.ordering.etcd import POSITION_FILE
from node.sync import ForkError

pytestmark = pytest.mark.slow


def commit_while_stopped(peers: Peers, cluster: EtcdCluster, stopped: str, rounds: int = 4) -> tuple[int, int]:
    """Stop ``stopped``, commit ``rounds`` submissions through the others, compact etcd past them.

    Returns (the stopped peer's height, the others' height now)."""
    assert all(r["status"] == "committed" for r in peers.submit(stopped, peers.enrollments(5)))
    stopped_at = peers.wait_in_step()
    peers.stop(stopped)
    for n in range(rounds):
        assert all(r["status"] == "committed" for r in peers.submit(("peer0", "peer1")[n % 2], peers.enrollments(20)))
    cluster.compact()
    return stopped_at, peers.wait_in_step()


def assert_same_as_peer0(peers: Peers, node_id: str) -> None:
    peers.wait_in_step()
    mine, theirs = peers.nodes[node_id].peer.store, peers.nodes["peer0"].peer.store
    assert chain_of(mine) == chain_of(theirs)
    assert state_of(mine) == state_of(theirs)


def test_a_peer_behind_a_compaction_fetches_verifies_and_follows_again(peers: Peers, cluster: EtcdCluster):
    before, target = commit_while_stopped(peers, cluster, "peer2")
    peers.start("peer2")
    peers.wait_height("peer2", target)
    orderer = peers.nodes["peer2"].peer.orderer
    assert orderer.fetched_blocks == target - before  # exactly the blocks it missed came from peers
    assert_same_as_peer0(peers, "peer2")
    # ... and it follows the etcd stream again: its own and others' submissions commit everywhere.
    assert all(r["status"] == "committed" for r in peers.submit("peer2", peers.enrollments(10)))
    assert all(r["status"] == "committed" for r in peers.submit("peer1", peers.enrollments(10)))
    assert peers.wait_in_step() >= target + 2
    assert orderer.fetched_blocks == target - before
    assert_same_as_peer0(peers, "peer2")


def test_a_new_peer_joins_after_compaction_from_genesis(peers: Peers, cluster: EtcdCluster, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("node.sync.CHUNK", 2)  # verified in rounds of 2 blocks, each ending at a signed checkpoint
    _, target = commit_while_stopped(peers, cluster, "peer2")
    data_dir = peers.consortium.peer("peer2").data_dir
    shutil.rmtree(data_dir / "ledger")  # as a peer that never ran: only its genesis, key and node.json
    (data_dir / POSITION_FILE).unlink()
    peers.start("peer2")
    peers.wait_height("peer2", target)
    assert peers.nodes["peer2"].peer.orderer.fetched_blocks == target
    assert_same_as_peer0(peers, "peer2")


@pytest.mark.parametrize("mode", ["entry", "header"])
def test_a_tampered_block_is_refused_with_a_fork_error_naming_the_peer(peers: Peers, cluster: EtcdCluster, mode: str):
    stored, target = commit_while_stopped(peers, cluster, "peer2")
    proxy = TamperingProxy(peers.nodes["peer1"].url, mode)
    try:
        peers.set_fetch_peers("peer2", {"peer1": proxy.url})
        peers.start("peer2")
        wait_until(lambda: peers.nodes["peer2"].peer.failure is not None, 20, "peer2 to refuse the tampered blocks")
        failure = peers.nodes["peer2"].peer.failure
        assert isinstance(failure, ForkError) and failure.code == "fork"
        assert f"peer peer1 ({proxy.url})" in str(failure)
        assert proxy.tampered > 0
        if mode == "entry":  # the block's own transactions rebuild to another block
            assert f"block {stored + 1} served by" in str(failure) and "does not match its own transactions" in str(failure)
        else:  # the chain ends at a block its server never signed
            assert f"serves block {target} with hash" in str(failure) and "peer peer1 signed a checkpoint naming" in str(failure)
        assert peers.height("peer2") == stored  # nothing from the dishonest server was stored
    finally:
        proxy.close()
    # From an honest peer it catches up to the same chain: the refused blocks left no trace.
    peers.stop("peer2")
    peers.set_fetch_peers("peer2", {"peer0": peers.nodes["peer0"].url})
    peers.start("peer2")
    peers.wait_height("peer2", target)
    assert_same_as_peer0(peers, "peer2")
