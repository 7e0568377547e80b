"""The validation engine: which transaction types exist, who may send them, what they change.

Each transaction type is one :class:`Rule` registered in :data:`RULES`: an exact
payload spec, the roles its signer's organization must hold, and an ``apply``
function that reads and writes state through the context and raises
:class:`RuleViolation` to refuse. The engine is pure: same state, same
transaction, same block time — same outcome on every peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any, Callable, Mapping

from ledger import codec
from ledger.errors import EncodingError
from ledger.fields import FieldType, check_map
from ledger.genesis import Role
from ledger.state import StateOverlay
from ledger.tx import Transaction

__all__ = [
    "Code",
    "Context",
    "GENESIS_TYPE",
    "MAX_CLOCK_SKEW_MS",
    "RULES",
    "Rule",
    "RuleViolation",
    "Signer",
    "apply_transaction",
    "member_key",
    "register",
]

MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
GENESIS_TYPE = "network.genesis"


class Code(IntEnum):
    """Validation codes stored per transaction in the block (one byte each)."""

    VALID = 0
    BAD_ENCODING = 1
    WRONG_NETWORK = 2
    BAD_SIGNATURE = 3
    DUPLICATE_TXID = 4
    UNKNOWN_SIGNER = 5
    FORBIDDEN = 6
    UNKNOWN_TYPE = 7
    BAD_PAYLOAD = 8
    TIME_SKEW = 9
    ALREADY_EXISTS = 10
    NOT_FOUND = 11
    POLICY_NOT_MET = 12
    GENESIS_ONLY = 13
    RULE_FAILED = 14
    WRONG_STATE = 15


class RuleViolation(Exception):
    """Raised by a rule to refuse a transaction with a validation code."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Signer:
    """Who signed: an organization member (with its org's roles) or an enrolled citizen."""

    key: bytes
    org: str | None
    roles: frozenset[Role]

    @property
    def is_citizen(self) -> bool:
        return self.org is None


@dataclass(frozen=True)
class Context:
    tx: Transaction
    state: StateOverlay
    signer: Signer | None
    height: int
    block_time: int
    log_index: int

    @property
    def payload(self) -> dict[str, Any]:
        return self.tx.payload


@dataclass(frozen=True)
class Rule:
    """``roles``: the signer's org must hold one of them; empty means the rule checks the signer itself."""

    tx_type: str
    payload: Mapping[str, FieldType]
    roles: frozenset[Role]
    apply: Callable[[Context], None]
    needs_known_signer: bool = True


RULES: dict[str, Rule] = {}


def register(
    tx_type: str,
    payload: Mapping[str, FieldType],
    roles: frozenset[Role] = frozenset(),
    *,
    needs_known_signer: bool = True,
) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def decorator(apply: Callable[[Context], None]) -> Callable[[Context], None]:
        if tx_type in RULES:
            raise ValueError(f"a rule for {tx_type!r} is already registered")
        RULES[tx_type] = Rule(tx_type, payload, roles, apply, needs_known_signer)
        return apply

    return decorator


def member_key(public_key: bytes) -> bytes:
    """State key mapping a public key to its holder ({"org": id} or {"citizen": true})."""
    return b"member/" + public_key


def org_key(org_id: str) -> bytes:
    return b"org/" + org_id.encode()


def resolve_signer(state: StateOverlay, public_key: bytes) -> Signer | None:
    raw_member = state.get(member_key(public_key))
    if raw_member is None:
        return None
    org_id = _member_org(raw_member)
    if org_id is None:
        return Signer(public_key, None, frozenset())
    return Signer(public_key, org_id, _org_roles(state.get(org_key(org_id))))


# Decoding the same member and org records for every transaction is the hot
# path of validation; these caches are keyed by the exact stored bytes, so a
# changed record is a different key and can never be served stale.
@lru_cache(maxsize=4096)
def _member_org(raw_member: bytes) -> str | None:
    return codec.decode(raw_member).get("org")


@lru_cache(maxsize=1024)
def _org_roles(raw_org: bytes) -> frozenset[Role]:
    return frozenset(Role(role) for role in codec.decode(raw_org)["roles"])


def apply_transaction(
    tx: Transaction, state: StateOverlay, *, height: int, block_time: int, log_index: int
) -> tuple[Code, str, dict[bytes, bytes | None]]:
    """Validate ``tx`` against ``state`` and, if valid, merge its writes into ``state``.

    Returns the code, the reason for a refusal, and the writes made (empty when refused).
    """
    if (height == 0) != (tx.type == GENESIS_TYPE):
        return Code.GENESIS_ONLY, "block 0 holds exactly the genesis transaction, and only block 0 may", {}
    rule = RULES.get(tx.type)
    if rule is None:
        return Code.UNKNOWN_TYPE, f"unknown transaction type {tx.type!r}", {}
    if abs(tx.time - block_time) > MAX_CLOCK_SKEW_MS:
        return (
            Code.TIME_SKEW,
            f"transaction time {tx.time} is more than {MAX_CLOCK_SKEW_MS} ms from block time {block_time}",
            {},
        )
    try:
        check_map(tx.payload, rule.payload, "payload")
    except EncodingError as exc:
        return Code.BAD_PAYLOAD, str(exc), {}
    signer = resolve_signer(state, tx.signer)
    if rule.needs_known_signer and signer is None:
        return Code.UNKNOWN_SIGNER, f"signer {tx.signer.hex()} is not a member of the network", {}
    if rule.roles and (signer is None or not rule.roles & signer.roles):
        wanted = ", ".join(sorted(role.value for role in rule.roles))
        return Code.FORBIDDEN, f"{tx.type} needs a signer whose organization holds one of: {wanted}", {}
    scratch = state.child()
    try:
        rule.apply(Context(tx, scratch, signer, height, block_time, log_index))
    except RuleViolation as violation:
        return violation.code, str(violation), {}
    except Exception as exc:  # a rule defect must refuse one transaction, never halt every peer
        return Code.RULE_FAILED, f"{tx.type} could not be applied ({type(exc).__name__}); report this as a defect", {}
    scratch.merge_into(state)
    return Code.VALID, "", scratch.writes
