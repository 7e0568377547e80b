"""Example computations shipped with the sandbox, as WebAssembly text.

Why text: a reviewer (or a citizen's advocate) can read exactly what runs over
the records, and the binary is rebuilt here with ``wasmtime.wat2wasm`` — no
external toolchain, no opaque artefact in the repository. The module hash in a
receipt is the SHA-256 of the bytes :func:`load_module` returns, which depend
only on the text and the wasmtime version's WAT encoder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from wasmtime import wat2wasm

from privacy.sandbox.errors import SandboxError

__all__ = ["SHIPPED_MODULES", "load_module"]

# name → declared output type
SHIPPED_MODULES: Mapping[str, str] = MappingProxyType(
    {"insurance_eligibility": "bool", "loan_score": "int"}
)

_DIRECTORY = Path(__file__).resolve().parent


@lru_cache(maxsize=None)
def load_module(name: str) -> bytes:
    """Return the WebAssembly binary of the shipped module ``name`` (see :data:`SHIPPED_MODULES`)."""
    if name not in SHIPPED_MODULES:
        raise SandboxError(
            "bad_module", f"no shipped module {name!r}; shipped: {', '.join(sorted(SHIPPED_MODULES))}"
        )
    return bytes(wat2wasm((_DIRECTORY / f"{name}.wat").read_text(encoding="utf-8")))
