"""Builders for the computation rule tests (modules, budgets, joint keys, aggregates), on top of consent_builders.

The consent network lacks two things these rules need, so :func:`compute_chain` adds them to it:

* ``audit``, a regulator organization (admin key :data:`REGULATOR`), admitted by ``org.upsert``
  with the custodian's and the tax bureau's admins as the two-organization quorum;
* :data:`PROFILE` (``tax.profile``), a general type provided by ``tax`` with one field of every
  kind, so every input encoding and every numeric aggregate field has something to read.

Providers in the resulting network: ``tax`` (:data:`INCOME`, :data:`PROFILE`), ``health`` (the two
medical types), ``civil`` (:data:`DEATH`); consumers ``bank`` and ``insurer``; regulator ``audit``;
custodian ``bigdata`` whose node key :data:`NODE` signs checks, access records and computed aggregates.
"""

from __future__ import annotations

import copy
import hashlib
from functools import lru_cache
from typing import Any, Iterable

from consent_builders import BANK, BIGDATA, NODE, PROVIDER_OF, T0, TAX, ConsentChain, fresh_chain, key, org, tx
from ledger.crypto import KeyPair
from ledger.rules import Code

__all__ = [
    "AUDIT",
    "PROFILE",
    "PROFILE_FIELDS",
    "REGULATOR",
    "aggregate_computed",
    "aggregate_request",
    "approve",
    "budget",
    "check",
    "compute_chain",
    "item",
    "keyset",
    "mhash",
    "pin",
    "sandbox_receipt",
    "share",
    "submit",
    "unchanged",
]

REGULATOR = key(7)  # admin of "audit"
AUDIT = "audit"
PROFILE = "tax.profile"
PROFILE_FIELDS = {
    "taxpayer": "identifier",
    "employer": "text",
    "annual": "amount",
    "dependants": "integer",
    "retired": "boolean",
    "born": "date",
    "filed": "month",
    "monthly": "series",
}
PROVIDER_KEYS = {**PROVIDER_OF, PROFILE: TAX}


@lru_cache(maxsize=1)
def _base() -> ConsentChain:
    chain = fresh_chain()
    regulator = org(AUDIT, ["regulator"], REGULATOR)
    profile = {
        "type": PROFILE,
        "version": 1,
        "title": "Taxpayer profile",
        "provider": "tax",
        "fields": [{"name": name, "kind": kind} for name, kind in PROFILE_FIELDS.items()],
        "sensitivity": "general",
    }
    codes = chain.codes([tx(BIGDATA, "org.upsert", {"org": regulator}, cosigners=[TAX]), tx(BIGDATA, "catalogue.define", {"entry": profile})])
    assert codes == [Code.VALID, Code.VALID], codes
    return chain


def compute_chain() -> ConsentChain:
    """The consent network plus the regulator ``audit`` and the ``tax.profile`` type, at block time T0."""
    return copy.deepcopy(_base())


# --- modules --------------------------------------------------------------------------------


def mhash(n: int) -> bytes:
    """The (pretend) SHA-256 of wasm module ``n``: the ledger never sees the bytes."""
    return hashlib.sha256(b"wasm module %d" % n).digest()


def item(data_type: str, field: str, encode: str) -> dict[str, str]:
    return {"type": data_type, "field": field, "encode": encode}


def submit(module_hash: bytes, inputs: list[list[dict[str, str]]], *, signer: KeyPair = BANK, output: str = "int", **extra: Any) -> bytes:
    payload = {"module_hash": module_hash, "name": "loan-score", "inputs": inputs, "output": output, **extra}
    return tx(signer, "module.submit", payload)


def check(module_hash: bytes, outcome: str = "accepted", *, signer: KeyPair = NODE, **extra: Any) -> bytes:
    return tx(signer, "module.check", {"module_hash": module_hash, "outcome": outcome, **extra})


def approve(module_hash: bytes, signer: KeyPair) -> bytes:
    return tx(signer, "module.approve", {"module_hash": module_hash})


def pin(chain: ConsentChain, module_hash: bytes, inputs: list[list[dict[str, str]]], *, signer: KeyPair = BANK, approved: bool = True) -> None:
    """Submit and check a module (valid), and when ``approved`` have every provider of its types approve it."""
    envelopes = [submit(module_hash, inputs, signer=signer), check(module_hash)]
    if approved:
        providers = {PROVIDER_KEYS[i["type"]].public_key: PROVIDER_KEYS[i["type"]] for vector in inputs for i in vector}
        envelopes += [approve(module_hash, provider) for provider in providers.values()]
    codes = chain.codes(envelopes)
    assert codes == [Code.VALID] * len(envelopes), codes


def sandbox_receipt(module_hash: bytes, *, error: str | None = None) -> dict[str, Any]:
    """A sandbox computation receipt: completed (output hash) or, with ``error``, stopped."""
    receipt: dict[str, Any] = {"kind": "sandbox", "code_hash": module_hash, "engine": "wasmtime 50.0.1", "params": b"\xa0", "fuel": 12_345}
    if error is None:
        receipt["output_hash"] = hashlib.sha256(b"output").digest()
    else:
        receipt["error"] = error
    return receipt


# --- budgets, joint keys, aggregates -------------------------------------------------------


def budget(consumer: int, total: int, *, data_type: str = PROFILE, min_cohort: int = 10, signer: KeyPair = TAX) -> bytes:
    payload = {"data_type": data_type, "consumer_epsilon_milli": consumer, "total_epsilon_milli": total, "min_cohort": min_cohort}
    return tx(signer, "privacy.budget", payload)


def keyset(keyset_id: bytes, parties: Iterable[str], *, signer: KeyPair = BANK, params: str = "bfv-threshold-v1") -> bytes:
    return tx(signer, "threshold.keyset", {"keyset_id": keyset_id, "params": params, "parties": list(parties)})


def aggregate_request(aggregate_id: bytes, keyset_id: bytes, *, signer: KeyPair = BANK, time_ms: int = T0, **changes: Any) -> bytes:
    """A request for the mean of ``tax.profile.annual`` in [0, 10 000 000] fen at ε = 0.5; changes replace fields
    (``None`` removes one)."""
    payload: dict[str, Any] = {
        "aggregate_id": aggregate_id,
        "data_type": PROFILE,
        "field": "annual",
        "statistic": "mean",
        "lower": 0,
        "upper": 10_000_000,
        "epsilon_milli": 500,
        "keyset_id": keyset_id,
        "purpose": "market.statistics",
        **changes,
    }
    return tx(signer, "aggregate.request", {k: v for k, v in payload.items() if v is not None}, time_ms=time_ms)


def aggregate_computed(aggregate_id: bytes, outcome: str = "computed", *, signer: KeyPair = NODE, min_cohort: int = 10, **changes: Any) -> bytes:
    """The custodian's receipt; a computed one carries inputs_root and result_hash, a refused one its reason.
    Changes replace fields (``None`` removes one)."""
    payload: dict[str, Any] = {"aggregate_id": aggregate_id, "outcome": outcome, "min_cohort": min_cohort, "engine": "openfhe test", "params": b"\xa0"}
    if outcome == "computed":
        payload.update(inputs_root=b"\x01" * 32, result_hash=b"\x02" * 32)
    else:
        payload["reason"] = "cohort_too_small"
    payload.update(changes)
    return tx(signer, "aggregate.computed", {k: v for k, v in payload.items() if v is not None})


def share(aggregate_id: bytes, signer: KeyPair, share_hash: bytes = b"\x03" * 32) -> bytes:
    return tx(signer, "aggregate.share", {"aggregate_id": aggregate_id, "share_hash": share_hash})
