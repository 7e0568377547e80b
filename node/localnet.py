"""Running a development consortium's processes on one machine: etcd members and peers, each its own process.

``qcl network up`` starts them and returns; the processes outlive the
command. The etcd members are node/etcd_cluster.py's (ROOT/etcd, its own
cluster.json); the peers are written to ROOT/network.json (pids, URLs, etcd
endpoints) so that ``qcl network status`` and ``qcl network down`` — later,
from other processes — find them. Before a peer's pid is signalled, its
command line must still name the data directory it was started with, so a pid
the kernel reused for some unrelated process is never touched.

Each peer is ``qcl node start --data-dir ROOT/peerI`` in its own session
(process group), with its log in ROOT/logs/peerI.log: exactly what an
operator would run on that organization's machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import httpx

from node.consortium import Consortium, ConsortiumError, create_consortium, load_consortium
from node.etcd_cluster import EtcdCluster, EtcdClusterError

__all__ = [
    "ETCD_DIR",
    "ETCD_MEMBERS",
    "NETWORK_FILE",
    "NetworkRecord",
    "RunningProcess",
    "etcd_members",
    "is_running",
    "load_record",
    "peer_health",
    "start_network",
    "stop_network",
]

NETWORK_FILE = "network.json"
ETCD_DIR = "etcd"
ETCD_MEMBERS = 3
KILL_WAIT_S = 5.0  # a SIGKILLed process is gone within this unless stuck in the kernel
# The peers run the code of this checkout, whatever the interpreter's installed copy points at.
CODE_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class RunningProcess:
    """A process of the network: ``marker`` is the data directory its command line names."""

    name: str
    pid: int
    url: str
    marker: str


@dataclass(frozen=True)
class NetworkRecord:
    """ROOT/network.json: what ``up`` started (``network`` is the id in hex, empty until the consortium is known)."""

    network: str
    started_ms: int
    etcd_endpoints: tuple[str, ...]
    peers: tuple[RunningProcess, ...]

    def write(self, root: Path) -> None:
        document = {
            "network": self.network,
            "started_ms": self.started_ms,
            "etcd_endpoints": list(self.etcd_endpoints),
            "peers": [asdict(peer) for peer in self.peers],
        }
        (root / NETWORK_FILE).write_text(json.dumps(document, indent=2))


def load_record(root: Path) -> NetworkRecord | None:
    """What ``up`` started in ``root``, or None when nothing was started (or ``down`` ran)."""
    try:
        document = json.loads((root / NETWORK_FILE).read_text())
    except FileNotFoundError:
        return None
    return NetworkRecord(
        document["network"],
        document["started_ms"],
        tuple(document["etcd_endpoints"]),
        tuple(RunningProcess(**peer) for peer in document["peers"]),
    )


def is_running(process: RunningProcess) -> bool:
    """True while ``process.pid`` is alive (not a zombie) and still the process that was started."""
    proc = Path("/proc") / str(process.pid)
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and process.marker.encode() in cmdline


def peer_health(url: str, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """The peer's /healthz answer ({"ok", "height"}), or None when it does not answer."""
    try:
        response = httpx.get(f"{url}/healthz", timeout=timeout_s)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def etcd_members(root: Path) -> list[dict[str, Any]]:
    """Every etcd member of the network in ``root``: name, endpoint, pid, whether it answers, whether it leads."""
    cluster = EtcdCluster.load(root / ETCD_DIR)
    found = []
    for member in cluster.members:
        entry: dict[str, Any] = {"name": member.name, "endpoint": member.client_url, "pid": member.pid, "running": member.pid is not None}
        try:
            status = cluster.status(member.name)
        except EtcdClusterError:
            entry.update(healthy=False, member_id=None, leader_id=None, raft_index=None)
        else:
            entry.update(
                healthy=True, member_id=status["header"]["member_id"], leader_id=status.get("leader"),
                raft_index=int(status.get("raftIndex", 0)),
            )
        found.append(entry)
    leaders = {entry["leader_id"] for entry in found if entry["healthy"]}
    for entry in found:
        entry["leader"] = entry["healthy"] and len(leaders) == 1 and entry["member_id"] in leaders
    return found


