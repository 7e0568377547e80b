"""Consortium benchmark: 3 peers ordered by a 3-member etcd cluster, all real processes on this machine.

    make bench-consortium                                  # the full sweep, ~4 minutes
    make bench-consortium BENCH_ARGS="--quick"             # two levels, one short run: smoke run
    make bench-consortium BENCH_ARGS="--rates 1000,1250 --runs 5 --seconds 10"

Why it is built this way: the claim to check is "throughput and commit latency
from submission to commit on ALL peers", so the network is exactly what
``qcl network up`` starts (node/localnet.py: 3 etcd members and ``--peers``
peers, each ``qcl node start`` in its own process with its own data directory,
LevelDB with synced writes, the etcd orderer), and the load arrives over HTTP
like any client's. What is not the system under test is kept off the clock or
made cheap, and what it still costs is printed:

- the workload (citizen enrollments, two Ed25519 signatures each: the identity
  authority's and the citizen's) is signed before any timing, on every core
  (:func:`bench.ledger_bench.make_workload`), and every request body is
  pre-built; only the request's own signature is made at send time;
- the load is open-loop: request ``i`` of ``--per-request`` transactions is due
  at ``t0 + i * per_request / rate`` and goes round-robin to the peers; latency
  counts from when it was due, so a generator that falls behind cannot hide
  queueing (at most ``--backlog-s`` seconds of offered load are in flight;
  beyond that the generator waits, and the wait counts);
- commit on the submitting peer is the arrival of its API answer (the API
  answers only after the synced block write); commit on any other peer is the
  first evidence that its height reached the transaction's block (every peer
  builds the same blocks, so the answer's height holds everywhere): a poll of
  its ``/healthz`` every ``--poll-ms`` over one kept-alive connection (parsed
  by hand, not through an HTTP library), or an answer it gave to another
  request. A commit is seen at most one poll interval plus a round trip late:
  "p50 ms" and "p99 ms" are upper bounds; "p50 low" is the p50 with every
  commit placed at the last poll that did not show it yet, a lower bound. What
  the polls cost is measured on the idle network before the levels and printed;
- "ordered" is when the batch holding the transaction reached this process
  through its own etcd watch of the stream key (one more watcher, values not
  decoded); "put" is a small put on a side key every 100 ms, etcd's latency
  under the load. Together they split the latency into ordering and committing.

Requests carry 50 transactions by default, below ``PrecheckPool.INLINE_BELOW``
(64): a peer checks such a request in its API thread. Larger requests go to the
precheck pool, whose worker processes today die when the API thread that
started them exits (bench/README.md); a peer then stops committing, and the
benchmark stops with the end of that peer's log rather than print figures.

Per level and run: after ``--warmup`` seconds, a window of ``--seconds``
counts. Throughput is the transactions whose commit on ALL peers falls in the
window, divided by its length ("*": below 95 % of the offered load, saturated);
latency percentiles are over the transactions due in the window, each followed
until every peer committed it. Also per window: blocks per second, transactions
per block and the peers' mean block commit time (from their /metrics), the etcd
leader's mean WAL fsync (its /metrics), and CPU as % of one core, from /proc:
peers (each with its precheck worker processes), etcd members, this process,
and "other" — the rest of the machine (busy time in /proc/stat minus those; ±5
is counting noise), which says whether someone else shared the cores. Every
figure is the median over ``--runs`` runs (failures are added up); the whole
sweep is repeated run by run, so a slow minute on a shared machine spreads.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from bench.access_bench import cpu_seconds, percentile_ms
from bench.ledger_bench import make_workload
from ledger.crypto import KeyPair
from ledger.request_auth import sign_request
from node.consortium import Consortium
from node.devnet import DEV_CUSTODIAN
from node.etcd_cluster import EtcdCluster
from node.localnet import ETCD_DIR, peer_health, start_network, stop_network
from node.ordering.etcd import BATCH_TIMEOUT_S, MAX_BATCH_BYTES, stream_key
from node.runtime import clock_ms

__all__ = ["main"]

SUBMIT_PATH = "/v1/transactions"
BATCH_TXS = 2000  # node.runtime.open_peer's max_batch_txs, which `qcl node start` keeps
PROBE_EVERY_S = 0.1
DRAIN_TIMEOUT_S = 60.0
IDLE_SAMPLE_S = 3.0


# --- measuring without disturbing ----------------------------------------------------------


class KeepAliveGet:
    """GETs over one kept-alive HTTP/1.1 connection, parsed by hand: polling three peers many times a
    second must cost this process little (~0.3 ms of CPU per poll, most of it asyncio)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(self, path: str) -> bytes:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        self._writer.write(f"GET {path} HTTP/1.1\r\nHost: {self._host}\r\n\r\n".encode())
        head = await self._reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        body = await self._reader.readexactly(length)
        if lines[0].split()[1] != "200":
            raise RuntimeError(f"GET {path} answered {lines[0]}")
        return body

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class HeightTrace:
    """Evidence of a peer's height: at ``times[i]`` (monotonic) it had committed ``heights[i]`` or more.

    For polls, ``asked[i]`` is when poll ``i`` was sent: the height it shows was
    read after that, so a block it does not show was committed after ``asked[i]``.
    """

    times: list[float] = field(default_factory=list)
    heights: list[int] = field(default_factory=list)
    asked: list[float] = field(default_factory=list)

    def merged(self, more: Sequence[tuple[float, int]]) -> HeightTrace:
        """This evidence and ``more``, in time order, each height raised to the highest seen by then (for bisecting)."""
        merged, top = HeightTrace(), -1
        for at, height in sorted([*zip(self.times, self.heights), *more]):
            top = max(top, height)
            merged.times.append(at)
            merged.heights.append(top)
        return merged

    def seen_at(self, height: int) -> float | None:
        """When the evidence first showed ``height`` or more (None: never): the commit was at or before it."""
        index = bisect.bisect_left(self.heights, height)
        return self.times[index] if index < len(self.times) else None

    def not_before(self, height: int) -> float:
        """When the last poll not showing ``height`` was sent: the commit was after it (-inf: no such poll)."""
        index = bisect.bisect_left(self.heights, height)
        return self.asked[index - 1] if index > 0 else float("-inf")


