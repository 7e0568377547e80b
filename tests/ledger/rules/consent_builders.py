"""Shared builders for the consent and access rule tests: a network, a catalogue, and transactions.

The network has a custodian (``bigdata``, which is also the identity authority and runs the node
``bigdata-peer0`` whose key signs access records), three providers (``tax``, ``health`` — which
also runs a node — and ``civil``) and two consumers (``bank`` and ``insurer``). Alice, Bob and
Carol are enrolled; Dave is not. The catalogue holds a general type with a ``series`` field, two
sensitive medical types and the civil death registration.

Block time never runs backwards on a chain, so :class:`ConsentChain` remembers the last block
time it was given and keeps using it; transactions must be built with a ``time_ms`` within five
minutes of the block time they are committed at.
"""

from __future__ import annotations

import copy
import hashlib
import os
from functools import lru_cache
from typing import Any, Iterable

from chain import Chain
from ledger import codec
from ledger.consent import terms_hash
from ledger.crypto import KeyPair
from ledger.genesis import genesis_transaction, network_id
from ledger.rules import Code
from ledger.rules.consents import consent_key
from ledger.rules.records import commit_record_payload
from ledger.tx import build_transaction

HOUR = 3_600_000
DAY = 24 * HOUR
WEEK = 7 * DAY
T0 = 20_254 * DAY + 10 * HOUR  # 10:00 UTC on a day in mid-2025: day and hour windows are easy to reason about


def key(n: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"consent-test-key-%d" % n).digest())


BIGDATA, TAX, HEALTH, CIVIL, BANK, INSURER = (key(n) for n in range(1, 7))
NODE, NODE_HEALTH = key(20), key(21)  # bigdata-peer0 (custodian) and health-peer0 (provider)
ALICE, BOB, CAROL, DAVE = key(30), key(31), key(32), key(33)  # Carol is Alice's daughter; Dave is not enrolled
OUTSIDER = key(99)

ADMINS = [BIGDATA, TAX, HEALTH, CIVIL, BANK, INSURER]
CITIZENS = [ALICE, BOB, CAROL]


def org(org_id: str, roles: list[str], admin: KeyPair, node: KeyPair | None = None) -> dict:
    nodes = [] if node is None else [{"id": f"{org_id}-peer0", "key": node.public_key}]
    return {"id": org_id, "name": org_id.title(), "roles": roles, "admin_keys": [admin.public_key], "nodes": nodes}


GENESIS = {
    "version": 1,
    "name": "consent test network",
    "time": T0,
    "admin_threshold": 2,
    "orgs": [
        org("bigdata", ["custodian", "identity_authority"], BIGDATA, NODE),
        org("tax", ["provider"], TAX),
        org("health", ["provider"], HEALTH, NODE_HEALTH),
        org("civil", ["provider"], CIVIL),
        org("bank", ["consumer"], BANK),
        org("insurer", ["consumer"], INSURER),
    ],
}
NETWORK = network_id(GENESIS)

INCOME = "tax.income"  # general
MEDICAL = "medical.records"  # sensitive (medical)
PRESCRIPTIONS = "medical.prescriptions"  # sensitive (medical)
DEATH = "civil.death_registration"  # general; the one type a relative may consent to
SENSITIVE = frozenset({MEDICAL, PRESCRIPTIONS})
PROVIDER_OF = {INCOME: TAX, MEDICAL: HEALTH, PRESCRIPTIONS: HEALTH, DEATH: CIVIL}


def catalogue_entries() -> list[dict]:
    return [
        {
            "type": INCOME,
            "version": 1,
            "title": "Monthly taxable income",
            "provider": "tax",
            "fields": [{"name": "taxpayer", "kind": "identifier"}, {"name": "monthly", "kind": "series"}],
            "sensitivity": "general",
        },
        {
            "type": MEDICAL,
            "version": 1,
            "title": "Hospital records",
            "provider": "health",
            "fields": [{"name": "diagnosis", "kind": "text"}, {"name": "visited", "kind": "date"}],
            "sensitivity": "sensitive",
            "category": "medical",
        },
        {
            "type": PRESCRIPTIONS,
            "version": 1,
            "title": "Prescriptions",
            "provider": "health",
            "fields": [{"name": "drug", "kind": "text"}, {"name": "month", "kind": "month"}],
            "sensitivity": "sensitive",
            "category": "medical",
        },
        {
            "type": DEATH,
            "version": 1,
            "title": "Death registration",
            "provider": "civil",
            "fields": [{"name": "died", "kind": "date"}, {"name": "natural", "kind": "boolean"}],
            "sensitivity": "general",
        },
    ]


