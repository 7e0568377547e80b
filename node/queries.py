"""Read models over committed state: records, consents and accesses as the API lists them.

Each listing walks one index the rules maintain (subject-, provider-,
consumer-, grantor- prefixed keys), so a citizen's listing costs their own
entries, never a scan of everyone's. The regulator's listings, and correction
requests (few, and not indexed yet), walk a whole keyspace. Byte strings are rendered as lower-case hex.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from ledger import codec
from ledger.consent import effective_status
from ledger.rules.access import access_key, consumer_access_key, subject_access_key
from ledger.rules.consents import consent_key, consumer_consent_key, grantor_consent_key, subject_consent_key
from ledger.rules.records import correction_key, provider_record_key, record_key, record_version_key, subject_record_key
from ledger.storage.ledger_store import LedgerStore

__all__ = ["Queries", "to_json"]

_U64_SIZE = 8


def to_json(value: Any) -> Any:
    """Render a decoded state value for JSON: bytes as hex, containers recursively."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


class Queries:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store


    # --- records -------------------------------------------------------------

    def record(self, record_id: bytes) -> dict[str, Any] | None:
        head = self._store.read_state(record_key(record_id))
        if head is None:
            return None
        versions = [
            {"version": version, **to_json(self._store.read_state(record_version_key(record_id, version)))}
            for version in range(1, head["version"] + 1)
        ]
        return {"record_id": record_id.hex(), **to_json(head), "versions": versions}

    def records_of_subject(self, subject: bytes) -> list[dict[str, Any]]:
        return self._records_under(subject_record_key(subject, b""))

    def records_of_provider(self, org: str) -> list[dict[str, Any]]:
        return self._records_under(provider_record_key(org, b""))

    def _records_under(self, prefix: bytes) -> list[dict[str, Any]]:
        found = []
        for key, _ in self._store.state_scan(prefix):
            record = self.record(key[len(prefix) :])
            if record is not None:
                found.append(record)
        return found

    def corrections(self, *, subject: bytes | None = None, provider: str | None = None) -> list[dict[str, Any]]:
        """Correction requests, filtered by the citizen who filed them or the provider who must answer."""
        prefix = correction_key(b"")
        found = []
        for key, raw in self._store.state_scan(prefix):
            request = codec.decode(raw)
            if (subject is None or request["subject"] == subject) and (provider is None or request["provider"] == provider):
                found.append({"request_id": key[len(prefix) :].hex(), **to_json(request)})
        return found

    # --- consents ------------------------------------------------------------

    def consent(self, consent_id: bytes, now_ms: int) -> dict[str, Any] | None:
        stored = self._store.read_state(consent_key(consent_id))
        if stored is None:
            return None
        return {
            "consent_id": consent_id.hex(),
            **to_json(stored),
            "stored_status": stored["status"],
            "status": effective_status(stored, now_ms),
        }

    def consents(
        self, now_ms: int, *, subject: bytes | None = None, grantor: bytes | None = None, consumer: str | None = None
    ) -> list[dict[str, Any]]:
        """Consents by one index (subject, grantor or consumer), or every consent when none is given."""
        if subject is not None:
            prefix = subject_consent_key(subject, b"")
        elif grantor is not None:
            prefix = grantor_consent_key(grantor, b"")
        elif consumer is not None:
            prefix = consumer_consent_key(consumer, b"")
        else:
            prefix = consent_key(b"")
        return [
            consent
            for key, _ in self._store.state_scan(prefix)
            if (consent := self.consent(key[len(prefix) :], now_ms)) is not None
        ]

    # --- accesses ------------------------------------------------------------

    def accesses(
        self,
        *,
        subject: bytes | None = None,
        consumer: str | None = None,
        after: int | None = None,
        limit: int = 1000,
        keep: Callable[[dict[str, Any]], bool] = lambda _: True,
    ) -> list[dict[str, Any]]:
        """Access records (granted and refused) in log order, after log index ``after``."""
        found = []
        for log_index in self._access_indexes(subject, consumer, after):
            summary = self._store.read_state(access_key(log_index))
            entry = {"log_index": log_index, **to_json(summary)}
            if keep(entry):
                found.append(entry)
                if len(found) >= limit:
                    break
        return found

    def _access_indexes(self, subject: bytes | None, consumer: str | None, after: int | None) -> Iterator[int]:
        if subject is not None:
            prefix = subject_access_key(subject, 0)[:-_U64_SIZE]
        elif consumer is not None:
            prefix = consumer_access_key(consumer, 0)[:-_U64_SIZE]
        else:
            prefix = access_key(0)[:-_U64_SIZE]
        start = None if after is None else prefix + (after + 1).to_bytes(_U64_SIZE, "big")
        for key, _ in self._store.state_scan(prefix, start):
            yield int.from_bytes(key[-_U64_SIZE:], "big")
