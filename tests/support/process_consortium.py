"""A consortium of real processes under a write load, for the fault tests.

etcd_consortium.py runs peers as embedded nodes, which a test can stop and open
quickly; a fault test must hurt what an operator runs instead: every peer here is
``qcl node start`` in its own OS process (processes.NodeProcess, its output in
ROOT/logs/<node id>.log across restarts) and every etcd member a real ``etcd``
(node/etcd_cluster.py), so a SIGKILL is a real SIGKILL. The consortium comes from
node/consortium.py: its genesis may name more peers than are started, so a peer can
join later with nothing but its genesis, node key and node.json.

Everything is observed from outside, as a monitor would: heights from ``/healthz``,
signed checkpoints (signature checked against the node key the genesis names) and the
log's entries with their validity codes from ``/v1/log``, read as the regulator.
:class:`WriteLoad` submits citizen enrollments round-robin through the peers' APIs and
keeps the id of every transaction an API acknowledged as committed.
"""

from __future__ import annotations

import base64
import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import httpx

from client.auth import RequestSigner
from ledger.checkpoint import Checkpoint, SignedCheckpoint
from ledger.genesis import genesis_from_json
from ledger.rules.engine import Code
from ledger.tx import parse_transaction
from node.consortium import Consortium, create_consortium
from node.devnet import DEV_CUSTODIAN
from node.embedded import free_port
from node.etcd_cluster import EtcdCluster
from node.runtime import clock_ms
from processes import NodeProcess
from workload import enrollments_for

__all__ = ["Ack", "ProcessConsortium", "WriteLoad"]

REGULATOR = "pbc-jinan"  # reads checkpoints and log entries, as the monitor does
PAGE = 1000  # /v1/log/entries page size


