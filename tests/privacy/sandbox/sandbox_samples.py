"""Misbehaving and minimal modules for the sandbox tests, as WAT, plus Python twins of the shipped ones.

Every module here follows the ABI except where its name says otherwise; the
twins restate the formulas documented in the shipped .wat files, so a test
that compares them fails if either drifts.
"""

from __future__ import annotations

from typing import Sequence

from wasmtime import wat2wasm

# The shipped modules' allocator: input at offset 1024, memory grown to fit, -1 if refused.
ALLOC = """
  (func (export "qcl_alloc") (param $len i32) (result i32)
    (local $pages i32)
    (local.set $pages (i32.shr_u (i32.add (local.get $len) (i32.const 66559)) (i32.const 16)))
    (if (i32.gt_u (local.get $pages) (memory.size))
      (then (if (i32.eq (memory.grow (i32.sub (local.get $pages) (memory.size))) (i32.const -1))
        (then (return (i32.const -1))))))
    (i32.const 1024))
"""


def module(run_body: str, *, extra: str = "", memory: str = '(memory (export "memory") 1)') -> bytes:
    """A module with the standard allocator whose qcl_run is ``run_body`` (result i64)."""
    return bytes(
        wat2wasm(
            f"""(module {memory} {extra} {ALLOC}
              (func (export "qcl_run") (param $p i32) (param $len i32) (result i64) {run_body}))"""
        )
    )


# qcl_run returns the sum of every value of every vector (wrapping i64 arithmetic).
SUM = module(
    """(local $at i32) (local $end i32) (local $n i32) (local $k i32) (local $sum i64)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (local.set $at (i32.add (local.get $p) (i32.const 8)))
    (block $done (loop $vector
      (br_if $done (i32.ge_u (local.get $at) (local.get $end)))
      (local.set $n (i32.load (local.get $at)))
      (local.set $at (i32.add (local.get $at) (i32.const 4)))
      (local.set $k (i32.const 0))
      (block $next (loop $value
        (br_if $next (i32.eq (local.get $k) (local.get $n)))
        (local.set $sum (i64.add (local.get $sum) (i64.load (local.get $at))))
        (local.set $at (i32.add (local.get $at) (i32.const 8)))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $value)))
      (br $vector)))
    (local.get $sum)"""
)

# qcl_run returns the input length: lets tests see exactly what the host wrote.
LENGTH = module("(i64.extend_i32_u (local.get $len))")

LOOP_FOREVER = module("(loop $spin (br $spin)) (i64.const 0)")

# Grows one page at a time, ignoring refusals, forever.
GROW_FOREVER = module("(loop $grow (drop (memory.grow (i32.const 1))) (br $grow)) (i64.const 0)")

# Grows a page at a time until memory.grow refuses, then traps like an allocation failure (abort).
GROW_THEN_ABORT = module(
    "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 1)) (i32.const -1)))) unreachable"
)
# The same in 1 MiB steps: from 241 pages, a request for 16 more is refused with 15 pages still free.
GROW_IN_CHUNKS_THEN_ABORT = module(
    "(loop $grow (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable"
)

# Asks for 1000 pages (62.5 MiB) before running anything.
HUGE_INITIAL_MEMORY = module("(i64.const 0)", memory='(memory (export "memory") 1000)')

UNREACHABLE = module("unreachable")
DIVIDE_BY_ZERO = module("(i64.div_s (i64.const 1) (i64.sub (i64.const 1) (i64.const 1)))")
# Reads 8 bytes at an address computed from the input (past the end of a 1-page memory).
READ_OUT_OF_BOUNDS = module("(i64.load (i32.add (i32.const 70000) (i32.load8_u offset=12 (local.get $p))))")
RECURSE_FOREVER = module(
    "(call $deeper)", extra="(func $deeper (result i64) (i64.add (call $deeper) (i64.const 1)))"
)
RETURN_SEVEN = module("(i64.const 7)")
# Returns the first value of the first vector: a bool module when that value is 0 or 1.
FIRST_VALUE = module("(i64.load offset=12 (local.get $p))")

# qcl_alloc hands back a pointer past the end of memory.
BAD_POINTER = bytes(
    wat2wasm(
        """(module (memory (export "memory") 1)
          (func (export "qcl_alloc") (param i32) (result i32) (i32.const 65530))
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)

IMPORTS_FD_WRITE = bytes(
    wat2wasm(
        """(module
          (import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
          (import "env" "leak" (func (param i64)))
          (memory (export "memory") 1)
          (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)

NO_RUN_EXPORT = bytes(wat2wasm(f'(module (memory (export "memory") 1) {ALLOC})'))
RUN_RETURNS_I32 = bytes(
    wat2wasm(
        f"""(module (memory (export "memory") 1) {ALLOC}
          (func (export "qcl_run") (param i32 i32) (result i32) (i32.const 0)))"""
    )
)
ALLOC_TAKES_I64 = bytes(
    wat2wasm(
        """(module (memory (export "memory") 1)
          (func (export "qcl_alloc") (param i64) (result i32) (i32.const 0))
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)
MEMORY_IS_A_GLOBAL = bytes(
    wat2wasm(
        f"""(module (memory 1) (global (export "memory") i32 (i32.const 0)) {ALLOC}
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)
NO_MEMORY_EXPORT = bytes(
    wat2wasm(
        f"""(module (memory 1) {ALLOC}
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)
# A start function that never returns: stopped during instantiation.
START_LOOPS = bytes(
    wat2wasm(
        f"""(module (memory (export "memory") 1) {ALLOC}
          (func $start (loop $spin (br $spin)))
          (start $start)
          (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 0)))"""
    )
)


def loan_score_twin(contributions: Sequence[int], taxes: Sequence[int], licence: Sequence[int]) -> int:
    """The formula documented in privacy/sandbox/modules/loan_score.wat, in plain Python."""
    paid = sum(1 for amount in contributions if amount > 0)
    average = sum(min(max(amount, 0), 100_000) for amount in contributions) // 24
    taxed = sum(1 for amount in taxes if amount > 0)
    years, capital, active = licence
    score = (
        300
        + 10 * paid
        + min(average, 5000) // 50
        + 5 * taxed
        + 6 * min(max(years, 0), 10)
        + (30 if capital >= 1_000_000 else 15 if capital >= 100_000 else 0)
        + (40 if active == 1 else -100)
    )
    return min(max(score, 300), 850)


def insurance_eligibility_twin(claims: Sequence[int]) -> bool:
    """The rule documented in privacy/sandbox/modules/insurance_eligibility.wat, in plain Python."""
    _year, visits, total, reimbursed = claims
    return 0 <= visits <= 12 and 0 <= total <= 50_000 and 0 <= reimbursed <= total and total - reimbursed <= 20_000
