"""Typed field specifications for decoded CBOR maps.

Payloads arrive as plain maps from :mod:`ledger.codec`; a spec states the exact
set of keys and each value's type, and :func:`check_map` rejects anything else
with an error naming the offending field. Unknown keys are refused rather than
ignored: a signer must never be able to smuggle data past the rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ledger.errors import EncodingError

__all__ = [
    "Bytes",
    "Choice",
    "FieldType",
    "ListOf",
    "MapOf",
    "Optional",
    "Text",
    "UInt",
    "check_map",
]

FieldType = Callable[[Any, str], None]
_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9._-]*")


def _fail(where: str, message: str) -> EncodingError:
    return EncodingError(f"{where}: {message}")


@dataclass(frozen=True)
class Bytes:
    """A byte string of exactly ``size`` bytes, or at most ``max_size`` when size is None."""

    size: int | None = None
    max_size: int = 1 << 20

    def __call__(self, value: Any, where: str) -> None:
        if type(value) is not bytes:
            raise _fail(where, f"expected a byte string, got {type(value).__name__}")
        if self.size is not None and len(value) != self.size:
            raise _fail(where, f"expected {self.size} bytes, got {len(value)}")
        if len(value) > self.max_size:
            raise _fail(where, f"longer than {self.max_size} bytes")


@dataclass(frozen=True)
class Text:
    """UTF-8 text; ``identifier`` restricts it to lower-case ids like ``jinan-psb``."""

    max_length: int = 256
    identifier: bool = False

    def __call__(self, value: Any, where: str) -> None:
        if type(value) is not str:
            raise _fail(where, f"expected text, got {type(value).__name__}")
        if len(value) > self.max_length:
            raise _fail(where, f"longer than {self.max_length} characters")
        if self.identifier and not _IDENTIFIER.fullmatch(value):
            raise _fail(where, f"{value!r} is not an identifier ([a-z0-9._-], starting alphanumeric)")


@dataclass(frozen=True)
class UInt:
    minimum: int = 0
    maximum: int = 2**64 - 1

    def __call__(self, value: Any, where: str) -> None:
        if type(value) is not int:
            raise _fail(where, f"expected an unsigned integer, got {type(value).__name__}")
        if not self.minimum <= value <= self.maximum:
            raise _fail(where, f"{value} outside [{self.minimum}, {self.maximum}]")


@dataclass(frozen=True)
class Choice:
    options: frozenset[str]

    def __call__(self, value: Any, where: str) -> None:
        if type(value) is not str or value not in self.options:
            raise _fail(where, f"{value!r} is not one of {sorted(self.options)}")


@dataclass(frozen=True)
class ListOf:
    item: FieldType
    min_items: int = 0
    max_items: int = 1024
    unique: bool = False

    def __call__(self, value: Any, where: str) -> None:
        if type(value) is not list:
            raise _fail(where, f"expected an array, got {type(value).__name__}")
        if not self.min_items <= len(value) <= self.max_items:
            raise _fail(where, f"{len(value)} items, expected {self.min_items}..{self.max_items}")
        for position, item in enumerate(value):
            self.item(item, f"{where}[{position}]")
        if self.unique and len({_hashable(item) for item in value}) != len(value):
            raise _fail(where, "items are not unique")


@dataclass(frozen=True)
class MapOf:
    spec: Mapping[str, FieldType]

    def __call__(self, value: Any, where: str) -> None:
        check_map(value, self.spec, where)


@dataclass(frozen=True)
class Optional:
    """A key that may be absent; when present its value must match ``item``."""

    item: FieldType

    def __call__(self, value: Any, where: str) -> None:
        self.item(value, where)


def check_map(value: Any, spec: Mapping[str, FieldType], where: str) -> None:
    """Raise EncodingError unless ``value`` is a map with exactly the keys of ``spec``."""
    if type(value) is not dict:
        raise _fail(where, f"expected a map, got {type(value).__name__}")
    unknown = value.keys() - spec.keys()
    if unknown:
        raise _fail(where, f"unknown field(s) {sorted(unknown)}")
    for name, field_type in spec.items():
        if name in value:
            field_type(value[name], f"{where}.{name}")
        elif not isinstance(field_type, Optional):
            raise _fail(where, f"missing field {name!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_hashable(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, _hashable(item)) for key, item in value.items()))
    return value
