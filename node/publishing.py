"""Publishing a record: the sealed payload into the vault, its fingerprint onto the ledger.

The provider seals the payload on its side (fresh AES-256-GCM data key, the key
wrapped for this custodian node's vault key) and sends it with its signed
``record.publish`` / ``record.correct`` transaction. Before anything is
ordered, the node opens the payload and checks it against the catalogue's
field schema and against the transaction's commitment, so a record on the
ledger always has a payload in the vault that matches its fingerprint. The
sealed bytes are stored as received (encrypted at rest); the vault entry is
written before the transaction is ordered and removed again if the
transaction does not commit.
"""

from __future__ import annotations

import threading
from typing import Any

from ledger import codec
from ledger.errors import EncodingError
from ledger.fields import Bytes, Text, UInt, check_map
from ledger.rules.catalogue import catalogue_key, check_record_payload
from ledger.rules.records import commit_record_payload, record_key, record_version_key
from ledger.tx import Transaction
from node.api.errors import ApiError
from node.api.parsing import parse_envelope
from node.peer import Peer, SubmitResult
from node.vault import Vault
from privacy.envelope import EnvelopeError, SealedRecord, open_record, record_aad

__all__ = ["OPENING_SPEC", "Publisher", "decode_opening"]

PUBLISH_TYPES = frozenset({"record.publish", "record.correct"})


def _a_map(value: Any, where: str) -> None:
    if type(value) is not dict:
        raise EncodingError(f"{where}: expected a map")


# The plaintext inside a sealed record: the commitment's opening (salt) and the payload,
# whose fields the catalogue entry checks.
OPENING_SPEC = {"salt": Bytes(32), "payload": _a_map}


def decode_opening(plaintext: bytes) -> dict[str, Any]:
    """Strictly decode a sealed record's plaintext (canonical CBOR {"salt", "payload"})."""
    opening = codec.decode(plaintext)
    check_map(opening, OPENING_SPEC, "payload opening")
    return opening


class Publisher:
    def __init__(self, peer: Peer, vault: Vault, vault_private_key: bytes) -> None:
        self._peer = peer
        self._vault = vault
        self._vault_private_key = vault_private_key
        self._in_flight: set[bytes] = set()
        self._lock = threading.Lock()

    def publish(self, envelope: bytes, sealed: SealedRecord, *, timeout_s: float) -> SubmitResult:
        """Check, store and order one record version; answer once it is committed or refused."""
        tx = parse_envelope(envelope, PUBLISH_TYPES)
        record_id, version, data_type, subject = self._describe(tx)
        with self._lock:
            if record_id in self._in_flight:
                raise ApiError("conflict", f"record {record_id.hex()} is being published by another request")
            self._in_flight.add(record_id)
        try:
            if self._peer.store.state.get(record_version_key(record_id, version)) is not None:
                raise ApiError("conflict", f"record {record_id.hex()} version {version} is already on the ledger")
            self._check_payload(tx, sealed, record_id, version, data_type, subject)
            self._vault.put(record_id, version, sealed)
            result = self._peer.submit([envelope], timeout_s=timeout_s)[0]
            if result.status in ("rejected", "invalid"):
                self._vault.delete(record_id, version)
            return result
        finally:
            with self._lock:
                self._in_flight.discard(record_id)

    def _describe(self, tx: Transaction) -> tuple[bytes, int, str, bytes]:
        """(record id, version, data type, subject) — for a correction, type and subject come from the ledger."""
        payload = tx.payload
        try:
            record_id = payload["record_id"]
            Bytes(16)(record_id, "payload.record_id")
            if tx.type == "record.publish":
                Text(64, identifier=True)(payload["type"], "payload.type")
                Bytes(32)(payload["subject"], "payload.subject")
                return record_id, 1, payload["type"], payload["subject"]
            UInt(2, 2**32 - 1)(payload["version"], "payload.version")
            head = self._peer.store.read_state(record_key(record_id))
            if head is None:
                raise ApiError("not_found", f"no record {record_id.hex()} to correct")
            return record_id, payload["version"], head["type"], head["subject"]
        except KeyError as exc:
            raise ApiError("invalid_argument", f"transaction payload: missing field {exc}") from None
        except EncodingError as exc:
            raise ApiError("invalid_argument", f"transaction {exc}") from None

    def _check_payload(
        self, tx: Transaction, sealed: SealedRecord, record_id: bytes, version: int, data_type: str, subject: bytes
    ) -> None:
        entry = self._peer.store.read_state(catalogue_key(data_type))
        if entry is None:
            raise ApiError("not_found", f"no catalogue entry for data type {data_type!r}")
        try:
            plaintext = open_record(sealed, self._vault_private_key, record_aad(record_id, version, data_type, subject))
        except EnvelopeError:
            raise ApiError(
                "invalid_argument",
                "sealed payload: cannot be opened with this node's vault key for this record id, version, type and subject",
            ) from None
        try:
            opening = decode_opening(plaintext)
            check_record_payload(entry, opening["payload"])
        except EncodingError as exc:
            raise ApiError("invalid_argument", f"sealed {exc}") from None
        if commit_record_payload(opening["salt"], codec.encode(opening["payload"])) != tx.payload.get("commitment"):
            raise ApiError("invalid_argument", "commitment: does not match the sealed payload and salt")
