"""Run a consumer's WebAssembly module over one citizen's records, in this process.

Why WebAssembly under wasmtime: the consumer's code must compute over records
it may never read, so it runs where the records are (the custodian node) in a
machine with nothing to reach: a module that imports anything is refused
before it is instantiated, so the only ways in and out are the
ABI (:mod:`privacy.sandbox.abi`) — the input bytes written into its memory
and the one i64 returned by ``qcl_run``.

Three limits bound what a module can consume, each mapped to a stable code:

* fuel (``Config.consume_fuel``): every WebAssembly instruction costs fuel;
  running out traps (``out_of_fuel``). Fuel use is a deterministic function of
  module, input and engine version, so it can be recorded in receipts.
* a wall deadline (``Config.epoch_interruption``): a timer thread increments
  the engine's epoch after ``wall_seconds``; the store's deadline is one tick,
  so the module traps at its next loop head or call (``timeout``).
* linear memory (``Store.set_limits``): instantiation fails if the declared
  minimum exceeds the cap, and ``memory.grow`` beyond it returns -1. A refused
  grow is not a trap, and wasmtime's C API neither reports it to the host nor
  can make it trap. So the host infers it: a run that fails in any way (out of
  fuel, a trap, the deadline, an allocation that does not fit) while its
  memory is *full* — not even one more 64 KiB page fits under the cap — is
  reported as ``memory_limit``, naming the underlying stop. A module that asks
  for many pages at once and then fails further from the cap gets the
  underlying code.

Engine settings (see :func:`_engine`): no parallel compilation (no thread
pool); linear memory reserved at exactly the cap, with no guard region,
instead of wasmtime's default 4 GiB virtual reservation plus guard pages.
Bounds checks then become explicit instructions — a little slower, same fuel
— and the isolated worker can run under a tight address-space limit
(``RLIMIT_AS``, see :mod:`privacy.sandbox.worker`). Each run gets its own
engine (~15 µs), so one run's epoch timer never cuts another run short.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import threading
from dataclasses import dataclass, fields
from typing import Any, cast

from wasmtime import (
    Config,
    Engine,
    Func,
    FuncType,
    Instance,
    Memory,
    MemoryType,
    Module,
    Store,
    Trap,
    TrapCode,
    WasmtimeError,
)

from privacy.sandbox.abi import (
    OutputValue,
    check_output_type,
    decode_input,
    decode_output,
    output_hash,
)
from privacy.sandbox.errors import SandboxError

__all__ = [
    "DEFAULT_LIMITS",
    "ENGINE",
    "MAX_MODULE_BYTES",
    "ModuleInfo",
    "SandboxLimits",
    "SandboxResult",
    "check_module",
    "check_wasm_bytes",
    "run_module",
]

ENGINE = f"wasmtime {importlib.metadata.version('wasmtime')}"
MAX_MODULE_BYTES = 1 << 20
WASM_MAGIC = b"\0asm"
_PAGE = 65536  # WebAssembly page size
_MAX_TABLE_ELEMENTS = 10_000
_TRAP_REASON = re.compile(r"wasm trap: ([^\n]+)")

# Exports every module must have: name → (params, results) of a function, or None for the memory.
_REQUIRED_EXPORTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]] | None] = {
    "memory": None,
    "qcl_alloc": (("i32",), ("i32",)),
    "qcl_run": (("i32", "i32"), ("i64",)),
}


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may consume. The last four only apply to :func:`run_isolated`'s worker process."""

    fuel: int = 50_000_000  # wasmtime fuel units (~1 per instruction); loan_score uses ~1,400
    memory_bytes: int = 16 * 1024 * 1024  # cap on linear memory
    wall_seconds: float = 2.0  # epoch deadline, from instantiation to the returned value
    cpu_seconds: int = 5  # RLIMIT_CPU of the worker (SIGXCPU at the limit)
    address_space_bytes: int = 256 << 20  # RLIMIT_AS of the worker: ~64 MiB + memory_bytes needed
    open_files: int = 16  # RLIMIT_NOFILE of the worker
    worker_seconds: float = 10.0  # the parent kills the worker after this: start-up + compile + run

    def __post_init__(self) -> None:
        for field in fields(self):
            value: Any = getattr(self, field.name)
            kind: type = type(field.default)
            if not isinstance(value, (int, float)) or type(value) is not kind or value <= 0:
                raise ValueError(f"SandboxLimits.{field.name} must be a positive {kind.__name__}")
        if self.memory_bytes < _PAGE or self.memory_bytes > 1 << 32:
            raise ValueError("SandboxLimits.memory_bytes must be between 64 KiB and 4 GiB")


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class ModuleInfo:
    """What :func:`check_module` learnt about an acceptable module."""

    module_hash: bytes  # SHA-256 of the module's bytes, as recorded in receipts
    size: int
    exports: tuple[str, ...]