def start_network(root: Path, peers: int | None, *, time_ms: int, timeout_s: float = 60.0) -> tuple[Consortium, bool]:
    """Start etcd and every peer of the consortium in ``root`` (created with ``peers`` peers when new).

    Returns the consortium and whether it was created now. Waits until every
    peer answers /healthz with ok; on any failure stops what it started and raises.
    """
    etcd_dir = root / ETCD_DIR
    created = not (root / "consortium.json").exists()
    if created and peers is None:
        raise ConsortiumError("invalid_argument", f"{root} holds no consortium yet: say how many peers (--peers N)")
    if not created:
        existing = load_consortium(root)
        if peers is not None and peers != len(existing.peers):
            raise ConsortiumError(
                "invalid_argument", f"{root} holds a consortium of {len(existing.peers)} peers, not {peers}; use another --dir"
            )
        if not (etcd_dir / "cluster.json").exists():
            # A new etcd would restart the stream at sequence 1, below every peer's head: nothing would ever commit.
            raise ConsortiumError("etcd_missing", f"{etcd_dir} is gone: the consortium's ordered stream cannot be resumed")
    record = load_record(root)
    if (record is not None and any(is_running(p) for p in record.peers)) or (
        (etcd_dir / "cluster.json").exists() and EtcdCluster.load(etcd_dir).running()
    ):
        raise ConsortiumError("already_running", f"the network in {root} is running; stop it with qcl network down --dir {root}")
    root.mkdir(parents=True, exist_ok=True)
    if created and (etcd_dir / "cluster.json").exists():
        EtcdCluster.load(etcd_dir).remove()  # left by an `up` that failed before the consortium was written
    try:
        if created:
            cluster = EtcdCluster.start(etcd_dir, members=ETCD_MEMBERS, detach=True, timeout_s=timeout_s)
        else:
            cluster = _resume_etcd(EtcdCluster.load(etcd_dir), timeout_s)
        NetworkRecord("", time_ms, tuple(cluster.endpoints), ()).write(root)
        if created:
            consortium = create_consortium(root, ports=_free_ports(peers or 0), etcd_endpoints=cluster.endpoints, time_ms=time_ms)
        else:
            consortium = load_consortium(root)
        started = tuple(_spawn_peer(consortium, peer.node_id) for peer in consortium.peers)
        record = NetworkRecord(consortium.network.hex(), time_ms, tuple(cluster.endpoints), started)
        record.write(root)
        _wait_healthy(consortium, record, time.monotonic() + timeout_s)
    except BaseException:
        stop_network(root)
        raise
    return consortium, created


def stop_network(root: Path, *, timeout_s: float = 10.0) -> list[str]:
    """SIGTERM every process of the network (peers first, then etcd), SIGKILL what still runs after ``timeout_s``.

    Returns the names of the processes that were running. Removes network.json; keeps every data directory.
    """
    record = load_record(root)
    stopped = [p.name for p in _stop(record.peers, timeout_s)] if record is not None else []
    if (root / ETCD_DIR / "cluster.json").exists():
        cluster = EtcdCluster.load(root / ETCD_DIR)
        for member in cluster.running():
            cluster.stop(member.name, timeout_s=timeout_s)
            stopped.append(member.name)
    (root / NETWORK_FILE).unlink(missing_ok=True)
    return stopped


def _resume_etcd(cluster: EtcdCluster, timeout_s: float) -> EtcdCluster:
    """Start every member of a stopped cluster again on its data directory.

    A member alone has no leader until a quorum is back, so ``restart`` is not
    asked to wait for one (its ``timeout`` is expected); the cluster's health is
    awaited once every member runs.
    """
    for member in cluster.members:
        try:
            cluster.restart(member.name, timeout_s=0.0)
        except EtcdClusterError as exc:
            if exc.code != "timeout":
                raise
    cluster.wait_healthy(timeout_s)
    return cluster


def _stop(processes: Sequence[RunningProcess], timeout_s: float) -> list[RunningProcess]:
    alive = [p for p in processes if is_running(p)]
    for process in alive:
        _signal(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(is_running(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.05)
    for process in alive:
        if is_running(process):
            _signal(process, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while any(is_running(p) for p in alive) and time.monotonic() < deadline:
        time.sleep(0.02)
    return alive


def _signal(process: RunningProcess, signum: int) -> None:
    try:
        os.kill(process.pid, signum)
    except ProcessLookupError:  # it exited since it was last seen running
        pass


def _free_ports(count: int) -> list[int]:
    from node.embedded import free_port  # imports the whole API: only `up` pays for it

    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _spawn_peer(consortium: Consortium, node_id: str) -> RunningProcess:
    peer = consortium.peer(node_id)
    logs = consortium.root / "logs"
    logs.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(CODE_ROOT), os.environ.get("PYTHONPATH")]))}
    with open(logs / f"{node_id}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "client.cli", "node", "start", "--data-dir", str(peer.data_dir)],
            cwd=CODE_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives `qcl network up`; a Ctrl-C in its terminal does not reach it
        )
    return RunningProcess(node_id, process.pid, peer.url, str(peer.data_dir))


def _wait_healthy(consortium: Consortium, record: NetworkRecord, deadline: float) -> None:
    waiting = list(record.peers)
    while waiting:
        for process in list(waiting):
            if not is_running(process):
                log = consortium.root / "logs" / f"{process.name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise ConsortiumError("peer_failed", f"peer {process.name} exited while starting; end of {log}:\n{tail}")
            health = peer_health(process.url, timeout_s=1.0)
            if health is not None and health["ok"]:
                waiting.remove(process)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(p.name for p in waiting)
            raise ConsortiumError("timeout", f"peers not healthy in time: {names} (logs in {consortium.root / 'logs'})")
        time.sleep(0.1)
