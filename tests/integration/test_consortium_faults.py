"""Fault tests with real processes (issue 5, item 5): hurt the consortium under a write load, heal it, measure.

One consortium for the whole module, as ``qcl network up`` runs it: 3 etcd
members and the peers of one genesis, each ``qcl node start`` in its own process
(tests/support/process_consortium.py). The genesis names four peers; peer3 stays
offline until it joins in the last scenario, with nothing but its genesis, node key
and node.json. A write load submits enrollments round-robin through every online
peer's API and keeps every transaction id an API acknowledged as committed.

Each scenario hurts the consortium while the load runs, checks that the load
still commits, heals it, and measures the HEAL TIME: from the healing action (a
process started again, a member restarted, a peer joining) until every peer has
signed a checkpoint at one common height past every block that existed when healing
began, all naming the same block hash and log root. It must be under HEAL_BOUND_S.
Then, with the load paused: every peer at the same head, and every acknowledged
transaction valid in every peer's log. At the end every peer's store passes
``qcl verify``.

The figures: ``pytest -s`` prints ``HEAL <scenario> <seconds>`` lines; they are
also junit test-suite properties (``heal_s.<scenario>``) and ``heal_times.json`` in the
module's temporary directory (its path is printed).
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

from etcd_consortium import wait_until
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from node.ordering.etcd import POSITION_FILE
from process_consortium import ProcessConsortium, WriteLoad
from processes import run_verify

pytestmark = pytest.mark.slow

HEAL_BOUND_S = 20.0  # generous: the point is "seconds", measured and printed; a loaded 2-core machine must not flake it
FAULT_WAIT_S = 30.0  # for the load to go on committing through a fault
WRITERS, PER_REQUEST, GAP_S = 3, 25, 0.02  # the write load: ~200 tx/s here, light enough for a shared 2-core machine
MIN_COMMITTED = 2 * PER_REQUEST  # acknowledged transactions that show the load is committing
FOUNDERS = ("peer0", "peer1", "peer2")
NEWCOMER = "peer3"

RecordProperty = Callable[[str, object], None]  # pytest's record_testsuite_property fixture


class Faults:
    """The module's consortium, its write load, and the figures measured so far."""

    def __init__(self, network: ProcessConsortium, load: WriteLoad, report: Path, record_property: RecordProperty) -> None:
        self.network = network
        self.load = load
        self.report = report
        self.record_property = record_property
        self.online = list(FOUNDERS)
        self.figures: dict[str, dict[str, float | int]] = {}

    def committing(self, since: float, what: str, via: str | None = None) -> float:
        """Wait until the load has MIN_COMMITTED acknowledgements of requests sent after ``since``; the delay to the first."""
        wait_until(lambda: len(self.load.acks_since(since, via)) >= MIN_COMMITTED, FAULT_WAIT_S, what, every_s=0.05)
        return min(ack.answered for ack in self.load.acks_since(since, via)) - since

    @contextmanager
    def scenario(self, name: str) -> Iterator[Scenario]:
        """Load running and committing on entry; on a clean exit, the load paused and every check made."""
        self.load.resume()
        scenario = Scenario(self, name)
        try:
            self.committing(time.monotonic(), f"the load to commit before {name}")
            yield scenario
            assert scenario.heal_s is not None, f"{name} never healed"
            self.load.pause()
            _, height = self.network.wait_converged(self.online, floor=0, since=time.monotonic(), timeout_s=HEAL_BOUND_S, same_head=True)
            acknowledged = self.load.acknowledged()
            for node_id in self.online:
                lost = self.network.missing(node_id, acknowledged)
                assert not lost, f"{name}: {len(lost)} acknowledged transactions are not valid on {node_id}, e.g. {sorted(lost)[:3]}"
            assert self.load.outcomes["invalid"] == 0, self.load.outcomes
        except BaseException:
            print(f"\n{name} failed; load outcomes {dict(self.load.outcomes)}\n{self.network.log_tails()}")
            raise
        finally:
            self.load.pause()
        figures = {"heal_s": round(scenario.heal_s, 3), "first_commit_after_fault_s": round(scenario.first_commit_s, 3),
                   "height": height, "acknowledged": len(acknowledged)}
        self.figures[name] = figures
        self.report.write_text(json.dumps(self.figures, indent=2))
        self.record_property(f"heal_s.{name}", figures["heal_s"])
        print(f"\nHEAL {name} {scenario.heal_s:.2f}  (first commit {scenario.first_commit_s:.2f} s after the fault; "
              f"height {figures['height']}, {len(acknowledged)} acknowledged so far)")


class Scenario:
    """One fault and its healing, with what was measured."""

    def __init__(self, faults: Faults, name: str) -> None:
        self.faults = faults
        self.name = name
        self.first_commit_s = float("nan")
        self.heal_s: float | None = None

    def hurt(self, action: Callable[[], None], via: str | None = None) -> None:
        """Do the fault; the load must go on committing (through ``via`` only, when given)."""
        fault = time.monotonic()
        action()
        self.first_commit_s = self.faults.committing(fault, f"the load to commit during {self.name}", via)

    def heal(self, action: Callable[[], None]) -> float:
        """Do the healing; measure until every online peer agrees on a height past every block there was."""
        network = self.faults.network
        floor = max(height for node_id in self.faults.online if (height := network.height(node_id)) is not None) + 1
        healed = time.monotonic()
        action()
        self.heal_s, _ = network.wait_converged(self.faults.online, floor=floor, since=healed, timeout_s=HEAL_BOUND_S)
        assert self.heal_s <= HEAL_BOUND_S
        return healed


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory, record_testsuite_property: RecordProperty) -> Iterator[Faults]:
    root = tmp_path_factory.mktemp("faults")
    network = ProcessConsortium.launch(root, peers=len(FOUNDERS) + 1, online=FOUNDERS)
    load = WriteLoad(network, FOUNDERS, writers=WRITERS, per_request=PER_REQUEST, gap_s=GAP_S)
    try:
        yield Faults(network, load, root / "heal_times.json", record_testsuite_property)
    finally:
        load.close()
        network.close()
        print(f"\nheal times: {root / 'heal_times.json'}")


