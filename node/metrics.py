"""A peer's Prometheus metrics, in the text exposition format (version 0.0.4).

Operators of a consortium watch every peer the same way: is it committing, how
far behind the ordered stream is it, how long does a block take, can it reach
etcd. The handful of series needed here are written by hand rather than
through a client library: a counter, a histogram and some gauges read from the
store at scrape time.

``GET /metrics`` is served without authentication, like ``/healthz``, because
scrapers (Prometheus) do not sign requests and nothing in it is data: only
counts, sizes, durations and the node's own id — no record, consent, key or
citizen, nothing a log checkpoint does not already reveal to every member.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Protocol, runtime_checkable

from ledger.processor import BlockOutcome
from ledger.rules import Code

if TYPE_CHECKING:
    from node.peer import Peer

__all__ = ["COMMIT_SECONDS_BUCKETS", "CONTENT_TYPE", "CommitMetrics", "OrderingStatus", "ReportsOrderingStatus", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a batch reaching the peer to its block being durable: milliseconds when idle, up to seconds under load.
COMMIT_SECONDS_BUCKETS: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class OrderingStatus:
    """What an orderer backed by a service (etcd) knows about it.

    ``latest_seq``: the highest batch sequence the service has ordered, as last
    seen (None before the first answer); ``connected``: whether the last call or
    watch to the service succeeded.
    """

    latest_seq: int | None
    connected: bool


@runtime_checkable
class ReportsOrderingStatus(Protocol):
    """Implemented by orderers that talk to a service; the embedded orderer is its own service and does not."""

    def ordering_status(self) -> OrderingStatus: ...


class CommitMetrics:
    """Counters the committer updates once per durable block (thread-safe; read at scrape time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.blocks = 0
        self.transactions: dict[str, int] = {"valid": 0, "invalid": 0}
        self.bucket_counts = [0] * len(COMMIT_SECONDS_BUCKETS)
        self.seconds_sum = 0.0
        self.seconds_count = 0

    def observe(self, outcome: BlockOutcome, seconds: float) -> None:
        valid = sum(1 for tx in outcome.txs if tx.code is Code.VALID)
        with self._lock:
            self.blocks += 1
            self.transactions["valid"] += valid
            self.transactions["invalid"] += len(outcome.txs) - valid
            for index, bound in enumerate(COMMIT_SECONDS_BUCKETS):
                if seconds <= bound:
                    self.bucket_counts[index] += 1
            self.seconds_sum += seconds
            self.seconds_count += 1

    def snapshot(self) -> CommitMetrics:
        copy = CommitMetrics()
        with self._lock:
            copy.blocks = self.blocks
            copy.transactions = dict(self.transactions)
            copy.bucket_counts = list(self.bucket_counts)
            copy.seconds_sum = self.seconds_sum
            copy.seconds_count = self.seconds_count
        return copy


def _sample(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    if not labels:
        return f"{name} {text}"
    inner = ",".join(f'{key}="{_escape(label)}"' for key, label in labels.items())
    return f"{name}{{{inner}}} {text}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render(peer: Peer) -> str:
    """Every metric of ``peer`` now, as one exposition-format document."""
    head = peer.store.head()
    commits = peer.committer.metrics.snapshot()
    lines = _family("qcl_node_info", "gauge", "This peer's node id (value always 1).", [_sample("qcl_node_info", 1, {"node_id": peer.node_id})])
    lines += _family("qcl_node_committing", "gauge", "1 while the commit loop runs, 0 after it stopped on a failure.",
                     [_sample("qcl_node_committing", int(peer.failure is None))])
    if head is not None:
        lines += _family("qcl_block_height", "gauge", "Height of the last committed block.", [_sample("qcl_block_height", head.height)])
        lines += _family("qcl_log_tree_size", "gauge", "Entries in the transaction log (valid and invalid transactions).",
                         [_sample("qcl_log_tree_size", head.tree_size)])
        lines += _family("qcl_order_seq", "gauge", "Sequence number of the last ordered batch committed.", [_sample("qcl_order_seq", head.order_seq)])
    lines += _family("qcl_blocks_committed_total", "counter", "Blocks committed by this process.",
                     [_sample("qcl_blocks_committed_total", commits.blocks)])
    lines += _family("qcl_transactions_committed_total", "counter", "Transactions in blocks committed by this process, by validity.",
                     [_sample("qcl_transactions_committed_total", count, {"outcome": outcome}) for outcome, count in commits.transactions.items()])
    buckets = [_sample("qcl_block_commit_seconds_bucket", count, {"le": repr(bound)}) for bound, count in zip(COMMIT_SECONDS_BUCKETS, commits.bucket_counts)]
    buckets.append(_sample("qcl_block_commit_seconds_bucket", commits.seconds_count, {"le": "+Inf"}))
    buckets += [_sample("qcl_block_commit_seconds_sum", commits.seconds_sum), _sample("qcl_block_commit_seconds_count", commits.seconds_count)]
    lines += _family("qcl_block_commit_seconds", "histogram", "From an ordered batch reaching the peer to its block being durable.", buckets)
    if isinstance(peer.orderer, ReportsOrderingStatus):
        status = peer.orderer.ordering_status()
        if status.latest_seq is not None and head is not None:
            lines += _family("qcl_orderer_lag_batches", "gauge", "Batches ordered by the ordering service but not yet committed here.",
                             [_sample("qcl_orderer_lag_batches", max(0, status.latest_seq - head.order_seq))])
        lines += _family("qcl_etcd_connected", "gauge", "1 when the last request or watch to etcd succeeded, else 0.",
                         [_sample("qcl_etcd_connected", int(status.connected))])
    return "\n".join(lines) + "\n"

