"""The sandbox ABI: input bytes, output reading, canonical output encoding and hash."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from privacy.sandbox import SandboxError, decode_input, encode_input, encode_output, output_hash
from privacy.sandbox.abi import (
    I64_MAX,
    I64_MIN,
    MAX_INPUT_BYTES,
    MAX_VECTOR_LENGTH,
    MAX_VECTORS,
    decode_output,
)

i64 = st.integers(min_value=I64_MIN, max_value=I64_MAX)


def test_input_known_answer() -> None:
    assert encode_input([[1, -1], []]) == bytes.fromhex(
        "51434c31"  # b"QCL1"
        "02000000"  # two vectors
        "02000000" "0100000000000000" "ffffffffffffffff"  # [1, -1]
        "00000000"  # []
    )
    assert encode_input([]) == b"QCL1\x00\x00\x00\x00"
    assert encode_input([[I64_MIN, I64_MAX]])[12:] == bytes.fromhex("0000000000000080ffffffffffffff7f")


@given(st.lists(st.lists(i64, max_size=40), max_size=8))
def test_input_round_trips(vectors: list[list[int]]) -> None:
    data = encode_input(vectors)
    assert len(data) == 8 + sum(4 + 8 * len(vector) for vector in vectors)
    assert decode_input(data) == vectors


def test_the_largest_input_is_accepted() -> None:
    data = encode_input([[0] * MAX_VECTOR_LENGTH] * MAX_VECTORS)
    assert len(data) == MAX_INPUT_BYTES
    assert len(decode_input(data)) == MAX_VECTORS


@pytest.mark.parametrize(
    ("vectors", "fragment"),
    [
        ([[0]] * (MAX_VECTORS + 1), f"at most {MAX_VECTORS} allowed"),
        ([[], [0] * (MAX_VECTOR_LENGTH + 1)], f"vector 1 has {MAX_VECTOR_LENGTH + 1} values"),
        ([[0, I64_MAX + 1]], "vector 0, value 1: outside the signed 64-bit range"),
        ([[I64_MIN - 1]], "vector 0, value 0: outside"),
        ([[0], [True]], "vector 1, value 0: expected int, got bool"),
        ([[1.5]], "expected int, got float"),
        (["abc"], "vector 0 is not a sequence"),
        (b"\x01\x02", "input must be a sequence"),
        ({"a": [1]}, "input must be a sequence"),
    ],
)
def test_encode_refuses_what_the_abi_cannot_carry(vectors: object, fragment: str) -> None:
    with pytest.raises(SandboxError) as caught:
        encode_input(vectors)  # type: ignore[arg-type]
    assert caught.value.code == "bad_input"
    assert fragment in caught.value.message


def test_refusals_never_quote_the_value() -> None:
    with pytest.raises(SandboxError) as caught:
        encode_input([[123456789, 98765432109876543210987]])
    assert "98765432109876543210987" not in str(caught.value)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "magic"),
        (b"QCL2\x00\x00\x00\x00", "magic"),
        (b"QCL1\x00\x00", "ends before the vector count"),
        (b"QCL1\x01\x00\x00\x00", "ends before the length of vector 0"),
        (b"QCL1\x01\x00\x00\x00\x02\x00\x00\x00" + b"\x00" * 15, "ends inside vector 0"),
        (b"QCL1\x00\x00\x00\x00\x00", "1 trailing bytes"),
        (b"QCL1" + (MAX_VECTORS + 1).to_bytes(4, "little"), f"declares {MAX_VECTORS + 1} vectors"),
        (b"QCL1\x01\x00\x00\x00" + (MAX_VECTOR_LENGTH + 1).to_bytes(4, "little"), "declares"),
        (b"QCL1" + b"\x00" * MAX_INPUT_BYTES, "at most"),
        ("QCL1", "must be bytes"),
    ],
)
def test_decode_refuses_anything_but_exact_input(data: bytes, fragment: str) -> None:
    with pytest.raises(SandboxError) as caught:
        decode_input(data)
    assert caught.value.code == "bad_input"
    assert fragment in caught.value.message


def test_decode_output() -> None:
    assert decode_output(-5, "int") == -5
    assert decode_output(1, "bool") is True
    assert decode_output(0, "bool") is False
    with pytest.raises(SandboxError) as caught:
        decode_output(987654321, "bool")
    assert caught.value.code == "bad_output"
    assert "987654321" not in caught.value.message
    with pytest.raises(SandboxError) as caught:
        decode_output(0, "float")
    assert caught.value.code == "bad_input"


def test_output_encoding_and_hash_known_answers() -> None:
    # deterministic CBOR of {"type": "int", "value": 780}: keys in canonical order
    encoded = bytes.fromhex("a2" "6474797065" "63696e74" "6576616c7565" "19030c")
    assert encode_output(780, "int") == encoded
    assert output_hash(780, "int") == hashlib.sha256(encoded).digest()
    encoded_true = bytes.fromhex("a2" "6474797065" "64626f6f6c" "6576616c7565" "f5")
    assert encode_output(True, "bool") == encoded_true
    assert output_hash(True, "bool") == hashlib.sha256(encoded_true).digest()
    assert output_hash(1, "int") != output_hash(True, "bool")


@pytest.mark.parametrize(("value", "output_type"), [(1, "bool"), (True, "int"), (2**63, "int"), (1, "text")])
def test_output_encoding_refuses_ill_typed_values(value: object, output_type: str) -> None:
    with pytest.raises(ValueError):
        encode_output(value, output_type)  # type: ignore[arg-type]
