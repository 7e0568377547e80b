"""Aggregates under a joint key, from the parties' and the requester's side.

A :class:`KeyParty` is one organization holding one share of a joint BFV key
(:mod:`privacy.he.threshold`); the parties build the key in turn, one of them
registers it, and each later decrypts its share of a result and files it on the
ledger. An :class:`AggregateRequester` (a consumer or a regulator) asks for a
statistic, waits for every share, fuses them, and gets the noisy statistic —
the only value anyone ever decrypts.
"""

from __future__ import annotations

import base64
import os
from typing import Any, Callable

from client.sdk import LedgerClient, TransactionRefused, b64
from ledger import codec
from ledger.crypto import sha256
from privacy.he.threshold import JointKey, ThresholdParty, fuse, joint_key_hash

__all__ = ["AggregateRequester", "KeyParty", "register_joint_key"]


class KeyParty:
    def __init__(self, client: LedgerClient, share: ThresholdParty, clock_ms: Callable[[], int]) -> None:
        self._client = client
        self.share = share
        self._clock_ms = clock_ms

    def file_share(self, aggregate_id: bytes) -> dict[str, Any]:
        """Decrypt this party's share of every part of the result and file it (an aggregate.share)."""
        aggregate = self._client.get(f"/v1/aggregates/{aggregate_id.hex()}")
        blob = base64.b64decode(aggregate["result"])
        if sha256(blob).hex() != aggregate["receipt"]["result_hash"]:
            raise ValueError("the node's result does not match the result hash on the ledger")
        result = codec.decode(blob)
        share = codec.encode([self.share.partial_decrypt(part["ciphertext"]) for part in result["parts"]])
        envelope = self._client.sign("aggregate.share", {"aggregate_id": aggregate_id, "share_hash": sha256(share)}, time_ms=self._clock_ms())
        answer = self._client.post(f"/v1/aggregates/{aggregate_id.hex()}/shares", {"transaction": b64(envelope), "data": b64(share)})
        if answer["status"] != "committed":
            raise TransactionRefused(answer)
        return answer


def register_joint_key(client: LedgerClient, joint: JointKey, clock_ms: Callable[[], int]) -> bytes:
    """Register the joint key (signed by one of its parties); returns its id, SHA-256 of its bytes."""
    data = joint.to_bytes()
    keyset_id = joint_key_hash(joint)
    payload = {"keyset_id": keyset_id, "params": joint.params, "parties": list(joint.parties)}
    envelope = client.sign("threshold.keyset", payload, time_ms=clock_ms())
    answer = client.post("/v1/keysets", {"transaction": b64(envelope), "data": b64(data)})
    if answer["status"] != "committed":
        raise TransactionRefused(answer)
    return keyset_id


class AggregateRequester:
    def __init__(self, client: LedgerClient, clock_ms: Callable[[], int]) -> None:
        self._client = client
        self._clock_ms = clock_ms

    def request(
        self, data_type: str, field: str, statistic: str, *, bounds: tuple[int, int], epsilon: float, keyset_id: bytes, purpose: str
    ) -> bytes:
        """Order the request (spending ε) and have the node compute; returns the aggregate id."""
        aggregate_id = os.urandom(16)
        payload = {
            "aggregate_id": aggregate_id, "data_type": data_type, "field": field, "statistic": statistic,
            "lower": bounds[0], "upper": bounds[1], "epsilon_milli": round(epsilon * 1000), "keyset_id": keyset_id, "purpose": purpose,
        }
        envelope = self._client.sign("aggregate.request", payload, time_ms=self._clock_ms())
        self._client.post("/v1/aggregates", {"transaction": b64(envelope)})
        return aggregate_id

    def collect(self, aggregate_id: bytes, joint: JointKey) -> dict[str, float]:
        """Fuse every party's share (all must be on the ledger) into the released values."""
        aggregate = self._client.get(f"/v1/aggregates/{aggregate_id.hex()}")
        if aggregate["status"] != "released":
            raise ValueError(f"the aggregate is {aggregate['status']}: every party must file its share first")
        if joint_key_hash(joint).hex() != aggregate["keyset_id"]:
            raise ValueError("this joint key is not the one the aggregate was computed under")
        blob = base64.b64decode(aggregate["result"])
        if sha256(blob).hex() != aggregate["receipt"]["result_hash"]:
            raise ValueError("the node's result does not match the result hash on the ledger")
        result = codec.decode(blob)
        shares = {
            party: codec.decode(base64.b64decode(data)) for party, data in aggregate["share_data"].items()
        }
        for share in aggregate["shares"]:
            if sha256(base64.b64decode(aggregate["share_data"][share["party"]])).hex() != share["share_hash"]:
                raise ValueError(f"{share['party']}'s share does not match its hash on the ledger")
        values: dict[str, float] = {
            part["name"]: fuse(joint, {party: parts[i] for party, parts in shares.items()})
            for i, part in enumerate(result["parts"])
        }
        if aggregate["statistic"] == "mean":
            values["mean"] = values["sum"] / values["count"] if values["count"] > 0 else 0.0
        return values
