"""Run a module in a fresh, resource-limited worker process: :func:`run_isolated`.

Why per job: a process that served one citizen's records is never reused for
another, so nothing (heap contents, a corrupted runtime) can carry from one
job to the next, and every limit starts from zero. The parent never compiles
the untrusted module itself — it only checks sizes and the input encoding,
then hands the bytes to :mod:`privacy.sandbox.worker` — and it enforces the
one limit the child cannot enforce on itself: a hard wall timeout, after which
the child is killed (SIGKILL).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

from ledger import codec
from ledger.errors import EncodingError
from privacy.sandbox.abi import (
    OutputValue,
    check_output_type,
    decode_input,
    is_output_value,
    output_hash,
)
from privacy.sandbox.errors import CODES, SandboxError
from privacy.sandbox.runner import DEFAULT_LIMITS, SandboxLimits, SandboxResult, check_wasm_bytes
from privacy.sandbox.worker import limits_to_argv

__all__ = ["WORKER_MODULE", "run_isolated"]

WORKER_MODULE = "privacy.sandbox.worker"
_IMPORT_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the privacy package
# A traceback's final "module.ClassName: message" line (source lines are indented).
_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt))(?::|$)", re.MULTILINE)


def run_isolated(
    wasm: bytes, input: bytes, output_type: str, limits: SandboxLimits = DEFAULT_LIMITS
) -> SandboxResult:
    """Run ``wasm`` over ``input`` like :func:`run_module`, inside a new worker process."""
    check_output_type(output_type)
    decode_input(input)
    job = codec.encode(
        {"wasm": check_wasm_bytes(wasm), "input": bytes(input), "output_type": output_type}
    )
    command = [sys.executable, "-B", "-s", "-m", WORKER_MODULE, *limits_to_argv(limits)]
    with tempfile.TemporaryDirectory(prefix="qcl-sandbox-") as empty:
        try:
            done = subprocess.run(
                command,
                input=job,
                capture_output=True,
                cwd=empty,
                env={"PYTHONPATH": str(_IMPORT_ROOT)},
                timeout=limits.worker_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(
                "timeout",
                f"the worker did not finish within {limits.worker_seconds} s and was killed",
            ) from None
    if done.returncode != 0:
        raise _exit_error(done.returncode, done.stderr, limits)
    return _parse_reply(done.stdout, output_type, limits)


def _exit_error(returncode: int, stderr: bytes, limits: SandboxLimits) -> SandboxError:
    if returncode == -signal.SIGXCPU:
        return SandboxError(
            "timeout", f"the worker used its CPU limit of {limits.cpu_seconds} s and was stopped"
        )
    if returncode < 0:
        how = f"was killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exited with status {returncode}"
    # Only the class name of the last exception in the traceback: its text could quote data.
    names = _EXCEPTION_LINE.findall(stderr.decode("utf-8", "replace"))
    raised = f" after raising {names[-1]}" if names else ""
    return SandboxError("worker_failed", f"the worker {how}{raised}")


def _parse_reply(stdout: bytes, output_type: str, limits: SandboxLimits) -> SandboxResult:
    try:
        reply = codec.decode(stdout)
    except EncodingError:
        raise SandboxError("worker_failed", "the worker's reply is not canonical CBOR") from None
    malformed = SandboxError("worker_failed", "the worker's reply is malformed")
    if not isinstance(reply, dict) or not isinstance(reply.get("network_isolated"), bool):
        raise malformed
    code, message = reply.get("code"), reply.get("message")
    if reply.keys() == {"network_isolated", "code", "message"}:
        if not isinstance(code, str) or code not in CODES or not isinstance(message, str):
            raise malformed
        raise SandboxError(code, message)
    value, fuel_used = reply.get("value"), reply.get("fuel_used")
    if (
        reply.keys() != {"network_isolated", "value", "fuel_used"}
        or not is_output_value(value, output_type)
        or type(fuel_used) is not int
        or not 0 <= fuel_used < limits.fuel  # a run that used it all is out_of_fuel
    ):
        raise malformed
    return SandboxResult(
        value=cast(OutputValue, value),
        output_type=output_type,
        fuel_used=fuel_used,
        output_hash=output_hash(cast(OutputValue, value), output_type),
        network_isolated=reply["network_isolated"] is True,
    )
