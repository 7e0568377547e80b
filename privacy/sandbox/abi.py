"""The byte-level contract between the custodian node and a consumer's WebAssembly module.

Why a home-made format rather than JSON or CBOR inside the module: the module
is written by the consumer in any language, with no imports and no runtime, so
the input must be trivial to walk with a few ``i32.load``/``i64.load``
instructions. Records reach the module as vectors of signed 64-bit integers
(amounts in yuan, counts, years, 0/1 flags): the node maps each consented
record to such a vector before the run, and nothing else of the record goes in.

Input (all integers little-endian)::

    b"QCL1"                     magic, 4 bytes
    u32  count                  number of vectors, 0..MAX_VECTORS
    count times:
        u32  n                  number of values, 0..MAX_VECTOR_LENGTH
        n times i64             the values, two's complement

Output: ``qcl_run`` returns one i64, read according to the declared output
type: ``"int"`` takes it as is, ``"bool"`` requires 0 or 1. The result that
leaves the sandbox, and its hash recorded in receipts, use the canonical
encoding ``ledger.codec.encode({"type": output_type, "value": value})``
(deterministic CBOR), so any party can recompute the hash from the value.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Sequence, Union

from ledger import codec
from privacy.sandbox.errors import SandboxError

__all__ = [
    "I64_MAX",
    "I64_MIN",
    "MAGIC",
    "MAX_INPUT_BYTES",
    "MAX_VECTORS",
    "MAX_VECTOR_LENGTH",
    "OUTPUT_TYPES",
    "OutputValue",
    "check_output_type",
    "decode_input",
    "decode_output",
    "encode_input",
    "encode_output",
    "is_output_value",
    "output_hash",
]

MAGIC = b"QCL1"
MAX_VECTORS = 64
MAX_VECTOR_LENGTH = 4096
MAX_INPUT_BYTES = len(MAGIC) + 4 + MAX_VECTORS * (4 + 8 * MAX_VECTOR_LENGTH)
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1
OUTPUT_TYPES: tuple[str, ...] = ("bool", "int")

OutputValue = Union[bool, int]

_U32 = struct.Struct("<I")


def encode_input(vectors: Sequence[Sequence[int]]) -> bytes:
    """Return the ABI input bytes for ``vectors``; raise SandboxError(bad_input) if they do not fit it."""
    if isinstance(vectors, (str, bytes, bytearray)) or not isinstance(vectors, Sequence):
        raise SandboxError("bad_input", "input must be a sequence of integer vectors")
    if len(vectors) > MAX_VECTORS:
        raise SandboxError(
            "bad_input", f"input has {len(vectors)} vectors; at most {MAX_VECTORS} allowed"
        )
    parts = [MAGIC, _U32.pack(len(vectors))]
    for index, vector in enumerate(vectors):
        if isinstance(vector, (str, bytes, bytearray)) or not isinstance(vector, Sequence):
            raise SandboxError("bad_input", f"vector {index} is not a sequence of integers")
        if len(vector) > MAX_VECTOR_LENGTH:
            raise SandboxError(
                "bad_input",
                f"vector {index} has {len(vector)} values; at most {MAX_VECTOR_LENGTH} allowed",
            )
        for position, value in enumerate(vector):
            if type(value) is not int:  # bool is an int subclass: refuse it, say 0 or 1
                raise SandboxError(
                    "bad_input",
                    f"vector {index}, value {position}: expected int, got {type(value).__name__}",
                )
            if not I64_MIN <= value <= I64_MAX:
                raise SandboxError(
                    "bad_input",
                    f"vector {index}, value {position}: outside the signed 64-bit range",
                )
        parts.append(_U32.pack(len(vector)))
        parts.append(struct.pack(f"<{len(vector)}q", *vector))
    return b"".join(parts)


def decode_input(data: bytes) -> list[list[int]]:
    """Return the vectors encoded in ``data``; raise SandboxError(bad_input) unless it is exact ABI input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SandboxError("bad_input", f"input must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_INPUT_BYTES:
        raise SandboxError(
            "bad_input", f"input is {len(data)} bytes; at most {MAX_INPUT_BYTES} allowed"
        )
    if data[: len(MAGIC)] != MAGIC:
        raise SandboxError("bad_input", f"input does not start with the magic {MAGIC!r}")
    offset = len(MAGIC)
    count, offset = _read_u32(data, offset, "vector count")
    if count > MAX_VECTORS:
        raise SandboxError("bad_input", f"input declares {count} vectors; at most {MAX_VECTORS}")
    vectors: list[list[int]] = []
    for index in range(count):
        length, offset = _read_u32(data, offset, f"length of vector {index}")
        if length > MAX_VECTOR_LENGTH:
            raise SandboxError(
                "bad_input",
                f"vector {index} declares {length} values; at most {MAX_VECTOR_LENGTH}",
            )
        end = offset + 8 * length
        if end > len(data):
            raise SandboxError("bad_input", f"input ends inside vector {index}")
        vectors.append(list(struct.unpack_from(f"<{length}q", data, offset)))
        offset = end
    if offset != len(data):
        raise SandboxError("bad_input", f"{len(data) - offset} trailing bytes after the last vector")
    return vectors


def _read_u32(data: bytes, offset: int, what: str) -> tuple[int, int]:
    if offset + 4 > len(data):
        raise SandboxError("bad_input", f"input ends before the {what}")
    return _U32.unpack_from(data, offset)[0], offset + 4


def check_output_type(output_type: str) -> str:
    """Return ``output_type`` if it is one of :data:`OUTPUT_TYPES`; raise SandboxError(bad_input) if not."""
    if output_type not in OUTPUT_TYPES:
        raise SandboxError(
            "bad_input",
            f"output type {output_type!r} is not one of {', '.join(OUTPUT_TYPES)}",
        )
    return output_type


def decode_output(raw: int, output_type: str) -> OutputValue:
    """Read the i64 returned by ``qcl_run`` as a value of ``output_type``.

    The rejected value is not named in the error: it was computed from the input.
    """
    if check_output_type(output_type) == "int":
        return raw
    if raw not in (0, 1):
        raise SandboxError("bad_output", "the module returned a value other than 0 or 1 for a bool output")
    return raw == 1


def is_output_value(value: object, output_type: str) -> bool:
    """Whether ``value`` is a well-typed result of ``output_type`` (bool for "bool", i64 int for "int")."""
    if output_type == "bool":
        return type(value) is bool
    if output_type == "int":
        return type(value) is int and I64_MIN <= value <= I64_MAX
    return False


def encode_output(value: OutputValue, output_type: str) -> bytes:
    """The canonical bytes of a result: ``codec.encode({"type": output_type, "value": value})``."""
    if not is_output_value(value, output_type):
        raise ValueError(f"value is not a well-typed {output_type!r} sandbox output")
    return codec.encode({"type": output_type, "value": value})


def output_hash(value: OutputValue, output_type: str) -> bytes:
    """SHA-256 of :func:`encode_output`: what receipts record for a sandboxed result."""
    return hashlib.sha256(encode_output(value, output_type)).digest()
