"""Threshold aggregates: sums over many citizens under a key no single party can decrypt with.

An aggregate (a count or a sum, with differential-privacy noise) must not become
readable by the custodian that computed it, nor by the consumer that asked, nor
by the regulator alone. The parties of a *joint key* (e.g. custodian, regulator,
data provider) each hold one secret share; the result decrypts only when every
one of them contributes a partial decryption.

Key ceremony, in sequence, each party in its own process if it likes: the lead
makes a key pair; each next party receives the previous *handoff* (the joint
public key so far, as bytes), adds its share to it (``MultipartyKeyGen``) and
passes the new handoff on. The last handoff is the :class:`JointKey` — one
public key, no evaluation keys; its hash (:func:`joint_key_hash`) goes on the
ledger.

Computing: the custodian packs the clamped values into the slots of a few
ciphertexts (:func:`encrypt_values`, 16,384 per ciphertext) and adds them slot
by slot (:func:`sum_encrypted`); it never moves values between slots. It adds a
fresh encryption of a mask that is uniformly random in all 16,384 slots subject
to summing to the offset (the DP noise) mod t: the decrypted slots are uniform
among the vectors whose sum is Σ values + offset, so whoever decrypts learns
that total and nothing about any value, any slot, or how many slots were used
(the cohort size). Each party runs :meth:`ThresholdParty.partial_decrypt` (the
lead ``MultipartyDecryptLead``, the others ``MultipartyDecryptMain``; the
parameter set uses OpenFHE's noise-flooding multiparty mode, so a partial
decryption does not leak its party's share); :func:`fuse` refuses unless every
party's share is present, then adds up all slots mod t.

Wire formats (canonical CBOR via :mod:`ledger.codec`, OpenFHE objects as
``Serialize(obj, BINARY)``)::

    joint key / handoff  {"params", "parties": [ids in ceremony order], "public_key"}
    partial decryption   {"params", "party", "ciphertext": SHA-256 of the ciphertext bytes, "partial"}
    secret share         {"params", "party", "index", "secret_key"}

The ceremony trusts the parties to follow it (it is not robust against a party
that sends a malformed contribution; such a key simply fails to decrypt), and
the proven range of a sum assumes its ciphertexts came from :func:`encrypt_values`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, reduce
from typing import Any, Mapping, Sequence, cast

import numpy as np
import openfhe

from ledger import codec
from ledger.crypto import sha256
from ledger.errors import EncodingError
from ledger.fields import Bytes, ListOf, Text, UInt, check_map
from privacy.he.errors import HeError, ThresholdError
from privacy.he.params import OPENFHE_LOCK, THRESHOLD_PARAMS, HeContext, ParameterSet, SumBounds, context, decode_map, parameter_set

__all__ = [
    "JointKey",
    "ThresholdParty",
    "encrypt_values",
    "fuse",
    "joint_key_hash",
    "run_ceremony",
    "sum_encrypted",
]

_OPENFHE_BYTES = Bytes(max_size=1 << 30)  # exact sizes are checked against the parameter set on loading
_PARTY = Text(64, identifier=True)
_JOINT_SPEC = {"params": Text(64), "parties": ListOf(_PARTY, 1, 64, unique=True), "public_key": _OPENFHE_BYTES}
_SHARE_SPEC = {"params": Text(64), "party": _PARTY, "ciphertext": Bytes(32), "partial": _OPENFHE_BYTES}
_SECRET_SPEC = {"params": Text(64), "party": _PARTY, "index": UInt(0, 63), "secret_key": _OPENFHE_BYTES}


def _bounds(params: ParameterSet) -> SumBounds:
    return cast(SumBounds, params.bounds)


@dataclass(frozen=True)
class JointKey:
    """The joint public key of ``parties`` (ceremony order; the first is the lead)."""

    params: str
    parties: tuple[str, ...]
    public_key: bytes

    def __post_init__(self) -> None:
        try:
            check_map(self._fields(), _JOINT_SPEC, "joint key")
        except EncodingError as exc:
            raise ThresholdError("bad_joint_key", str(exc)) from None
        params = parameter_set(self.params, SumBounds)
        if len(self.parties) > params.max_parties:
            raise ThresholdError("bad_joint_key", f"{params.name!r} allows at most {params.max_parties} parties")

    @property
    def parameter_set(self) -> ParameterSet:
        return parameter_set(self.params, SumBounds)

    def _fields(self) -> dict[str, Any]:
        return {"params": self.params, "parties": list(self.parties), "public_key": self.public_key}

    def to_bytes(self) -> bytes:
        return codec.encode(self._fields())

    @classmethod
    def from_bytes(cls, data: bytes) -> JointKey:
        fields = decode_map(data, _JOINT_SPEC, "joint key", "bad_joint_key", ThresholdError)
        return cls(fields["params"], tuple(fields["parties"]), fields["public_key"])

    @cached_property
    def _loaded(self) -> tuple[HeContext, Any]:
        """(context, public key), deserialized once per JointKey object."""
        ctx = context(self.parameter_set)
        return ctx, ctx.load("public_key", self.public_key, what="the joint public key", code="bad_joint_key", error=ThresholdError)


def joint_key_hash(joint: JointKey) -> bytes:
    """SHA-256 of the joint key's canonical bytes: the keyset id on the ledger."""
    return sha256(joint.to_bytes())