@dataclass(frozen=True)
class SandboxResult:
    """The only thing that leaves the sandbox: a value of the declared type, and what it cost."""

    value: OutputValue
    output_type: str
    fuel_used: int
    output_hash: bytes  # abi.output_hash(value, output_type)
    network_isolated: bool = False  # True only from run_isolated when the worker's netns applied


def check_wasm_bytes(wasm: bytes) -> bytes:
    """Return ``wasm`` as bytes if it is a plausible WebAssembly binary by type, size and magic."""
    if not isinstance(wasm, (bytes, bytearray)):
        raise SandboxError("bad_module", f"module must be bytes, got {type(wasm).__name__}")
    if len(wasm) > MAX_MODULE_BYTES:
        raise SandboxError(
            "bad_module", f"module is {len(wasm)} bytes; at most {MAX_MODULE_BYTES} allowed"
        )
    if not wasm.startswith(WASM_MAGIC):
        raise SandboxError("bad_module", "not a WebAssembly binary (no \\0asm magic)")
    return bytes(wasm)


def check_module(wasm: bytes) -> ModuleInfo:
    """Validate and compile ``wasm``; raise SandboxError unless it meets the ABI and imports nothing."""
    return _compile(_engine(DEFAULT_LIMITS), wasm)[1]


def run_module(
    wasm: bytes, input: bytes, output_type: str, limits: SandboxLimits = DEFAULT_LIMITS
) -> SandboxResult:
    """Run ``qcl_run`` of ``wasm`` over ABI ``input`` in this process; return its ``output_type`` value."""
    check_output_type(output_type)
    decode_input(input)  # refuse malformed input before any module code runs
    data = bytes(input)
    engine = _engine(limits)
    module, _ = _compile(engine, wasm)
    store = Store(engine)
    store.set_fuel(limits.fuel)
    store.set_limits(
        memory_size=limits.memory_bytes,
        table_elements=_MAX_TABLE_ELEMENTS,
        instances=1,
        memories=1,
    )
    store.set_epoch_deadline(1)
    timer = threading.Timer(limits.wall_seconds, engine.increment_epoch)
    timer.daemon = True
    timer.start()
    try:
        raw = _execute(store, module, data, limits)
    finally:
        timer.cancel()
    value = decode_output(raw, output_type)
    return SandboxResult(
        value=value,
        output_type=output_type,
        fuel_used=limits.fuel - store.get_fuel(),
        output_hash=output_hash(value, output_type),
    )


def _engine(limits: SandboxLimits) -> Engine:
    config = Config()
    config.consume_fuel = True
    config.epoch_interruption = True
    config.parallel_compilation = False
    config.wasm_threads = False
    config.memory_reservation = limits.memory_bytes  # grow in place up to the cap, never move
    config.memory_guard_size = 0
    config.memory_reservation_for_growth = 0
    return Engine(config)


def _compile(engine: Engine, wasm: bytes) -> tuple[Module, ModuleInfo]:
    binary = check_wasm_bytes(wasm)
    try:
        module = Module(engine, binary)
    except WasmtimeError as exc:
        raise SandboxError("bad_module", f"not a valid module: {_first_line(exc)}") from None
    imports = [f"{item.module}.{item.name}" for item in module.imports]
    if imports:
        raise SandboxError(
            "imports_forbidden", f"the module imports {', '.join(imports)}; modules may import nothing"
        )
    exports = {item.name: item.type for item in module.exports}
    for name, signature in _REQUIRED_EXPORTS.items():
        _check_export(name, exports.get(name), signature)
    return module, ModuleInfo(module_hash=hashlib.sha256(binary).digest(), size=len(binary), exports=tuple(exports))


