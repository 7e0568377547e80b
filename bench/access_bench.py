"""Consented-access benchmark: ``POST /v1/access`` over HTTP against one real node.

    make bench-access                                   # both setups, C = 16, 64, 128, 20 s each
    make bench-access BENCH_ARGS="--quick"              # a few seconds: smoke run
    make bench-access BENCH_ARGS="--setup process --concurrency 64 --duration 30"

What runs:
- a node on a fresh data directory (LevelDB, synced writes, the HTTP API via
  uvicorn): ``--setup process`` starts ``qcl node start`` as its own process;
  ``--setup embedded`` runs :func:`node.embedded.embedded_node` inside this
  benchmark's process (which only waits while the load runs);
- seeding over the API: ``--citizens`` enrolled citizens, each with a vehicle
  registration and a traffic-violation record (published by jinan-psb) and an
  active consent to taiping-insurance for both types, with use and frequency
  limits far above what a run consumes — so the figures measure the granting
  path, not refusals;
- the load: ``--workers`` generator processes (spawned, each an asyncio loop
  with one ``httpx.AsyncClient`` signing every request with the insurer's key
  through :class:`client.auth.RequestSigner`) keep C requests in flight in
  total, each for a random seeded citizen under their consent, sealed to a
  fresh X25519 key; every answer is acknowledged by the node only after its
  access record is durable (node/access.py).

What is reported per concurrency level (after ``--warmup`` seconds of load
that count nowhere): successful answers/s received in the ``--duration``
window; latency percentiles of the answers received in it (client-side:
sign, send, wait, parse); errors by code; the blocks committed in the window and
the access records per block (the group-commit factor, from the node's
signed checkpoints at the window's edges); the CPU each side used in the
window as % of one core (node: its process and children, from /proc; load:
the generator processes) and the node's CPU per successful query — both
sides share the machine's cores.

Correctness, checked after each level: 1 answer in ``--sample-every`` is
opened and verified end to end (:func:`client.received.verify_access_answer`:
checkpoint signature, inclusion proof, access record, result hash, every
record's commitment), and the regulator's count of committed granted access
records for the insurer equals the number of successful answers so far.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

from client.auth import RequestSigner
from client.citizen import SafeBox
from client.consumer import Consumer
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.provider import Provider
from client.received import ReceiptError, verify_access_answer
from client.regulator import Regulator
from client.sdk import LedgerClient
from ledger.crypto import KeyPair
from node.devnet import load_node_config
from node.embedded import embedded_node, free_port
from node.runtime import clock_ms
from privacy.envelope import generate_x25519

CONSUMER = "taiping-insurance"
REGULATOR = "pbc-jinan"
DATA_TYPES = ["vehicle.registration", "traffic.violation"]
SEED_THREADS = 16
ONE_CONNECTION = httpx.Limits(max_connections=1, max_keepalive_connections=1)
NODE_START_TIMEOUT_S = 60
RESULT_GRACE_S = 180  # after the window: drain the last requests, verify the samples


# --- the node ------------------------------------------------------------------


@contextmanager
def running_node(setup: str, data_dir: Path) -> Iterator[tuple[str, int]]:
    """Yield (base URL, pid of the process serving it) for a node on ``data_dir``."""
    if setup == "embedded":
        with embedded_node(data_dir) as node:
            yield node.url, os.getpid()
        return
    port = free_port()
    command = [sys.executable, "-m", "client.cli", "node", "start", "--data-dir", str(data_dir), "--port", str(port)]
    log_path = data_dir.parent / "node.log"  # a file, not a pipe: nobody reads a pipe during the run
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log_path)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_serving(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + NODE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the node exited with {process.returncode}:\n{log_path.read_text()[-2000:]}")
        try:
            httpx.get(f"{url}/v1/network", timeout=1)  # any answer (401: unsigned) means it serves
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"the node did not serve {url} within {NODE_START_TIMEOUT_S} s")


def cpu_seconds(pid: int, exclude: frozenset[int] = frozenset()) -> float | None:
    """User + system CPU of ``pid`` and its live descendants (minus ``exclude``), from /proc; None elsewhere."""
    try:
        entries = [name for name in os.listdir("/proc") if name.isdigit()]
    except FileNotFoundError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent pid, CPU seconds)
    for name in entries:
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        stats[int(name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    total, frontier = 0.0, [pid]
    while frontier:
        current = frontier.pop()
        if current in exclude or current not in stats:
            continue
        total += stats[current][1]
        frontier.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


# --- seeding -------------------------------------------------------------------


@dataclass(frozen=True)
class Seeded:
    consumer_seed: bytes
    targets: list[tuple[bytes, bytes]]  # (citizen key, consent id)
    node_keys: dict[bytes, str]


def seed(url: str, data_dir: Path, citizens: int, rng: random.Random) -> Seeded:
    """Enroll ``citizens``, publish two records each, and have each grant the insurer a wide consent."""
    config = load_node_config(data_dir)
    keys = [KeyPair.generate() for _ in range(citizens)]
    now = clock_ms()
    authority = config.admin_key("jinan-bigdata")
    with LedgerClient(url, key=authority) as bureau:
        enrollments = [
            enrollment_transaction(authority, key, bureau.network_id, synthetic_national_id(rng), os.urandom(32), time_ms=now)
            for key in keys
        ]
        refused = [r for r in bureau.submit(enrollments) if r["status"] != "committed"]
        if refused:
            raise RuntimeError(f"enrollment refused: {refused[0]}")
        node_keys = bureau.node_keys()
    with (
        LedgerClient(url, key=config.admin_key("jinan-psb")) as psb_client,
        LedgerClient(url, key=config.admin_key(CONSUMER)) as insurer_client,
        ThreadPoolExecutor(SEED_THREADS) as threads,
    ):
        psb, insurer = Provider(psb_client, clock_ms), Consumer(insurer_client, clock_ms)

        def publish(key: KeyPair) -> None:
            plate = f"鲁A{rng.randrange(10**5):05d}"
            psb.publish(key.public_key, "vehicle.registration",
                        {"plate": plate, "vehicle_type": "car", "brand": "BYD", "registered": "2021-03-04", "status": "normal"},
                        as_of=now - 60_000)
            psb.publish(key.public_key, "traffic.violation",
                        {"plate": plate, "count": 2, "points": 3, "fines": 200, "latest": "speeding"}, as_of=now - 60_000)

        def consent(key: KeyPair) -> bytes:
            consent_id = insurer.request_consent(
                key.public_key, DATA_TYPES, purpose_code="insurance.claim", purpose_text="car accident claim (benchmark)",
                valid_days=30, contact="claims@taiping.example", max_uses=1_000_000, frequency=(1_000_000, "hour"),
            )
            with LedgerClient(url, key=key) as own:
                SafeBox(own, clock_ms).grant(consent_id)
            return consent_id

        list(threads.map(publish, keys))
        consent_ids = list(threads.map(consent, keys))
    return Seeded(config.admin_key(CONSUMER).seed, [(k.public_key, c) for k, c in zip(keys, consent_ids)], node_keys)


# --- the load generator (one spawned process each) -------------------------------


@dataclass(frozen=True)
class LoadPlan:
    url: str
    seeded: Seeded
    concurrency: int  # in flight in this process
    warmup_s: float
    duration_s: float
    sample_every: int
    rng_seed: int


@dataclass
class LoadResult:
    latencies_s: list[float] = field(default_factory=list)  # every answer that arrived within the window
    window_ok: int = 0  # granted answers that arrived within the window
    window_errors: Counter[str] = field(default_factory=Counter)
    total_ok: int = 0  # every granted answer, warm-up and drain included
    verified: int = 0
    verify_failures: list[str] = field(default_factory=list)
    cpu_s: float = 0.0  # this process, within the window


def generate_load(plan: LoadPlan, barrier: Any, results: Any) -> None:
    """Process entry point: wait for every generator, run the plan, put a LoadResult on ``results``."""
    barrier.wait()
    results.put(asyncio.run(_load(plan, time.monotonic())))


async def _load(plan: LoadPlan, started: float) -> LoadResult:
    window_start = started + plan.warmup_s
    window_end = window_start + plan.duration_s
    rng = random.Random(plan.rng_seed)
    result = LoadResult()
    samples: list[tuple[dict[str, Any], bytes, bytes]] = []
    key = KeyPair.from_seed(plan.seeded.consumer_seed)
    signer = RequestSigner(key)
    loop = asyncio.get_running_loop()
    cpu_marks: list[float] = []
    loop.call_at(window_start, lambda: cpu_marks.append(time.process_time()))
    loop.call_at(window_end, lambda: cpu_marks.append(time.process_time()))

    async def one(client: httpx.AsyncClient) -> None:
        subject, consent_id = rng.choice(plan.seeded.targets)
        private_key, public_key = generate_x25519()
        body = {"subject": subject.hex(), "consent_id": consent_id.hex(), "recipient_key": public_key.hex()}
        begun = time.monotonic()
        try:
            response = await client.post("/v1/access", json=body)
            answer, code = response.json(), None
            if response.status_code != 200:
                code = answer.get("error", {}).get("code", f"http_{response.status_code}")
        except httpx.HTTPError as exc:
            code = type(exc).__name__
        except ValueError:  # not the node's JSON
            code = f"http_{response.status_code}"
        ended = time.monotonic()
        if code is None:
            result.total_ok += 1
            if result.total_ok % plan.sample_every == 0:
                samples.append((answer, private_key, subject))
        if window_start <= ended <= window_end:
            result.latencies_s.append(ended - begun)
            if code is None:
                result.window_ok += 1
            else:
                result.window_errors[code] += 1

    async def keep_one_in_flight() -> None:
        # One client (one connection) per slot: a shared pool's bookkeeping grows with the
        # number of waiting requests and made the generator, not the node, the bottleneck.
        async with httpx.AsyncClient(base_url=plan.url, auth=signer, limits=ONE_CONNECTION, timeout=120) as client:
            while time.monotonic() < window_end:
                await one(client)

    await asyncio.gather(*(keep_one_in_flight() for _ in range(plan.concurrency)))
    result.cpu_s = cpu_marks[1] - cpu_marks[0] if len(cpu_marks) == 2 else 0.0
    for answer, private_key, subject in samples:  # after the window: verification costs no load time
        try:
            verify_access_answer(
                answer, recipient_private_key=private_key, requester=key.public_key, subject=subject, node_keys=plan.seeded.node_keys
            )
            result.verified += 1
        except ReceiptError as exc:
            result.verify_failures.append(str(exc))
    return result


# --- one level, the regulator's count, the table ----------------------------------


@dataclass(frozen=True)
class LevelFigures:
    setup: str
    concurrency: int
    duration_s: float
    latencies_s: list[float]
    window_ok: int
    window_errors: Counter[str]
    total_ok: int
    blocks: int
    records: int
    node_cpu_s: float | None
    load_cpu_s: float
    verified: int
    verify_failures: list[str]


def run_level(url: str, node_pid: int, seeded: Seeded, args: argparse.Namespace, setup: str, concurrency: int) -> LevelFigures:
    """Drive ``concurrency`` requests in flight from ``args.workers`` processes; read the node at the window's edges."""
    context = multiprocessing.get_context("spawn")
    workers = min(args.workers, concurrency)
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    shares = [concurrency // workers + (1 if i < concurrency % workers else 0) for i in range(workers)]
    processes = [
        context.Process(
            target=generate_load,
            args=(LoadPlan(url, seeded, share, args.warmup, args.duration, args.sample_every, args.seed * 1000 + i), barrier, results),
            name=f"load-{i}",
        )
        for i, share in enumerate(shares)
    ]
    for process in processes:
        process.start()
    exclude = frozenset(process.pid for process in processes if process.pid is not None)
    with LedgerClient(url, key=KeyPair.from_seed(seeded.consumer_seed)) as reader:
        barrier.wait()
        window_start = time.monotonic() + args.warmup
        time.sleep(max(0.0, window_start - time.monotonic()))
        head_before, cpu_before = reader.checkpoint().checkpoint, cpu_seconds(node_pid, exclude)
        time.sleep(max(0.0, window_start + args.duration - time.monotonic()))
        head_after, cpu_after = reader.checkpoint().checkpoint, cpu_seconds(node_pid, exclude)
    loads: list[LoadResult] = [results.get(timeout=args.duration + RESULT_GRACE_S) for _ in processes]
    for process in processes:
        process.join()
    return LevelFigures(
        setup=setup,
        concurrency=concurrency,
        duration_s=args.duration,
        latencies_s=sorted(latency for load in loads for latency in load.latencies_s),
        window_ok=sum(load.window_ok for load in loads),
        window_errors=sum((load.window_errors for load in loads), Counter()),
        total_ok=sum(load.total_ok for load in loads),
        blocks=head_after.height - head_before.height,
        records=head_after.tree_size - head_before.tree_size,
        node_cpu_s=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        load_cpu_s=sum(load.cpu_s for load in loads),
        verified=sum(load.verified for load in loads),
        verify_failures=[failure for load in loads for failure in load.verify_failures],
    )


def granted_on_ledger(url: str, data_dir: Path) -> int:
    """The regulator's count of committed granted access records of the insurer (paged GET /v1/access)."""
    count, after = 0, None
    with LedgerClient(url, key=load_node_config(data_dir).admin_key(REGULATOR)) as client:
        regulator = Regulator(client)
        while page := regulator.accesses(consumer=CONSUMER, outcome="granted", after=after, limit=1000):
            count += len(page)
            after = page[-1]["log_index"]
    return count


def percentile_ms(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted seconds, in ms (nan when empty)."""
    if not ordered:
        return float("nan")
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def table_row(f: LevelFigures) -> str:
    lat = f.latencies_s
    errors = ",".join(f"{code}:{n}" for code, n in f.window_errors.most_common()) or "-"
    per_block = f"{f.records / f.blocks:.1f}" if f.blocks else "-"
    node_cpu = "n/a" if f.node_cpu_s is None else f"{100 * f.node_cpu_s / f.duration_s:.0f}%"
    per_query = "n/a" if f.node_cpu_s is None or not f.window_ok else f"{1000 * f.node_cpu_s / f.window_ok:.2f}"
    return (
        f"{f.setup:>8} {f.concurrency:>4} {f.window_ok / f.duration_s:>8,.0f} {percentile_ms(lat, 0.5):>7.1f} "
        f"{percentile_ms(lat, 0.9):>7.1f} {percentile_ms(lat, 0.99):>7.1f} {1000 * lat[-1] if lat else float('nan'):>7.1f} "
        f"{f.blocks:>6} {per_block:>9} {node_cpu:>6} {per_query:>9} {100 * f.load_cpu_s / f.duration_s:>5.0f}% {errors}"
    )


TABLE_HEADER = (
    f"{'setup':>8} {'C':>4} {'ok q/s':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'max ms':>7} "
    f"{'blocks':>6} {'rec/block':>9} {'node':>6} {'node ms/q':>9} {'load':>6} errors"
)


def bench_setup(setup: str, args: argparse.Namespace) -> list[LevelFigures]:
    with tempfile.TemporaryDirectory(prefix="qcl-access-bench-") as scratch:
        data_dir = Path(scratch) / "node"
        with running_node(setup, data_dir) as (url, pid):
            started = time.perf_counter()
            seeded = seed(url, data_dir, args.citizens, random.Random(args.seed))
            print(f"[{setup}] node pid {pid} at {url}; seeded {args.citizens} citizens "
                  f"(2 records + 1 consent each) in {time.perf_counter() - started:.1f} s", flush=True)
            figures, answered = [], 0
            for concurrency in args.concurrency:
                level = run_level(url, pid, seeded, args, setup, concurrency)
                answered += level.total_ok
                on_ledger = granted_on_ledger(url, data_dir)
                print(f"  {table_row(level)}", flush=True)
                print(f"    check: {level.verified} sampled answers verified end to end, {len(level.verify_failures)} failed; "
                      f"granted records on the ledger {on_ledger:,} vs successful answers {answered:,}: "
                      f"{'equal' if on_ledger == answered else 'MISMATCH'}", flush=True)
                if level.verify_failures or on_ledger != answered:
                    raise SystemExit(f"correctness check failed: {level.verify_failures[:3]} ledger={on_ledger} answers={answered}")
                figures.append(level)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", choices=["process", "embedded", "both"], help="default: both (process with --quick)")
    parser.add_argument("--concurrency", type=lambda text: [int(c) for c in text.split(",")], default=[16, 64, 128])
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before each window")
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="load generator processes")
    parser.add_argument("--sample-every", type=int, default=100, help="verify one answer in this many")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 20 citizens, C=16, 1 s + 3 s")
    args = parser.parse_args()
    if args.quick:
        args.citizens, args.concurrency, args.warmup, args.duration, args.sample_every = 20, [16], 1.0, 3.0, 10
    chosen = args.setup or ("process" if args.quick else "both")
    setups = ["process", "embedded"] if chosen == "both" else [chosen]
    print(f"machine: {os.cpu_count()} cores shared by the node and {args.workers} load processes "
          f"(load average before the run: {os.getloadavg()[0]:.1f}); "
          f"{args.warmup:g} s warm-up + {args.duration:g} s measured per level", flush=True)
    print(f"  {TABLE_HEADER}", flush=True)
    figures = [level for setup in setups for level in bench_setup(setup, args)]
    print("\nsummary (node, load: CPU in the window as % of one core; node ms/q: node CPU per successful query)")
    print(f"  {TABLE_HEADER}")
    for level in figures:
        print(f"  {table_row(level)}")


if __name__ == "__main__":
    main()