class ThresholdParty:
    """One party of a joint key: its secret share and its place in the ceremony (index 0 leads)."""

    def __init__(self, params: ParameterSet, party_id: str, index: int, secret_key: Any) -> None:
        self.params = params
        self.party_id = party_id
        self.index = index
        self._secret_key = secret_key

    @property
    def is_lead(self) -> bool:
        return self.index == 0

    @classmethod
    def lead(cls, params: ParameterSet, party_id: str) -> tuple[ThresholdParty, bytes]:
        """Start a ceremony: the lead party and the handoff for the next party."""
        params = parameter_set(params.name, SumBounds)
        _check_party(party_id)
        ctx = context(params)
        with OPENFHE_LOCK:
            pair = ctx.cc.KeyGen()
            handoff = JointKey(params.name, (party_id,), openfhe.Serialize(pair.publicKey, openfhe.BINARY))
        return cls(params, party_id, 0, pair.secretKey), handoff.to_bytes()

    @classmethod
    def join(cls, params: ParameterSet, party_id: str, previous: bytes) -> tuple[ThresholdParty, bytes]:
        """Join after the parties in ``previous`` (the last handoff): this party and the next handoff."""
        params = parameter_set(params.name, SumBounds)
        _check_party(party_id)
        before = JointKey.from_bytes(previous)
        if before.params != params.name:
            raise ThresholdError("bad_handoff", f"the handoff is for {before.params!r}, not {params.name!r}")
        if party_id in before.parties:
            raise ThresholdError("bad_handoff", f"{party_id!r} is already a party of this key")
        if len(before.parties) >= params.max_parties:
            raise ThresholdError("bad_handoff", f"{params.name!r} allows at most {params.max_parties} parties")
        ctx, public_key = before._loaded
        with OPENFHE_LOCK:
            pair = ctx.cc.MultipartyKeyGen(public_key)  # the new public key combines every share so far
            handoff = JointKey(params.name, (*before.parties, party_id), openfhe.Serialize(pair.publicKey, openfhe.BINARY))
        return cls(params, party_id, len(before.parties), pair.secretKey), handoff.to_bytes()

    def partial_decrypt(self, ciphertext: bytes) -> bytes:
        """This party's share of the decryption of ``ciphertext`` (a :func:`sum_encrypted` result)."""
        ctx = context(self.params)
        loaded = ctx.load("ciphertext", ciphertext, what="the ciphertext", code="he_bad_ciphertext")
        decrypt = ctx.cc.MultipartyDecryptLead if self.is_lead else ctx.cc.MultipartyDecryptMain
        with OPENFHE_LOCK:
            partial = decrypt([loaded], self._secret_key)[0]
            data = openfhe.Serialize(partial, openfhe.BINARY)
        return codec.encode({"params": self.params.name, "party": self.party_id, "ciphertext": sha256(ciphertext), "partial": data})

    def export_share(self) -> bytes:
        """Canonical CBOR {"params", "party", "index", "secret_key"} for the party's wallet."""
        with OPENFHE_LOCK:
            secret = openfhe.Serialize(self._secret_key, openfhe.BINARY)
        return codec.encode({"params": self.params.name, "party": self.party_id, "index": self.index, "secret_key": secret})

    @classmethod
    def load(cls, data: bytes) -> ThresholdParty:
        """A party from :meth:`export_share` bytes; HeError(he_bad_key) if they are not such bytes."""
        fields = decode_map(data, _SECRET_SPEC, "secret share", "he_bad_key")
        params = parameter_set(fields["params"], SumBounds)
        secret_key = context(params).load("private_key", fields["secret_key"], what="the secret share", code="he_bad_key")
        return cls(params, fields["party"], fields["index"], secret_key)


def _check_party(party_id: object) -> None:
    try:
        _PARTY(party_id, "party id")
    except EncodingError as exc:
        raise ThresholdError("bad_handoff", str(exc)) from None


def run_ceremony(party_ids: Sequence[str], params: ParameterSet = THRESHOLD_PARAMS) -> tuple[list[ThresholdParty], JointKey]:
    """The whole ceremony in one process (tests, development): the parties in order and their joint key."""
    if len(party_ids) < 2:
        raise ThresholdError("bad_handoff", "a joint key needs at least 2 parties")
    party, handoff = ThresholdParty.lead(params, party_ids[0])
    parties = [party]
    for party_id in party_ids[1:]:
        party, handoff = ThresholdParty.join(params, party_id, handoff)
        parties.append(party)
    return parties, JointKey.from_bytes(handoff)


