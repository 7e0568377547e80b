"""The precheck worker pool outlives the thread that started it, and its workers end with their node."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

from ledger.genesis import network_id
from node.committer import PrecheckPool
from processes import REPO
from workload import enrollments_for


def test_workers_started_from_a_thread_that_exits_keep_working(dev_config):
    """API worker threads start the pool and are retired when idle; the workers must not die with them."""
    network = network_id(dev_config.genesis)
    envelopes = enrollments_for(dev_config, network, PrecheckPool.INLINE_BELOW * 2)
    pool = PrecheckPool(workers=2)
    try:
        starter = threading.Thread(target=lambda: pool.run(envelopes, network))
        starter.start()
        starter.join()
        time.sleep(1.5)  # three of the workers' parent checks
        results = pool.run(envelopes, network)
        assert len(results) == len(envelopes) and all(result.tx is not None for result in results)
    finally:
        pool.close()


def test_workers_end_when_their_node_is_killed(tmp_path):
    script = textwrap.dedent(
        """
        import os, sys, time
        from node.committer import PrecheckPool
        pool = PrecheckPool(workers=2)
        pool.run([b"x"] * (PrecheckPool.INLINE_BELOW * 2), b"\\x00" * 32)
        print(" ".join(str(p.pid) for p in pool._pool._processes.values()), flush=True)
        time.sleep(60)
        """
    )
    node = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        workers = [int(pid) for pid in node.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        node.kill()
        node.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "a precheck worker outlived its SIGKILLed node"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
