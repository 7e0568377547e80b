"""Peers of one consortium ordered by a real etcd cluster, for the ordering and catch-up tests.

The consortium's directories come from node/consortium.py (one genesis, each
peer its own data directory, node key and node.json pointing at the etcd
members and the other peers). Each peer runs as an embedded node in this
process (real LevelDB store, real HTTP API on its loopback port, real etcd
orderer), so a test can stop and start peers quickly and look into their
stores; the etcd members are real processes (node/etcd_cluster.py).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from contextlib import ExitStack
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable

import httpx

from client.auth import RequestSigner
from ledger.block import BlockHeader
from ledger.storage.ledger_store import LedgerStore
from node.consortium import Consortium, create_consortium
from node.devnet import DEV_CUSTODIAN
from node.embedded import EmbeddedNode, embedded_node, free_port
from node.runtime import clock_ms
from workload import enrollments_for

__all__ = ["Peers", "TamperingProxy", "chain_of", "state_of", "wait_until"]


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str, *, every_s: float = 0.02) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(every_s)


def chain_of(store: LedgerStore) -> list[bytes]:
    """Every block header's canonical bytes, genesis first."""
    head = store.head()
    return [] if head is None else [store.header_bytes(height) for height in range(head.height + 1)]


def state_of(store: LedgerStore) -> dict[bytes, bytes]:
    return dict(store.state_scan(b""))


class Peers:
    """The running peers of a consortium, started and stopped one by one (embedded nodes)."""

    def __init__(self, consortium: Consortium) -> None:
        self.consortium = consortium
        self.nodes: dict[str, EmbeddedNode] = {}
        self._stacks: dict[str, ExitStack] = {}
        self._seed = 0

    @classmethod
    def create(cls, root: Path, *, peers: int, etcd_endpoints: Iterable[str]) -> Peers:
        ports = []
        while len(ports) < peers:
            port = free_port()
            if port not in ports:
                ports.append(port)
        return cls(create_consortium(root, ports=ports, etcd_endpoints=list(etcd_endpoints), time_ms=clock_ms()))

    @property
    def ids(self) -> list[str]:
        return [peer.node_id for peer in self.consortium.peers]

    def start(self, *node_ids: str) -> None:
        for node_id in node_ids or self.ids:
            peer = self.consortium.peer(node_id)
            stack = ExitStack()
            self.nodes[node_id] = stack.enter_context(embedded_node(peer.data_dir, port=peer.port))
            self._stacks[node_id] = stack

    def stop(self, *node_ids: str) -> None:
        for node_id in node_ids or list(self._stacks):
            self._stacks.pop(node_id).close()
            del self.nodes[node_id]

    def set_fetch_peers(self, node_id: str, peers: dict[str, str]) -> None:
        """Rewrite which peers ``node_id`` may fetch missing blocks from (its node.json ``orderer.peers``)."""
        path = self.consortium.peer(node_id).data_dir / "node.json"
        settings = json.loads(path.read_text())
        settings["orderer"]["peers"] = peers
        path.write_text(json.dumps(settings, indent=2))

    def enrollments(self, count: int) -> list[bytes]:
        """``count`` fresh citizen enrollments signed by the identity authority (new ids on every call)."""
        self._seed += 1
        return enrollments_for(self.consortium, self.consortium.network, count, seed=self._seed)  # type: ignore[arg-type]

    def submit(self, node_id: str, envelopes: list[bytes], *, timeout_s: float = 30.0) -> list[dict]:
        """POST the envelopes to that peer's API (signed by the identity authority); its per-transaction results."""
        auth = RequestSigner(self.consortium.admin_key(DEV_CUSTODIAN))
        body = {"transactions": [base64.b64encode(e).decode() for e in envelopes], "timeout_ms": int(timeout_s * 1000)}
        response = httpx.post(self.nodes[node_id].url + "/v1/transactions", json=body, auth=auth, timeout=timeout_s + 10)
        assert response.status_code == 200, response.text
        return response.json()["results"]

    def height(self, node_id: str) -> int:
        head = self.nodes[node_id].peer.store.head()
        return -1 if head is None else head.height

    def wait_in_step(self, timeout_s: float = 20.0) -> int:
        """Wait until every running peer has reached the highest height any of them has now; return it."""
        target = max(self.height(node_id) for node_id in self.nodes)
        for node_id in self.nodes:
            self.wait_height(node_id, target, timeout_s)
        return target

    def wait_height(self, node_id: str, height: int, timeout_s: float = 20.0) -> None:
        wait_until(lambda: self.height(node_id) >= height, timeout_s, f"{node_id} to reach height {height}")

    def close(self) -> None:
        self.stop()


class TamperingProxy:
    """A peer's log API as a dishonest peer would serve it: forwards GETs to ``upstream`` and alters blocks.

    ``mode`` "entry": the first log entry of every entries page has its last
    byte flipped (a transaction that is not the one the block committed);
    "header": the last header of every headers page has its time moved by 1 ms
    (a block that is not the one the serving peer signed).
    """

    def __init__(self, upstream: str, mode: str) -> None:
        assert mode in ("entry", "header")
        self.upstream, self.mode = upstream, mode
        self.tampered = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                signed = {k: v for k, v in self.headers.items() if k.lower().startswith("qcl-")}
                answer = httpx.get(proxy.upstream + self.path, headers=signed, timeout=10)
                body = answer.content
                if answer.status_code == 200 and self.path.startswith("/v1/log/"):
                    body = proxy._alter(self.path, answer.json())
                self.send_response(answer.status_code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _alter(self, path: str, body: dict) -> bytes:
        if self.mode == "entry" and path.startswith("/v1/log/entries") and body["entries"]:
            leaf = bytearray(base64.b64decode(body["entries"][0]))
            leaf[-1] ^= 1
            body["entries"][0] = base64.b64encode(bytes(leaf)).decode()
            self.tampered += 1
        if self.mode == "header" and path.startswith("/v1/log/headers") and body["headers"]:
            header = BlockHeader.decode(base64.b64decode(body["headers"][-1]))
            body["headers"][-1] = base64.b64encode(replace(header, time=header.time + 1).encode()).decode()
            self.tampered += 1
        return json.dumps(body).encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
