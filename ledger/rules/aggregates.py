"""Aggregates over many citizens: privacy budgets, joint-key parties, multi-party release.

A consumer or a regulator asks for a statistic (count, sum or mean of one numeric
field) over every citizen who consented to it in ``computed`` mode. Three things
keep that from becoming a way around consent:

* **Differential privacy, budgeted on chain.** The provider of a data type sets
  its budget (``privacy.budget``): an ε cap per consumer, a global cap over all
  consumers (colluding consumers share it) and a minimum cohort. Each request
  spends its ε when it is ordered — before anything is computed — so an
  exhausted budget is refused by every peer, and the refusal is in the log.
  ε is counted in integer thousandths (``epsilon_milli``) so no float reaches a hash.
* **A joint key.** The custodian encrypts the (noised) result under a key shared
  by several parties (``threshold.keyset``: at least the data type's provider and
  a regulator besides the requester's choice); no party can decrypt alone.
* **Release is a multi-party approval.** Each party's partial decryption is an
  ``aggregate.share`` transaction; the node hands the shares to the requester
  only once every party's share is on the ledger.

Lifecycle: ``requested`` ─custodian computes→ ``computed`` | ``refused``;
``computed`` ─last party's share→ ``released``.

State keys::

    dp-budget/<type>                caps, min cohort, ε spent by everyone
    dp-spent/<type>/<org>           ε spent by one consumer on that type
    keyset/<keyset id>              parameter set, parties
    aggregate/<aggregate id>        the request, its status, the custodian's receipt, the shares
"""

from __future__ import annotations

from typing import Any

from ledger.fields import Bytes, Choice, ListOf, Optional, Text, UInt
from ledger.genesis import Role
from ledger.rules.catalogue import read_catalogue_entry
from ledger.rules.engine import Code, Context, RuleViolation, org_key, register
from ledger.rules.membership import custodian_of_node_key

__all__ = [
    "AGGREGATE_ID_SIZE",
    "AGGREGATE_KINDS",
    "STATISTICS",
    "aggregate_key",
    "budget_key",
    "keyset_key",
    "spent_key",
]

AGGREGATE_ID_SIZE = 16
STATISTICS = frozenset({"count", "sum", "mean"})
AGGREGATE_KINDS = frozenset({"integer", "amount", "boolean", "series"})
MAX_EPSILON_MILLI = 100_000

BUDGET_SPEC = {
    "data_type": Text(64, identifier=True),
    "consumer_epsilon_milli": UInt(1, MAX_EPSILON_MILLI),
    "total_epsilon_milli": UInt(1, MAX_EPSILON_MILLI),
    "min_cohort": UInt(2, 1_000_000),
}
KEYSET_SPEC = {
    "keyset_id": Bytes(32),
    "params": Text(64, identifier=True),
    "parties": ListOf(Text(64, identifier=True), 2, 8, unique=True),
}
REQUEST_SPEC = {
    "aggregate_id": Bytes(AGGREGATE_ID_SIZE),
    "data_type": Text(64, identifier=True),
    "field": Text(64, identifier=True),
    "statistic": Choice(STATISTICS),
    "lower": UInt(0, 2**26),  # the proven range of the threshold parameter set (docs/HE.md)
    "upper": UInt(0, 2**26),
    "epsilon_milli": UInt(1, MAX_EPSILON_MILLI),
    "keyset_id": Bytes(32),
    "purpose": Text(64, identifier=True),
}
COMPUTED_SPEC = {
    "aggregate_id": Bytes(AGGREGATE_ID_SIZE),
    "outcome": Choice(frozenset({"computed", "refused"})),
    "reason": Optional(Choice(frozenset({"cohort_too_small"}))),
    "min_cohort": UInt(2, 1_000_000),
    "inputs_root": Optional(Bytes(32)),  # SHA-256 over the canonical list of (consent, record, version) used
    "result_hash": Optional(Bytes(32)),  # SHA-256 of the result ciphertexts as the node serves them
    "engine": Text(64),
    "params": Bytes(max_size=8192),
}
SHARE_SPEC = {"aggregate_id": Bytes(AGGREGATE_ID_SIZE), "share_hash": Bytes(32)}


