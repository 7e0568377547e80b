"""The genesis document: the founding consortium, its keys and its admin policy.

The document is a canonical CBOR map (docs/PROTOCOL.md §5); its SHA-256 is the
network id that every transaction names, so a transaction signed for one
network can never be committed on another. On disk it is kept as JSON with
hex-encoded keys for people to read; :func:`genesis_to_json` and
:func:`genesis_from_json` convert losslessly.
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

from ledger import codec
from ledger.crypto import KeyPair, sha256
from ledger.errors import EncodingError, GenesisError
from ledger.fields import Bytes, Choice, ListOf, MapOf, Text, UInt, check_map
from ledger.tx import build_transaction

__all__ = [
    "ORG_SPEC",
    "Role",
    "check_genesis",
    "genesis_transaction",
    "genesis_from_json",
    "genesis_to_json",
    "network_id",
]


class Role(str, Enum):
    """What an organization may do; a transaction type names the roles it needs."""

    PROVIDER = "provider"
    CONSUMER = "consumer"
    REGULATOR = "regulator"
    CUSTODIAN = "custodian"
    IDENTITY_AUTHORITY = "identity_authority"


MAX_ORGS = 64
NODE_SPEC = {"id": Text(64, identifier=True), "key": Bytes(32)}
ORG_SPEC = {
    "id": Text(64, identifier=True),
    "name": Text(256),
    "roles": ListOf(Choice(frozenset(role.value for role in Role)), 1, 5, unique=True),
    "admin_keys": ListOf(Bytes(32), 1, 16, unique=True),
    "nodes": ListOf(MapOf(NODE_SPEC), 0, 64),
}
GENESIS_SPEC = {
    "version": UInt(1, 1),
    "name": Text(128),
    "time": UInt(),
    "admin_threshold": UInt(1, MAX_ORGS),
    "orgs": ListOf(MapOf(ORG_SPEC), 1, MAX_ORGS),
}


def check_genesis(document: Any) -> None:
    """Raise GenesisError unless ``document`` is a well-formed, consistent genesis map."""
    try:
        check_map(document, GENESIS_SPEC, "genesis")
    except EncodingError as exc:
        raise GenesisError(str(exc)) from None
    check_membership(document["orgs"], document["admin_threshold"], GenesisError)


def check_membership(orgs: list[dict[str, Any]], threshold: int, error: type[Exception]) -> None:
    """Raise ``error`` if ids or keys repeat, or the admin threshold cannot be met."""
    org_ids = [org["id"] for org in orgs]
    if len(set(org_ids)) != len(org_ids):
        raise error("organization ids are not unique")
    keys = [key for org in orgs for key in org["admin_keys"]]
    keys += [node["key"] for org in orgs for node in org["nodes"]]
    if len(set(keys)) != len(keys):
        raise error("a key is used twice (admin and node keys must all differ)")
    node_ids = [node["id"] for org in orgs for node in org["nodes"]]
    if len(set(node_ids)) != len(node_ids):
        raise error("node ids are not unique")
    if threshold > len(orgs):
        raise error(f"admin threshold {threshold} exceeds the {len(orgs)} organizations")


def network_id(document: dict[str, Any]) -> bytes:
    return sha256(codec.encode(document))


def genesis_to_json(document: dict[str, Any]) -> str:
    return json.dumps(_hexify(document), indent=2, sort_keys=True)


def genesis_from_json(text: str) -> dict[str, Any]:
    """Parse the JSON form; every field named ``key`` or ``*_keys`` holds hex."""
    try:
        document = _unhexify(json.loads(text), "")
    except (ValueError, TypeError) as exc:
        raise GenesisError(f"genesis JSON: {exc}") from None
    check_genesis(document)
    return document


def _hexify(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [_hexify(item) for item in value]
    if isinstance(value, dict):
        return {key: _hexify(item) for key, item in value.items()}
    return value


def _unhexify(value: Any, name: str) -> Any:
    if isinstance(value, list):
        return [_unhexify(item, name) for item in value]
    if isinstance(value, dict):
        return {key: _unhexify(item, key) for key, item in value.items()}
    if isinstance(value, str) and (name == "key" or name.endswith("_keys")):
        return bytes.fromhex(value)
    return value


def genesis_transaction(document: dict[str, Any], founders: list[KeyPair]) -> bytes:
    """The signed genesis transaction (leaf 0): the document, signed by an admin of every founder.

    ``founders[0]`` is the signer; the others co-sign. The rule for ``network.genesis``
    refuses the block unless every founding organization signed.
    """
    check_genesis(document)
    return build_transaction(
        founders[0],
        network_id(document),
        "network.genesis",
        document,
        time_ms=document["time"],
        cosigners=founders[1:],
    )