# --- the chain ------------------------------------------------------------------------------


class ConsentChain(Chain):
    """A Chain that keeps the last block time it was given (block time never runs backwards)."""

    def build(self, envelopes: list[bytes], time: int | None = None):
        if time is not None:
            self.time_ms = time
        return super().build(envelopes, time)

    def consent(self, consent_id_or_n: bytes | int) -> dict | None:
        return self.read(consent_key(cid(consent_id_or_n)))

    def status(self, consent_id_or_n: bytes | int) -> str:
        return self.consent(consent_id_or_n)["status"]

    def keys(self, prefix: bytes) -> dict[bytes, Any]:
        return {k: codec.decode(v) for k, v in self.state().items() if k.startswith(prefix)}


def tx(signer: KeyPair, tx_type: str, payload: dict, *, time_ms: int = T0, cosigners: Iterable[KeyPair] = ()) -> bytes:
    return build_transaction(signer, NETWORK, tx_type, payload, time_ms=time_ms, cosigners=list(cosigners))


def enroll(citizen: KeyPair, *, time_ms: int = T0) -> bytes:
    payload = {"citizen_key": citizen.public_key, "id_commitment": hashlib.sha256(citizen.public_key).digest()}
    return tx(BIGDATA, "citizen.enroll", payload, cosigners=[citizen], time_ms=time_ms)


@lru_cache(maxsize=1)
def _base_chain() -> ConsentChain:
    chain = ConsentChain(NETWORK, T0)
    assert chain.codes([genesis_transaction(GENESIS, ADMINS)]) == [Code.VALID]
    assert chain.codes([enroll(c) for c in CITIZENS]) == [Code.VALID] * len(CITIZENS)
    defines = [tx(BIGDATA, "catalogue.define", {"entry": entry}) for entry in catalogue_entries()]
    assert chain.codes(defines) == [Code.VALID] * len(defines)
    return chain


def fresh_chain() -> ConsentChain:
    """The founded network with citizens enrolled and the catalogue defined, at block time T0."""
    return copy.deepcopy(_base_chain())


# --- consents -------------------------------------------------------------------------------


def cid(n: bytes | int) -> bytes:
    """Consent id ``n`` (16 bytes); a 16-byte id passes through."""
    return n if isinstance(n, bytes) else n.to_bytes(16, "big")


def terms(n: int = 1, *, subject: KeyPair = ALICE, data_types: Iterable[str] = (INCOME,), **changes: Any) -> dict:
    """Consent terms for id ``n``; keyword changes replace fields (``grantor`` may be a KeyPair)."""
    document = {
        "consent_id": cid(n),
        "subject": subject.public_key,
        "data_types": list(data_types),
        "purpose": {"code": "loan.credit-check", "text": "Assess a mortgage application"},
        "mode": "raw",
        "data_from": T0 - 365 * DAY,
        "data_until": T0,
        "valid_from": T0,
        "valid_until": T0 + 30 * DAY,
        "max_uses": 100,
        "frequency": {"max": 10, "per": "day"},
        "data_life_days": 30,
        "legal_basis": "pipl-13.1-consent",
        "contact": "privacy@bank.example",
    }
    for name, value in changes.items():
        document[name] = value.public_key if isinstance(value, KeyPair) else value
    return document


def kin_terms(n: int = 5, **changes: Any) -> dict:
    """An insurer's request to Carol, as Alice's registered child, for Alice's death registration (PIPL art. 49)."""
    base = {
        "data_types": [DEATH],
        "grantor": CAROL,
        "legal_basis": "pipl-49-next-of-kin",
        "contact": "claims@insurer.example",
        "purpose": {"code": "insurance.claim", "text": "Settle a life insurance claim"},
    }
    return terms(n, **{**base, **changes})


def request(document: dict, *, signer: KeyPair = BANK, time_ms: int = T0) -> bytes:
    return tx(signer, "consent.request", document, time_ms=time_ms)


_AUTO = object()


def grant(
    document: dict,
    *,
    citizen: KeyPair = ALICE,
    confirm: Any = _AUTO,
    hash_: bytes | None = None,
    time_ms: int = T0,
) -> bytes:
    """The citizen's grant over ``document``; sensitive types are confirmed unless ``confirm`` says otherwise
    (``None`` omits the confirmation)."""
    payload: dict[str, Any] = {"consent_id": document["consent_id"], "terms_hash": hash_ or terms_hash(document)}
    if confirm is _AUTO:
        confirm = sorted(set(document["data_types"]) & SENSITIVE) or None
    if confirm is not None:
        payload["sensitive_confirmation"] = list(confirm)
    return tx(citizen, "consent.grant", payload, time_ms=time_ms)


