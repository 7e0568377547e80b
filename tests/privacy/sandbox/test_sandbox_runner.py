"""In-process containment: module checks, limits, trap mapping, fuel determinism."""

from __future__ import annotations

import hashlib
import threading

import pytest
import sandbox_samples as samples
from privacy.sandbox import (
    ENGINE,
    MAX_MODULE_BYTES,
    SandboxError,
    SandboxLimits,
    check_module,
    encode_input,
    output_hash,
    run_module,
)

INPUT = encode_input([[1, 2, 3], [4]])


def expect(code: str, wasm: bytes, data: bytes = INPUT, output_type: str = "int", **limits: object) -> str:
    with pytest.raises(SandboxError) as caught:
        run_module(wasm, data, output_type, SandboxLimits(**limits))  # type: ignore[arg-type]
    assert caught.value.code == code, caught.value
    return caught.value.message


def test_engine_names_the_wasmtime_version() -> None:
    assert ENGINE == "wasmtime 50.0.1"


def test_check_module_describes_an_acceptable_module() -> None:
    info = check_module(samples.SUM)
    assert info.module_hash == hashlib.sha256(samples.SUM).digest()
    assert info.size == len(samples.SUM)
    assert set(info.exports) == {"memory", "qcl_alloc", "qcl_run"}


def test_imports_are_refused_and_listed() -> None:
    with pytest.raises(SandboxError) as caught:
        check_module(samples.IMPORTS_FD_WRITE)
    assert caught.value.code == "imports_forbidden"
    assert "wasi_snapshot_preview1.fd_write, env.leak" in caught.value.message
    expect("imports_forbidden", samples.IMPORTS_FD_WRITE)


@pytest.mark.parametrize(
    ("wasm", "fragment"),
    [
        (b"", "no \\0asm magic"),
        (b'(module (memory (export "memory") 1))', "no \\0asm magic"),  # WAT text is not accepted
        (b"\0asm\x01\0\0\0\xff\xff", "not a valid module: failed to parse WebAssembly module"),
        (b"\0asm" + b"\0" * MAX_MODULE_BYTES, f"at most {MAX_MODULE_BYTES} allowed"),
        ("\0asm", "module must be bytes, got str"),
        (samples.NO_RUN_EXPORT, "does not export 'qcl_run'"),
        (samples.NO_MEMORY_EXPORT, "does not export 'memory'"),
        (samples.RUN_RETURNS_I32, "'qcl_run' must be a function (i32, i32) -> i64"),
        (samples.ALLOC_TAKES_I64, "'qcl_alloc' must be a function (i32) -> i32"),
        (samples.MEMORY_IS_A_GLOBAL, "'memory' must be a 32-bit, unshared memory"),
    ],
)
def test_modules_breaking_the_abi_are_refused(wasm: bytes, fragment: str) -> None:
    with pytest.raises(SandboxError) as caught:
        check_module(wasm)
    assert caught.value.code == "bad_module"
    assert fragment in caught.value.message
    assert expect("bad_module", wasm) == caught.value.message


def test_a_normal_run_returns_the_value_fuel_and_hash() -> None:
    result = run_module(samples.SUM, INPUT, "int")
    assert result.value == 10
    assert result.output_type == "int"
    assert result.output_hash == output_hash(10, "int")
    assert 0 < result.fuel_used < 1000
    assert result.network_isolated is False


def test_the_host_writes_exactly_the_input() -> None:
    data = encode_input([[7] * 100] * 5)
    assert run_module(samples.LENGTH, data, "int").value == len(data)
    assert run_module(samples.SUM, data, "int").value == 3500


def test_i64_arithmetic_wraps_in_the_module() -> None:
    assert run_module(samples.SUM, encode_input([[2**63 - 1, 1]]), "int").value == -(2**63)


def test_fuel_is_deterministic_and_grows_with_work() -> None:
    small = encode_input([[1] * 10])
    large = encode_input([[1] * 1000])
    first, second = (run_module(samples.SUM, large, "int") for _ in range(2))
    assert first.fuel_used == second.fuel_used
    assert run_module(samples.SUM, small, "int").fuel_used < first.fuel_used


def test_fuel_is_a_hard_limit_and_fuel_used_does_not_depend_on_it() -> None:
    needed = run_module(samples.SUM, INPUT, "int").fuel_used
    for fuel in (needed + 1, needed + 1000, 10**15):
        assert run_module(samples.SUM, INPUT, "int", SandboxLimits(fuel=fuel)).fuel_used == needed
    # wasmtime checks fuel only at calls and loop heads: a run that overdraws in its last
    # straight-line stretch returns with 0 left, and counts as out of fuel all the same
    for fuel in (needed, needed - 1, needed - 20, 1):
        assert expect("out_of_fuel", samples.SUM, fuel=fuel) == f"the module used all {fuel} units of fuel"


