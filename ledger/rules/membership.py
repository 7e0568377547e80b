"""Consortium membership: the genesis transaction and M-of-N governed changes.

Any change to who belongs to the network — admitting, re-keying or removing an
organization, or changing the threshold itself — must carry signatures from
admins of at least ``admin_threshold`` distinct member organizations.
"""

from __future__ import annotations

from typing import Any

from ledger.fields import MapOf, Text, UInt
from ledger.genesis import GENESIS_SPEC, Role, MAX_ORGS, ORG_SPEC, check_membership, network_id
from ledger.rules.engine import GENESIS_TYPE, Code, Context, RuleViolation, member_key, org_key, register, resolve_signer

__all__ = ["GENESIS_TYPE", "ORGS_KEY", "POLICY_KEY", "custodian_of_node_key", "node_key", "node_key_holder"]

ORGS_KEY = b"network/orgs"
POLICY_KEY = b"network/policy"


def node_key(node_id: str) -> bytes:
    return b"node/" + node_id.encode()


def node_key_holder(public_key: bytes) -> bytes:
    """State key mapping a node's public key to its node id (a node key signs only what its custodian node attests: access records, module checks, aggregates)."""
    return b"nodekey/" + public_key


@register(GENESIS_TYPE, GENESIS_SPEC, needs_known_signer=False)
def apply_genesis(ctx: Context) -> None:
    document = ctx.payload
    if ctx.state.get(ORGS_KEY) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, "the network already has a genesis")
    if ctx.tx.network != network_id(document):
        raise RuleViolation(Code.WRONG_NETWORK, "the network id is not the hash of this genesis document")
    check_membership(document["orgs"], document["admin_threshold"], _policy_error)
    unsigned = [org["id"] for org in document["orgs"] if not set(org["admin_keys"]) & ctx.tx.signer_keys]
    if unsigned:
        raise RuleViolation(Code.POLICY_NOT_MET, f"founding organization(s) {unsigned} did not sign the genesis")
    for org in document["orgs"]:
        _write_org(ctx, org)
    ctx.state.put(ORGS_KEY, sorted(org["id"] for org in document["orgs"]))
    ctx.state.put(POLICY_KEY, {"admin_threshold": document["admin_threshold"], "name": document["name"]})


@register("org.upsert", {"org": MapOf(ORG_SPEC)})
def apply_org_upsert(ctx: Context) -> None:
    _require_admin_quorum(ctx)
    org = ctx.payload["org"]
    check_membership([org], 1, _policy_error)
    org_ids = ctx.state.read(ORGS_KEY)
    if org["id"] not in org_ids and len(org_ids) >= MAX_ORGS:
        raise RuleViolation(Code.POLICY_NOT_MET, f"a network has at most {MAX_ORGS} organizations")
    existing = ctx.state.read(org_key(org["id"]))
    if existing is not None:
        _erase_org(ctx, existing)
    for key in org["admin_keys"] + [node["key"] for node in org["nodes"]]:
        if ctx.state.get(member_key(key)) is not None or _is_node_key(ctx, key):
            raise RuleViolation(Code.ALREADY_EXISTS, f"key {key.hex()} already belongs to a member")
    for node in org["nodes"]:
        if ctx.state.get(node_key(node["id"])) is not None:
            raise RuleViolation(Code.ALREADY_EXISTS, f"node id {node['id']!r} is taken")
    _write_org(ctx, org)
    ctx.state.put(ORGS_KEY, sorted(set(org_ids) | {org["id"]}))


@register("org.remove", {"org": Text(64, identifier=True)})
def apply_org_remove(ctx: Context) -> None:
    _require_admin_quorum(ctx)
    existing = ctx.state.read(org_key(ctx.payload["org"]))
    if existing is None:
        raise RuleViolation(Code.NOT_FOUND, f"no organization {ctx.payload['org']!r}")
    remaining = [org_id for org_id in ctx.state.read(ORGS_KEY) if org_id != existing["id"]]
    if len(remaining) < ctx.state.read(POLICY_KEY)["admin_threshold"]:
        raise RuleViolation(Code.POLICY_NOT_MET, "removal would leave fewer organizations than the admin threshold")
    _erase_org(ctx, existing)
    ctx.state.delete(org_key(existing["id"]))
    ctx.state.put(ORGS_KEY, remaining)


@register("policy.set", {"admin_threshold": UInt(1, MAX_ORGS)})
def apply_policy_set(ctx: Context) -> None:
    _require_admin_quorum(ctx)
    threshold = ctx.payload["admin_threshold"]
    if threshold > len(ctx.state.read(ORGS_KEY)):
        raise RuleViolation(Code.POLICY_NOT_MET, f"threshold {threshold} exceeds the number of organizations")
    policy = ctx.state.read(POLICY_KEY)
    ctx.state.put(POLICY_KEY, {**policy, "admin_threshold": threshold})


def _policy_error(message: str) -> RuleViolation:
    return RuleViolation(Code.POLICY_NOT_MET, message)


def _require_admin_quorum(ctx: Context) -> None:
    if ctx.signer is None or ctx.signer.is_citizen:
        raise RuleViolation(Code.FORBIDDEN, "membership changes are signed by organization admins")
    approving = set()
    for key in ctx.tx.signer_keys:
        signer = resolve_signer(ctx.state, key)
        if signer is not None and signer.org is not None:
            approving.add(signer.org)
    threshold = ctx.state.read(POLICY_KEY)["admin_threshold"]
    if len(approving) < threshold:
        raise RuleViolation(
            Code.POLICY_NOT_MET,
            f"{len(approving)} organization(s) approved ({sorted(approving)}); the policy needs {threshold}",
        )


def _is_node_key(ctx: Context, key: bytes) -> bool:
    return ctx.state.get(node_key_holder(key)) is not None


def _write_org(ctx: Context, org: dict[str, Any]) -> None:
    ctx.state.put(org_key(org["id"]), org)
    for key in org["admin_keys"]:
        ctx.state.put(member_key(key), {"org": org["id"]})
    for node in org["nodes"]:
        ctx.state.put(node_key(node["id"]), {"org": org["id"], "key": node["key"]})
        ctx.state.put(node_key_holder(node["key"]), {"node": node["id"]})


def _erase_org(ctx: Context, org: dict[str, Any]) -> None:
    for key in org["admin_keys"]:
        ctx.state.delete(member_key(key))
    for node in org["nodes"]:
        ctx.state.delete(node_key(node["id"]))
        ctx.state.delete(node_key_holder(node["key"]))


def custodian_of_node_key(state: Any, public_key: bytes) -> str | None:
    """The org running the node whose key this is, if that org is a custodian; else None."""
    holder = state.read(node_key_holder(public_key))
    if holder is None:
        return None
    org_id = state.read(node_key(holder["node"]))["org"]
    org = state.read(org_key(org_id))
    return org_id if org is not None and Role.CUSTODIAN.value in org["roles"] else None
