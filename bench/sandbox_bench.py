"""Sandbox benchmark: what one consumer computation costs on the custodian node.

    python -m bench.sandbox_bench              # 20 runs of each step
    python -m bench.sandbox_bench --runs 50

Each figure is the median (and min / max) wall time of ``--runs`` repetitions of a
step with the shipped ``loan_score`` module over one citizen's input (24 + 24 + 3
values); the steps are timed round-robin after one untimed warm-up round:

- check_module: validate + compile with Cranelift + import/export checks;
- run_module: everything the in-process path does — input check, a fresh
  engine, compile, instantiate, qcl_alloc, copy, qcl_run, output hash;
- worker start-up: ``python -B -s -c "import privacy.sandbox.worker"`` in a
  fresh process — the floor under run_isolated;
- run_isolated: end to end — process start, imports, network namespace,
  rlimits, job over stdin, compile, run, reply over stdout, parent checks.

The fuel used is printed too: it must be the same in both paths.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from privacy.sandbox import (
    ENGINE,
    SandboxLimits,
    check_module,
    encode_input,
    load_module,
    run_isolated,
    run_module,
)

_ROOT = Path(__file__).resolve().parents[1]


def timed(steps: dict[str, Callable[[], object]], runs: int) -> dict[str, list[float]]:
    """Wall times of each step, interleaved round-robin so that load drifting on a shared
    machine affects every step alike; one untimed warm-up round first (imports, caches)."""
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(runs + 1):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            if round_:
                samples[name].append(time.perf_counter() - started)
    return samples


def report(name: str, samples: list[float]) -> None:
    print(
        f"{name:<18} {statistics.median(samples) * 1e3:>10.2f} {min(samples) * 1e3:>10.2f} "
        f"{max(samples) * 1e3:>10.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="repetitions per step (at least 10)")
    args = parser.parse_args()
    runs = max(args.runs, 10)

    wasm = load_module("loan_score")
    data = encode_input([[1200] * 24, [300] * 24, [4, 500_000, 1]])
    limits = SandboxLimits()
    worker_start = [sys.executable, "-B", "-s", "-c", "import privacy.sandbox.worker"]

    print(f"machine: {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, {ENGINE}")
    print(f"limits: {asdict(limits)}")
    print(f"module: loan_score, {len(wasm)} bytes; input {len(data)} bytes; {runs} runs per step\n")
    print(f"{'step':<18} {'median ms':>10} {'min ms':>10} {'max ms':>10}")
    steps: dict[str, Callable[[], object]] = {
        "check_module": lambda: check_module(wasm),
        "run_module": lambda: run_module(wasm, data, "int", limits),
        "worker start-up": lambda: subprocess.run(worker_start, check=True, env={"PYTHONPATH": str(_ROOT)}),
        "run_isolated": lambda: run_isolated(wasm, data, "int", limits),
    }
    for name, samples in timed(steps, runs).items():
        report(name, samples)

    local = run_module(wasm, data, "int", limits)
    isolated = run_isolated(wasm, data, "int", limits)
    print(
        f"\nscore {local.value}; fuel used in process {local.fuel_used:,}, isolated {isolated.fuel_used:,}; "
        f"network namespace applied: {isolated.network_isolated}"
    )


if __name__ == "__main__":
    main()