def answer(action: str, n: bytes | int, *, citizen: KeyPair = ALICE, time_ms: int = T0, **extra: Any) -> bytes:
    """consent.reject / pause / resume / revoke of consent ``n`` (``action`` without the prefix)."""
    return tx(citizen, f"consent.{action}", {"consent_id": cid(n), **extra}, time_ms=time_ms)


def activate(chain: ConsentChain, document: dict, *, signer: KeyPair = BANK, citizen: KeyPair = ALICE, time_ms: int = T0) -> None:
    """Request and grant ``document``; both must be valid."""
    codes = chain.codes([request(document, signer=signer, time_ms=time_ms), grant(document, citizen=citizen, time_ms=time_ms)], time=time_ms)
    assert codes == [Code.VALID, Code.VALID], codes


def relate(citizen: KeyPair, relative: KeyPair, relation: str = "child", *, signer: KeyPair = BIGDATA, cosign: bool = True, time_ms: int = T0) -> bytes:
    payload = {"citizen": citizen.public_key, "relative": relative.public_key, "relation": relation}
    return tx(signer, "citizen.relate", payload, cosigners=[relative] if cosign else [], time_ms=time_ms)


# --- records --------------------------------------------------------------------------------


def rid(n: int) -> bytes:
    return b"R" + n.to_bytes(15, "big")


def publish(
    record_id: bytes,
    *,
    subject: KeyPair = ALICE,
    data_type: str = INCOME,
    as_of: int = T0 - 10 * DAY,
    signer: KeyPair | None = None,
    time_ms: int = T0,
) -> bytes:
    payload = {
        "record_id": record_id,
        "subject": subject.public_key,
        "type": data_type,
        "as_of": as_of,
        "commitment": commit_record_payload(os.urandom(32), codec.encode({"record": record_id})),
    }
    return tx(signer or PROVIDER_OF[data_type], "record.publish", payload, time_ms=time_ms)


def correct(record_id: bytes, version: int, *, data_type: str = INCOME, as_of: int = T0 - 5 * DAY, time_ms: int = T0) -> bytes:
    payload = {"record_id": record_id, "version": version, "as_of": as_of, "commitment": os.urandom(32)}
    return tx(PROVIDER_OF[data_type], "record.correct", payload, time_ms=time_ms)


def withdraw(record_id: bytes, *, data_type: str = INCOME, time_ms: int = T0) -> bytes:
    return tx(PROVIDER_OF[data_type], "record.withdraw", {"record_id": record_id, "reason": "registered in error"}, time_ms=time_ms)


def death_registration(record_id: bytes, subject: KeyPair = ALICE, *, time_ms: int = T0) -> bytes:
    return publish(record_id, subject=subject, data_type=DEATH, as_of=time_ms - DAY, time_ms=time_ms)


# --- access records -------------------------------------------------------------------------


def access(
    document: dict | None = None,
    *,
    records: Iterable[tuple[bytes, int] | dict] = (),
    outcome: str = "granted",
    **changes: Any,
) -> dict:
    """An access.record payload under consent ``document`` (or a subject's own view when None).

    Keyword changes replace fields; a change to ``None`` removes the field.
    """
    if document is None:
        payload: dict[str, Any] = {
            "requester": ALICE.public_key,
            "subject": ALICE.public_key,
            "data_types": [INCOME],
            "purpose": "subject.view",
            "mode": "raw",
        }
    else:
        payload = {
            "requester": BANK.public_key,
            "subject": document["subject"],
            "data_types": list(document["data_types"]),
            "purpose": document["purpose"]["code"],
            "mode": document["mode"],
            "consumer": "bank",
            "consent_id": document["consent_id"],
        }
    payload["request_digest"] = hashlib.sha256(os.urandom(16)).digest()
    payload["records"] = [ref if isinstance(ref, dict) else {"record_id": ref[0], "version": ref[1]} for ref in records]
    payload["outcome"] = outcome
    if outcome == "granted":
        payload["result_hash"] = hashlib.sha256(b"result").digest()
    else:
        payload["reason"] = "consent_revoked"
    for name, value in changes.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value.public_key if isinstance(value, KeyPair) else value
    return payload


def record_access(payload: dict, *, signer: KeyPair = NODE, time_ms: int = T0) -> bytes:
    return tx(signer, "access.record", payload, time_ms=time_ms)


def unchanged(chain: ConsentChain, envelope: bytes, *, time: int | None = None) -> Code:
    """Commit ``envelope`` alone; assert it changed no state at all; return its code."""
    before = chain.state()
    (code,) = chain.codes([envelope], time=time)
    assert chain.state() == before
    return code