async def poll_heights(url: str, trace: HeightTrace, every_s: float) -> None:
    """Poll ``url``/healthz every ``every_s`` until cancelled (a peer's height never decreases)."""
    connection = KeepAliveGet(url)
    try:
        while True:
            asked = time.monotonic()
            height = json.loads(await connection.get("/healthz"))["height"]
            trace.times.append(time.monotonic())
            trace.heights.append(height)
            trace.asked.append(asked)
            await asyncio.sleep(max(0.0, asked + every_s - time.monotonic()))
    finally:
        await connection.close()


async def watch_stream(endpoint: str, key: bytes, start_revision: int, seen: dict[int, float]) -> None:
    """Until cancelled: when each batch (stream version = block height) reached this process through an etcd watch."""
    body = {"create_request": {"key": base64.b64encode(key).decode(), "start_revision": str(start_revision)}}
    async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=None)) as client:
        async with client.stream("POST", f"{endpoint}/v3/watch", json=body) as response:
            async for line in response.aiter_lines():
                arrived = time.monotonic()
                for event in json.loads(line).get("result", {}).get("events") or []:
                    seen.setdefault(int(event["kv"]["version"]), arrived)


async def probe_puts(endpoint: str, samples: list[float]) -> None:
    """Until cancelled: time a small put on a side key every PROBE_EVERY_S — etcd's own latency under the load."""
    body = {"key": base64.b64encode(b"/qcl-bench/probe").decode(), "value": base64.b64encode(b"x").decode()}
    async with httpx.AsyncClient(timeout=10) as client:
        while True:
            started = time.monotonic()
            (await client.post(f"{endpoint}/v3/kv/put", json=body)).raise_for_status()
            samples.append(time.monotonic() - started)
            await asyncio.sleep(max(0.0, started + PROBE_EVERY_S - time.monotonic()))