class ProcessConsortium:
    """A 3-member etcd cluster and the peers of one consortium, each peer its own ``qcl node start`` process."""

    def __init__(self, root: Path, cluster: EtcdCluster, consortium: Consortium) -> None:
        self.cluster = cluster
        self.consortium = consortium
        logs = root / "logs"
        logs.mkdir(exist_ok=True)
        self.processes = {
            peer.node_id: NodeProcess(peer.data_dir, peer.port, log_file=logs / f"{peer.node_id}.log") for peer in consortium.peers
        }
        genesis = genesis_from_json((consortium.root / "genesis.json").read_text())
        self._node_keys = {node["id"]: node["key"] for org in genesis["orgs"] for node in org["nodes"]}
        self._reader = httpx.Client(auth=RequestSigner(consortium.admin_key(REGULATOR)), timeout=10.0)
        self._valid: dict[str, set[str]] = {node_id: set() for node_id in self.processes}
        self._read_up_to: dict[str, int] = {node_id: 0 for node_id in self.processes}

    @classmethod
    def launch(cls, root: Path, *, peers: int, online: Iterable[str]) -> ProcessConsortium:
        """Create etcd (3 members) and a consortium of ``peers`` peers in ``root``; start the ``online`` ones."""
        cluster = EtcdCluster.start(root / "etcd", members=3)
        try:
            ports: list[int] = []
            while len(ports) < peers:
                port = free_port()
                if port not in ports:
                    ports.append(port)
            consortium = create_consortium(root / "consortium", ports=ports, etcd_endpoints=cluster.endpoints, time_ms=clock_ms())
            network = cls(root, cluster, consortium)
        except BaseException:
            cluster.stop_all()
            raise
        try:
            network.start(*online)
        except BaseException:
            network.close()
            raise
        return network

    @property
    def ids(self) -> list[str]:
        return list(self.processes)

    def start(self, *node_ids: str) -> None:
        """Start these peers' processes together; return once each answers /healthz with ok."""
        failures: list[BaseException] = []

        def start_one(node_id: str) -> None:
            try:
                self.processes[node_id].start()
            except BaseException as exc:  # reported below, in the calling thread
                failures.append(exc)

        threads = [threading.Thread(target=start_one, args=(node_id,)) for node_id in node_ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]

    def stop(self, *node_ids: str) -> None:
        """SIGTERM these peers (every peer when none is named) together, SIGKILL what still runs after 15 s."""
        threads = [threading.Thread(target=self.processes[node_id].stop) for node_id in node_ids or self.ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    # --- looking, from outside -------------------------------------------------

    def height(self, node_id: str) -> int | None:
        """The peer's committed height (/healthz), or None when it does not answer or has stopped committing."""
        try:
            health = httpx.get(self.processes[node_id].url + "/healthz", timeout=2.0).json()
        except (httpx.HTTPError, ValueError):
            return None
        return health["height"] if health.get("ok") else None

    def checkpoint(self, node_id: str, height: int | None = None) -> Checkpoint | None:
        """The checkpoint the peer signed after block ``height`` (default: its latest), its signature checked
        against the peer's node key in the genesis; None when the peer does not answer or has no such block yet."""
        query = "" if height is None else f"?height={height}"
        try:
            answer = self._reader.get(self.processes[node_id].url + "/v1/log/checkpoint" + query)
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        signed = SignedCheckpoint.decode(base64.b64decode(answer.json()["encoded"]))
        signed.verify()
        assert signed.node_key == self._node_keys[node_id], f"{node_id} signs with a key that is not its node key"
        assert signed.checkpoint.node_id == node_id and signed.checkpoint.network == self.consortium.network
        return signed.checkpoint

    def wait_converged(
        self, node_ids: Sequence[str], *, floor: int, since: float, timeout_s: float, same_head: bool = False
    ) -> tuple[float, int]:
        """Wait until every peer in ``node_ids`` has signed a checkpoint at one common height >= ``floor``, all naming
        the same block hash and log root; returns (seconds since ``since``, that height).

        Under a write load the heads move, so the common height is the lowest head
        among them; ``same_head`` (for a consortium at rest) also wants every head
        there. Two different signed checkpoints at one height are a fork: that fails at once.
        """
        deadline = since + timeout_s
        while True:
            heights = {node_id: self.height(node_id) for node_id in node_ids}
            known = [height for height in heights.values() if height is not None]
            if len(known) == len(node_ids) and min(known) >= floor and (not same_head or len(set(known)) == 1):
                common = min(known)
                signed = {node_id: self.checkpoint(node_id, common) for node_id in node_ids}
                if all(checkpoint is not None for checkpoint in signed.values()):
                    views = {node_id: (c.block_hash.hex(), c.root_hash.hex(), c.tree_size) for node_id, c in signed.items() if c}
                    if len(set(views.values())) != 1:
                        raise AssertionError(f"peers signed different checkpoints at height {common}: {views}")
                    return time.monotonic() - since, common
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"peers {list(node_ids)} did not agree on a height >= {floor} within {timeout_s} s: heights {heights}"
                )
            time.sleep(0.05)

    def missing(self, node_id: str, acknowledged: Iterable[str]) -> set[str]:
        """The ``acknowledged`` transaction ids that are not valid in the peer's log (its entries, read as the regulator).

        The log is append-only, so each call reads only the entries added since the last.
        """
        checkpoint = self.checkpoint(node_id)
        assert checkpoint is not None, f"{node_id} gives no checkpoint"
        valid, start = self._valid[node_id], self._read_up_to[node_id]
        while start < checkpoint.tree_size:
            answer = self._reader.get(
                self.processes[node_id].url + "/v1/log/entries", params={"start": start, "end": min(checkpoint.tree_size, start + PAGE)}
            )
            assert answer.status_code == 200, answer.text
            page = answer.json()
            for leaf, meta in zip(page["entries"], page["meta"]):
                if meta["code"] == Code.VALID.name:
                    valid.add(parse_transaction(base64.b64decode(leaf)).tx_id.hex())
            start = page["end"]
        self._read_up_to[node_id] = start
        return set(acknowledged) - valid

    def log_tails(self, chars: int = 1500) -> str:
        """The end of every peer's and every etcd member's log, for a failure message."""
        parts = [f"--- {node_id} ({process.log_file}) ---\n{process.log_tail(chars)}" for node_id, process in self.processes.items()]
        for member in self.cluster.members:
            text = member.log_file.read_text(errors="replace")[-chars:] if member.log_file.exists() else ""
            parts.append(f"--- {member.name} ({member.log_file}) ---\n{text}")
        return "\n".join(parts)

    def close(self) -> None:
        """Stop every peer, then etcd; the data directories stay."""
        try:
            self.stop()
            self._reader.close()
        finally:
            self.cluster.stop_all()


