"""The regulator: every access and refusal, the mechanical consent check, reports.

:meth:`Regulator.audit` downloads the whole log up to a signed checkpoint,
recomputes its root (so nothing was altered or hidden from this view), then
replays it with :func:`ledger.audit.check_compliance`. Reports are plain
rows, exportable as JSON or CSV.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from client.sdk import LedgerClient
from ledger.audit import AuditedEntry, ComplianceReport, check_compliance
from ledger.block import BlockHeader
from ledger.errors import RootMismatchError
from ledger.merkle import CompactRange, hash_leaf
from ledger.rules import Code
from ledger.tx import parse_transaction

__all__ = ["AuditError", "AuditOutcome", "Regulator", "report_csv", "report_rows"]

@dataclass(frozen=True)
class AuditOutcome:
    tree_size: int
    root_hash: bytes
    checkpoint_node: str
    compliance: ComplianceReport

    def summary(self) -> dict[str, Any]:
        report = self.compliance
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "checkpoint_node": self.checkpoint_node,
            "log_root_recomputed": True,
            "entries": report.entries,
            "accesses_checked": report.accesses_checked,
            "accesses_granted": report.granted,
            "refusals": report.refused,
            "self_views": report.self_views,
            "refusal_reasons": dict(report.refusal_reasons),
            "computations": dict(report.computations),
            "violations": len(report.violations),
            "violation_list": [vars(violation) for violation in report.violations],
            "by_consumer": {name: dict(counts) for name, counts in report.by_consumer.items()},
            "by_type": {name: dict(counts) for name, counts in report.by_type.items()},
        }


def report_rows(report: ComplianceReport) -> list[dict[str, Any]]:
    """One row per consumer and per data type: granted and refused counts."""
    rows = []
    for dimension, table in (("consumer", report.by_consumer), ("data_type", report.by_type)):
        for name in sorted(table):
            rows.append({"dimension": dimension, "name": name, "granted": table[name]["granted"], "refused": table[name]["refused"]})
    return rows


def report_csv(report: ComplianceReport) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["dimension", "name", "granted", "refused"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(report_rows(report))
    return out.getvalue()


class Regulator:
    def __init__(self, client: LedgerClient) -> None:
        self._client = client

    def accesses(self, **filters: Any) -> list[dict[str, Any]]:
        return self._client.get("/v1/access", **filters)["accesses"]

    def consents(self, **filters: Any) -> list[dict[str, Any]]:
        return self._client.get("/v1/consents", **filters)["consents"]

    def prove_access(self, log_index: int) -> dict[str, Any]:
        """Inclusion of the access record at ``log_index`` in the latest signed checkpoint (raises if it fails)."""
        signed = self._client.checkpoint()
        leaf = self._client.entries(log_index, log_index + 1)[0]
        self._client.verify_inclusion(leaf, log_index, signed.checkpoint)
        return {"log_index": log_index, "tree_size": signed.checkpoint.tree_size, "root_hash": signed.checkpoint.root_hash.hex()}

    def replay_computation(self, log_index: int) -> dict[str, Any]:
        """Have the node re-run the sandbox job recorded at ``log_index`` and compare the output hash and
        fuel with the receipt in the proven log leaf (not with what the node says the receipt was)."""
        self.prove_access(log_index)
        tx = parse_transaction(self._client.entries(log_index, log_index + 1)[0])
        if self._client.transaction(tx.tx_id)["code"] != Code.VALID.name:
            raise AuditError(f"log index {log_index} is marked invalid: nothing was computed there")
        receipt = tx.payload.get("computation") if tx.type == "access.record" else None
        if receipt is None or receipt["kind"] != "sandbox" or "output_hash" not in receipt:
            raise AuditError(f"log index {log_index} is not a completed sandbox computation")
        rerun = self._client.post("/v1/compute/replay", {"log_index": log_index})
        matches = bytes.fromhex(rerun["output_hash"]) == receipt["output_hash"] and rerun["fuel"] == receipt.get("fuel")
        return {"log_index": log_index, "output_hash": rerun["output_hash"], "fuel": rerun["fuel"], "matches": matches}

    def audit(self) -> AuditOutcome:
        """Check the log and the block headers against a signed checkpoint, then judge every access.

        Validity codes and block times come from the hash-chained headers (checked up to
        the checkpoint's block hash), not from anything else the node says."""
        signed = self._client.checkpoint()
        checkpoint = signed.checkpoint
        if signed.node_key not in self._client.node_keys():
            raise AuditError("the checkpoint is signed by a key that is not a node of the network")
        headers = [BlockHeader.decode(raw) for raw in self._client.headers(0, checkpoint.height + 1)]
        _check_header_chain(headers, checkpoint.block_hash, checkpoint.tree_size)
        leaves = self._client.entries(0, checkpoint.tree_size)
        tree = CompactRange()
        entries: list[AuditedEntry] = []
        for header in headers:
            for position in range(header.tx_count):
                leaf = leaves[header.first_index + position]
                tree.append(hash_leaf(leaf))
                entries.append(AuditedEntry(header.first_index + position, header.time, header.codes[position] == Code.VALID, leaf))
        if tree.root() != checkpoint.root_hash:
            raise RootMismatchError(checkpoint.root_hash, tree.root())
        return AuditOutcome(checkpoint.tree_size, checkpoint.root_hash, checkpoint.node_id, check_compliance(entries))


class AuditError(Exception):
    """Raised when what the node serves does not hang together with its signed checkpoint."""


def _check_header_chain(headers: list[BlockHeader], block_hash: bytes, tree_size: int) -> None:
    expected_index = 0
    for height, header in enumerate(headers):
        if header.height != height or header.first_index != expected_index:
            raise AuditError(f"block {height}: header out of sequence")
        if height and header.prev_hash != headers[height - 1].hash():
            raise AuditError(f"block {height}: prev_hash does not match block {height - 1}")
        expected_index += header.tx_count
    if not headers or headers[-1].hash() != block_hash or expected_index != tree_size:
        raise AuditError("the headers do not end at the checkpoint's block and log size")