def _check_export(
    name: str, kind: object, signature: tuple[tuple[str, ...], tuple[str, ...]] | None
) -> None:
    if kind is None:
        raise SandboxError("bad_module", f"the module does not export {name!r}")
    if signature is None:
        if not isinstance(kind, MemoryType) or kind.is_64 or kind.is_shared:
            raise SandboxError("bad_module", f"export {name!r} must be a 32-bit, unshared memory")
        return
    params, results = signature
    if (
        not isinstance(kind, FuncType)
        or tuple(str(t) for t in kind.params) != params
        or tuple(str(t) for t in kind.results) != results
    ):
        raise SandboxError(
            "bad_module",
            f"export {name!r} must be a function ({', '.join(params)}) -> {', '.join(results)}",
        )


def _execute(store: Store, module: Module, data: bytes, limits: SandboxLimits) -> int:
    """Instantiate, copy the input in, call qcl_run; map every failure to a SandboxError."""
    try:
        instance = Instance(store, module, [])
    except Trap as trap:  # a start function or a data segment failed
        raise _trap_error(trap, limits) from None
    except WasmtimeError as exc:
        if "exceeds memory limits" in str(exc):
            raise SandboxError(
                "memory_limit",
                f"the module's initial memory exceeds the cap of {limits.memory_bytes} bytes",
            ) from None
        if "limit" in str(exc):  # a table too large, a second memory: the module's own shape
            raise SandboxError("bad_module", f"cannot instantiate: {_first_line(exc)}") from None
        raise  # the host failed (e.g. mmap refused): not a verdict on the module
    exports = instance.exports(store)  # their kinds and signatures were checked by _compile
    memory, alloc, run = (cast(Memory, exports["memory"]), cast(Func, exports["qcl_alloc"]),
                          cast(Func, exports["qcl_run"]))
    try:
        pointer: int = alloc(store, len(data)) & 0xFFFFFFFF
    except Trap as trap:
        raise _stopped(_trap_error(trap, limits), memory.data_len(store), limits) from None
    size = memory.data_len(store)
    if pointer + len(data) > size:
        if size + len(data) > limits.memory_bytes:
            raise SandboxError(
                "memory_limit",
                f"the {len(data)}-byte input does not fit in linear memory under the cap of "
                f"{limits.memory_bytes} bytes",
            )
        raise SandboxError(
            "trap",
            f"qcl_alloc returned a pointer at which the {len(data)}-byte input does not fit "
            "in linear memory",
        )
    memory.write(store, data, pointer)
    try:
        raw: int = run(store, pointer, len(data))
    except Trap as trap:
        raise _stopped(_trap_error(trap, limits), memory.data_len(store), limits) from None
    if store.get_fuel() == 0:  # see _out_of_fuel: fuel is checked at loop heads and calls only
        raise _out_of_fuel(limits)
    return raw


def _stopped(error: SandboxError, memory_size: int, limits: SandboxLimits) -> SandboxError:
    """``error``, or memory_limit if it happened with linear memory full (not one more page fits)."""
    if memory_size + _PAGE <= limits.memory_bytes:
        return error
    return SandboxError(
        "memory_limit",
        f"linear memory is full at the cap of {limits.memory_bytes} bytes (memory.grow "
        f"refuses more); the module then stopped ({error.code}: {error.message})",
    )


def _out_of_fuel(limits: SandboxLimits) -> SandboxError:
    # wasmtime checks fuel at function entries and loop heads, so the last straight-line
    # stretch of a run may overdraw it and still return, with 0 left. Such a run counts as
    # out of fuel: a run succeeds iff it needs less than its fuel, and fuel_used is then the
    # exact consumption, whatever the limit.
    return SandboxError("out_of_fuel", f"the module used all {limits.fuel} units of fuel")


def _trap_error(trap: Trap, limits: SandboxLimits) -> SandboxError:
    # Only the fixed reason is kept: the rest of wasmtime's text (e.g. a faulting
    # address) may be computed from the input.
    code = trap.trap_code
    if code is TrapCode.OUT_OF_FUEL:
        return _out_of_fuel(limits)
    if code is TrapCode.INTERRUPT:
        return SandboxError(
            "timeout", f"the module ran past the wall deadline of {limits.wall_seconds} s"
        )
    reasons = _TRAP_REASON.findall(str(trap))
    reason = reasons[-1] if reasons else (code.name.lower() if code else "unknown trap")
    return SandboxError("trap", f"the module trapped: {reason}")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