async def cancel(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def prometheus_values(text: str, names: Sequence[str]) -> dict[str, float]:
    """The sum of each metric's samples in ``names``; transaction counts only of valid ones."""
    found = dict.fromkeys(names, 0.0)
    for line in text.splitlines():
        metric, _, value = line.rpartition(" ")
        name = metric.split("{", 1)[0]
        if name in found and not line.startswith("#") and 'outcome="invalid"' not in metric:
            found[name] += float(value)
    return found


PEER_METRICS = ("qcl_blocks_committed_total", "qcl_transactions_committed_total", "qcl_block_commit_seconds_sum")
ETCD_METRICS = ("etcd_disk_wal_fsync_duration_seconds_sum", "etcd_disk_wal_fsync_duration_seconds_count")


@dataclass(frozen=True)
class Snapshot:
    """Counters at one edge of a window."""

    at: float
    cpu: dict[str, float]  # component name -> CPU seconds so far
    peers: dict[str, dict[str, float]]
    etcd: dict[str, float]


@dataclass(frozen=True)
class Network:
    """What the benchmark needs of the running consortium."""

    consortium: Consortium
    peer_urls: tuple[str, ...]
    peer_pids: dict[str, int]
    etcd_pids: dict[str, int]
    etcd_endpoints: tuple[str, ...]
    leader_endpoint: str


def machine_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (all cores, every process), from /proc/stat."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


async def snapshot(network: Network) -> Snapshot:
    processes = {**network.peer_pids, **network.etcd_pids}
    cpu = await asyncio.to_thread(lambda: {name: cpu_seconds(pid) or 0.0 for name, pid in processes.items()})
    cpu["bench"] = time.process_time()
    cpu["machine"] = machine_cpu_seconds()
    peers = {}
    for node_id, url in zip(network.peer_pids, network.peer_urls):
        connection = KeepAliveGet(url)
        peers[node_id] = prometheus_values((await connection.get("/metrics")).decode(), PEER_METRICS)
        await connection.close()
    async with httpx.AsyncClient(timeout=5) as client:  # etcd answers chunked: not for KeepAliveGet
        etcd = prometheus_values((await client.get(f"{network.leader_endpoint}/metrics")).text, ETCD_METRICS)
    return Snapshot(time.monotonic(), cpu, peers, etcd)


# --- the load --------------------------------------------------------------------------------


@dataclass
class Request:
    """One submission: due at ``due`` (monotonic), to peer ``peer``; filled in when answered."""

    peer: int
    due: float
    body: bytes
    count: int
    answered: float | None = None
    heights: list[int] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)  # why transactions were not committed: outcome or error


@dataclass(frozen=True)
class Level:
    """One offered load: ``rate`` tx/s in requests of ``per_request``, for ``warmup`` + ``seconds``."""

    rate: int
    per_request: int
    seconds: float
    warmup: float
    backlog_s: float


async def send(client: httpx.AsyncClient, url: str, key: KeyPair, request: Request, in_flight: asyncio.Semaphore) -> None:
    """POST one pre-built request, signed now; record when it was answered, the heights and what failed."""
    try:
        headers = sign_request(key, "POST", SUBMIT_PATH.encode(), request.body, time_ms=clock_ms())
        response = await client.post(url + SUBMIT_PATH, content=request.body, headers={**headers, "content-type": "application/json"})
        request.answered = time.monotonic()
        if response.status_code != 200:
            request.failures[f"HTTP {response.status_code} {response.text[:80]}"] += request.count
            return
        for result in response.json()["results"]:
            if result["status"] == "committed":
                request.heights.append(result["height"])
            else:
                request.failures[f"{result['status']} {result['code']}"] += 1
    except httpx.HTTPError as exc:
        request.answered = time.monotonic()
        request.failures[type(exc).__name__] += request.count
    finally:
        for _ in range(request.count):
            in_flight.release()


async def offer(level: Level, bodies: Callable[[], bytes], network: Network, key: KeyPair, t0: float) -> list[Request]:
    """Send requests open-loop for warmup + seconds; returns them once every one is answered."""
    interval = level.per_request / level.rate
    total = int((level.warmup + level.seconds) / interval)
    in_flight = asyncio.Semaphore(max(level.per_request, int(level.rate * level.backlog_s)))
    # Idle connections are dropped well before uvicorn's 5 s keep-alive timeout: reusing one the server is
    # closing at that moment fails the request (a client-side artefact, not a refusal by the peer).
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None, keepalive_expiry=1.0)
    clients = [httpx.AsyncClient(timeout=DRAIN_TIMEOUT_S + 30, limits=limits) for _ in network.peer_urls]
    requests: list[Request] = []
    tasks = []
    try:
        for index in range(total):
            due = t0 + index * interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            for _ in range(level.per_request):
                await in_flight.acquire()
            peer = index % len(network.peer_urls)
            request = Request(peer, due, bodies(), level.per_request)
            requests.append(request)
            tasks.append(asyncio.ensure_future(send(clients[peer], network.peer_urls[peer], key, request, in_flight)))
        await asyncio.wait_for(asyncio.gather(*tasks), DRAIN_TIMEOUT_S)
    finally:
        for client in clients:
            await client.aclose()
    return requests


