"""Ledger core benchmark: commit throughput, proof times and verify rate as the log grows.

    make bench                                      # sizes 10^4, 10^5, 10^6
    make bench BENCH_ARGS="--workload publish"      # single-signature transactions
    make bench BENCH_ARGS="--sizes 10000,100000"    # quicker

What is measured (one node, LevelDB, synced writes, the embedded committer):
- commit throughput of signed transactions, pre-signed: ``--workload enroll``
  (``citizen.enroll``, two Ed25519 signatures: the identity authority's and the
  citizen's) or ``--workload publish`` (``record.publish`` by the vehicle
  registration provider, one signature, about 1,000 enrolled subjects).
  (a) the committer alone: ordered batches in, each decoded, every
  signature verified (worker processes), rules applied, Merkle tree appended, block
  written in one synced LevelDB batch — median of per-block rates over the
  last ``--window`` transactions before each size; (b) the whole peer: the same
  work submitted from several threads as the HTTP handlers do, acknowledged
  only after the synced write (HTTP itself is not in either figure);
- inclusion and consistency proof build (from stored nodes) and verify times,
  median over random indices, at each size;
- ``qcl verify`` (rebuild everything from blocks and compare every key) rate.
Signing the workload happens before timing, on every core.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from client.enrollment import enrollment_transaction, synthetic_national_id
from ledger import codec
from ledger.block import OrderedBatch
from ledger.crypto import KeyPair
from ledger.genesis import network_id
from ledger.merkle import ProofBuilder, hash_leaf, verify_consistency, verify_inclusion
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from ledger.rules.records import commit_record_payload
from ledger.tx import build_transaction
from ledger.verify import verify_store
from node.committer import PrecheckPool
from node.devnet import NodeConfig, create_dev_network, load_node_config
from node.peer import Peer
from node.ordering.inprocess import InProcessOrderer
from node.runtime import clock_ms


SIGNATURES = {"enroll": 2, "publish": 1}
PUBLISHED_TYPE = "vehicle.registration"


def _make_chunk(arguments: tuple[str, bytes, bytes, list[bytes], int, int, int]) -> list[bytes]:
    kind, signer_seed, network, subjects, start, count, now = arguments
    signer = KeyPair.from_seed(signer_seed)
    rng = random.Random(start)
    if kind == "enroll":
        return [
            enrollment_transaction(signer, KeyPair.generate(), network, synthetic_national_id(rng), os.urandom(32), time_ms=now)
            for _ in range(count)
        ]
    return [
        build_transaction(
            signer,
            network,
            "record.publish",
            {
                "record_id": os.urandom(16),
                "subject": rng.choice(subjects),
                "type": PUBLISHED_TYPE,
                "as_of": now,
                "commitment": commit_record_payload(os.urandom(32), codec.encode({"plate": f"鲁A{rng.randrange(10**5):05d}"})),
            },
            time_ms=now,
        )
        for _ in range(count)
    ]


def make_workload(kind: str, signer: KeyPair, network: bytes, total: int, subjects: list[bytes]) -> list[bytes]:
    chunk = 5000
    jobs = [
        (kind, signer.seed, network, subjects, start, min(chunk, total - start), clock_ms())
        for start in range(0, total, chunk)
    ]
    with multiprocessing.Pool() as pool:
        return [envelope for part in pool.map(_make_chunk, jobs) for envelope in part]


def publish_setup(config: NodeConfig, network: bytes, citizens: int) -> tuple[list[bytes], list[bytes]]:
    """A catalogue entry for vehicle registrations and enrolled citizens to publish records about."""
    bureau = config.admin_key("jinan-bigdata")
    entry = {
        "type": PUBLISHED_TYPE,
        "version": 1,
        "title": "Motor vehicle registration",
        "provider": "jinan-psb",
        "fields": [{"name": "plate", "kind": "identifier"}],
        "sensitivity": "general",
    }
    now = clock_ms()
    keys = [KeyPair.generate() for _ in range(citizens)]
    envelopes = [build_transaction(bureau, network, "catalogue.define", {"entry": entry}, time_ms=now)]
    envelopes += [
        enrollment_transaction(bureau, key, network, synthetic_national_id(random.Random(n)), os.urandom(32), time_ms=now)
        for n, key in enumerate(keys)
    ]
    return envelopes, [key.public_key for key in keys]


def submit_all(peer: Peer, workload: list[bytes], position: int, count: int, args: argparse.Namespace) -> int:
    """Submit workload[position:position+count] from several threads; wait for every commit."""
    chunk = args.chunk
    pieces = [workload[start : min(start + chunk, position + count)] for start in range(position, position + count, chunk)]
    with ThreadPoolExecutor(args.clients) as clients:
        for results in clients.map(peer.submit, pieces):
            failed = [r for r in results if r.status != "committed"]
            if failed:
                raise SystemExit(f"benchmark transaction not committed: {failed[0]}")
    return position + count


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def proof_figures(store: LedgerStore, size: int, rng: random.Random, samples: int = 1000) -> dict[str, float]:
    builder = ProofBuilder(store, tree_size=size)
    root = builder.root(size)
    build, check, cbuild, ccheck = [], [], [], []
    for _ in range(samples):
        index = rng.randrange(size)
        leaf = hash_leaf(store.leaf(index))
        started = time.perf_counter()
        path = builder.inclusion_proof(index, size)
        middle = time.perf_counter()
        verify_inclusion(leaf, index, size, path, root)
        build.append(middle - started)
        check.append(time.perf_counter() - middle)
        old = rng.randrange(1, size + 1)
        old_root = builder.root(old)
        started = time.perf_counter()
        proof = builder.consistency_proof(old, size)
        middle = time.perf_counter()
        verify_consistency(old, size, old_root, root, proof)
        cbuild.append(middle - started)
        ccheck.append(time.perf_counter() - middle)
    return {
        "inclusion build": median_us(build),
        "inclusion verify": median_us(check),
        "consistency build": median_us(cbuild),
        "consistency verify": median_us(ccheck),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="log sizes to report at")
    parser.add_argument("--batch", type=int, default=2000, help="transactions per block")
    parser.add_argument("--window", type=int, default=10000, help="transactions per throughput window")
    parser.add_argument("--peer-sample", type=int, default=20000, help="transactions for the peer-path figure")
    parser.add_argument("--workload", choices=sorted(SIGNATURES), default="enroll", help="transaction type to commit")
    parser.add_argument("--clients", type=int, default=4, help="submitting threads")
    parser.add_argument("--chunk", type=int, default=500, help="transactions per submission")
    parser.add_argument("--dir", type=Path, default=None, help="data directory (default: a temporary one)")
    args = parser.parse_args()
    sizes = sorted(int(size) for size in args.sizes.split(","))
    data_dir = args.dir or Path(tempfile.mkdtemp(prefix="qcl-bench-"))
    create_dev_network(data_dir, clock_ms())
    config = load_node_config(data_dir)
    network = network_id(config.genesis)
    print(f"machine: {os.cpu_count()} cores; data dir {data_dir}")
    store = LedgerStore(LevelDBStore(config.ledger_path))
    peer = Peer(store, InProcessOrderer(max_batch_txs=args.batch), node_id=config.node_id, node_key=config.node_key, clock_ms=clock_ms)
    peer.bootstrap(config.genesis_envelope, config.genesis["time"], network)
    subjects: list[bytes] = []
    if args.workload == "publish":
        setup, subjects = publish_setup(config, network, 1000)
        peer.committer.commit(OrderedBatch(1, clock_ms(), tuple(setup)))
    signatures = SIGNATURES[args.workload]
    signer = config.admin_key("jinan-bigdata" if args.workload == "enroll" else "jinan-psb")
    total = sizes[-1] - store.head().tree_size + args.peer_sample
    print(f"workload: {total:,} {args.workload} transactions ({signatures} signature(s) each), signed on every core …", flush=True)
    started = time.perf_counter()
    workload = make_workload(args.workload, signer, network, total, subjects)
    print(f"  done in {time.perf_counter() - started:.1f} s", flush=True)
    rng = random.Random(7)
    print(f"\n(a) committer: ordered batches of {args.batch} → durable blocks (decode + signatures in {os.cpu_count()} worker processes)")
    print(f"{'log size':>10} {'window':>14} {'median tx/s':>12} {'min tx/s':>9} {'signatures/s':>13}")
    counts: list[int] = []
    log_size = store.head().tree_size
    for size in sizes:
        while log_size < size:
            counts.append(min(args.batch, size - log_size))
            log_size += counts[-1]
    batches, position = [], 0
    for seq, count in enumerate(counts, start=store.head().order_seq + 1):
        batches.append(OrderedBatch(seq, clock_ms(), tuple(workload[position : position + count])))
        position += count
    committer = peer.committer
    block_rates: list[tuple[int, float]] = []
    total_started = last = time.perf_counter()
    # One batch is always begun ahead, so its checks overlap the commit before it, as in the peer.
    ahead = committer.begin(batches[0])
    for following_batch in [*batches[1:], None]:
        following = committer.begin(following_batch) if following_batch is not None else None
        outcome = committer.finish(ahead)
        now = time.perf_counter()
        block_rates.append((outcome.header.tree_size, outcome.header.tx_count / (now - last)))
        last = now
        ahead = following
    for size in sizes:
        window = [rate for end, rate in block_rates if size - args.window < end <= size]
        median = statistics.median(window)
        print(f"{size:>10,} {f'last {args.window:,}':>14} {median:>12,.0f} {min(window):>9,.0f} {signatures * median:>13,.0f}", flush=True)
    elapsed = time.perf_counter() - total_started
    print(f"overall: {position:,} tx in {elapsed:.1f} s = {position / elapsed:,.0f} tx/s")

    peer.start()
    sample = len(workload) - position
    started = time.perf_counter()
    submit_all(peer, workload, position, sample, args)
    seconds = time.perf_counter() - started
    print(
        f"\n(b) peer: {sample:,} tx submitted from {args.clients} threads (chunks of {args.chunk}, as the API's worker "
        f"threads do), acknowledged after the synced write: {sample / seconds:,.0f} tx/s"
    )

    print("\nproofs (median of 1000 random indices, from stored nodes)")
    print(f"{'log size':>10} {'incl build µs':>14} {'incl verify µs':>15} {'cons build µs':>14} {'cons verify µs':>15}")
    for size in sizes:
        figures = proof_figures(store, size, rng)
        print(
            f"{size:>10,} {figures['inclusion build']:>14.1f} {figures['inclusion verify']:>15.1f} "
            f"{figures['consistency build']:>14.1f} {figures['consistency verify']:>15.1f}"
        )
    peer.stop()

    print("\nqcl verify (rebuild from blocks, compare every key)")
    kv = LevelDBStore(config.ledger_path)
    pool = PrecheckPool()
    started = time.perf_counter()
    report = verify_store(kv, submit_precheck=pool.submit)
    seconds = time.perf_counter() - started
    kv.close()
    pool.close()
    print(
        f"  ok={report.ok}  {report.transactions:,} tx, {report.keys_compared:,} keys in {seconds:.1f} s "
        f"= {report.transactions / seconds:,.0f} tx/s"
    )


if __name__ == "__main__":
    main()