def test_an_endless_loop_runs_out_of_fuel() -> None:
    expect("out_of_fuel", samples.LOOP_FOREVER)
    expect("out_of_fuel", samples.START_LOOPS)  # fuel also bounds the start function


def test_with_unbounded_fuel_the_wall_deadline_stops_it() -> None:
    message = expect("timeout", samples.LOOP_FOREVER, fuel=10**18, wall_seconds=0.2)
    assert message == "the module ran past the wall deadline of 0.2 s"
    expect("timeout", samples.START_LOOPS, fuel=10**18, wall_seconds=0.2)


def test_one_runs_deadline_does_not_cut_another_short() -> None:
    outcome: list[str] = []
    spinner = threading.Thread(
        target=lambda: outcome.append(expect("timeout", samples.LOOP_FOREVER, fuel=10**18, wall_seconds=0.3))
    )
    spinner.start()
    values = [run_module(samples.SUM, INPUT, "int", SandboxLimits(wall_seconds=5.0)).value for _ in range(50)]
    spinner.join()
    assert values == [10] * 50 and len(outcome) == 1


def test_unbounded_memory_growth_stops_at_the_cap() -> None:
    # memory.grow returns -1 at the cap (no trap); the module keeps asking until out of fuel
    message = expect("memory_limit", samples.GROW_FOREVER)
    assert "full at the cap of 16777216 bytes" in message and "out_of_fuel" in message
    # with unbounded fuel the deadline ends it, still reported as the memory cap
    message = expect("memory_limit", samples.GROW_FOREVER, fuel=10**18, wall_seconds=0.2)
    assert "(timeout:" in message
    message = expect("memory_limit", samples.GROW_THEN_ABORT, memory_bytes=1 << 20)
    assert "full at the cap of 1048576 bytes" in message and "unreachable" in message


def test_a_large_grow_refused_far_from_the_cap_reports_the_underlying_trap() -> None:
    # documented limit of the inference: wasmtime does not tell the host that a grow was refused
    assert "unreachable" in expect("trap", samples.GROW_IN_CHUNKS_THEN_ABORT)


def test_initial_memory_above_the_cap_is_refused() -> None:
    expect("memory_limit", samples.HUGE_INITIAL_MEMORY)
    assert run_module(samples.HUGE_INITIAL_MEMORY, INPUT, "int", SandboxLimits(memory_bytes=64 << 20)).value == 0


def test_an_input_that_does_not_fit_under_the_cap() -> None:
    # the allocator's memory.grow is refused, it returns -1: the pointer is outside memory
    data = encode_input([[0] * 4096] * 8)  # 262 KiB
    message = expect("memory_limit", samples.SUM, data, memory_bytes=128 << 10)
    assert message == "the 262184-byte input does not fit in linear memory under the cap of 131072 bytes"


@pytest.mark.parametrize(
    ("wasm", "reason"),
    [
        (samples.UNREACHABLE, "wasm `unreachable` instruction executed"),
        (samples.DIVIDE_BY_ZERO, "integer divide by zero"),
        (samples.READ_OUT_OF_BOUNDS, "out of bounds memory access"),
        (samples.RECURSE_FOREVER, "call stack exhausted"),
    ],
)
def test_traps_carry_only_the_fixed_reason(wasm: bytes, reason: str) -> None:
    assert expect("trap", wasm) == f"the module trapped: {reason}"


def test_a_trap_address_derived_from_the_input_is_not_reported() -> None:
    data = encode_input([[0xAB]])
    message = expect("trap", samples.READ_OUT_OF_BOUNDS, data)
    address = 70000 + 0xAB
    assert hex(address) not in message and str(address) not in message


def test_a_pointer_outside_memory_is_refused() -> None:
    message = expect("trap", samples.BAD_POINTER)
    assert message == "qcl_alloc returned a pointer at which the 48-byte input does not fit in linear memory"


def test_bool_outputs() -> None:
    assert run_module(samples.FIRST_VALUE, encode_input([[1]]), "bool").value is True
    assert run_module(samples.FIRST_VALUE, encode_input([[0]]), "bool").value is False
    message = expect("bad_output", samples.FIRST_VALUE, encode_input([[987654321]]), "bool")
    assert "987654321" not in message
    expect("bad_output", samples.RETURN_SEVEN, output_type="bool")


def test_bad_requests_are_refused_before_running() -> None:
    expect("bad_input", samples.SUM, output_type="float")
    expect("bad_input", samples.SUM, b"QCL1\x01\x00\x00\x00")
    expect("bad_input", samples.SUM, INPUT + b"\x00")


@pytest.mark.parametrize(
    "limits",
    [{"fuel": 0}, {"memory_bytes": 1000}, {"wall_seconds": 2}, {"cpu_seconds": -1}, {"open_files": 1.0}],
)
def test_limits_are_validated(limits: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SandboxLimits(**limits)  # type: ignore[arg-type]