def log_since(faults: Faults, node_id: str, offset: int) -> str:
    log_file = faults.network.processes[node_id].log_file
    assert log_file is not None
    return log_file.read_bytes()[offset:].decode(errors="replace")


def stored_height(data_dir: Path) -> int:
    """The committed head of a stopped peer's store."""
    store = LedgerStore(LevelDBStore(data_dir / "ledger"))
    try:
        return store.head().height
    finally:
        store.close()


def log_size(faults: Faults, node_id: str) -> int:
    log_file = faults.network.processes[node_id].log_file
    assert log_file is not None
    return log_file.stat().st_size if log_file.exists() else 0


def test_a_peer_killed_under_load_restarts_and_catches_up(faults: Faults) -> None:
    peer = faults.network.processes["peer2"]
    with faults.scenario("peer_sigkill") as scenario:
        scenario.hurt(peer.kill)
        scenario.heal(peer.start)


def test_the_etcd_leader_killed_under_load(faults: Faults) -> None:
    cluster = faults.network.cluster
    leader = cluster.leader().name
    with faults.scenario("etcd_leader_sigkill") as scenario:
        scenario.hurt(lambda: cluster.kill(leader))  # commits resume once the other two elect a leader
        cluster.wait_healthy(FAULT_WAIT_S)
        assert cluster.leader().name != leader
        scenario.heal(lambda: cluster.restart(leader))


def test_a_minority_of_etcd_stopped_and_brought_back(faults: Faults) -> None:
    cluster = faults.network.cluster
    follower = next(member.name for member in cluster.members if member.name != cluster.leader().name)
    with faults.scenario("etcd_minority_stop") as scenario:
        scenario.hurt(lambda: cluster.stop(follower))
        scenario.heal(lambda: cluster.restart(follower))


def test_a_peer_behind_a_compaction_catches_up_from_peers(faults: Faults) -> None:
    network = faults.network
    peer = network.processes["peer1"]
    faults.online.remove("peer1")
    with faults.scenario("peer_behind_compaction") as scenario:
        scenario.hurt(peer.stop)
        # Let the stream move past everything peer1 holds, so that the compaction removes batches it lacks
        # (compacting right after the stop could leave it needing nothing that etcd dropped).
        stopped_at = stored_height(peer.data_dir)
        wait_until(lambda: all((network.height(node) or 0) > stopped_at + 2 for node in faults.online), FAULT_WAIT_S,
                   "the other peers to commit past peer1's last block")
        compacted = network.cluster.compact()
        saved = json.loads((peer.data_dir / POSITION_FILE).read_text())["positions"]
        assert max(revision for _, revision in saved) < compacted  # etcd no longer holds what peer1 lacks
        offset = log_size(faults, "peer1")
        faults.online.append("peer1")
        healed = scenario.heal(peer.start)
        assert "fetching from peers" in log_since(faults, "peer1", offset)
        faults.committing(healed, "peer1 to commit its own submissions again (it follows etcd)", via="peer1")


def test_a_new_peer_joins_after_compaction(faults: Faults) -> None:
    network = faults.network
    assert not (network.processes[NEWCOMER].data_dir / "ledger").exists()  # it never ran
    with faults.scenario("new_peer_joins") as scenario:
        scenario.hurt(network.cluster.compact)  # the stream's history so far is gone from etcd
        faults.online.append(NEWCOMER)
        healed = scenario.heal(lambda: network.start(NEWCOMER))
        assert "past this peer's block 0; fetching from peers" in log_since(faults, NEWCOMER, 0)
        faults.load.set_targets(faults.online)
        faults.committing(healed, f"{NEWCOMER} to commit its own submissions (it follows etcd)", via=NEWCOMER)


def test_every_store_passes_verify(faults: Faults) -> None:
    assert set(faults.online) == {*FOUNDERS, NEWCOMER}, "an earlier scenario did not finish"
    faults.network.stop()
    reports = {}
    for node_id, process in faults.network.processes.items():
        verified = run_verify(process.data_dir)
        assert verified.returncode == 0, f"qcl verify failed on {node_id}: {verified.stdout[-3000:]}{verified.stderr[-3000:]}"
        reports[node_id] = json.loads(verified.stdout)
        assert reports[node_id]["ok"] and not reports[node_id]["discrepancies"], reports[node_id]
    assert len({(report["blocks"], report["transactions"]) for report in reports.values()}) == 1, reports
    print(f"\nverify: {len(reports)} stores, {reports[NEWCOMER]['blocks']} blocks, {reports[NEWCOMER]['transactions']} transactions each; "
          f"load answers {dict(faults.load.outcomes)}")