def budget_key(data_type: str) -> bytes:
    return b"dp-budget/" + data_type.encode()


def spent_key(data_type: str, org: str) -> bytes:
    return b"dp-spent/" + data_type.encode() + b"/" + org.encode()


def keyset_key(keyset_id: bytes) -> bytes:
    return b"keyset/" + keyset_id


def aggregate_key(aggregate_id: bytes) -> bytes:
    return b"aggregate/" + aggregate_id


def _has_role(ctx: Context, org_id: str, role: Role) -> bool:
    org = ctx.state.read(org_key(org_id))
    return org is not None and role.value in org["roles"]


@register("privacy.budget", BUDGET_SPEC, frozenset({Role.PROVIDER}))
def apply_privacy_budget(ctx: Context) -> None:
    """The provider of a type sets (or resets) its caps; ε already spent stays spent."""
    payload = ctx.payload
    entry = read_catalogue_entry(ctx, payload["data_type"])
    if entry["provider"] != ctx.signer.org:
        raise RuleViolation(Code.FORBIDDEN, f"only {entry['provider']!r}, the provider of {payload['data_type']!r}, sets its budget")
    if payload["consumer_epsilon_milli"] > payload["total_epsilon_milli"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "a consumer's cap cannot exceed the global cap")
    current = ctx.state.read(budget_key(payload["data_type"]))
    spent = 0 if current is None else current["spent_milli"]
    ctx.state.put(budget_key(payload["data_type"]), {**payload, "spent_milli": spent})


@register("threshold.keyset", KEYSET_SPEC, frozenset({Role.CUSTODIAN, Role.REGULATOR, Role.PROVIDER, Role.CONSUMER}))
def apply_threshold_keyset(ctx: Context) -> None:
    payload = ctx.payload
    if ctx.state.read(keyset_key(payload["keyset_id"])) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, "this joint key is already registered")
    if ctx.signer.org not in payload["parties"]:
        raise RuleViolation(Code.FORBIDDEN, "a joint key is registered by one of its parties")
    for party in payload["parties"]:
        if ctx.state.read(org_key(party)) is None:
            raise RuleViolation(Code.NOT_FOUND, f"party {party!r} is not a member organization")
    if not any(_has_role(ctx, party, Role.REGULATOR) for party in payload["parties"]):
        raise RuleViolation(Code.POLICY_NOT_MET, "a joint key's parties include a regulator")
    ctx.state.put(keyset_key(payload["keyset_id"]), {**payload, "registered_by": ctx.signer.org})


@register("aggregate.request", REQUEST_SPEC, frozenset({Role.CONSUMER, Role.REGULATOR}))
def apply_aggregate_request(ctx: Context) -> None:
    payload = ctx.payload
    if ctx.state.read(aggregate_key(payload["aggregate_id"])) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, f"aggregate {payload['aggregate_id'].hex()} exists")
    if payload["lower"] > payload["upper"]:
        raise RuleViolation(Code.BAD_PAYLOAD, "lower bound above upper bound")
    entry = read_catalogue_entry(ctx, payload["data_type"])
    kinds = {field["name"]: field["kind"] for field in entry["fields"]}
    if kinds.get(payload["field"]) not in AGGREGATE_KINDS:
        raise RuleViolation(Code.BAD_PAYLOAD, f"{payload['data_type']}.{payload['field']} is not a numeric field")
    _spend(ctx, payload["data_type"], ctx.signer.org, payload["epsilon_milli"])
    keyset = ctx.state.read(keyset_key(payload["keyset_id"]))
    if keyset is None:
        raise RuleViolation(Code.NOT_FOUND, "no such joint key")
    if entry["provider"] not in keyset["parties"]:
        raise RuleViolation(Code.POLICY_NOT_MET, f"the joint key's parties must include {entry['provider']!r}, the data's provider")
    ctx.state.put(
        aggregate_key(payload["aggregate_id"]),
        {**payload, "requester": ctx.signer.org, "parties": keyset["parties"], "status": "requested", "requested": ctx.log_index, "shares": []},
    )


