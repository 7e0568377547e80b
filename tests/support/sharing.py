"""One embedded node and its members as the SDK sees them, for the data-sharing integration tests.

:func:`sharing_network` starts a real node (LevelDB, HTTP on loopback) and
yields a :class:`Sharing`: it enrols fresh citizens (each test its own, so no
test depends on another's consents), publishes sample records of every
catalogue type, and hands out the role clients of the development consortium
(node/devnet.py). :func:`consent_terms` builds a consent request's terms by
hand, for the cases the SDK deliberately does not offer (a validity period
that starts later or ends in seconds). :func:`signed_http` is a raw client for
tests that must control every header and status themselves.
"""

from __future__ import annotations

import itertools
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

from client.auth import RequestSigner
from client.citizen import SafeBox
from client.consumer import Consumer
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.provider import Provider
from client.regulator import Regulator
from client.sdk import LedgerClient
from ledger.crypto import KeyPair
from ledger.identity import new_salt
from ledger.tx import Transaction, build_transaction, parse_transaction
from node.devnet import DEV_CATALOGUE
from node.embedded import EmbeddedNode, embedded_node
from node.runtime import clock_ms

__all__ = [
    "AUTHORITY",
    "DAY_MS",
    "BANK",
    "INSURER",
    "PROVIDER_OF",
    "REGULATOR",
    "SAMPLE_PAYLOADS",
    "Sharing",
    "consent_terms",
    "sharing_network",
    "signed_http",
]

DAY_MS = 86_400_000
AUTHORITY = "jinan-bigdata"  # custodian, identity authority and regulator
REGULATOR = "pbc-jinan"  # a regulator only
INSURER = "taiping-insurance"
BANK = "qilu-bank"
PROVIDER_OF = {entry["type"]: entry["provider"] for entry in DEV_CATALOGUE}

# One valid payload per DEV_CATALOGUE type (field names and kinds as the catalogue defines them).
SAMPLE_PAYLOADS: dict[str, dict[str, Any]] = {
    "vehicle.registration": {"plate": "LU-A12345", "vehicle_type": "car", "brand": "BYD", "registered": "2021-03-04", "status": "normal"},
    "traffic.violation": {"plate": "LU-A12345", "count": 2, "points": 6, "fines": 40_000, "latest": "speeding on G2"},
    "civil.death_registration": {"date_of_death": "2025-11-02", "place": "Jinan", "certificate_no": "JN-2025-0042"},
    "medical.claims": {"year": 2025, "visits": 3, "total_cost": 1_234_500, "reimbursed": 800_000},
    "housing_fund.contributions": {
        "employer": "Quancheng Tools Co.",
        "monthly": [{"month": f"2025-{month:02d}", "amount": 180_000} for month in range(1, 13)],
    },
    "tax.payments": {
        "taxpayer": "Quancheng Tools Co.",
        "monthly": [{"month": f"2025-{month:02d}", "amount": 52_000} for month in range(1, 13)],
    },
    "market.business_licence": {
        "licence_no": "91370102MA3C0001X",
        "name": "Quancheng Tools Co.",
        "registered": "2019-05-06",
        "capital": 50_000_000,
        "status": "active",
    },
}
assert set(SAMPLE_PAYLOADS) == set(PROVIDER_OF), "every catalogue type needs a sample payload"


def consent_terms(subject: bytes, data_types: list[str], *, now_ms: int, **changes: Any) -> dict[str, Any]:
    """The terms of a consent.request as :meth:`Consumer.request_consent` builds them; ``changes`` replace fields."""
    terms: dict[str, Any] = {
        "consent_id": os.urandom(16),
        "subject": subject,
        "data_types": data_types,
        "purpose": {"code": "insurance.claim", "text": "settle a claim"},
        "mode": "raw",
        "data_from": 0,
        "data_until": now_ms,
        "valid_from": now_ms,
        "valid_until": now_ms + 7 * DAY_MS,
        "max_uses": 10,
        "frequency": {"max": 5, "per": "day"},
        "data_life_days": 30,
        "legal_basis": "pipl-13.1-consent",
        "contact": "privacy@example.cn",
    }
    return {**terms, **changes}


