"""The short-lived process in which :func:`privacy.sandbox.run_isolated` runs one job.

Why a process on top of wasmtime's own containment: a bug in the JIT or the
runtime, or a module that exhausts the host some way the store limits do not
cover, then hits operating-system limits and takes down only this process,
which holds one citizen's input and nothing else of the node (no keys, no
vault, no sockets, no environment).

Started as ``python -B -s -m privacy.sandbox.worker --fuel=… --memory_bytes=…``
(every :class:`SandboxLimits` field as an option), in an empty temporary
directory with only ``PYTHONPATH`` in its environment. Before it reads the job
it (1) tries to leave the network: ``unshare(CLONE_NEWUSER | CLONE_NEWNET)``,
then ``unshare(CLONE_NEWNET)`` alone, leaving it in a namespace with only a
down loopback — whether that applied is reported back, never fatal, since
kernels and containers may refuse it; (2) sets its resource limits:
RLIMIT_CORE 0, RLIMIT_FSIZE 0, RLIMIT_NOFILE, RLIMIT_CPU, RLIMIT_AS. Python's
start-up and the (trusted) package imports run before these; no job data does.

Protocol: stdin carries ``codec.encode({"wasm": bytes, "input": bytes,
"output_type": str})``; stdout gets ``codec.encode(reply)`` with either
``{"value", "fuel_used", "network_isolated"}`` or ``{"code", "message",
"network_isolated"}`` (a SandboxError raised here). Anything else — a crash, a
signal, a non-zero exit — is the parent's ``worker_failed``.
"""

from __future__ import annotations

import ctypes
import resource
import sys
from dataclasses import fields
from typing import Any, Sequence, cast

from ledger import codec
from ledger.fields import Bytes, Choice, FieldType, check_map
from privacy.sandbox.abi import MAX_INPUT_BYTES, OUTPUT_TYPES
from privacy.sandbox.errors import SandboxError
from privacy.sandbox.runner import MAX_MODULE_BYTES, SandboxLimits, run_module

__all__ = [
    "MAX_JOB_BYTES",
    "apply_process_limits",
    "isolate_network",
    "limits_from_argv",
    "limits_to_argv",
    "main",
]

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MAX_JOB_BYTES = MAX_MODULE_BYTES + MAX_INPUT_BYTES + 1024  # two byte strings and CBOR framing

_JOB_SPEC: dict[str, FieldType] = {
    "wasm": Bytes(max_size=MAX_MODULE_BYTES),
    "input": Bytes(max_size=MAX_INPUT_BYTES),
    "output_type": Choice(frozenset(OUTPUT_TYPES)),
}


def limits_to_argv(limits: SandboxLimits) -> list[str]:
    """The worker's command-line options for ``limits``."""
    return [f"--{field.name}={getattr(limits, field.name)!r}" for field in fields(limits)]


def limits_from_argv(argv: Sequence[str]) -> SandboxLimits:
    """Parse :func:`limits_to_argv`'s options; ValueError on anything else."""
    kinds: dict[str, type] = {field.name: type(field.default) for field in fields(SandboxLimits)}
    values: dict[str, Any] = {}
    for argument in argv:
        name, separator, text = argument.removeprefix("--").partition("=")
        if not argument.startswith("--") or not separator or name not in kinds or name in values:
            raise ValueError(f"unexpected worker argument {argument!r}")
        values[name] = kinds[name](text)
    return SandboxLimits(**values)


def isolate_network() -> bool:
    """Move this process into a new network namespace if the kernel allows; return whether it did.

    Must run while the process has a single thread (CLONE_NEWUSER requires it).
    """
    try:
        unshare = ctypes.CDLL(None, use_errno=True).unshare
    except (OSError, AttributeError):
        return False
    return any(unshare(flags) == 0 for flags in (CLONE_NEWUSER | CLONE_NEWNET, CLONE_NEWNET))


def apply_process_limits(limits: SandboxLimits) -> None:
    """Set this process's resource limits (soft = hard, except CPU: SIGXCPU at soft, SIGKILL 1 s later)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(
        resource.RLIMIT_AS, (limits.address_space_bytes, limits.address_space_bytes)
    )


def main(argv: Sequence[str]) -> int:
    limits = limits_from_argv(argv)
    network_isolated = isolate_network()
    apply_process_limits(limits)
    received = codec.decode(sys.stdin.buffer.read(MAX_JOB_BYTES + 1))
    check_map(received, _JOB_SPEC, "job")
    job = cast("dict[str, Any]", received)
    reply: dict[str, codec.Value] = {"network_isolated": network_isolated}
    try:
        result = run_module(job["wasm"], job["input"], job["output_type"], limits)
    except SandboxError as error:
        reply.update(code=error.code, message=error.message)
    else:
        reply.update(value=result.value, fuel_used=result.fuel_used)
    sys.stdout.buffer.write(codec.encode(reply))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
