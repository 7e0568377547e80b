"""``qcl network``: a local consortium on loopback — an etcd cluster of 3 members plus N peers, each its own process.

``up`` creates the consortium when the directory is new (node/consortium.py),
starts everything (node/localnet.py), defines the development catalogue unless
the manifest says it is (as the custodian, through peer0's API: no peer holds
an admin key), and
returns when every peer is healthy and all stand at the same height.
``status`` asks every peer for its signed checkpoint (checked against the node
key the genesis names) and every etcd member for its status. ``down`` stops
every process; the data stays, so ``up`` resumes the same network. ``load``
(development only) submits citizen enrollments through every peer at once.

Like ``qcl node start``, these are operator commands for the machine that
holds the directory, so they import the node directly.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from rich.table import Table

from client.commands.shared import AsJson, fail, out, print_json, reported, say, typer_app, wall_clock_ms
from client.enrollment import enrollment_transaction, synthetic_national_id
from client.sdk import LedgerClient
from ledger.crypto import KeyPair
from ledger.genesis import genesis_from_json
from ledger.identity import new_salt
from node.consortium import Consortium, ConsortiumError, load_consortium
from node.devnet import DEV_CUSTODIAN, dev_catalogue_transactions
from node.etcd_cluster import EtcdClusterError
from node.localnet import etcd_members, is_running, load_record, peer_health, start_network, stop_network

__all__ = ["app"]

app = typer_app("A local consortium: etcd (3 members) and N peers on loopback, each its own process.")

DEFAULT_DIR = Path("qcl-network")
MONITOR_ORG = "pbc-jinan"  # status reads checkpoints as the regulator would
Dir = Annotated[Path, typer.Option("--dir", "-d", help="The consortium's directory (created by up when new).")]


@app.command("up")
def up(
    peers: Annotated[Optional[int], typer.Option("--peers", "-n", min=1, help="Number of peers (when the directory is new).")] = None,
    directory: Dir = DEFAULT_DIR,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for etcd and every peer.")] = 60.0,
) -> None:
    """Start etcd and every peer (creating the consortium if DIR is new); return when all are healthy and in step."""
    started = time.monotonic()
    with _reported():
        consortium, created = start_network(directory, peers, time_ms=wall_clock_ms(), timeout_s=timeout)
        try:
            if not consortium.catalogue_defined:
                consortium = _define_catalogue(consortium)
            heights = _wait_in_step(consortium, time.monotonic() + timeout)
        except BaseException:
            stop_network(directory)
            raise
    record = load_record(directory)
    table = Table(title=f"network {consortium.network.hex()[:16]}… in {directory}", title_justify="left")
    for column in ("peer", "organization", "url", "pid", "height"):
        table.add_column(column, overflow="fold")
    for peer, process in zip(consortium.peers, record.peers):
        table.add_row(peer.node_id, peer.org, peer.url, str(process.pid), str(heights[peer.node_id]))
    out.print(table)
    say(f"etcd: {', '.join(record.etcd_endpoints)}")
    say(f"{'created and started' if created else 'started'} {len(consortium.peers)} peers and {len(record.etcd_endpoints)} etcd members "
        f"in {time.monotonic() - started:.1f} s; stop with: qcl network down --dir {directory}")


@app.command("status")
def status(directory: Dir = DEFAULT_DIR, as_json: AsJson = False) -> None:
    """Each peer's height, root and lag behind the highest; each etcd member and the leader. Exits 1 unless all is well."""
    with _reported():
        consortium = load_consortium(directory)
        report = _status(consortium)
    if as_json:
        print_json(report)
    else:
        _print_status(report)
    raise typer.Exit(0 if report["healthy"] else 1)