def _usable(joint: JointKey) -> tuple[HeContext, Any]:
    if len(joint.parties) < 2:
        raise ThresholdError("bad_joint_key", "a joint key needs at least 2 parties; this is an unfinished handoff")
    return joint._loaded


def encrypt_values(joint: JointKey, values: Sequence[int] | np.ndarray) -> list[bytes]:
    """``values`` packed into ciphertexts under the joint key, ring_dim slots each (Serialize(ct, BINARY))."""
    ctx, public_key = _usable(joint)
    bounds = _bounds(ctx.params)
    if not 1 <= len(values) <= bounds.max_values:
        raise HeError("he_out_of_range", f"a sum takes 1 to {bounds.max_values} values, got {len(values)}")
    array = np.asarray(values)
    if array.ndim == 1 and array.dtype.kind in "iu":
        outside = np.flatnonzero((array < 0) | (array > bounds.value_max))
        index = int(outside[0]) if outside.size else None
    else:  # not plain integers (bools, floats, huge ints, nested lists): find the first offender
        index = next(i for i, value in enumerate(values) if type(value) is not int or not 0 <= value <= bounds.value_max)
    if index is not None:
        raise HeError("he_out_of_range", f"value {index} is not an integer in the proven range [0, {bounds.value_max}]")
    slots = ctx.params.ring_dim
    with OPENFHE_LOCK:
        return [
            openfhe.Serialize(ctx.cc.Encrypt(public_key, ctx.packed(array[start : start + slots])), openfhe.BINARY)
            for start in range(0, array.size, slots)
        ]


def sum_encrypted(joint: JointKey, ciphertexts: Sequence[bytes], offset: int = 0) -> bytes:
    """One ciphertext whose slots add up to Σ values + ``offset`` mod t and are otherwise uniformly random."""
    ctx, public_key = _usable(joint)
    bounds = _bounds(ctx.params)
    most = -(-bounds.max_values // ctx.params.ring_dim)
    if not 1 <= len(ciphertexts) <= most:
        raise HeError("he_out_of_range", f"a sum takes 1 to {most} ciphertexts ({bounds.max_values} values), got {len(ciphertexts)}")
    if type(offset) is not int or not -bounds.offset_max <= offset <= bounds.offset_max:
        raise HeError("he_out_of_range", f"the offset is outside the proven range [-{bounds.offset_max}, {bounds.offset_max}]")
    loaded = [ctx.load("ciphertext", data, what=f"ciphertext {i}", code="he_bad_ciphertext") for i, data in enumerate(ciphertexts)]
    tag = public_key.GetKeyTag()
    for i, ciphertext in enumerate(loaded):
        if ciphertext.GetKeyTag() != tag:
            raise HeError("he_bad_ciphertext", f"ciphertext {i} is not encrypted under this joint key")
    with OPENFHE_LOCK:
        return ctx.masked(reduce(ctx.cc.EvalAdd, loaded), public_key, offset)


def fuse(joint: JointKey, shares: Mapping[str, bytes]) -> int:
    """Σ values + offset from every party's partial decryption; ThresholdError unless all are there and agree."""
    missing = [party for party in joint.parties if party not in shares]
    if missing:
        raise ThresholdError("missing_share", f"no share from {', '.join(missing)}: all {len(joint.parties)} parties of the key must decrypt")
    unknown = sorted(set(shares) - set(joint.parties))
    if unknown:
        raise ThresholdError("unknown_party", f"{', '.join(unknown)} are not parties of this key")
    ctx = context(joint.parameter_set)
    partials = []
    digests = {}
    for party in joint.parties:
        fields = decode_map(shares[party], _SHARE_SPEC, f"the share of {party}", "bad_share", ThresholdError)
        if fields["params"] != joint.params or fields["party"] != party:
            raise ThresholdError("bad_share", f"the share given for {party} is {fields['party']}'s under {fields['params']!r}")
        partials.append(ctx.load("partial", fields["partial"], what=f"the share of {party}", code="bad_share", error=ThresholdError))
        digests[party] = fields["ciphertext"]
    lead = joint.parties[0]
    differing = [party for party in joint.parties if digests[party] != digests[lead]]
    if differing:
        raise ThresholdError("share_mismatch", f"the shares of {', '.join(differing)} decrypt another ciphertext than {lead}'s")
    with OPENFHE_LOCK:
        plaintext = ctx.cc.MultipartyDecryptFusion(partials)
    total = ctx.total(plaintext)
    limit = _bounds(ctx.params).max_abs_result
    if abs(total) > limit:
        raise ThresholdError("he_out_of_range", f"the fused value is outside the proven range [-{limit}, {limit}]: a share does not match")
    return total