def signed_http(url: str, key: KeyPair | None) -> httpx.Client:
    """A raw HTTP client whose every request is signed by ``key`` (None: unsigned)."""
    return httpx.Client(base_url=url, timeout=60.0, auth=None if key is None else RequestSigner(key))


@dataclass
class Sharing:
    """The members of the development consortium on one running node."""

    node: EmbeddedNode
    _clients: dict[bytes, LedgerClient] = field(default_factory=dict)
    _raw: list[httpx.Client] = field(default_factory=list)
    _national_ids: Iterator[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return self.node.url

    def admin_key(self, org: str) -> KeyPair:
        return self.node.config.admin_key(org)

    def client(self, key: KeyPair) -> LedgerClient:
        """The SDK client of ``key`` (one per key, reused)."""
        if key.public_key not in self._clients:
            self._clients[key.public_key] = LedgerClient(self.url, key=key)
        return self._clients[key.public_key]

    def http(self, key: KeyPair | None) -> httpx.Client:
        client = signed_http(self.url, key)
        self._raw.append(client)
        return client

    def provider(self, org: str) -> Provider:
        return Provider(self.client(self.admin_key(org)), clock_ms)

    def consumer(self, org: str) -> Consumer:
        return Consumer(self.client(self.admin_key(org)), clock_ms)

    def regulator(self) -> Regulator:
        """The People's Bank branch: a regulator only (the custodian also regulates, but holds more roles)."""
        return Regulator(self.client(self.admin_key(REGULATOR)))

    def safe_box(self, key: KeyPair) -> SafeBox:
        return SafeBox(self.client(key), clock_ms)

    def commit_as(self, key: KeyPair, tx_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Sign and commit one transaction by hand (raises TransactionRefused when it is refused)."""
        client = self.client(key)
        return client.commit(build_transaction(key, client.network_id, tx_type, payload, time_ms=clock_ms()))

    def enrol(self) -> SafeBox:
        """A newly enrolled citizen's safe box (the identity authority enrols, the citizen co-signs)."""
        citizen = KeyPair.generate()
        authority = self.client(self.admin_key(AUTHORITY))
        national_id = synthetic_national_id(random.Random(next(self._national_ids)))
        authority.commit(
            enrollment_transaction(self.admin_key(AUTHORITY), citizen, authority.network_id, national_id, new_salt(), time_ms=clock_ms())
        )
        return self.safe_box(citizen)

    def relate(self, citizen: SafeBox, relative: SafeBox, relation: str = "child") -> None:
        """The identity authority attests a close relative; the relative co-signs (ledger/rules/identity.py)."""
        authority = self.client(self.admin_key(AUTHORITY))
        payload = {"citizen": citizen.key.public_key, "relative": relative.key.public_key, "relation": relation}
        envelope = build_transaction(
            self.admin_key(AUTHORITY), authority.network_id, "citizen.relate", payload, time_ms=clock_ms(), cosigners=[relative.key]
        )
        authority.commit(envelope)

    def publish(self, subject: SafeBox, data_type: str, payload: dict[str, Any] | None = None) -> bytes:
        """One record of ``data_type`` about ``subject`` by its catalogue provider, dated yesterday."""
        provider = self.provider(PROVIDER_OF[data_type])
        return provider.publish(subject.key.public_key, data_type, payload or SAMPLE_PAYLOADS[data_type], as_of=clock_ms() - DAY_MS)

    def publish_samples(self, subject: SafeBox, data_types: list[str]) -> dict[str, bytes]:
        """A sample record of each type about ``subject``: type → record id."""
        return {data_type: self.publish(subject, data_type) for data_type in data_types}

    def leaf(self, log_index: int) -> tuple[Transaction, str]:
        """The committed log leaf at ``log_index`` as the regulator downloads it, with its validity code."""
        ((envelope, meta),) = self.client(self.admin_key(REGULATOR)).entries_with_meta(log_index, log_index + 1)
        return parse_transaction(envelope), meta["code"]

    def close(self) -> None:
        for client in [*self._clients.values(), *self._raw]:
            client.close()


@contextmanager
def sharing_network(data_dir: Path) -> Iterator[Sharing]:
    with embedded_node(data_dir) as node:
        sharing = Sharing(node)
        try:
            yield sharing
        finally:
            sharing.close()