@dataclass(frozen=True)
class Ack:
    """A transaction a peer's API answered ``committed`` for: through which peer, and when (monotonic s)."""

    tx_id: str
    via: str
    sent: float
    answered: float


class WriteLoad:
    """``writers`` threads, each submitting ``per_request`` fresh enrollments at a time to the target peers in turn.

    Starts paused. A request that fails (a peer killed under it, refusing while
    etcd has no quorum) acknowledges nothing and the writer goes on with the next
    peer; ``outcomes`` counts every answer. ``gap_s`` paces each writer, so the
    load stays light enough for a shared 2-core machine.
    """

    def __init__(self, network: ProcessConsortium, targets: Sequence[str], *, writers: int, per_request: int, gap_s: float) -> None:
        self._network = network
        self._targets = list(targets)
        self._per_request = per_request
        self._gap_s = gap_s
        self._turn = itertools.count()
        self._seeds = itertools.count(1)
        self._acks: list[Ack] = []
        self.outcomes: Counter[str] = Counter()
        self._state = threading.Condition()
        self._active = False
        self._busy = 0
        self._closed = threading.Event()
        self._threads = [threading.Thread(target=self._write, name=f"load-{n}", daemon=True) for n in range(writers)]
        for thread in self._threads:
            thread.start()

    def set_targets(self, node_ids: Sequence[str]) -> None:
        with self._state:
            self._targets = list(node_ids)

    def resume(self) -> None:
        with self._state:
            self._active = True
            self._state.notify_all()

    def pause(self, timeout_s: float = 60.0) -> None:
        """Stop sending and wait until no request is in flight: every acknowledgement is in by then."""
        with self._state:
            self._active = False
            if not self._state.wait_for(lambda: self._busy == 0, timeout=timeout_s):
                raise AssertionError(f"the write load did not come to rest within {timeout_s} s")

    def close(self) -> None:
        self._closed.set()
        with self._state:
            self._state.notify_all()
        for thread in self._threads:
            thread.join(timeout=60)

    def acknowledged(self) -> set[str]:
        with self._state:
            return {ack.tx_id for ack in self._acks}

    def acks_since(self, moment: float, via: str | None = None) -> list[Ack]:
        """Acknowledgements of requests sent after ``moment`` (through ``via`` only, when given)."""
        with self._state:
            return [ack for ack in self._acks if ack.sent > moment and via in (None, ack.via)]

    def _next_request(self) -> tuple[str, int] | None:
        """The next target and a fresh seed, once the load is active; None once closed."""
        with self._state:
            while not self._active and not self._closed.is_set():
                self._state.wait(0.5)
            if self._closed.is_set():
                return None
            self._busy += 1
            return self._targets[next(self._turn) % len(self._targets)], next(self._seeds)

    def _write(self) -> None:
        consortium = self._network.consortium
        with httpx.Client(auth=RequestSigner(consortium.admin_key(DEV_CUSTODIAN)), timeout=60.0) as client:
            while (request := self._next_request()) is not None:
                node_id, seed = request
                try:
                    self._submit(client, node_id, enrollments_for(consortium, consortium.network, self._per_request, seed=seed))  # type: ignore[arg-type]
                finally:
                    with self._state:
                        self._busy -= 1
                        self._state.notify_all()
                self._closed.wait(self._gap_s)

    def _submit(self, client: httpx.Client, node_id: str, envelopes: list[bytes]) -> None:
        body = {"transactions": [base64.b64encode(e).decode() for e in envelopes], "timeout_ms": 30_000}
        sent = time.monotonic()
        try:
            answer = client.post(self._network.processes[node_id].url + "/v1/transactions", json=body)
        except httpx.HTTPError as exc:
            with self._state:
                self.outcomes[type(exc).__name__] += 1
            return
        answered = time.monotonic()
        with self._state:
            if answer.status_code != 200:
                self.outcomes[f"http_{answer.status_code}"] += 1
                return
            for result in answer.json()["results"]:
                self.outcomes[result["status"]] += 1
                if result["status"] == "committed":
                    self._acks.append(Ack(result["tx_id"], node_id, sent, answered))
