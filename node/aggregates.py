"""Aggregates over consented citizens: budget spent on chain, noise by OpenDP, result under a joint key.

For ``POST /v1/aggregates`` the node

1. orders the requester's ``aggregate.request`` — every peer spends its ε against
   the consumer's and the global cap, or refuses it (``budget_exhausted``);
2. gathers the cohort: every citizen whose active consent lets the requester use
   the data type in ``computed`` mode now, one value each (their latest record in
   the consent's date range; a series counts as its total), clamped to the bounds;
3. refuses, on the ledger, a cohort under the type's minimum (``cohort_too_small``);
4. draws the noise with OpenDP (:mod:`privacy.dp`), encrypts the values under the
   parties' joint key, sums them homomorphically and adds ``noisy - exact``, so
   what can ever be decrypted is the noisy statistic;
5. stores the result ciphertexts and the list of inputs (consent, record, version)
   in its vault and orders ``aggregate.computed`` with their hashes.

Each party then decrypts its share and files it (``aggregate.share``); the node
hands the shares to the requester only once every party's share is on the
ledger (``GET /v1/aggregates/{id}``), and the requester fuses them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ledger import codec
from ledger.consent import refusal_reason
from ledger.rules import Code
from ledger.rules.aggregates import aggregate_key, budget_key
from ledger.rules.catalogue import catalogue_key
from ledger.rules.consents import consent_key, consumer_consent_key
from ledger.tx import build_transaction
from node.access import current_records
from node.api.errors import ApiError
from node.api.parsing import parse_envelope
from node.peer import Peer, SubmitResult
from node.publishing import decode_opening
from node.vault import Vault
from privacy.dp import noisy_parts
from privacy.envelope import open_record, record_aad
from privacy.he.params import ENGINE as HE_ENGINE
from privacy.he.threshold import JointKey, encrypt_values, sum_encrypted

__all__ = ["AggregateDesk", "ComputedAggregate"]



@dataclass(frozen=True)
class ComputedAggregate:
    request: SubmitResult
    computed: SubmitResult
    result_hash: bytes


class AggregateDesk:
    def __init__(self, peer: Peer, vault: Vault, vault_private_key: bytes, clock_ms: Callable[[], int]) -> None:
        self._peer = peer
        self._vault = vault
        self._vault_private_key = vault_private_key
        self._clock_ms = clock_ms

    def compute(self, envelope: bytes, *, timeout_s: float) -> ComputedAggregate:
        tx = parse_envelope(envelope, {"aggregate.request"})
        submitted = self._peer.submit([envelope], timeout_s=timeout_s)[0]
        if submitted.status != "committed":
            budget_code = {"privacy budget exhausted": "budget_exhausted", "no privacy budget": "no_budget"}
            for phrase, code in budget_code.items():
                if submitted.code == Code.POLICY_NOT_MET and phrase in submitted.reason:
                    raise ApiError(code, f"{submitted.reason} (refusal recorded at log index {submitted.log_index})")
            raise ApiError("forbidden" if submitted.code == Code.POLICY_NOT_MET else "invalid_argument", submitted.reason or submitted.status)
        request = self._peer.store.read_state(aggregate_key(tx.payload["aggregate_id"]))
        budget = self._peer.store.read_state(budget_key(request["data_type"]))
        inputs = self._cohort(request)
        receipt: dict[str, Any] = {
            "aggregate_id": tx.payload["aggregate_id"],
            "min_cohort": budget["min_cohort"],
            "engine": HE_ENGINE,  # the parameter set is in the joint key, named on chain by threshold.keyset
            "params": codec.encode({"statistic": request["statistic"], "lower": request["lower"], "upper": request["upper"],
                                    "epsilon_milli": request["epsilon_milli"], "mechanism": "opendp discrete laplace"}),
        }
        if len(inputs) < budget["min_cohort"]:
            self._record({**receipt, "outcome": "refused", "reason": "cohort_too_small"}, timeout_s)
            raise ApiError("cohort_too_small", f"fewer than {budget['min_cohort']} consenting citizens; nothing was computed")
        joint_bytes = self._vault.get_blob(request["keyset_id"])
        if joint_bytes is None:
            raise ApiError("unavailable", "the joint key's bytes are not on this node")
        joint = JointKey.from_bytes(joint_bytes)
        values = [value for _, _, _, value in inputs]
        parts = []
        for part in noisy_parts(request["statistic"], values, request["lower"], request["upper"], request["epsilon_milli"]):
            summed = [min(max(value, request["lower"]), request["upper"]) for value in values] if part.name == "sum" else [1] * len(values)
            ciphertext = sum_encrypted(joint, encrypt_values(joint, summed), offset=part.noisy - part.exact)
            parts.append({"name": part.name, "ciphertext": ciphertext, "epsilon": round(part.epsilon * 1000)})
        result = codec.encode({"aggregate_id": tx.payload["aggregate_id"], "parts": parts})
        listing = codec.encode([[consent_id, record_id, version] for consent_id, record_id, version, _ in inputs])
        result_hash = self._vault.put_blob(result)
        inputs_root = self._vault.put_blob(listing)
        computed = self._record({**receipt, "outcome": "computed", "inputs_root": inputs_root, "result_hash": result_hash}, timeout_s)
        return ComputedAggregate(submitted, computed, result_hash)

    def _record(self, payload: dict[str, Any], timeout_s: float) -> SubmitResult:
        envelope = build_transaction(self._peer.node_key, self._peer.network, "aggregate.computed", payload, time_ms=self._clock_ms())
        result = self._peer.submit([envelope], timeout_s=timeout_s)[0]
        if result.status != "committed":
            raise ApiError("unavailable", f"the aggregate's receipt was not committed ({result.reason}); nothing was released")
        return result

    def _cohort(self, request: dict[str, Any]) -> list[tuple[bytes, bytes, int, int]]:
        """(consent id, record id, version, value) for each consenting citizen, sorted by consent id."""
        store = self._peer.store
        now = self._clock_ms()
        kinds = {field["name"]: field["kind"] for field in store.read_state(catalogue_key(request["data_type"]))["fields"]}
        chosen: dict[bytes, tuple[bytes, bytes, int, int]] = {}
        prefix = consumer_consent_key(request["requester"], b"")
        for key, _ in store.state_scan(prefix):
            consent_id = key[len(prefix) :]
            consent = store.read_state(consent_key(consent_id))
            subject = consent["terms"]["subject"]
            allowed = refusal_reason(
                consent, consumer=request["requester"], subject=subject, data_types=[request["data_type"]], mode="computed", now_ms=now
            )
            if allowed is not None or subject in chosen:
                continue
            found = self._latest_record(subject, request["data_type"], consent["terms"])
            if found is not None:
                record_id, version, payload = found
                chosen[subject] = (consent_id, record_id, version, _value(payload[request["field"]], kinds[request["field"]]))
        return sorted(chosen.values())

    def _latest_record(self, subject: bytes, data_type: str, terms: dict[str, Any]) -> tuple[bytes, int, dict[str, Any]] | None:
        found = current_records(self._peer.store, subject, [data_type], (terms["data_from"], terms["data_until"]))
        if not found:
            return None
        record_id, version, _ = max(found, key=lambda record: (record[2]["as_of"], record[0]))
        sealed = self._vault.get(record_id, version)
        if sealed is None:
            return None
        opening = decode_opening(open_record(sealed, self._vault_private_key, record_aad(record_id, version, data_type, subject)))
        return record_id, version, opening["payload"]

def _value(field_value: Any, kind: str) -> int:
    if kind == "series":
        return sum(point["amount"] for point in field_value)
    return int(field_value)
