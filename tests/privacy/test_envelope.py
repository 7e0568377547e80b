"""privacy.envelope: pinned primitives, round trips, and one opaque error for every way opening can fail."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl import bindings
from nacl.public import PrivateKey, SealedBox

from ledger import codec
from ledger.crypto import KeyPair
from ledger.errors import EncodingError
from privacy import envelope
from privacy.envelope import (
    EnvelopeError,
    SealedRecord,
    generate_x25519,
    open_record,
    open_sealed,
    record_aad,
    seal_record,
    seal_to,
    vault_keypair,
    x25519_public_from_ed25519,
)

SEED = bytes(range(32))
VAULT_PRIVATE, VAULT_PUBLIC = vault_keypair(SEED)
RECORD_ID = bytes.fromhex("00112233445566778899aabbccddeeff")
SUBJECT = b"\x07" * 32
AAD = record_aad(RECORD_ID, 1, "household-registration", SUBJECT)
SECRET_TEXT = b"citizen 370102199001011234 lives at 12 Quancheng Road"


def test_public_api_is_pinned():
    assert sorted(envelope.__all__) == [
        "AAD_CONTEXT",
        "DATA_KEY_SIZE",
        "EnvelopeError",
        "KEY_SIZE",
        "MAX_PAYLOAD_SIZE",
        "NONCE_SIZE",
        "SealedRecord",
        "TAG_SIZE",
        "WRAPPED_KEY_SIZE",
        "generate_x25519",
        "open_record",
        "open_sealed",
        "record_aad",
        "seal_record",
        "seal_to",
        "vault_keypair",
        "x25519_public_from_ed25519",
    ]
    for name in envelope.__all__:
        assert hasattr(envelope, name)


# --- known answers: the primitives under the recipes -------------------------------------------

# (key, iv, plaintext, aad, ciphertext, tag), all hex.
GCM_VECTORS = {
    # McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B, Test Case 16.
    "gcm-spec-tc16": (
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
        "cafebabefacedbaddecaf888",
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        "feedfacedeadbeeffeedfacedeadbeefabaddad2",
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
        "76fc6ece0f4e1768cddf8853bb2d551b",
    ),
    # NIST CAVP gcmEncryptExtIV256 (Keylen 256, IVlen 96, PTlen 128, AADlen 160, Taglen 128).
    "cavp-256-96-128-160": (
        "83688deb4af8007f9b713b47cfa6c73e35ea7a3aa4ecdb414dded03bf7a0fd3a",
        "0b459724904e010a46901cf3",
        "33d893a2114ce06fc15d55e454cf90c3",
        "794a14ccd178c8ebfd1379dc704c5e208f9d8424",
        "cc66bee423e3fcd4c0865715e9586696",
        "0fb291bd3dba94a1dfd8b286cfb97ac5",
    ),
}


@pytest.mark.parametrize("name", sorted(GCM_VECTORS))
def test_aes_256_gcm_known_answer(name):
    key, iv, plaintext, aad, ciphertext, tag = (bytes.fromhex(h) for h in GCM_VECTORS[name])
    # Exactly the call seal_record makes: AESGCM(key).encrypt(nonce, plaintext, aad) → ciphertext ‖ tag.
    assert AESGCM(key).encrypt(iv, plaintext, aad) == ciphertext + tag
    assert AESGCM(key).decrypt(iv, ciphertext + tag, aad) == plaintext


def test_vault_keypair_known_answer():
    # libsodium test/default/ed25519_convert.{c,exp}: the seed is used as is (deterministic build).
    seed = bytes.fromhex("421151a459faeade3d247115f94aedae42318124095afabe4d1451a559faedee")
    private, public = vault_keypair(seed)
    assert public.hex() == "f1814f0e8ff1043d8a44d25babff3cedcae6c22c3edaa48f857ae70de2baae50"
    assert private.hex() == "8052030376d47112be7f73ed7a019293dd12ad910b654455798b4667d73de166"


# --- keys --------------------------------------------------------------------------------------


@settings(max_examples=25)
@given(seed=st.binary(min_size=32, max_size=32))
def test_vault_key_is_bound_to_the_node_key(seed):
    private, public = vault_keypair(seed)
    assert len(private) == len(public) == 32
    assert public == x25519_public_from_ed25519(KeyPair.from_seed(seed).public_key)
    assert bindings.crypto_scalarmult_base(private) == public  # the pair is a real X25519 pair
    assert open_sealed(seal_to(b"to the custodian", public), private) == b"to the custodian"


def test_vault_keypair_is_deterministic_and_seed_specific():
    assert vault_keypair(SEED) == vault_keypair(SEED)
    assert vault_keypair(SEED)[1] != vault_keypair(bytes(32))[1]


def test_generate_x25519_gives_fresh_pairs():
    first, second = generate_x25519(), generate_x25519()
    assert first != second
    for private, public in (first, second):
        assert bindings.crypto_scalarmult_base(private) == public


def test_x25519_public_from_ed25519_refuses_points_off_the_curve():
    with pytest.raises(ValueError, match="ed25519_public_key"):
        x25519_public_from_ed25519(b"\x02" + b"\xff" * 31)


@pytest.mark.parametrize(
    "call, argument",
    [
        (lambda key: vault_keypair(key), "node_seed"),
        (lambda key: x25519_public_from_ed25519(key), "ed25519_public_key"),
        (lambda key: seal_to(b"x", key), "recipient_public_key"),
        (lambda key: open_sealed(b"x" * 64, key), "recipient_private_key"),
        (lambda key: seal_record(b"x", key, AAD), "vault_public_key"),
        (lambda key: open_record(seal_record(b"x", VAULT_PUBLIC, AAD), key, AAD), "vault_private_key"),
    ],
)
@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_key_sizes_are_checked_without_echoing_the_key(call, argument, size):
    key = bytes([0xA5]) * size
    with pytest.raises(ValueError, match=argument) as caught:
        call(key)
    if key:
        assert key.hex() not in str(caught.value)


# --- record payloads ---------------------------------------------------------------------------


@given(plaintext=st.binary(max_size=4096), aad=st.binary(max_size=256))
def test_record_round_trip(plaintext, aad):
    sealed = seal_record(plaintext, VAULT_PUBLIC, aad)
    assert len(sealed.nonce) == 12
    assert len(sealed.wrapped_key) == 80
    assert len(sealed.ciphertext) == len(plaintext) + 16
    assert open_record(sealed, VAULT_PRIVATE, aad) == plaintext
    assert open_record(SealedRecord.decode(sealed.encode()), VAULT_PRIVATE, aad) == plaintext


def test_the_wrapped_key_is_a_sealed_box_holding_the_gcm_key():
    sealed = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    data_key = SealedBox(PrivateKey(VAULT_PRIVATE)).decrypt(sealed.wrapped_key)
    assert len(data_key) == 32
    assert AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, AAD) == SECRET_TEXT


def test_every_seal_uses_a_fresh_data_key_and_nonce():
    first = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    second = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert first.wrapped_key != second.wrapped_key
    unwrap = SealedBox(PrivateKey(VAULT_PRIVATE)).decrypt
    assert unwrap(first.wrapped_key) != unwrap(second.wrapped_key)


def test_record_aad_layout():
    assert codec.decode(AAD) == [
        "quancheng-ledger/v1/record-payload",
        RECORD_ID,
        1,
        "household-registration",
        SUBJECT,
    ]


@pytest.mark.parametrize(
    "other",
    [
        record_aad(bytes(16), 1, "household-registration", SUBJECT),  # another record
        record_aad(RECORD_ID, 2, "household-registration", SUBJECT),  # another version
        record_aad(RECORD_ID, 1, "social-insurance", SUBJECT),  # another data type
        record_aad(RECORD_ID, 1, "household-registration", b"\x08" * 32),  # another subject
    ],
)
def test_a_payload_cannot_be_moved_to_another_record(other):
    assert other != AAD
    sealed = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    with pytest.raises(EnvelopeError):
        open_record(sealed, VAULT_PRIVATE, other)


@pytest.mark.parametrize("version", [-1, True, 1.0])
def test_record_aad_refuses_bad_versions(version):
    with pytest.raises(ValueError, match="version"):
        record_aad(RECORD_ID, version, "household-registration", SUBJECT)


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


TAMPERINGS = {
    "nonce": lambda s: (dataclasses.replace(s, nonce=_flip(s.nonce, 0)), VAULT_PRIVATE, AAD),
    "ciphertext": lambda s: (dataclasses.replace(s, ciphertext=_flip(s.ciphertext, 3)), VAULT_PRIVATE, AAD),
    "tag": lambda s: (dataclasses.replace(s, ciphertext=_flip(s.ciphertext, len(s.ciphertext) - 1)), VAULT_PRIVATE, AAD),
    "truncated-tag": lambda s: (dataclasses.replace(s, ciphertext=s.ciphertext[:-1]), VAULT_PRIVATE, AAD),
    "wrapped-key-ephemeral": lambda s: (dataclasses.replace(s, wrapped_key=_flip(s.wrapped_key, 0)), VAULT_PRIVATE, AAD),
    "wrapped-key-body": lambda s: (dataclasses.replace(s, wrapped_key=_flip(s.wrapped_key, 60)), VAULT_PRIVATE, AAD),
    "wrapped-key-short": lambda s: (dataclasses.replace(s, wrapped_key=s.wrapped_key[:40]), VAULT_PRIVATE, AAD),
    "nonce-short": lambda s: (dataclasses.replace(s, nonce=s.nonce[:8]), VAULT_PRIVATE, AAD),
    "aad": lambda s: (s, VAULT_PRIVATE, _flip(AAD, len(AAD) - 1)),
    "wrong-private-key": lambda s: (s, vault_keypair(bytes(32))[0], AAD),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_gives_one_opaque_error(name):
    sealed = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    assert open_record(sealed, VAULT_PRIVATE, AAD) == SECRET_TEXT
    tampered, private, aad = TAMPERINGS[name](sealed)
    with pytest.raises(EnvelopeError) as caught:
        open_record(tampered, private, aad)
    _assert_opaque(caught.value, [private, VAULT_PRIVATE, VAULT_PUBLIC, SEED], SECRET_TEXT)


@settings(max_examples=60)
@given(field=st.sampled_from(["nonce", "ciphertext", "wrapped_key"]), position=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected(field, position, bit):
    sealed = seal_record(SECRET_TEXT, VAULT_PUBLIC, AAD)
    value = getattr(sealed, field)
    index = position % len(value)
    altered = value[:index] + bytes([value[index] ^ (1 << bit)]) + value[index + 1 :]
    with pytest.raises(EnvelopeError):
        open_record(dataclasses.replace(sealed, **{field: altered}), VAULT_PRIVATE, AAD)


def _assert_opaque(error: EnvelopeError, keys: list[bytes], plaintext: bytes) -> None:
    """One fixed message; no key or plaintext in it, and no library exception chained behind it."""
    text = str(error) + repr(error)
    for key in keys:
        assert key.hex() not in text
        assert key.hex().upper() not in text
        assert repr(key) not in text
    assert plaintext.decode() not in text
    assert repr(plaintext) not in text
    assert str(error) == str(EnvelopeError(envelope._OPAQUE))
    assert error.__suppress_context__ or error.__context__ is None
    assert error.__cause__ is None


def test_seal_record_refuses_oversized_payloads():
    with pytest.raises(ValueError, match="plaintext"):
        seal_record(bytes(envelope.MAX_PAYLOAD_SIZE + 1), VAULT_PUBLIC, AAD)


# --- SealedRecord encoding ---------------------------------------------------------------------


def _fields(sealed: SealedRecord) -> dict:
    return {"nonce": sealed.nonce, "ciphertext": sealed.ciphertext, "wrapped_key": sealed.wrapped_key}


@given(plaintext=st.binary(max_size=512))
def test_sealed_record_encoding_round_trip(plaintext):
    sealed = seal_record(plaintext, VAULT_PUBLIC, AAD)
    encoded = sealed.encode()
    assert codec.decode(encoded) == _fields(sealed)  # canonical CBOR map with exactly these keys
    assert SealedRecord.decode(encoded) == sealed


@pytest.mark.parametrize(
    "change, field",
    [
        ({"nonce": bytes(11)}, "nonce"),
        ({"nonce": bytes(13)}, "nonce"),
        ({"nonce": "not bytes"}, "nonce"),
        ({"wrapped_key": bytes(79)}, "wrapped_key"),
        ({"wrapped_key": bytes(81)}, "wrapped_key"),
        ({"ciphertext": bytes(15)}, "ciphertext"),
        ({"ciphertext": 7}, "ciphertext"),
        ({"ciphertext": bytes(envelope.MAX_PAYLOAD_SIZE + 17)}, "ciphertext"),
        ({"signature": b""}, "signature"),
    ],
)
def test_sealed_record_decode_names_the_bad_field(change, field):
    fields = _fields(seal_record(b"payload", VAULT_PUBLIC, AAD))
    fields.update(change)
    with pytest.raises(EncodingError, match=field):
        SealedRecord.decode(codec.encode(fields))


@pytest.mark.parametrize("missing", ["nonce", "ciphertext", "wrapped_key"])
def test_sealed_record_decode_requires_every_field(missing):
    fields = _fields(seal_record(b"payload", VAULT_PUBLIC, AAD))
    del fields[missing]
    with pytest.raises(EncodingError, match=missing):
        SealedRecord.decode(codec.encode(fields))


@pytest.mark.parametrize("data", [b"", b"\xa0", codec.encode([1, 2, 3]), b"\xff\x00"])
def test_sealed_record_decode_rejects_non_records(data):
    with pytest.raises(EncodingError):
        SealedRecord.decode(data)


def test_sealed_record_decode_rejects_trailing_bytes():
    with pytest.raises(EncodingError):
        SealedRecord.decode(seal_record(b"payload", VAULT_PUBLIC, AAD).encode() + b"\x00")


def test_sealed_record_repr_does_not_dump_the_ciphertext():
    sealed = seal_record(bytes(1000), VAULT_PUBLIC, AAD)
    assert sealed.ciphertext.hex() not in repr(sealed)
    assert "1016 bytes" in repr(sealed)


# --- sealed boxes to a person ------------------------------------------------------------------


@given(plaintext=st.binary(max_size=2048))
def test_sealed_box_round_trip(plaintext):
    private, public = generate_x25519()
    box = seal_to(plaintext, public)
    assert len(box) == len(plaintext) + 48
    assert open_sealed(box, private) == plaintext


def test_sealed_boxes_are_randomised():
    _, public = generate_x25519()
    assert seal_to(SECRET_TEXT, public) != seal_to(SECRET_TEXT, public)


@pytest.mark.parametrize("how", ["flip-first", "flip-last", "truncate", "empty", "wrong-key"])
def test_sealed_box_failures_are_one_opaque_error(how):
    private, public = generate_x25519()
    box = seal_to(SECRET_TEXT, public)
    if how == "flip-first":
        box = _flip(box, 0)
    elif how == "flip-last":
        box = _flip(box, len(box) - 1)
    elif how == "truncate":
        box = box[:47]
    elif how == "empty":
        box = b""
    else:
        private = generate_x25519()[0]
    with pytest.raises(EnvelopeError) as caught:
        open_sealed(box, private)
    _assert_opaque(caught.value, [private, public], SECRET_TEXT)
