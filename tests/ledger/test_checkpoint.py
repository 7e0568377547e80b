"""Signed checkpoints: signing, verification, round-trips and tamper detection."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey, VerifyKey

from ledger import codec
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.crypto import CONTEXT_TRANSACTION, KeyPair
from ledger.errors import CheckpointError

CHECKPOINT_CONTEXT = b"quancheng-ledger/v1/checkpoint\x00"  # docs/PROTOCOL.md, written out independently
NODE = KeyPair.from_seed(hashlib.sha256(b"checkpoint node").digest())
OTHER = KeyPair.from_seed(hashlib.sha256(b"another node").digest())


def sample(**overrides) -> Checkpoint:
    fields = {
        "network": hashlib.sha256(b"net").digest(),
        "node_id": "psb-node-1",
        "tree_size": 12345,
        "root_hash": hashlib.sha256(b"root").digest(),
        "height": 678,
        "block_hash": hashlib.sha256(b"block").digest(),
        "time": 1_700_000_000_000,
    }
    fields.update(overrides)
    return Checkpoint(**fields)


def field_map(checkpoint: Checkpoint) -> dict:
    return {
        "network": checkpoint.network,
        "node_id": checkpoint.node_id,
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash,
        "height": checkpoint.height,
        "block_hash": checkpoint.block_hash,
        "time": checkpoint.time,
    }


hashes = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)
checkpoints = st.builds(
    Checkpoint,
    network=hashes,
    node_id=st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,30}\Z"),
    tree_size=u64,
    root_hash=hashes,
    height=u64,
    block_hash=hashes,
    time=u64,
)


# --- signing and verification -------------------------------------------------------------------


def test_signature_is_ed25519_over_context_and_canonical_body():
    checkpoint = sample()
    signed = checkpoint.sign(NODE)
    assert signed.checkpoint == checkpoint and signed.node_key == NODE.public_key
    assert checkpoint.encode() == codec.encode(field_map(checkpoint))
    VerifyKey(NODE.public_key).verify(CHECKPOINT_CONTEXT + checkpoint.encode(), signed.signature)
    assert signed.signature == SigningKey(NODE.seed).sign(CHECKPOINT_CONTEXT + checkpoint.encode()).signature
    signed.verify()


@settings(max_examples=50, deadline=None)
@given(checkpoints)
def test_sign_verify_and_round_trip(checkpoint):
    signed = checkpoint.sign(NODE)
    signed.verify()
    encoded = signed.encode()
    assert codec.decode(encoded) == [checkpoint.encode(), NODE.public_key, signed.signature]
    decoded = SignedCheckpoint.decode(encoded)
    assert decoded == signed
    assert decoded.encode() == encoded
    decoded.verify()


def test_verify_refuses_another_nodes_key():
    signed = sample().sign(NODE)
    with pytest.raises(CheckpointError):
        dataclasses.replace(signed, node_key=OTHER.public_key).verify()


def test_verify_refuses_a_signature_for_another_purpose():
    checkpoint = sample()
    for context in (CONTEXT_TRANSACTION, b"", CHECKPOINT_CONTEXT[:-1]):
        signature = SigningKey(NODE.seed).sign(context + checkpoint.encode()).signature
        with pytest.raises(CheckpointError):
            SignedCheckpoint(checkpoint, NODE.public_key, signature).verify()


@pytest.mark.parametrize(
    "change",
    [
        {"tree_size": 12346},
        {"height": 0},
        {"time": 1_700_000_000_001},
        {"node_id": "psb-node-2"},
        {"root_hash": bytes(32)},
        {"block_hash": bytes(32)},
        {"network": bytes(32)},
    ],
    ids=lambda change: next(iter(change)),
)
def test_verify_refuses_any_changed_field(change):
    signed = sample().sign(NODE)
    with pytest.raises(CheckpointError):
        dataclasses.replace(signed, checkpoint=dataclasses.replace(signed.checkpoint, **change)).verify()


def test_verify_refuses_malformed_key_or_signature_lengths():
    signed = sample().sign(NODE)
    with pytest.raises(CheckpointError):
        dataclasses.replace(signed, signature=signed.signature[:63]).verify()
    with pytest.raises(CheckpointError):
        dataclasses.replace(signed, node_key=signed.node_key + b"\x00").verify()


def test_error_names_the_node():
    signed = sample(node_id="jinan-psb").sign(NODE)
    with pytest.raises(CheckpointError, match="jinan-psb"):
        dataclasses.replace(signed, signature=bytes(64)).verify()


# --- tampering with the signed bytes ----------------------------------------------------------------


def accepts(data: bytes) -> bool:
    """True if ``data`` decodes to a checkpoint whose signature verifies; CheckpointError otherwise."""
    try:
        SignedCheckpoint.decode(data).verify()
    except CheckpointError:
        return False
    return True


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_flipped_byte_of_the_signed_bytes_is_refused(mask):
    encoded = sample().sign(NODE).encode()
    assert accepts(encoded)
    for position in range(len(encoded)):
        tampered = bytearray(encoded)
        tampered[position] ^= mask
        assert not accepts(bytes(tampered)), f"byte {position} ^ {mask:#x} went unnoticed"


@settings(max_examples=50, deadline=None)
@given(checkpoints, st.data())
def test_random_byte_flips_are_refused(checkpoint, data):
    encoded = checkpoint.sign(NODE).encode()
    position = data.draw(st.integers(0, len(encoded) - 1))
    mask = data.draw(st.integers(1, 255))
    tampered = bytearray(encoded)
    tampered[position] ^= mask
    assert not accepts(bytes(tampered))


def test_trailing_or_truncated_bytes_are_refused():
    encoded = sample().sign(NODE).encode()
    for bad in (encoded + b"\x00", encoded[:-1], b"", encoded[:1]):
        with pytest.raises(CheckpointError):
            SignedCheckpoint.decode(bad)


def signed_parts(**body_overrides):
    signed = sample().sign(NODE)
    body = {**field_map(signed.checkpoint), **body_overrides}
    return codec.encode(body), signed.node_key, signed.signature


@pytest.mark.parametrize(
    "outer",
    [
        lambda body, key, sig: 7,
        lambda body, key, sig: "abc",
        lambda body, key, sig: b"abc",
        lambda body, key, sig: [body, key],
        lambda body, key, sig: [body, key, sig, b""],
        lambda body, key, sig: {"body": body, "key": key, "sig": sig},
        lambda body, key, sig: [body.hex(), key, sig],
        lambda body, key, sig: [codec.decode(body), key, sig],
        lambda body, key, sig: [body, key[:31], sig],
        lambda body, key, sig: [body, key, sig[:63]],
        lambda body, key, sig: [body, key.hex(), sig],
        lambda body, key, sig: [b"\x00" + body, key, sig],
    ],
    ids=[
        "int", "text", "three-bytes", "two-items", "four-items", "map", "hex-body", "decoded-body",
        "short-key", "short-signature", "hex-key", "prefixed-body",
    ],  # fmt: skip
)
def test_malformed_envelopes_raise_checkpoint_error(outer):
    body, key, sig = signed_parts()
    with pytest.raises(CheckpointError):
        SignedCheckpoint.decode(codec.encode(outer(body, key, sig)))


@pytest.mark.parametrize(
    "overrides",
    [
        {"extra": 1},
        {"tree_size": -1},
        {"tree_size": "1"},
        {"node_id": "Not An Identifier"},
        {"node_id": "psb-node-1\n"},
        {"root_hash": bytes(31)},
        {"block_hash": None},
        {"time": True},
    ],
    ids=repr,
)
def test_malformed_bodies_raise_checkpoint_error(overrides):
    body, key, sig = signed_parts(**overrides)
    with pytest.raises(CheckpointError):
        SignedCheckpoint.decode(codec.encode([body, key, sig]))


@pytest.mark.parametrize("missing", ["network", "node_id", "tree_size", "root_hash", "height", "block_hash", "time"])
def test_missing_body_field_raises_checkpoint_error(missing):
    signed = sample().sign(NODE)
    body = field_map(signed.checkpoint)
    del body[missing]
    with pytest.raises(CheckpointError, match=missing):
        SignedCheckpoint.decode(codec.encode([codec.encode(body), signed.node_key, signed.signature]))


@pytest.mark.parametrize("data", ["text", None, 5])
def test_non_bytes_input_raises_checkpoint_error(data):
    with pytest.raises(CheckpointError):
        SignedCheckpoint.decode(data)