# --- one level, one run ----------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    offered: int
    sent_in_window: int
    throughput: float
    p50_ms: float
    p99_ms: float
    p50_low_ms: float  # a lower bound of p50: each commit placed at the last poll that did not show it yet
    answer_p50_ms: float
    ordered_p50_ms: float
    failures: Counter[str]
    blocks: int
    txs_per_block: float
    block_commit_ms: float
    probe_p50_ms: float
    probe_p99_ms: float
    wal_fsync_ms: float
    cpu: dict[str, float]  # component (peerN, etcdN, bench, other) -> % of one core over the window


async def run_level(level: Level, network: Network, bodies: Callable[[], bytes], key: KeyPair, poll_s: float) -> Figures:
    traces = [HeightTrace() for _ in network.peer_urls]
    ordered: dict[int, float] = {}
    probes: list[float] = []
    revision = await current_revision(network.etcd_endpoints[0])
    helpers = [asyncio.ensure_future(poll_heights(url, trace, poll_s)) for url, trace in zip(network.peer_urls, traces)]
    helpers.append(asyncio.ensure_future(watch_stream(network.etcd_endpoints[0], stream_key(network.consortium.network), revision + 1, ordered)))
    helpers.append(asyncio.ensure_future(probe_puts(network.etcd_endpoints[0], probes)))
    t0 = time.monotonic() + 0.2
    window = (t0 + level.warmup, t0 + level.warmup + level.seconds)
    edges: list[Snapshot] = []

    async def snap_at(when: float) -> None:
        await asyncio.sleep(max(0.0, when - time.monotonic()))
        edges.append(await snapshot(network))

    snapping = asyncio.ensure_future(asyncio.gather(snap_at(window[0]), snap_at(window[1])))
    try:
        requests = await offer(level, bodies, network, key, t0)
        await snapping
        top = max((h for r in requests for h in r.heights), default=0)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while any(not t.heights or t.heights[-1] < top for t in traces) and time.monotonic() < deadline:
            await asyncio.sleep(poll_s)
    finally:
        await cancel(helpers)
    require_healthy(network)
    return figures(level, requests, traces, ordered, probes, edges, window)


def require_healthy(network: Network) -> None:
    """Stop the benchmark, with the end of its log, when a peer stopped committing: its figures would mean nothing."""
    for node_id, url in zip(network.peer_pids, network.peer_urls):
        if not (peer_health(url) or {}).get("ok"):
            log = network.consortium.root / "logs" / f"{node_id}.log"
            raise SystemExit(f"peer {node_id} stopped committing during the level; end of {log}:\n{log.read_text(errors='replace')[-3000:]}")