@app.command("load")
def load(
    directory: Dir = DEFAULT_DIR,
    txs: Annotated[int, typer.Option(min=1, help="Transactions to submit.")] = 1000,
    per_request: Annotated[int, typer.Option(min=1, max=5000, help="Transactions per API request.")] = 100,
    as_json: AsJson = False,
) -> None:
    """DEVELOPMENT: a write load — TXS citizen enrollments by the identity authority, through every healthy peer's API at once."""
    with _reported():
        consortium = load_consortium(directory)
        if load_record(directory) is None:
            raise ConsortiumError("not_running", f"no network is running in {directory}; start it with qcl network up --dir {directory}")
        live = [peer.url for peer in consortium.peers if (peer_health(peer.url) or {}).get("ok")]
        if not live:
            raise ConsortiumError("unavailable", f"no peer of {directory} is healthy")
        envelopes = _enrollments(consortium, txs)
        chunks = [envelopes[start : start + per_request] for start in range(0, txs, per_request)]
        routes = {url: chunks[index :: len(live)] for index, url in enumerate(live) if chunks[index :: len(live)]}
        started = time.monotonic()
        with ThreadPoolExecutor(len(routes)) as pool:
            answers = list(pool.map(lambda route: _submit_all(consortium, *route), routes.items()))
        seconds = time.monotonic() - started
    outcomes = Counter(result["status"] for results in answers for result in results)
    report = {
        "submitted": txs, "peers": len(routes), "per_request": per_request, "seconds": round(seconds, 3),
        "tx_per_s": round(txs / seconds, 1), "outcomes": dict(outcomes),
    }
    if as_json:
        print_json(report)
    else:
        say(f"{outcomes['committed']} of {txs} committed through {len(routes)} peers in {seconds:.2f} s "
            f"({txs / seconds:.0f} tx/s; {per_request} per request){'' if outcomes['committed'] == txs else f'; {dict(outcomes)}'}")
    raise typer.Exit(0 if outcomes["committed"] == txs else 1)


@app.command("down")
def down(
    directory: Dir = DEFAULT_DIR,
    timeout: Annotated[float, typer.Option(help="Seconds between SIGTERM and SIGKILL.")] = 10.0,
) -> None:
    """Stop every process of the network (SIGTERM, then SIGKILL after TIMEOUT); the data stays."""
    with _reported():
        stopped = stop_network(directory, timeout_s=timeout)
    say(f"stopped {len(stopped)} processes: {', '.join(stopped)}" if stopped else f"nothing running in {directory}")


@contextmanager
def _reported() -> Iterator[None]:
    """The error contract of every command, plus the consortium's own errors."""
    with reported():
        try:
            yield
        except (ConsortiumError, EtcdClusterError) as exc:
            fail(exc.code, str(exc))


def _define_catalogue(consortium: Consortium) -> Consortium:
    """The development data types, defined once for the whole network by the custodian through peer0."""
    with LedgerClient(consortium.peers[0].url, key=consortium.admin_key(DEV_CUSTODIAN)) as client:
        for result in client.submit(dev_catalogue_transactions(consortium, consortium.network, wall_clock_ms())):
            if result["status"] != "committed":
                raise ConsortiumError("catalogue_refused", f"the development catalogue was refused: {result['code']} {result['reason']}")
    return consortium.with_catalogue_defined()


def _enrollments(consortium: Consortium, count: int) -> list[bytes]:
    authority = consortium.admin_key(DEV_CUSTODIAN)  # also the identity authority
    rng = random.Random()
    return [
        enrollment_transaction(authority, KeyPair.generate(), consortium.network, synthetic_national_id(rng), new_salt(), time_ms=wall_clock_ms())
        for _ in range(count)
    ]


def _submit_all(consortium: Consortium, url: str, chunks: list[list[bytes]]) -> list[dict[str, Any]]:
    with LedgerClient(url, key=consortium.admin_key(DEV_CUSTODIAN)) as client:
        return [result for chunk in chunks for result in client.submit(chunk)]


def _wait_in_step(consortium: Consortium, deadline: float) -> dict[str, int]:
    """Wait until every peer answers at the same height; return the heights."""
    while True:
        heights = {peer.node_id: (peer_health(peer.url) or {}).get("height") for peer in consortium.peers}
        if None not in heights.values() and len(set(heights.values())) == 1:
            return heights
        if time.monotonic() > deadline:
            raise ConsortiumError("timeout", f"peers did not reach the same height in time: {heights}")
        time.sleep(0.1)


