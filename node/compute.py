"""Computations a consumer may ask for instead of the records: a sandboxed module or an HE score.

Both read the subject's consented records through an input layout
(:mod:`privacy.features`) and produce an output the consumer receives instead
of the data, plus the receipt the access record carries (what ran, on which
engine, with which parameters, the fuel used, the output's hash). The access
desk (:mod:`node.access`) treats them alike: decide the consent in mode
``computed``, run, record, then release.

* :class:`SandboxJob` — a WebAssembly module pinned on the ledger and approved by
  every provider of what it reads, run by :func:`privacy.sandbox.run_isolated` in a
  short-lived worker process with fuel, epoch and memory limits. Its output is a
  plaintext ``int`` or ``bool``; fuel is deterministic, so a regulator can re-run it.
* :class:`HeScoringJob` — the consumer's linear model, encrypted under the
  consumer's own key (:mod:`privacy.he.scoring`); the node computes the score
  homomorphically and returns the ciphertext. The node never sees the model, the
  consumer never sees the features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from ledger import codec
from ledger.crypto import sha256
from ledger.rules.modules import input_types, module_key
from ledger.storage.ledger_store import LedgerStore
from node.vault import Vault
from privacy.features import FeatureError, SourceRecord, build_vectors, flatten
from privacy.he.errors import HeError
from privacy.he.params import ENGINE as HE_ENGINE
from privacy.he.scoring import score_encrypted
from privacy.sandbox import ENGINE as SANDBOX_ENGINE
from privacy.sandbox import SandboxError, SandboxLimits, encode_input, run_isolated

__all__ = [
    "Computation",
    "ComputationStopped",
    "ComputedOutput",
    "HeScoringJob",
    "ModuleNotApproved",
    "SandboxJob",
    "data_types_of",
    "sandbox_job",
]

class ComputationStopped(Exception):
    """Raised when a computation could not produce its output; ``code`` is stable and goes on the ledger."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ComputedOutput:
    output: dict[str, Any]  # what the consumer receives in the sealed result
    output_hash: bytes
    fuel: int | None


class Computation(Protocol):
    kind: str
    code_hash: bytes
    engine: str
    layout: list[list[dict[str, str]]]

    @property
    def params(self) -> bytes:
        """Canonical CBOR of everything besides code and data that determines the output."""

    def run(self, records: Mapping[str, SourceRecord]) -> ComputedOutput: ...


def data_types_of(computation: Computation) -> list[str]:
    return input_types(computation.layout)


@dataclass(frozen=True)
class SandboxJob:
    module_hash: bytes
    wasm: bytes
    layout: list[list[dict[str, str]]]
    output_type: str
    limits: SandboxLimits
    kind: str = "sandbox"
    engine: str = SANDBOX_ENGINE

    @property
    def code_hash(self) -> bytes:
        return self.module_hash

    @property
    def params(self) -> bytes:
        limits = self.limits
        return codec.encode(
            {
                "inputs": self.layout,
                "output": self.output_type,
                "fuel_limit": limits.fuel,
                "memory_bytes": limits.memory_bytes,
            }
        )

    def run(self, records: Mapping[str, SourceRecord]) -> ComputedOutput:
        try:
            vectors = build_vectors(self.layout, records)
            result = run_isolated(self.wasm, encode_input(vectors), self.output_type, self.limits)
        except FeatureError as exc:
            raise ComputationStopped(exc.code, str(exc)) from None
        except SandboxError as exc:
            raise ComputationStopped(exc.code, exc.message) from None
        return ComputedOutput({"type": self.output_type, "value": result.value}, result.output_hash, result.fuel_used)


@dataclass(frozen=True)
class HeScoringJob:
    bundle: bytes
    layout: list[list[dict[str, str]]]
    kind: str = "he_score"
    engine: str = HE_ENGINE

    @property
    def code_hash(self) -> bytes:
        return sha256(self.bundle)

    @property
    def params(self) -> bytes:
        return codec.encode({"inputs": self.layout, "parameter_set": codec.decode(self.bundle)["params"]})

    def run(self, records: Mapping[str, SourceRecord]) -> ComputedOutput:
        try:
            features = flatten(build_vectors(self.layout, records))
            ciphertext = score_encrypted(self.bundle, features)
        except FeatureError as exc:
            raise ComputationStopped(exc.code, str(exc)) from None
        except HeError as exc:
            raise ComputationStopped(exc.code, exc.message) from None
        return ComputedOutput({"type": "bfv_ciphertext", "ciphertext": ciphertext}, sha256(ciphertext), None)


class ModuleNotApproved(Exception):
    """Raised when a sandbox job names a module this consumer may not run (yet)."""


def sandbox_job(store: LedgerStore, vault: Vault, module_hash: bytes, consumer: str, limits: SandboxLimits) -> SandboxJob:
    """The job for a pinned module, or ModuleNotApproved naming why it may not run."""
    module = store.read_state(module_key(module_hash))
    if module is None or module["consumer"] != consumer:
        raise ModuleNotApproved(f"module {module_hash.hex()} is not pinned by {consumer!r}")
    if module["status"] != "approved":
        raise ModuleNotApproved(f"module {module_hash.hex()} is {module['status']}, not approved by every provider of its data")
    wasm = vault.get_blob(module_hash)
    if wasm is None:
        raise ModuleNotApproved(f"module {module_hash.hex()} is pinned but its bytes are not on this node")
    return SandboxJob(module_hash, wasm, module["inputs"], module["output"], limits)
