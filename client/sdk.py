"""Python SDK for a node's public HTTP API, with client-side verification.

The client trusts nothing the node says that it can check: checkpoints are
signature-checked, proofs are verified against signed roots with the ledger's
pure verifiers, and :meth:`LedgerClient.audit_log` recomputes the root from
every entry, as an RFC 6962 monitor does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Sequence

import httpx

from client.auth import RequestSigner
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.crypto import KeyPair
from ledger.merkle import CompactRange, hash_leaf, verify_consistency, verify_inclusion
from ledger.errors import RootMismatchError
from ledger.tx import build_transaction

__all__ = ["ApiError", "LedgerClient", "LogAudit", "TransactionRefused", "b64"]


class ApiError(Exception):
    """Raised when the node answers with its documented error JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code} ({status}): {message}")
        self.status = status
        self.code = code
        self.message = message


def b64(data: bytes) -> str:
    """Bytes as the API carries them in JSON bodies."""
    return base64.b64encode(data).decode()


class TransactionRefused(Exception):
    """Raised when a submitted transaction was refused (by a rule, or before ordering) or did not commit in time."""

    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(f"{result['status']}: {result['code']}: {result['reason']}")
        self.result = result
        self.code = result["code"]


@dataclass(frozen=True)
class LogAudit:
    tree_size: int
    root_hash: bytes
    entries_checked: int


class LedgerClient:
    """A node's API as one member sees it: every request is signed with ``key`` (PROTOCOL §10.1)."""

    def __init__(
        self, base_url: str, *, key: KeyPair, timeout_s: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.key = key
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s, transport=transport, auth=RequestSigner(key))
        self._network: dict[str, Any] | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` (None-valued params are left out) and return the JSON body, or raise ApiError."""
        query = {name: value for name, value in params.items() if value is not None}
        return self._answer(self._http.get(path, params=query or None))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST ``body`` as JSON to ``path`` and return the JSON answer, or raise ApiError."""
        return self._answer(self._http.post(path, json=body))

    @staticmethod
    def _answer(response: httpx.Response) -> Any:
        body = response.json()
        if response.status_code >= 400:
            error = body.get("error", {})
            raise ApiError(response.status_code, error.get("code", "unknown"), error.get("message", response.text))
        return body

    # --- transactions -------------------------------------------------------

    def submit(self, envelopes: Sequence[bytes], *, timeout_ms: int = 30_000) -> list[dict[str, Any]]:
        payload = {"transactions": [b64(e) for e in envelopes], "timeout_ms": timeout_ms}
        return self._answer(self._http.post("/v1/transactions", json=payload))["results"]

    def sign(self, tx_type: str, payload: dict[str, Any], *, time_ms: int) -> bytes:
        """A transaction of ``tx_type`` signed with this client's key for this client's network."""
        return build_transaction(self.key, self.network_id, tx_type, payload, time_ms=time_ms)

    def commit(self, envelope: bytes, *, timeout_ms: int = 30_000) -> dict[str, Any]:
        """Submit one transaction and return its result once committed; raise TransactionRefused otherwise."""
        result = self.submit([envelope], timeout_ms=timeout_ms)[0]
        if result["status"] != "committed":
            raise TransactionRefused(result)
        return result

    def transaction(self, tx_id: bytes) -> dict[str, Any]:
        return self.get(f"/v1/transactions/{tx_id.hex()}")

    # --- the audit surface --------------------------------------------------

    def network(self) -> dict[str, Any]:
        return self.get("/v1/network")

    @property
    def network_id(self) -> bytes:
        return bytes.fromhex(self.network_info()["network"])

    def node_keys(self) -> dict[bytes, str]:
        """Public key → node id of every peer the network names (fetched once per client)."""
        return {
            bytes.fromhex(node["key"]): node["id"] for org in self.network_info()["orgs"] for node in org["nodes"]
        }

    def network_info(self) -> dict[str, Any]:
        """/v1/network, fetched once per client."""
        if self._network is None:
            self._network = self.network()
        return self._network

    def checkpoint(self) -> SignedCheckpoint:
        """The node's latest checkpoint, signature checked (raises CheckpointError if forged)."""
        signed = SignedCheckpoint.decode(base64.b64decode(self.get("/v1/log/checkpoint")["encoded"]))
        signed.verify()
        return signed

    def entries(self, start: int, end: int) -> list[bytes]:
        """Leaves start..end-1, following the node's page limit."""
        return [leaf for leaf, _ in self.entries_with_meta(start, end)]

    def entries_with_meta(self, start: int, end: int) -> list[tuple[bytes, dict[str, Any]]]:
        """Leaves start..end-1 with each one's block height, block time and validity code."""
        found: list[tuple[bytes, dict[str, Any]]] = []
        while start + len(found) < end:
            page = self.get("/v1/log/entries", start=start + len(found), end=end)
            found.extend((base64.b64decode(entry), meta) for entry, meta in zip(page["entries"], page["meta"]))
        return found

    def headers(self, start: int, end: int) -> list[bytes]:
        """Canonical header bytes of blocks start..end-1, following the node's page limit."""
        found: list[bytes] = []
        while start + len(found) < end:
            page = self.get("/v1/log/headers", start=start + len(found), end=end)
            found.extend(base64.b64decode(header) for header in page["headers"])
        return found

    def block(self, height: int) -> dict[str, Any]:
        return self.get(f"/v1/log/blocks/{height}")

    def verify_inclusion(self, leaf: bytes, index: int, checkpoint: Checkpoint) -> None:
        """Fetch the audit path of ``leaf`` and check it against the signed root (raises on failure)."""
        proof = self.get("/v1/log/proof/inclusion", index=index, tree_size=checkpoint.tree_size)
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        verify_inclusion(hash_leaf(leaf), index, checkpoint.tree_size, path, checkpoint.root_hash)

    def verify_consistency(self, old: Checkpoint, new: Checkpoint) -> None:
        """Check that ``new`` extends ``old`` (append-only) with the node's consistency proof."""
        if old.tree_size == new.tree_size:
            if old.root_hash != new.root_hash:
                raise RootMismatchError(old.root_hash, new.root_hash)
            return
        proof = self.get("/v1/log/proof/consistency", first=old.tree_size, second=new.tree_size)
        nodes = [bytes.fromhex(node) for node in proof["consistency"]]
        verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, nodes)

    def audit_log(self, checkpoint: Checkpoint) -> LogAudit:
        """Download every entry up to the checkpoint and recompute its root (raises on mismatch)."""
        tree = CompactRange()
        checked = 0
        for start in range(0, checkpoint.tree_size, 1000):
            for leaf in self.entries(start, min(start + 1000, checkpoint.tree_size)):
                tree.append(hash_leaf(leaf))
                checked += 1
        if tree.root() != checkpoint.root_hash:
            raise RootMismatchError(checkpoint.root_hash, tree.root())
        return LogAudit(checkpoint.tree_size, checkpoint.root_hash, checked)
