"""Citizen enrollment by an identity authority.

The enrollment binds a citizen's public key to a salted commitment of their
national ID number (see :mod:`ledger.identity`). The citizen co-signs, proving
they hold the key being bound to them.
"""

from __future__ import annotations

from ledger.fields import Bytes, Choice
from ledger.genesis import Role
from ledger.rules.engine import Code, Context, RuleViolation, member_key, register
from ledger.rules.membership import node_key_holder

__all__ = ["RELATIONS", "citizen_key", "kin_key"]

RELATIONS = frozenset({"spouse", "child", "parent"})  # close relatives in the sense of PIPL art. 49


def citizen_key(public_key: bytes) -> bytes:
    return b"citizen/" + public_key


def kin_key(citizen: bytes, relative: bytes) -> bytes:
    return b"kin/" + citizen + b"/" + relative


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


@register(
    "citizen.relate",
    {"citizen": Bytes(32), "relative": Bytes(32), "relation": Choice(RELATIONS)},
    frozenset({Role.IDENTITY_AUTHORITY}),
)
def apply_citizen_relate(ctx: Context) -> None:
    """The identity authority (household registration) attests that ``relative`` is a close
    relative of ``citizen``; the relative co-signs. This is what lets a beneficiary consent to
    the deceased's death registration being shared (ledger.consent.NEXT_OF_KIN_TYPES)."""
    citizen, relative = ctx.payload["citizen"], ctx.payload["relative"]
    if relative not in ctx.tx.signer_keys:
        raise RuleViolation(Code.POLICY_NOT_MET, "the relative must co-sign the relation")
    for key in (citizen, relative):
        if ctx.state.get(citizen_key(key)) is None:
            raise RuleViolation(Code.NOT_FOUND, f"{key.hex()} is not an enrolled citizen")
    if citizen == relative:
        raise RuleViolation(Code.BAD_PAYLOAD, "a citizen is not their own relative")
    ctx.state.put(kin_key(citizen, relative), {"relation": ctx.payload["relation"], "attested_by": ctx.signer.org})
