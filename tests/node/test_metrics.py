"""GET /metrics on a real peer: Prometheus text format, figures that match the committed chain."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from node.api.app import create_app
from node.metrics import COMMIT_SECONDS_BUCKETS, OrderingStatus, render
from node.peer import Peer

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def parse(text: str) -> dict[str, float]:
    """Every sample line as 'name{labels}' -> value; every family has HELP and TYPE before its samples."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not an exposition sample: {line!r}"
        name, labels, value = match.groups()
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed or name in typed, f"{name} has no TYPE line"
        samples[name + (labels or "")] = float(value)
    return samples


def test_metrics_follow_the_chain(peer: Peer, make_enrollments) -> None:
    results = peer.submit(make_enrollments(5))
    assert {result.status for result in results} == {"committed"}
    with TestClient(create_app(peer)) as client:
        response = client.get("/metrics")  # unsigned, like a Prometheus scraper
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    head = peer.store.head()
    assert samples["qcl_block_height"] == head.height
    assert samples["qcl_log_tree_size"] == head.tree_size
    assert samples['qcl_node_info{node_id="bigdata-peer0"}'] == 1
    assert samples["qcl_node_committing"] == 1
    # genesis + the 7 catalogue definitions + the 5 enrollments, all valid, all committed in this process
    assert samples['qcl_transactions_committed_total{outcome="valid"}'] == head.tree_size == 13
    assert samples['qcl_transactions_committed_total{outcome="invalid"}'] == 0
    blocks = samples["qcl_blocks_committed_total"]
    assert blocks == head.height + 1
    assert samples['qcl_block_commit_seconds_bucket{le="+Inf"}'] == samples["qcl_block_commit_seconds_count"] == blocks
    cumulative = [samples[f'qcl_block_commit_seconds_bucket{{le="{bound!r}"}}'] for bound in COMMIT_SECONDS_BUCKETS]
    assert cumulative == sorted(cumulative) and cumulative[-1] <= blocks
    assert samples["qcl_block_commit_seconds_sum"] > 0
    assert "qcl_etcd_connected" not in response.text  # the embedded orderer talks to no service


def test_an_invalid_transaction_is_counted_as_such(peer: Peer, make_enrollments) -> None:
    (envelope,) = make_enrollments(1)
    peer.submit([envelope])
    head = peer.store.head()
    peer.orderer.submit([envelope])  # the same transaction again: ordered, then refused as a duplicate
    assert peer.wait_for_block_after(head.height, timeout_s=10)
    assert parse(render(peer))['qcl_transactions_committed_total{outcome="invalid"}'] == 1


class ReportingOrderer:
    """Wraps the peer's orderer and reports a service status, as the etcd orderer does."""

    def __init__(self, inner: object, status: OrderingStatus) -> None:
        self._inner = inner
        self._status = status

    def ordering_status(self) -> OrderingStatus:
        return self._status

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def test_orderer_lag_and_etcd_connection(peer: Peer) -> None:
    head = peer.store.head()
    peer.orderer = ReportingOrderer(peer.orderer, OrderingStatus(latest_seq=head.order_seq + 4, connected=False))
    samples = parse(render(peer))
    assert samples["qcl_orderer_lag_batches"] == 4
    assert samples["qcl_etcd_connected"] == 0
    peer.orderer = ReportingOrderer(peer.orderer, OrderingStatus(latest_seq=None, connected=True))
    samples = parse(render(peer))
    assert "qcl_orderer_lag_batches" not in samples and samples["qcl_etcd_connected"] == 1

