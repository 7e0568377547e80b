"""The isolated path: one fresh, resource-limited worker process per job."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import sandbox_samples as samples
from ledger import codec
from privacy.sandbox import (
    SandboxError,
    SandboxLimits,
    encode_input,
    load_module,
    run_isolated,
    run_module,
)
from privacy.sandbox.isolated import _exit_error, _parse_reply
from privacy.sandbox.worker import limits_from_argv, limits_to_argv

pytestmark = pytest.mark.slow  # each test starts at least one Python process (~0.1-0.3 s)

INPUT = encode_input([[1, 2, 3], [4]])
ROOT = Path(__file__).resolve().parents[3]


def expect(code: str, wasm: bytes, **limits: object) -> str:
    with pytest.raises(SandboxError) as caught:
        run_isolated(wasm, INPUT, "int", SandboxLimits(**limits))  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    return caught.value.message


def child(code: str, cwd: Path) -> Any:
    """Run ``code`` in a fresh interpreter that can import the project; return what it prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        cwd=cwd,
        env={"PYTHONPATH": str(ROOT)},
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_a_normal_run_matches_the_in_process_run() -> None:
    data = encode_input([[1200] * 24, [300] * 24, [4, 500_000, 1]])
    isolated = run_isolated(load_module("loan_score"), data, "int")
    local = run_module(load_module("loan_score"), data, "int")
    assert (isolated.value, isolated.fuel_used, isolated.output_hash) == (
        local.value,
        local.fuel_used,
        local.output_hash,
    )
    assert isinstance(isolated.network_isolated, bool)
    eligible = run_isolated(load_module("insurance_eligibility"), encode_input([[2024, 3, 100, 0]]), "bool")
    assert eligible.value is True


def test_an_endless_loop_runs_out_of_fuel() -> None:
    expect("out_of_fuel", samples.LOOP_FOREVER)


def test_the_epoch_deadline_applies_in_the_worker() -> None:
    expect("timeout", samples.LOOP_FOREVER, fuel=10**18, wall_seconds=0.3)


def test_unbounded_memory_growth_stops_at_the_cap() -> None:
    assert "full at the cap of 16777216 bytes" in expect("memory_limit", samples.GROW_FOREVER)


def test_imports_are_refused_in_the_worker() -> None:
    assert "env.leak" in expect("imports_forbidden", samples.IMPORTS_FD_WRITE)


def test_traps_come_back_with_their_code() -> None:
    assert expect("trap", samples.DIVIDE_BY_ZERO) == "the module trapped: integer divide by zero"


def test_the_parent_kills_a_worker_past_its_wall_timeout() -> None:
    message = expect("timeout", samples.LOOP_FOREVER, fuel=10**18, wall_seconds=60.0, worker_seconds=0.5)
    assert message == "the worker did not finish within 0.5 s and was killed"


def test_the_cpu_limit_stops_the_worker() -> None:
    message = expect(
        "timeout", samples.LOOP_FOREVER, fuel=10**18, wall_seconds=60.0, cpu_seconds=1, worker_seconds=30.0
    )
    assert message == "the worker used its CPU limit of 1 s and was stopped"


def test_the_address_space_limit_applies() -> None:
    # 32 MiB cannot hold the interpreter and wasmtime (the worker needs ~64 MiB + memory_bytes)
    message = expect("worker_failed", samples.SUM, address_space_bytes=32 << 20)
    assert message == "the worker exited with status 1 after raising MemoryError"
    assert run_isolated(samples.SUM, INPUT, "int", SandboxLimits(address_space_bytes=96 << 20)).value == 10


def test_bad_requests_are_refused_without_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_worker(*args: object, **kwargs: object) -> None:
        raise AssertionError("a worker was started")

    monkeypatch.setattr(subprocess, "run", no_worker)
    for wasm, data, output_type, code in [
        (samples.SUM, b"QCL1", "int", "bad_input"),
        (samples.SUM, INPUT, "float", "bad_input"),
        (b"(module)", INPUT, "int", "bad_module"),
    ]:
        with pytest.raises(SandboxError) as caught:
            run_isolated(wasm, data, output_type)
        assert caught.value.code == code


def test_limits_travel_on_the_command_line() -> None:
    limits = SandboxLimits(fuel=123, wall_seconds=0.25, open_files=9)
    assert limits_from_argv(limits_to_argv(limits)) == limits
    for argv in (["--fuel=1", "--fuel=2"], ["--nice=1"], ["fuel=1"], ["--fuel"]):
        with pytest.raises(ValueError):
            limits_from_argv(argv)