def _status(consortium: Consortium) -> dict[str, Any]:
    record = load_record(consortium.root)
    if record is None:
        raise ConsortiumError("not_running", f"no network is running in {consortium.root}; start it with qcl network up --dir {consortium.root}")
    genesis = genesis_from_json((consortium.root / "genesis.json").read_text())
    node_keys = {node["id"]: node["key"] for org in genesis["orgs"] for node in org["nodes"]}
    peers = [_peer_status(consortium, process, node_keys[process.name]) for process in record.peers]
    heights = [peer["height"] for peer in peers if peer["height"] is not None]
    top = max(heights, default=0)
    for peer in peers:
        peer["lag"] = None if peer["height"] is None else top - peer["height"]
    etcd = etcd_members(consortium.root)
    leader = next((member["name"] for member in etcd if member["leader"]), None)
    roots = {peer["root"] for peer in peers}
    in_step = all(peer["healthy"] for peer in peers) and len(roots) == 1 and len(set(heights)) == 1
    quorum = sum(member["healthy"] and member["leader_id"] not in (None, "0") for member in etcd) > len(etcd) // 2
    return {
        "dir": str(consortium.root),
        "network": consortium.network.hex(),
        "healthy": in_step and quorum and leader is not None,
        "in_step": in_step,
        "height": top,
        "peers": peers,
        "etcd": {"leader": leader, "quorum": quorum, "members": etcd},
    }


def _peer_status(consortium: Consortium, process: Any, node_key: bytes) -> dict[str, Any]:
    """A peer's health and signed checkpoint (its signature and key checked against the genesis)."""
    peer = consortium.peer(process.name)
    found: dict[str, Any] = {
        "node_id": peer.node_id, "org": peer.org, "url": peer.url, "pid": process.pid, "running": is_running(process),
        "healthy": False, "height": None, "tree_size": None, "root": None, "block_hash": None, "error": None,
    }
    health = peer_health(peer.url)
    if health is None:
        found["error"] = "no answer on /healthz"
        return found
    try:
        with LedgerClient(peer.url, key=consortium.admin_key(MONITOR_ORG), timeout_s=5.0) as client:
            signed = client.checkpoint()
    except Exception as exc:  # any failure to fetch or check is reported per peer, not fatal to the report
        found["error"] = f"checkpoint: {exc}"
        return found
    checkpoint = signed.checkpoint
    if signed.node_key != node_key or checkpoint.node_id != peer.node_id or checkpoint.network != consortium.network:
        found["error"] = "checkpoint not signed by this peer's node key for this network"
        return found
    found.update(
        healthy=bool(health["ok"]), height=checkpoint.height, tree_size=checkpoint.tree_size,
        root=checkpoint.root_hash.hex(), block_hash=checkpoint.block_hash.hex(),
    )
    return found


def _print_status(report: dict[str, Any]) -> None:
    table = Table(title=f"network {report['network'][:16]}… in {report['dir']}", title_justify="left")
    for column in ("peer", "organization", "url", "health", "height", "log size", "root", "lag"):
        table.add_column(column, overflow="fold")
    for peer in report["peers"]:
        health = "ok" if peer["healthy"] else peer["error"] or "not committing"
        root = peer["root"][:16] + "…" if peer["root"] else "-"
        cells = (peer["height"], peer["tree_size"], root, peer["lag"])
        table.add_row(peer["node_id"], peer["org"], peer["url"], health, *("-" if cell is None else str(cell) for cell in cells))
    out.print(table)
    etcd = Table(title="etcd", title_justify="left")
    for column in ("member", "endpoint", "pid", "health", "raft index", "role"):
        etcd.add_column(column, overflow="fold")
    for member in report["etcd"]["members"]:
        etcd.add_row(
            member["name"], member["endpoint"], str(member["pid"]), "ok" if member["healthy"] else "down",
            "-" if member["raft_index"] is None else str(member["raft_index"]), "leader" if member["leader"] else "follower" if member["healthy"] else "-",
        )
    out.print(etcd)
    verdict = "all peers at the same height and root" if report["in_step"] else "peers NOT in step"
    quorum = "etcd has a quorum" if report["etcd"]["quorum"] else "etcd has NO quorum"
    say(f"{verdict}; {quorum}, leader {report['etcd']['leader'] or 'none'}")
