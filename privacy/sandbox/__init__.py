"""A sandbox for consumers' computations over one citizen's consented records.

Why: a bank or insurer often needs a *result* (a credit score, an eligibility
yes/no), not the records. The consumer supplies a WebAssembly module; the
custodian node runs it over the consented records, on the node, and only the
declared scalar output leaves — with the module hash, the output hash and the
fuel used for the receipt. Contract and containment layers: docs/SANDBOX.md.

    info = check_module(wasm)                      # refuse imports / bad ABI early
    data = encode_input([[...24 months...], ...])  # records → ABI bytes
    result = run_isolated(wasm, data, "int")       # fresh limited process per job
    result.value, result.fuel_used, result.output_hash
"""

from privacy.sandbox.abi import (
    MAX_INPUT_BYTES,
    MAX_VECTOR_LENGTH,
    MAX_VECTORS,
    OUTPUT_TYPES,
    decode_input,
    encode_input,
    encode_output,
    output_hash,
)
from privacy.sandbox.errors import CODES, SandboxError
from privacy.sandbox.isolated import run_isolated
from privacy.sandbox.modules import SHIPPED_MODULES, load_module
from privacy.sandbox.runner import (
    DEFAULT_LIMITS,
    ENGINE,
    MAX_MODULE_BYTES,
    ModuleInfo,
    SandboxLimits,
    SandboxResult,
    check_module,
    run_module,
)

__all__ = [
    "CODES",
    "DEFAULT_LIMITS",
    "ENGINE",
    "MAX_INPUT_BYTES",
    "MAX_MODULE_BYTES",
    "MAX_VECTORS",
    "MAX_VECTOR_LENGTH",
    "ModuleInfo",
    "OUTPUT_TYPES",
    "SHIPPED_MODULES",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "check_module",
    "decode_input",
    "encode_input",
    "encode_output",
    "load_module",
    "output_hash",
    "run_isolated",
    "run_module",
]