def _spend(ctx: Context, data_type: str, org: str, epsilon_milli: int) -> None:
    budget = ctx.state.read(budget_key(data_type))
    if budget is None:
        raise RuleViolation(Code.POLICY_NOT_MET, f"no privacy budget is set for {data_type!r}: aggregates over it are refused")
    spent = ctx.state.read(spent_key(data_type, org)) or 0
    if spent + epsilon_milli > budget["consumer_epsilon_milli"]:
        raise RuleViolation(
            Code.POLICY_NOT_MET,
            f"privacy budget exhausted: {org!r} has spent {spent} of {budget['consumer_epsilon_milli']} milli-epsilon on {data_type!r}",
        )
    if budget["spent_milli"] + epsilon_milli > budget["total_epsilon_milli"]:
        raise RuleViolation(
            Code.POLICY_NOT_MET,
            f"global privacy budget exhausted: {budget['spent_milli']} of {budget['total_epsilon_milli']} milli-epsilon spent on {data_type!r}",
        )
    ctx.state.put(spent_key(data_type, org), spent + epsilon_milli)
    ctx.state.put(budget_key(data_type), {**budget, "spent_milli": budget["spent_milli"] + epsilon_milli})


def _read_aggregate(ctx: Context, aggregate_id: bytes) -> dict[str, Any]:
    aggregate = ctx.state.read(aggregate_key(aggregate_id))
    if aggregate is None:
        raise RuleViolation(Code.NOT_FOUND, f"no aggregate {aggregate_id.hex()}")
    return aggregate


@register("aggregate.computed", COMPUTED_SPEC, needs_known_signer=False)
def apply_aggregate_computed(ctx: Context) -> None:
    payload = ctx.payload
    if custodian_of_node_key(ctx.state, ctx.tx.signer) is None:
        raise RuleViolation(Code.FORBIDDEN, "aggregates are computed and signed by a custodian organization's node key")
    computed = payload["outcome"] == "computed"
    if computed != ("result_hash" in payload) or computed != ("inputs_root" in payload) or computed == ("reason" in payload):
        raise RuleViolation(Code.BAD_PAYLOAD, "a computed aggregate carries inputs_root and result_hash, a refused one its reason")
    aggregate = _read_aggregate(ctx, payload["aggregate_id"])
    if aggregate["status"] != "requested":
        raise RuleViolation(Code.WRONG_STATE, f"the aggregate is {aggregate['status']}")
    budget = ctx.state.read(budget_key(aggregate["data_type"]))
    if payload["min_cohort"] != budget["min_cohort"]:
        raise RuleViolation(Code.BAD_PAYLOAD, f"the minimum cohort of {aggregate['data_type']!r} is {budget['min_cohort']}")
    receipt = {key: value for key, value in payload.items() if key != "aggregate_id"}
    ctx.state.put(
        aggregate_key(payload["aggregate_id"]),
        {**aggregate, "status": "computed" if computed else "refused", "receipt": receipt, "computed": ctx.log_index},
    )


@register("aggregate.share", SHARE_SPEC, frozenset({Role.CUSTODIAN, Role.REGULATOR, Role.PROVIDER, Role.CONSUMER}))
def apply_aggregate_share(ctx: Context) -> None:
    aggregate = _read_aggregate(ctx, ctx.payload["aggregate_id"])
    org = ctx.signer.org
    if org not in aggregate["parties"]:
        raise RuleViolation(Code.FORBIDDEN, f"{org!r} is not a party of the aggregate's joint key")
    if aggregate["status"] != "computed":
        raise RuleViolation(Code.WRONG_STATE, f"the aggregate is {aggregate['status']}; shares follow a computed result")
    if any(share["party"] == org for share in aggregate["shares"]):
        raise RuleViolation(Code.ALREADY_EXISTS, f"{org!r} already gave its share")
    shares = [*aggregate["shares"], {"party": org, "share_hash": ctx.payload["share_hash"], "log_index": ctx.log_index}]
    status = "released" if len(shares) == len(aggregate["parties"]) else "computed"
    ctx.state.put(aggregate_key(ctx.payload["aggregate_id"]), {**aggregate, "shares": shares, "status": status})
