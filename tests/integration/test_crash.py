"""Crash safety: SIGKILL the node at random moments while it commits under load.

After every kill the node restarts on the same store and must hold every
transaction whose submission was acknowledged as committed, no partial block,
and a store that ``qcl verify`` accepts. ``QCL_CRASH_ROUNDS`` sets how many
kills (default 8).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from workload import enrollments_for
from processes import NodeProcess, run_verify
from client.auth import RequestSigner
from ledger.genesis import network_id
from ledger.tx import parse_transaction
from node.devnet import NodeConfig, create_dev_network, load_node_config
from node.runtime import clock_ms

pytestmark = pytest.mark.slow

ROUNDS = int(os.environ.get("QCL_CRASH_ROUNDS", "8"))
BATCH = 100
CLIENTS = 3


def load(
    url: str, auth: RequestSigner, batches: Iterator[list[bytes]], acknowledged: set[str], lock: threading.Lock, stop: threading.Event
) -> None:
    """Submit batches until the node dies; remember ids the node said were committed."""
    with httpx.Client(base_url=url, timeout=30.0, auth=auth) as client:
        for batch in batches:
            if stop.is_set():
                return
            try:
                response = client.post("/v1/transactions", json={"transactions": [base64.b64encode(e).decode() for e in batch]})
            except httpx.HTTPError:
                return
            if response.status_code != 200:
                return
            committed = [r["tx_id"] for r in response.json()["results"] if r["status"] == "committed"]
            with lock:
                acknowledged.update(committed)


def endless_batches(config: NodeConfig, network: bytes, seed: int) -> Iterator[list[bytes]]:
    """Fresh enrollments forever, so the load is still running when the kill lands."""
    for part in itertools.count():
        yield enrollments_for(config, network, BATCH, seed=seed * 100_000 + part)


def committed_valid_ids(client: httpx.Client) -> tuple[set[str], int]:
    """Every valid transaction id in the log, read through the audit API (entries + block codes)."""
    checkpoint = client.get("/v1/log/checkpoint").json()["checkpoint"]
    codes: list[int] = []
    for height in range(checkpoint["height"] + 1):
        block = client.get(f"/v1/log/blocks/{height}").json()
        assert block["first_index"] == len(codes), f"block {height} does not start where block {height - 1} ended"
        codes.extend(block["codes"])
    assert len(codes) == checkpoint["tree_size"], "a partial block: leaves and headers disagree"
    valid: set[str] = set()
    for start in range(0, len(codes), 1000):
        page = client.get("/v1/log/entries", params={"start": start, "end": start + 1000}).json()["entries"]
        for offset, leaf in enumerate(page):
            if codes[start + offset] == 0:
                valid.add(parse_transaction(base64.b64decode(leaf)).tx_id.hex())
    return valid, checkpoint["tree_size"]


def test_sigkill_under_load_loses_nothing_acknowledged(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    data_dir.mkdir()
    create_dev_network(data_dir, clock_ms())
    config = load_node_config(data_dir)
    network = network_id(config.genesis)
    auth = RequestSigner(config.admin_key("jinan-bigdata"))  # custodian and regulator: may read the whole log
    rng = random.Random(1234)
    acknowledged: set[str] = set()
    for round_number in range(ROUNDS):
        node = NodeProcess(data_dir).start()
        lock, stop = threading.Lock(), threading.Event()
        threads = [
            threading.Thread(
                target=load,
                args=(node.url, auth, endless_batches(config, network, round_number * CLIENTS + i), acknowledged, lock, stop),
            )
            for i in range(CLIENTS)
        ]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.3, 1.5))
        assert any(thread.is_alive() for thread in threads), "the load stopped before the kill"
        node.kill()
        stop.set()
        for thread in threads:
            thread.join()

        restarted = NodeProcess(data_dir).start()
        try:
            with httpx.Client(base_url=restarted.url, timeout=30.0, auth=auth) as client:
                valid, tree_size = committed_valid_ids(client)
        finally:
            restarted.stop()
        lost = acknowledged - valid
        assert not lost, f"round {round_number}: {len(lost)} acknowledged transactions lost, e.g. {sorted(lost)[:3]}"
        verified = run_verify(data_dir)
        report = json.loads(verified.stdout)
        assert verified.returncode == 0, f"round {round_number}: verify failed: {report['discrepancies'][:5]}"
        assert report["transactions"] == tree_size
    print(f"\ncrash test: {ROUNDS} SIGKILLs under load, {len(acknowledged)} acknowledged transactions, none lost")
    assert len(acknowledged) > ROUNDS * BATCH, "the load never got going; the test proved nothing"
