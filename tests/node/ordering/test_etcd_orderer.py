"""The etcd orderer against a real etcd: one order for every follower, resume, cut sizes, the batch format.

Each test orders its own stream (a random network id) on one module-wide etcd;
the orderers here are followed directly (no peer): what they yield is exactly
what every peer's committer would receive.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given, strategies as st

from etcd_consortium import wait_until
from ledger import codec
from ledger.block import OrderedBatch
from node.etcd_cluster import EtcdCluster
from node.ordering.base import OrdererClosed, OrderingError
from node.ordering.etcd import (
    MAX_BATCH_BYTES,
    EtcdOrderer,
    EtcdSettings,
    decode_batch,
    encode_batch,
    ordered_batch,
    stream_key,
)
from node.ordering.etcd_gateway import EtcdGateway
from node.runtime import orderer_setting

# --- the stream's format (no etcd needed) -------------------------------------------------


def test_a_batch_is_canonical_cbor_of_from_time_and_txs():
    # Known answer, written out by hand from RFC 8949's deterministic encoding (shorter keys first):
    # map(3) "txs": [h'01', h'0203'], "from": "peer0", "time": 1700000000000 (uint64)
    expected = bytes.fromhex("a3" "63747873" "82" "4101" "420203" "6466726f6d" "657065657230" "6474696d65" "1b0000018bcfe56800")
    assert encode_batch("peer0", 1_700_000_000_000, [b"\x01", b"\x02\x03"]) == expected
    assert decode_batch(expected) == (1_700_000_000_000, (b"\x01", b"\x02\x03"))
    assert stream_key(bytes(range(32))) == b"/qcl/000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f/stream"


@pytest.mark.parametrize(
    "value",
    [
        b"",
        b"\xff\x00",
        codec.encode([1, 2]),
        codec.encode({"from": "peer0", "time": 5}),
        codec.encode({"from": "peer0", "time": 5, "txs": [b"x"], "extra": 1}),
        codec.encode({"from": "peer0", "time": "5", "txs": [b"x"]}),
        codec.encode({"from": "peer0", "time": -1, "txs": [b"x"]}),
        codec.encode({"from": 7, "time": 5, "txs": [b"x"]}),
        codec.encode({"from": "peer0", "time": 5, "txs": ["text, not bytes"]}),
    ],
)
def test_a_value_that_is_not_a_batch_becomes_the_same_empty_block_everywhere(value: bytes):
    assert decode_batch(value) is None
    assert ordered_batch(7, value, 1234) == OrderedBatch(7, 1234, ())


@given(st.integers(0, 2**40), st.lists(st.integers(0, 2**40), max_size=20))
def test_block_time_is_the_running_maximum_of_proposer_clocks(start: int, clocks: list[int]):
    previous = start
    for seq, clock in enumerate(clocks, 1):
        batch = ordered_batch(seq, encode_batch("p", clock, [b"tx"]), previous)
        assert batch.time == max(previous, clock) and batch.time >= previous
        previous = batch.time


def test_node_json_chooses_the_orderer(tmp_path: Path):
    (tmp_path / "node.json").write_text('{"node_id": "x"}')
    assert orderer_setting(tmp_path) == {"kind": "inprocess"}
    (tmp_path / "node.json").write_text('{"node_id": "x", "orderer": {"kind": "raft-of-my-own"}}')
    with pytest.raises(OrderingError, match="inprocess.*etcd") as caught:
        orderer_setting(tmp_path)
    assert caught.value.code == "config"
    settings = EtcdSettings.from_config({"kind": "etcd", "endpoints": ["http://127.0.0.1:1"], "peers": {"peer1": "http://127.0.0.1:2"}})
    assert settings == EtcdSettings(("http://127.0.0.1:1",), {"peer1": "http://127.0.0.1:2"})
    for broken in ({"kind": "etcd"}, {"kind": "etcd", "endpoints": []}, {"kind": "etcd", "endpoints": ["127.0.0.1:1"]},
                   {"kind": "etcd", "endpoints": ["http://a"], "peers": ["peer1"]}, {"kind": "etcd", "endpoints": ["http://a"], "typo": 1}):
        with pytest.raises(OrderingError) as caught:
            EtcdSettings.from_config(broken)
        assert caught.value.code == "config"


# --- against etcd -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdCluster]:
    with EtcdCluster.start(tmp_path_factory.mktemp("etcd") / "etcd", members=1) as running:
        yield running


class Follower:
    """An orderer and a thread collecting what it yields after the batch it already has."""

    def __init__(
        self, cluster: EtcdCluster, network: bytes, directory: Path, name: str, *, after: OrderedBatch | None = None, clock=None
    ) -> None:
        """``after``: the last batch this follower already has (None: none)."""
        self.orderer = EtcdOrderer(
            EtcdGateway(cluster.endpoints),
            network=network,
            node_id=name,
            position_file=directory / f"{name}.ordering.json",
            last_time_ms=0 if after is None else after.time,
            **({"clock_ms": clock} if clock else {}),
        )
        self.batches: list[OrderedBatch] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._follow, args=(0 if after is None else after.seq,), daemon=True)
        self._thread.start()

    def _follow(self, after_seq: int) -> None:
        try:
            self.batches.extend(self.orderer.batches(after_seq))
        except BaseException as exc:
            self.error = exc

    def envelopes(self) -> list[bytes]:
        return [envelope for batch in list(self.batches) for envelope in batch.envelopes]

    def close(self) -> None:
        self.orderer.close()
        self._thread.join(timeout=5)
        assert not self._thread.is_alive(), "batches() did not end on close()"


@pytest.fixture
def network() -> bytes:
    return os.urandom(32)


def test_followers_see_one_order_of_concurrent_submissions(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    # One proposer's clock runs an hour behind: block time still never goes backwards.
    late = lambda: 1_000  # noqa: E731
    followers = [Follower(cluster, network, tmp_path, f"peer{i}", clock=late if i == 2 else None) for i in range(3)]
    try:
        sent = {f"peer{i}": [f"peer{i}-tx{n}".encode() for n in range(150)] for i in range(3)}

        def submit(follower: Follower, envelopes: list[bytes]) -> None:
            for start in range(0, len(envelopes), 10):
                follower.orderer.submit(envelopes[start : start + 10])

        threads = [threading.Thread(target=submit, args=(f, sent[f"peer{i}"])) for i, f in enumerate(followers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wait_until(lambda: all(len(f.envelopes()) == 450 for f in followers), 20, "every follower to see all 450 envelopes")
        first = followers[0].batches
        assert all(f.batches == first for f in followers[1:])  # same seqs, times, batch boundaries, order
        assert [b.seq for b in first] == list(range(1, len(first) + 1))
        assert sorted(followers[0].envelopes()) == sorted(e for envelopes in sent.values() for e in envelopes)
        for name, envelopes in sent.items():  # one peer's submissions keep their order
            assert [e for e in followers[0].envelopes() if e.startswith(name.encode())] == envelopes
        times = [b.time for b in first]
        assert times == sorted(times)
        assert len({f.orderer.ordering_status().latest_seq for f in followers}) == 1
        assert followers[0].orderer.ordering_status().connected
    finally:
        for follower in followers:
            follower.close()
    with pytest.raises(OrdererClosed):
        followers[0].orderer.submit([b"late"])


def test_a_restarted_follower_resumes_after_its_saved_position(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    writer = Follower(cluster, network, tmp_path, "peer0")
    try:
        for n in range(5):
            writer.orderer.submit([f"tx{n}".encode()])
            wait_until(lambda: len(writer.batches) == n + 1, 10, f"batch {n + 1}")
        head = writer.batches[3]  # as if blocks 1..4 were committed when the peer stopped
        writer.orderer.close()
        revisions = EtcdGateway(cluster.endpoints)
        current, _ = revisions.get(stream_key(network))
        revisions.close()

        resumed = Follower(cluster, network, tmp_path, "peer0", after=head)
        resumed.orderer.submit([b"tx5"])
        wait_until(lambda: len(resumed.batches) == 2, 10, "the resumed follower's batches")
        assert [b.seq for b in resumed.batches] == [5, 6]
        assert resumed.batches[0] == writer.batches[4]
        # It watched from just after block 4's revision (block 5's, nobody else writes here), not from the start.
        assert resumed.orderer.resumed_from_revision == current.mod_revision
        resumed.close()

        # Without a saved position it reads the stream from its first revision and still skips what it has.
        (tmp_path / "peer0.ordering.json").unlink()
        fresh = Follower(cluster, network, tmp_path, "peer0", after=head)
        wait_until(lambda: len(fresh.batches) == 2, 10, "the follower without a position")
        assert fresh.orderer.resumed_from_revision == 1
        assert fresh.batches == resumed.batches
        fresh.close()
    finally:
        writer.close()


def test_batches_stay_below_etcd_request_limit(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    follower = Follower(cluster, network, tmp_path, "peer0")
    try:
        big = [os.urandom(200_000) for _ in range(16)]  # 3.2 MB submitted at once; etcd refuses requests above 1.5 MiB
        follower.orderer.submit(big)
        wait_until(lambda: len(follower.envelopes()) == 16, 20, "all large envelopes")
        assert follower.envelopes() == big
        assert len(follower.batches) >= 4
        assert all(sum(len(e) for e in b.envelopes) <= MAX_BATCH_BYTES for b in follower.batches)
    finally:
        follower.close()


def test_a_compacted_stream_without_peers_to_fetch_from_stops_with_a_clear_error(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    writer = Follower(cluster, network, tmp_path, "peer0")
    try:
        writer.orderer.submit([b"a"])
        wait_until(lambda: len(writer.batches) == 1, 10, "the first batch")
        writer.orderer.submit([b"b"])
        wait_until(lambda: len(writer.batches) == 2, 10, "the second batch")
    finally:
        writer.close()
    cluster.compact()
    late = Follower(cluster, network, tmp_path, "peer1")  # never saw anything: needs block 1
    try:
        wait_until(lambda: late.error is not None, 10, "the follower to give up")
        assert isinstance(late.error, OrderingError) and late.error.code == "compacted"
        assert "compacted the stream past block 1" in str(late.error) and "no peers" in str(late.error)
        assert late.batches == []
    finally:
        late.close()


def test_a_follower_needs_no_peer_for_what_etcd_still_holds(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    writer = Follower(cluster, network, tmp_path, "peer0")
    try:
        for n, envelope in enumerate((b"a", b"b")):
            writer.orderer.submit([envelope])
            wait_until(lambda: len(writer.batches) == n + 1, 10, f"batch {n + 1}")
        cluster.compact()  # batches 1 and 2 are gone from etcd's history
        writer.orderer.submit([b"c"])
        wait_until(lambda: len(writer.batches) == 3, 10, "batch 3")
    finally:
        writer.close()
    # A follower at block 2 without a saved position watches from revision 1, is told "compacted",
    # and finds that all it lacks (block 3) is after the compaction: no peer is needed.
    late = Follower(cluster, network, tmp_path, "peer1", after=writer.batches[1])
    try:
        wait_until(lambda: len(late.batches) == 1 or late.error is not None, 10, "block 3")
        assert late.error is None and late.batches == writer.batches[2:]
        assert late.orderer.fetched_blocks == 0
    finally:
        late.close()


def test_a_deleted_stream_stops_the_follower(cluster: EtcdCluster, network: bytes, tmp_path: Path):
    follower = Follower(cluster, network, tmp_path, "peer0")
    try:
        follower.orderer.submit([b"a"])
        wait_until(lambda: len(follower.batches) == 1, 10, "the first batch")
        gateway = EtcdGateway(cluster.endpoints)
        gateway.call("/v3/kv/deleterange", {"key": base64.b64encode(stream_key(network)).decode()})
        gateway.close()
        wait_until(lambda: follower.error is not None, 10, "the follower to stop")
        assert isinstance(follower.error, OrderingError) and follower.error.code == "stream_deleted"
        assert "deleted" in str(follower.error)
    finally:
        follower.close()
