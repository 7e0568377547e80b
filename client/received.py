"""What a consumer or citizen receives from ``POST /v1/access``, checked before it is believed.

A :class:`ReceivedData` is only built once every check passed:

- the checkpoint is signed by a node key the network names;
- the access record (the log leaf) is included in that checkpoint's tree at
  its log index (RFC 6962 audit path), and the block header the checkpoint
  names (by hash) marks it VALID;
- the access record is an ``access.record`` signed by that node, granted, for
  this requester and subject, and its ``result_hash`` is the hash of the
  unsealed result;
- for a ``raw`` access, every record's payload and salt open its commitment; for
  a ``computed`` one, the result names the same computation as the access
  record and the output hash in the receipt is the output's.

Keeping the sealed bytes, the leaf, the checkpoint and the path lets the
receiver prove later, to anyone, what it received and that it was logged
(:meth:`ReceivedData.receipt`).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Mapping

from ledger import codec
from ledger.block import BlockHeader
from ledger.checkpoint import SignedCheckpoint
from ledger.crypto import sha256
from ledger.errors import LedgerError
from ledger.merkle import hash_leaf, verify_inclusion
from ledger.rules import Code
from ledger.rules.access import access_result_hash
from ledger.rules.records import commit_record_payload
from ledger.tx import parse_transaction
from privacy.envelope import EnvelopeError, open_sealed
from privacy.sandbox import output_hash as sandbox_output_hash

__all__ = ["ReceivedData", "ReceiptError", "verify_access_answer"]

class ReceiptError(Exception):
    """Raised when an access answer fails a check: the data must not be used."""


@dataclass(frozen=True)
class ReceivedData:
    records: list[dict[str, Any]]
    tx_id: bytes
    log_index: int
    checkpoint: SignedCheckpoint
    access: dict[str, Any]
    answer: Mapping[str, Any]
    output: dict[str, Any] | None = None  # a computed access's output

    def receipt(self) -> dict[str, Any]:
        """The evidence to keep: access record, checkpoint and audit path (no payload)."""
        return {key: self.answer[key] for key in ("access", "access_record", "block_header", "result_hash", "checkpoint", "audit_path")}


def verify_access_answer(
    answer: Mapping[str, Any], *, recipient_private_key: bytes, requester: bytes, subject: bytes, node_keys: Mapping[bytes, str]
) -> ReceivedData:
    """Check an answer of ``POST /v1/access`` end to end; raise ReceiptError naming the first failed check."""
    try:
        signed = SignedCheckpoint.decode(base64.b64decode(answer["checkpoint"]))
        signed.verify()
        if signed.node_key not in node_keys:
            raise ReceiptError("the checkpoint is signed by a key that is not a node of the network")
        checkpoint = signed.checkpoint
        leaf = base64.b64decode(answer["access_record"])
        log_index = answer["access"]["log_index"]
        path = [bytes.fromhex(node) for node in answer["audit_path"]]
        verify_inclusion(hash_leaf(leaf), log_index, checkpoint.tree_size, path, checkpoint.root_hash)
        tx = parse_transaction(leaf)
        tx.check_signatures()
        header = BlockHeader.decode(base64.b64decode(answer["block_header"]))
    except (LedgerError, KeyError, ValueError) as exc:
        raise ReceiptError(f"the access record is not proven to be on the ledger: {exc}") from None
    if header.hash() != checkpoint.block_hash or not 0 <= log_index - header.first_index < header.tx_count:
        raise ReceiptError("the block header is not the checkpoint's block, or does not hold the access record")
    if header.codes[log_index - header.first_index] != Code.VALID:
        raise ReceiptError("the block marks the access record invalid: the access was not allowed")
    access = tx.payload
    if tx.type != "access.record" or tx.signer != signed.node_key or access.get("outcome") != "granted":
        raise ReceiptError("the leaf is not a granted access record signed by the checkpoint's node")
    if access["requester"] != requester or access["subject"] != subject:
        raise ReceiptError("the access record names another requester or subject")
    try:
        plaintext = open_sealed(base64.b64decode(answer["sealed_result"]), recipient_private_key)
    except EnvelopeError:
        raise ReceiptError("the sealed result cannot be opened with the recipient key") from None
    if access_result_hash(plaintext) != access["result_hash"]:
        raise ReceiptError("the result does not match the hash in the access record")
    result = codec.decode(plaintext)
    listed = [(ref["record_id"], ref["version"]) for ref in access["records"]]
    if [(record["record_id"], record["version"]) for record in result["records"]] != listed:
        raise ReceiptError("the result and the access record list different records")
    if result["access"].get("mode", "raw") != access["mode"]:
        raise ReceiptError("the result and the access record name different modes")
    if access["mode"] == "raw":
        for record in result["records"]:
            if commit_record_payload(record["salt"], codec.encode(record["payload"])) != record["commitment"]:
                raise ReceiptError(f"record {record['record_id'].hex()} does not open its commitment")
    output = result.get("output")
    if access["mode"] == "computed":
        receipt = access["computation"]
        named = result["access"].get("computation", {})
        if (named.get("kind"), named.get("code_hash")) != (receipt["kind"], receipt["code_hash"]):
            raise ReceiptError("the result and the access record name different computations")
        if output is None or _output_hash(receipt["kind"], output) != receipt["output_hash"]:
            raise ReceiptError("the computed output does not match the output hash in the access record")
    return ReceivedData(result["records"], tx.tx_id, log_index, signed, access, answer, output)


def _output_hash(kind: str, output: Mapping[str, Any]) -> bytes:
    if kind == "he_score":
        return sha256(output["ciphertext"])
    return sandbox_output_hash(output["value"], output["type"])
