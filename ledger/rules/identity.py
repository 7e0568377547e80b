"""Citizen enrollment by an identity authority.

The enrollment binds a citizen's public key to a salted commitment of their
national ID number (see :mod:`ledger.identity`). The citizen co-signs, proving
they hold the key being bound to them.
"""

from __future__ import annotations

from ledger.fields import Bytes
from ledger.genesis import Role
from ledger.rules.engine import Code, Context, RuleViolation, member_key, register
from ledger.rules.membership import node_key_holder

__all__ = ["citizen_key"]


def citizen_key(public_key: bytes) -> bytes:
    return b"citizen/" + public_key


@register(
    "citizen.enroll",
    {"citizen_key": Bytes(32), "id_commitment": Bytes(32)},
    frozenset({Role.IDENTITY_AUTHORITY}),
)
def apply_citizen_enroll(ctx: Context) -> None:
    key = ctx.payload["citizen_key"]
    if key not in ctx.tx.signer_keys:
        raise RuleViolation(Code.POLICY_NOT_MET, "the citizen must co-sign their enrollment")
    if ctx.state.get(member_key(key)) is not None or ctx.state.get(node_key_holder(key)) is not None:
        raise RuleViolation(Code.ALREADY_EXISTS, f"key {key.hex()} is already enrolled")
    ctx.state.put(member_key(key), {"citizen": True})
    ctx.state.put(
        citizen_key(key),
        {"id_commitment": ctx.payload["id_commitment"], "enrolled_by": ctx.signer.org, "log_index": ctx.log_index},
    )
