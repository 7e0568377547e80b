"""Signed transactions: envelope round-trips, ids, signature checks and strict parsing.

Envelopes are tampered with by rebuilding them with ``codec.encode`` so that the
only thing wrong with them is the thing under test. Signatures are checked
independently with PyNaCl against the documented transaction context.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from ledger import codec, tx as tx_module
from ledger.crypto import CONTEXT_CHECKPOINT, KeyPair
from ledger.errors import EncodingError, SignatureError
from ledger.genesis import MAX_ORGS
from ledger.tx import build_transaction, cosign, parse_transaction

TX_CONTEXT = b"quancheng-ledger/v1/transaction\x00"  # docs/PROTOCOL.md, written out independently
MAX_ENVELOPE = 256 * 1024

ALICE = KeyPair.from_seed(bytes([1]) * 32)
BOB = KeyPair.from_seed(bytes([2]) * 32)
CAROL = KeyPair.from_seed(bytes([3]) * 32)
NETWORK = hashlib.sha256(b"test network").digest()
NONCE = bytes(range(16))
T0 = 1_700_000_000_000


def nacl_sign(key: KeyPair, context: bytes, message: bytes) -> bytes:
    return SigningKey(key.seed).sign(context + message).signature


def nacl_verifies(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(public_key).verify(TX_CONTEXT + message, signature)
    except BadSignatureError:
        return False
    return True


def body_map(**overrides):
    body = {
        "network": NETWORK,
        "type": "test.thing",
        "signer": ALICE.public_key,
        "nonce": NONCE,
        "time": T0,
        "payload": {"x": 1},
    }
    body.update(overrides)
    return body


def envelope_of(body: dict | bytes, signers=(ALICE,), signatures=None) -> bytes:
    """Hand-build an envelope: body map (encoded here) or raw body bytes, signed by ``signers``."""
    body_bytes = body if isinstance(body, bytes) else codec.encode(body)
    if signatures is None:
        signatures = [[k.public_key, nacl_sign(k, TX_CONTEXT, body_bytes)] for k in signers]
    return codec.encode([body_bytes, signatures])


def flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- strategies ----------------------------------------------------------------------------

model_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64 - 1), st.binary(max_size=32), st.text(max_size=16)),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=12), model_values, max_size=5)
tx_types = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}\Z")
times = st.integers(0, 2**64 - 1)
nonces = st.binary(min_size=16, max_size=16)


# --- round trip ----------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(payloads, times, tx_types, nonces, st.integers(0, 2))
def test_build_then_parse_round_trips(payload, time_ms, tx_type, nonce, n_cosigners):
    cosigners = [BOB, CAROL][:n_cosigners]
    envelope = build_transaction(ALICE, NETWORK, tx_type, payload, time_ms=time_ms, nonce=nonce, cosigners=cosigners)
    tx = parse_transaction(envelope)

    assert tx.envelope == envelope
    assert (tx.network, tx.type, tx.signer, tx.nonce, tx.time) == (NETWORK, tx_type, ALICE.public_key, nonce, time_ms)
    assert codec.encode(tx.payload) == codec.encode(payload)
    # the body is exactly the canonical map, and the envelope is [body, [[key, sig], ...]]
    expected_body = codec.encode(
        {"network": NETWORK, "type": tx_type, "signer": ALICE.public_key, "nonce": nonce, "time": time_ms, "payload": payload}
    )
    assert tx.body == expected_body
    outer = codec.decode(envelope)
    assert outer[0] == expected_body
    assert [key for key, _ in outer[1]] == [k.public_key for k in (ALICE, *cosigners)]
    assert tx.signatures == tuple((key, sig) for key, sig in outer[1])
    assert tx.signer_keys == frozenset(k.public_key for k in (ALICE, *cosigners))
    for key, signature in tx.signatures:
        assert nacl_verifies(key, tx.body, signature)
    tx.check_signatures()
    assert tx.tx_id == hashlib.sha256(tx.body).digest()


def test_random_nonce_is_fresh_and_16_bytes():
    a = parse_transaction(build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0))
    b = parse_transaction(build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0))
    assert len(a.nonce) == 16 and len(b.nonce) == 16
    assert a.nonce != b.nonce
    assert a.tx_id != b.tx_id


def test_same_inputs_give_the_same_envelope():
    one = build_transaction(ALICE, NETWORK, "t", {"a": [1, b"x"]}, time_ms=T0, nonce=NONCE, cosigners=[BOB])
    two = build_transaction(ALICE, NETWORK, "t", {"a": [1, b"x"]}, time_ms=T0, nonce=NONCE, cosigners=[BOB])
    assert one == two  # Ed25519 is deterministic and the encoding canonical


# --- transaction id ------------------------------------------------------------------------


def test_tx_id_is_sha256_of_body_and_ignores_cosignatures():
    envelope = build_transaction(ALICE, NETWORK, "t", {"k": "v"}, time_ms=T0, nonce=NONCE)
    tx = parse_transaction(envelope)
    assert tx.tx_id == hashlib.sha256(tx.body).digest()
    assert tx.tx_id != hashlib.sha256(envelope).digest()

    cosigned = cosign(envelope, BOB)
    assert cosigned != envelope
    tx2 = parse_transaction(cosigned)
    assert tx2.tx_id == tx.tx_id
    assert tx2.body == tx.body
    assert tx2.signatures[0] == tx.signatures[0]
    assert tx2.signatures[1][0] == BOB.public_key
    assert nacl_verifies(BOB.public_key, tx.body, tx2.signatures[1][1])
    tx2.check_signatures()

    tx3 = parse_transaction(cosign(cosigned, CAROL))
    assert tx3.tx_id == tx.tx_id
    assert [key for key, _ in tx3.signatures] == [ALICE.public_key, BOB.public_key, CAROL.public_key]
    tx3.check_signatures()


def test_cosign_equals_building_with_cosigners():
    direct = build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE, cosigners=[BOB])
    later = cosign(build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE), BOB)
    assert direct == later


def test_tx_id_changes_with_every_body_field():
    base = parse_transaction(build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE)).tx_id
    variants = [
        build_transaction(BOB, NETWORK, "t", {}, time_ms=T0, nonce=NONCE),
        build_transaction(ALICE, bytes(32), "t", {}, time_ms=T0, nonce=NONCE),
        build_transaction(ALICE, NETWORK, "u", {}, time_ms=T0, nonce=NONCE),
        build_transaction(ALICE, NETWORK, "t", {"a": None}, time_ms=T0, nonce=NONCE),
        build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0 + 1, nonce=NONCE),
        build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=bytes(16)),
    ]
    ids = {parse_transaction(v).tx_id for v in variants}
    assert base not in ids and len(ids) == len(variants)


# --- signatures ----------------------------------------------------------------------------


def test_every_flipped_signature_bit_is_caught():
    envelope = build_transaction(ALICE, NETWORK, "t", {"n": 7}, time_ms=T0, nonce=NONCE, cosigners=[BOB])
    body, signatures = codec.decode(envelope)
    for position in range(len(signatures)):
        for bit in range(64 * 8):
            tampered = [list(pair) for pair in signatures]
            tampered[position][1] = flip(tampered[position][1], bit)
            tx = parse_transaction(codec.encode([body, tampered]))  # still well formed
            with pytest.raises(SignatureError):
                tx.check_signatures()


def test_every_flipped_body_bit_is_caught():
    envelope = build_transaction(ALICE, NETWORK, "t", {"n": 7, "blob": b"\x00" * 8}, time_ms=T0, nonce=NONCE, cosigners=[BOB])
    body, signatures = codec.decode(envelope)
    still_parses = 0
    for bit in range(len(body) * 8):
        forged = codec.encode([flip(body, bit), signatures])
        try:
            tx = parse_transaction(forged)
        except EncodingError:
            continue  # the flip broke the encoding or the signer binding: refused before any check
        still_parses += 1
        with pytest.raises(SignatureError):
            tx.check_signatures()
    # network, nonce, time and payload bytes can be flipped without breaking the encoding
    assert still_parses >= 32 * 8 + 16 * 8


def test_signature_from_a_different_key_is_rejected():
    envelope = build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE)
    body, _ = codec.decode(envelope)
    # claims ALICE's key but carries BOB's signature over the same body
    tx = parse_transaction(codec.encode([body, [[ALICE.public_key, nacl_sign(BOB, TX_CONTEXT, body)]]]))
    with pytest.raises(SignatureError):
        tx.check_signatures()


def test_signature_under_another_context_is_rejected():
    envelope = build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE)
    body, _ = codec.decode(envelope)
    for context in (CONTEXT_CHECKPOINT, b"", TX_CONTEXT[:-1]):
        tx = parse_transaction(codec.encode([body, [[ALICE.public_key, nacl_sign(ALICE, context, body)]]]))
        with pytest.raises(SignatureError):
            tx.check_signatures()


def test_bad_cosignature_is_caught_even_when_the_signer_signature_is_good():
    body = codec.encode(body_map())
    good = nacl_sign(ALICE, TX_CONTEXT, body)
    tx = parse_transaction(envelope_of(body, signatures=[[ALICE.public_key, good], [BOB.public_key, bytes(64)]]))
    with pytest.raises(SignatureError):
        tx.check_signatures()


def test_first_signature_must_be_the_body_signer():
    body = body_map()
    with pytest.raises(EncodingError, match="signer"):
        parse_transaction(envelope_of(body, signers=(BOB, ALICE)))
    with pytest.raises(EncodingError, match="signer"):
        parse_transaction(envelope_of(body, signers=(BOB,)))
    # the same signatures in the right order are fine
    parse_transaction(envelope_of(body, signers=(ALICE, BOB))).check_signatures()


def test_duplicate_signer_is_rejected():
    body = body_map()
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(body, signers=(ALICE, ALICE)))
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(body, signers=(ALICE, BOB, ALICE)))
    with pytest.raises(EncodingError):
        build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, cosigners=[BOB, BOB])
    with pytest.raises(EncodingError):
        build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, cosigners=[ALICE])
    envelope = build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, cosigners=[BOB])
    with pytest.raises(SignatureError):
        cosign(envelope, BOB)
    with pytest.raises(SignatureError):
        cosign(envelope, ALICE)


def test_signature_cap_covers_every_possible_quorum():
    # the cap on signatures must let all admins of the largest allowed consortium sign
    cap = tx_module.MAX_SIGNATURES
    assert cap >= MAX_ORGS
    keys = [KeyPair.from_seed(hashlib.sha256(b"signer %d" % i).digest()) for i in range(cap + 1)]
    body = body_map(signer=keys[0].public_key)
    parse_transaction(envelope_of(body, signers=keys[:cap])).check_signatures()
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(body, signers=keys))
    with pytest.raises(EncodingError):
        build_transaction(keys[0], NETWORK, "t", {}, time_ms=T0, cosigners=keys[1:])


# --- strict parsing --------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["memo", "payload2", "Type", ""])
def test_unknown_body_field_is_rejected_by_name(field):
    body = {**body_map(), field: 1}
    with pytest.raises(EncodingError) as caught:
        parse_transaction(envelope_of(body))
    assert repr(field) in str(caught.value)


@pytest.mark.parametrize("field", ["network", "type", "signer", "nonce", "time", "payload"])
def test_missing_body_field_is_rejected(field):
    body = body_map()
    del body[field]
    with pytest.raises(EncodingError) as caught:
        parse_transaction(envelope_of(body))
    assert field in str(caught.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"network": bytes(31)},
        {"network": "00" * 32},
        {"type": "Upper.Case"},
        {"type": ""},
        {"type": "-leading"},
        {"type": "a" * 65},
        {"type": 7},
        {"type": "test.thing\n"},
        {"type": "test thing"},
        {"nonce": bytes(15)},
        {"nonce": bytes(17)},
        {"time": -1},
        {"time": True},
        {"time": "0"},
        {"payload": []},
        {"payload": None},
        {"payload": b""},
    ],
    ids=repr,
)
def test_malformed_body_fields_are_rejected(overrides):
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(body_map(**overrides)))


def test_signer_field_must_be_32_bytes():
    short = KeyPair.from_seed(bytes([9]) * 32)
    body = codec.encode(body_map(signer=short.public_key[:31]))
    sig = nacl_sign(short, TX_CONTEXT, body)
    with pytest.raises(EncodingError):
        parse_transaction(codec.encode([body, [[short.public_key[:31], sig]]]))


@pytest.mark.parametrize(
    "outer",
    [
        "not a list",
        [],
        [b"x"],
        [b"x", [], b"extra"],
        {"body": b"x", "signatures": []},
    ],
    ids=repr,
)
def test_envelope_shape_is_checked(outer):
    with pytest.raises(EncodingError):
        parse_transaction(codec.encode(outer))


def test_signature_list_shape_is_checked():
    body = codec.encode(body_map())
    sig = nacl_sign(ALICE, TX_CONTEXT, body)
    bad_lists = [
        [],  # no signature at all
        [[ALICE.public_key]],
        [[ALICE.public_key, sig, b""]],
        [[ALICE.public_key[:31], sig]],
        [[ALICE.public_key + b"\x00", sig]],
        [[ALICE.public_key, sig[:63]]],
        [[ALICE.public_key, sig + b"\x00"]],
        [[ALICE.public_key.hex(), sig]],
        [{"k": ALICE.public_key}],
        "sig",
    ]
    for signatures in bad_lists:
        with pytest.raises(EncodingError):
            parse_transaction(codec.encode([body, signatures]))
    with pytest.raises(EncodingError):
        parse_transaction(codec.encode([body.hex(), [[ALICE.public_key, sig]]]))


def test_non_canonical_body_bytes_are_rejected():
    canonical = codec.encode(body_map())
    assert canonical[0] == 0xA6  # a map of six pairs
    # rebuild with the map head widened to a one-byte argument: same value, non-shortest length
    widened = b"\xb8\x06" + canonical[1:]
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(widened))
    with pytest.raises(EncodingError):
        parse_transaction(envelope_of(canonical + b"\x00"))


def test_non_canonical_envelope_is_rejected():
    envelope = build_transaction(ALICE, NETWORK, "t", {}, time_ms=T0, nonce=NONCE)
    assert envelope[0] == 0x82
    with pytest.raises(EncodingError):
        parse_transaction(b"\x98\x02" + envelope[1:])  # array length in a needless extra byte
    with pytest.raises(EncodingError):
        parse_transaction(envelope + b"\xf6")


def test_oversize_envelope_is_rejected():
    assert tx_module.MAX_ENVELOPE_SIZE == MAX_ENVELOPE

    def envelope_with_blob(size: int) -> bytes:
        return envelope_of(body_map(payload={"blob": bytes(size)}))

    overhead = len(envelope_with_blob(100_000)) - 100_000
    assert len(envelope_with_blob(120_000)) - 120_000 == overhead  # length heads are stable here
    exact = envelope_with_blob(MAX_ENVELOPE - overhead)
    assert len(exact) == MAX_ENVELOPE
    parse_transaction(exact).check_signatures()

    over = envelope_with_blob(MAX_ENVELOPE - overhead + 1)
    assert len(over) == MAX_ENVELOPE + 1
    with pytest.raises(EncodingError, match="larger"):
        parse_transaction(over)
    with pytest.raises(EncodingError):
        build_transaction(ALICE, NETWORK, "t", {"blob": bytes(MAX_ENVELOPE)}, time_ms=T0)


def test_oversize_check_happens_before_decoding():
    # 300 KiB of garbage: refused for its size, whatever it contains
    with pytest.raises(EncodingError, match="larger"):
        parse_transaction(b"\xff" * (300 * 1024))