async def current_revision(endpoint: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        answer = (await client.post(f"{endpoint}/v3/kv/range", json={"key": base64.b64encode(b"/").decode()})).json()
    return int(answer["header"]["revision"])


def figures(
    level: Level, requests: list[Request], traces: list[HeightTrace], ordered: dict[int, float],
    probes: list[float], edges: list[Snapshot], window: tuple[float, float],
) -> Figures:
    # Besides its polls, every answer of a peer shows that it had committed the answer's highest block by then.
    answers = [[(r.answered, max(r.heights)) for r in requests if r.peer == peer and r.heights and r.answered] for peer in range(len(traces))]
    evidence = [trace.merged(more) for trace, more in zip(traces, answers)]
    all_peers, all_peers_low, answer, order, committed_in_window = [], [], [], [], 0
    for request in requests:
        for height in request.heights:
            seen = [trace.seen_at(height) for peer, trace in enumerate(evidence) if peer != request.peer]
            done = None if None in seen else max([request.answered or 0.0, *seen])  # type: ignore[type-var]
            if done is not None and window[0] <= done < window[1]:
                committed_in_window += 1
            if window[0] <= request.due < window[1]:
                all_peers.append(float("inf") if done is None else done - request.due)
                all_peers_low.append(max(0.0, *(trace.not_before(height) - request.due for trace in traces)))
                answer.append((request.answered or float("inf")) - request.due)
                if height in ordered:
                    order.append(ordered[height] - request.due)
    start, end = edges
    blocks = statistics.median(end.peers[p]["qcl_blocks_committed_total"] - start.peers[p]["qcl_blocks_committed_total"] for p in start.peers)
    txs = statistics.median(end.peers[p]["qcl_transactions_committed_total"] - start.peers[p]["qcl_transactions_committed_total"] for p in start.peers)
    commit_s = statistics.median(end.peers[p]["qcl_block_commit_seconds_sum"] - start.peers[p]["qcl_block_commit_seconds_sum"] for p in start.peers)

    def mean_ms(name: str) -> float:
        count = end.etcd[f"{name}_count"] - start.etcd[f"{name}_count"]
        return 1000 * (end.etcd[f"{name}_sum"] - start.etcd[f"{name}_sum"]) / count if count else float("nan")

    probes.sort()
    return Figures(
        offered=level.rate,
        sent_in_window=sum(r.count for r in requests if window[0] <= r.due < window[1]),
        throughput=committed_in_window / (window[1] - window[0]),
        p50_ms=percentile_ms(sorted(all_peers), 0.50),
        p99_ms=percentile_ms(sorted(all_peers), 0.99),
        p50_low_ms=percentile_ms(sorted(all_peers_low), 0.50),
        answer_p50_ms=percentile_ms(sorted(answer), 0.50),
        ordered_p50_ms=percentile_ms(sorted(order), 0.50),
        failures=sum((r.failures for r in requests), Counter()),
        blocks=round(blocks),
        txs_per_block=txs / blocks if blocks else 0.0,
        block_commit_ms=1000 * commit_s / blocks if blocks else float("nan"),
        probe_p50_ms=percentile_ms(probes, 0.50),
        probe_p99_ms=percentile_ms(probes, 0.99),
        wal_fsync_ms=mean_ms("etcd_disk_wal_fsync_duration_seconds"),
        cpu=cpu_shares(start, end),
    )


def cpu_shares(start: Snapshot, end: Snapshot) -> dict[str, float]:
    """% of one core per component over the window, plus "other": the machine's busy time not theirs."""
    shares = {name: 100 * (end.cpu[name] - start.cpu[name]) / (end.at - start.at) for name in start.cpu}
    machine = shares.pop("machine")
    return {**shares, "other": machine - sum(shares.values())}


# --- the measurement's own cost ------------------------------------------------------------


async def polling_cost(network: Network, poll_s: float) -> tuple[float, float]:
    """CPU (% of one core) the idle network uses without polls and with them, over IDLE_SAMPLE_S each."""

    async def idle_cpu(polling: bool) -> float:
        pollers = [asyncio.ensure_future(poll_heights(url, HeightTrace(), poll_s)) for url in network.peer_urls] if polling else []
        await asyncio.sleep(0.3)
        before = sum(cpu_seconds(pid) or 0.0 for pid in network.peer_pids.values()) + time.process_time()
        await asyncio.sleep(IDLE_SAMPLE_S)
        after = sum(cpu_seconds(pid) or 0.0 for pid in network.peer_pids.values()) + time.process_time()
        await cancel(pollers)
        return 100 * (after - before) / IDLE_SAMPLE_S

    return await idle_cpu(False), await idle_cpu(True)


# --- reporting -------------------------------------------------------------------------------


def median_figures(runs: list[Figures]) -> Figures:
    """Field by field median of the runs (CPU component by component); failures are added up."""
    values: dict[str, Any] = {}
    for name in Figures.__dataclass_fields__:
        if name == "cpu":
            values[name] = {k: statistics.median(r.cpu[k] for r in runs) for k in runs[0].cpu}
        elif name == "failures":
            values[name] = sum((r.failures for r in runs), Counter())
        else:
            middle = statistics.median(getattr(r, name) for r in runs)
            values[name] = round(middle) if isinstance(getattr(runs[0], name), int) else middle
    return Figures(**values)


HEADER = (
    f"{'offered':>8} {'sent/s':>7} {'all-peer tx/s':>13} {'p50 ms':>7} {'p99 ms':>7} {'p50 low':>7} {'answer p50':>10} {'ordered p50':>11} "
    f"{'fail':>5} {'blocks/s':>8} {'tx/block':>8} {'block ms':>8} {'put p50/p99 ms':>14} {'fsync ms':>8} "
    f"{'peers %':>7} {'etcd %':>6} {'bench %':>7} {'other %':>7}"
)


def row(f: Figures, seconds: float) -> str:
    peers = sum(v for k, v in f.cpu.items() if k.startswith("peer"))
    etcd = sum(v for k, v in f.cpu.items() if k.startswith("etcd"))
    saturated = "*" if f.throughput < 0.95 * f.offered else " "
    return (
        f"{f.offered:>8,} {f.sent_in_window / seconds:>7,.0f} {f.throughput:>12,.0f}{saturated} {f.p50_ms:>7.0f} {f.p99_ms:>7.0f} {f.p50_low_ms:>7.0f} "
        f"{f.answer_p50_ms:>10.0f} {f.ordered_p50_ms:>11.0f} {sum(f.failures.values()):>5} {f.blocks / seconds:>8.1f} {f.txs_per_block:>8.1f} "
        f"{f.block_commit_ms:>8.1f} {f'{f.probe_p50_ms:.1f}/{f.probe_p99_ms:.1f}':>14} {f.wal_fsync_ms:>8.2f} "
        f"{peers:>7.0f} {etcd:>6.0f} {f.cpu['bench']:>7.0f} {f.cpu['other']:>7.0f}"
    )


def verdict(levels: list[Figures]) -> str:
    """Whether some level reached the target, else the best level within the latency bounds."""
    within = [f for f in levels if f.p50_ms < 250 and f.p99_ms < 1000]
    target = "target ≥ 5,000 tx/s committed on all peers with p50 < 250 ms and p99 < 1 s"
    if not within:
        return f"{target}: NOT met (no level kept p50 < 250 ms and p99 < 1 s)"
    best = max(within, key=lambda f: f.throughput)
    return (
        f"{target}: {'met' if best.throughput >= 5000 else 'NOT met'} (most within the latency bounds: offered {best.offered:,}, "
        f"{best.throughput:,.0f} tx/s on all peers, p50 {best.p50_ms:.0f} ms, p99 {best.p99_ms:.0f} ms)"
    )


# --- setting up ------------------------------------------------------------------------------


def start(root: Path, peers: int) -> Network:
    consortium, _ = start_network(root, peers, time_ms=clock_ms())
    record = json.loads((root / "network.json").read_text())
    cluster = EtcdCluster.load(root / ETCD_DIR)
    return Network(
        consortium,
        tuple(p["url"] for p in record["peers"]),
        {p["name"]: p["pid"] for p in record["peers"]},
        {m.name: m.pid for m in cluster.members if m.pid is not None},
        tuple(cluster.endpoints),
        cluster.leader().client_url,
    )


def request_body(envelopes: Sequence[bytes]) -> bytes:
    return json.dumps({"transactions": [base64.b64encode(e).decode() for e in envelopes], "timeout_ms": 60_000}).encode()


def request_bodies(envelopes: list[bytes], per_request: int) -> Callable[[], bytes]:
    """Pre-built JSON bodies of ``per_request`` envelopes each, handed out in order."""
    bodies = iter([request_body(envelopes[i : i + per_request]) for i in range(0, len(envelopes) - per_request + 1, per_request)])
    return lambda: next(bodies)


async def sweep(args: argparse.Namespace, network: Network, envelopes: list[bytes]) -> None:
    key = network.consortium.admin_key(DEV_CUSTODIAN)
    bodies = request_bodies(envelopes, args.per_request)
    idle, polled = await polling_cost(network, args.poll_ms / 1000)
    print(f"measurement cost on the idle network (peers + this process): {idle:.1f} % of a core without polls, "
          f"{polled:.1f} % with polls every {args.poll_ms} ms")
    print("warm-up level (counts nowhere) …", flush=True)
    await run_level(Level(min(args.rates), args.per_request, 2.0, 0.5, args.backlog_s), network, bodies, key, args.poll_ms / 1000)
    results: dict[int, list[Figures]] = {rate: [] for rate in args.rates}
    for run in range(1, args.runs + 1):
        print(f"\nrun {run}/{args.runs}  (load average {os.getloadavg()[0]:.2f} before it)")
        print(HEADER)
        for rate in args.rates:
            level = Level(rate, args.per_request, args.seconds, args.warmup, args.backlog_s)
            results[rate].append(await run_level(level, network, bodies, key, args.poll_ms / 1000))
            print(row(results[rate][-1], args.seconds), flush=True)
            await asyncio.sleep(1.0)
    print(f"\nmedian of {args.runs} run(s) per level")
    print(HEADER)
    medians = [median_figures(results[rate]) for rate in args.rates]
    for figures_ in medians:
        print(row(figures_, args.seconds))
    print("\nCPU by component, median, % of one core (2 cores = 200 %):")
    for figures_ in medians:
        print(f"  offered {figures_.offered:>6,}: " + "  ".join(f"{name} {value:.0f}" for name, value in figures_.cpu.items()))
    for figures_ in medians:
        if figures_.failures:
            print(f"  NOT committed at offered {figures_.offered:,} (all runs): {dict(figures_.failures)}")
    print("\n" + verdict(medians))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=3, help="peers (etcd has 3 members)")
    parser.add_argument("--rates", default="500,1000,1500,5000", help="offered loads, tx/s")
    parser.add_argument("--per-request", type=int, default=50, help="transactions per HTTP request (see the module's docstring)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per level and run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each window")
    parser.add_argument("--runs", type=int, default=3, help="runs of the whole sweep (median reported)")
    parser.add_argument("--poll-ms", type=int, default=50, help="interval of the height polls of every peer")
    parser.add_argument("--backlog-s", type=float, default=1.0, help="offered seconds allowed in flight before the generator waits")
    parser.add_argument("--quick", action="store_true", help="levels 500 and 1000, one run of 3 s: a smoke run")
    parser.add_argument("--dir", type=Path, default=None, help="consortium directory (default: a temporary one)")
    args = parser.parse_args()
    if args.quick:
        args.rates, args.runs, args.seconds = "500,1000", 1, 3.0
    args.rates = sorted(int(rate) for rate in args.rates.split(","))
    root = args.dir or Path(tempfile.mkdtemp(prefix="qcl-consortium-bench-"))
    print(f"machine: {os.cpu_count()} cores, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; directory {root}")
    started = time.monotonic()
    network = start(root, args.peers)
    try:
        print(f"network: {args.peers} peers ({', '.join(network.peer_pids)}), {len(network.etcd_pids)} etcd members "
              f"(leader {network.leader_endpoint}); up in {time.monotonic() - started:.1f} s")
        print(f"etcd orderer: a batch is cut at {BATCH_TXS} tx, {MAX_BATCH_BYTES:,} bytes or {1000 * BATCH_TIMEOUT_S:g} ms "
              "after its first transaction; one put in flight per peer")
        needed = int(sum(args.rates) * (args.seconds + args.warmup) * args.runs * 1.05) + 2 * min(args.rates) * 2 + 10 * args.per_request
        print(f"workload: {needed:,} citizen.enroll transactions (2 Ed25519 signatures each), signed on every core …", flush=True)
        signing = time.monotonic()
        envelopes = make_workload("enroll", network.consortium.admin_key(DEV_CUSTODIAN), network.consortium.network, needed, [])
        sizes = [len(e) for e in envelopes]
        print(f"  done in {time.monotonic() - signing:.1f} s; envelope {statistics.mean(sizes):.0f} bytes, "
              f"{args.per_request} per HTTP request ({len(request_body(envelopes[: args.per_request])):,} bytes of JSON)")
        print(f"levels: {', '.join(f'{r:,}' for r in args.rates)} tx/s offered; {args.warmup:g} s warm-up + {args.seconds:g} s window each; "
              f"{args.runs} run(s); height polls every {args.poll_ms} ms; up to {args.backlog_s:g} s of offered load in flight")
        asyncio.run(sweep(args, network, envelopes))
    finally:
        stop_network(root)
    print(f"\nwhole run {time.monotonic() - started:.0f} s; load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