def test_the_network_namespace_leaves_only_loopback(tmp_path: Path) -> None:
    isolated, interfaces = child(
        "import json, socket\n"
        "from privacy.sandbox.worker import isolate_network\n"
        "isolated = isolate_network()\n"
        "print(json.dumps([isolated, [name for _, name in socket.if_nameindex()]]))",
        tmp_path,
    )
    if isolated:
        assert interfaces == ["lo"]
    assert run_isolated(samples.SUM, INPUT, "int").network_isolated is isolated


def test_process_limits_are_set(tmp_path: Path) -> None:
    limits = child(
        "import json, os, resource, signal\n"
        "from privacy.sandbox import SandboxLimits\n"
        "from privacy.sandbox.worker import apply_process_limits\n"
        "apply_process_limits(SandboxLimits(cpu_seconds=3, open_files=8, address_space_bytes=200 << 20))\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "try:\n"
        "    os.write(os.open('written', os.O_WRONLY | os.O_CREAT), b'x')\n"
        "    wrote = 'wrote'\n"
        "except OSError as exc:\n"
        "    wrote = exc.errno\n"
        "names = ['RLIMIT_CORE', 'RLIMIT_FSIZE', 'RLIMIT_NOFILE', 'RLIMIT_CPU', 'RLIMIT_AS']\n"
        "print(json.dumps({'write': wrote, **{n: resource.getrlimit(getattr(resource, n)) for n in names}}))",
        tmp_path,
    )
    assert limits == {
        "write": 27,  # EFBIG
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_FSIZE": [0, 0],
        "RLIMIT_NOFILE": [8, 8],
        "RLIMIT_CPU": [3, 4],
        "RLIMIT_AS": [200 << 20, 200 << 20],
    }


@pytest.mark.parametrize(
    "reply",
    [
        b"",
        b"\xff",
        codec.encode({"value": 1, "fuel_used": 5}),  # no network_isolated
        codec.encode({"network_isolated": True, "value": True, "fuel_used": 5}),  # bool for an int output
        codec.encode({"network_isolated": True, "value": 2**63, "fuel_used": 5}),  # outside i64
        codec.encode({"network_isolated": True, "value": 1, "fuel_used": 10**9}),  # more than its fuel
        codec.encode({"network_isolated": True, "value": 1, "fuel_used": 5, "extra": 0}),
        codec.encode({"network_isolated": True, "value": 1, "fuel_used": 1000}),  # all of its fuel
        codec.encode({"network_isolated": True, "code": "exploded", "message": "x"}),  # unknown code
        codec.encode({"network_isolated": True, "code": ["trap"], "message": "x"}),
        codec.encode({"network_isolated": True, "code": "trap", "message": b"x"}),
    ],
)
def test_the_parent_does_not_trust_the_reply(reply: bytes) -> None:
    with pytest.raises(SandboxError) as caught:
        _parse_reply(reply, "int", SandboxLimits(fuel=1000))
    assert caught.value.code == "worker_failed"


def test_a_well_formed_error_reply_is_raised_as_is() -> None:
    reply = codec.encode({"network_isolated": False, "code": "trap", "message": "the module trapped: x"})
    with pytest.raises(SandboxError) as caught:
        _parse_reply(reply, "int", SandboxLimits())
    assert (caught.value.code, caught.value.message) == ("trap", "the module trapped: x")


def test_exit_errors_name_the_signal_or_the_exception_class_only() -> None:
    traceback = (
        b"Traceback (most recent call last):\n"
        b'  File "worker.py", line 1, in <module>\n'
        b"    raise ValueError(record)\n"
        b"ValueError: contribution 4321 is odd\n"
        b"\n"
        b"Caused by:\n"
        b"    more text\n"
    )
    failed = _exit_error(1, traceback, SandboxLimits())
    assert failed.code == "worker_failed"
    assert failed.message == "the worker exited with status 1 after raising ValueError"
    assert _exit_error(-signal.SIGKILL, b"", SandboxLimits()).message == "the worker was killed by SIGKILL"
    cpu = _exit_error(-signal.SIGXCPU, b"", SandboxLimits(cpu_seconds=3))
    assert (cpu.code, cpu.message) == ("timeout", "the worker used its CPU limit of 3 s and was stopped")
