"""The one exception root of the sandbox, with stable codes.

Callers (the custodian node, receipts, the consumer's SDK) branch on
:attr:`SandboxError.code`, never on message text, so the codes are a contract:
they are listed in :data:`CODES` and documented in docs/SANDBOX.md. Messages
name what went wrong for an operator, but never carry input data or values the
module computed from it (a trap address or a rejected output could encode a
citizen's record), only fixed reasons, sizes and configured limits.
"""

from __future__ import annotations

__all__ = ["CODES", "SandboxError"]

CODES: frozenset[str] = frozenset(
    {
        "imports_forbidden",  # the module imports something; nothing may enter the sandbox
        "bad_module",  # not a WebAssembly binary, or exports that break the ABI
        "bad_input",  # the input bytes or the declared output type break the ABI
        "out_of_fuel",  # the module executed more instructions than its fuel allows
        "timeout",  # the wall deadline (epoch), the worker's wall timeout or its CPU limit
        "memory_limit",  # linear memory hit the cap, at instantiation or during the run
        "trap",  # any other WebAssembly trap, or a pointer from qcl_alloc outside memory
        "bad_output",  # the returned i64 is not a value of the declared output type
        "worker_failed",  # the isolated worker crashed, exited non-zero or answered garbage
    }
)


class SandboxError(Exception):
    """A sandboxed computation was refused or stopped; ``code`` says why (one of :data:`CODES`)."""

    def __init__(self, code: str, message: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown sandbox error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
