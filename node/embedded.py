"""An embedded node: peer, vault and HTTP API in this process, for the demo, tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import uvicorn

from node.api.app import create_app
from node.devnet import NodeConfig, load_node_config
from node.peer import Peer
from node.runtime import open_peer
from node.vault import open_vault

__all__ = ["EmbeddedNode", "embedded_node", "free_port"]


@dataclass(frozen=True)
class EmbeddedNode:
    url: str
    port: int
    peer: Peer
    config: NodeConfig


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def embedded_node(data_dir: Path, *, port: int | None = None) -> Iterator[EmbeddedNode]:
    """Open (or create) the node in ``data_dir``, serve its API on 127.0.0.1, stop everything on exit."""
    peer = open_peer(data_dir)
    vault = open_vault(data_dir / "vault")
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(peer, vault=vault), host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError(f"the API server could not start on port {port}")
            time.sleep(0.02)
        yield EmbeddedNode(f"http://127.0.0.1:{port}", port, peer, load_node_config(data_dir))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        peer.stop()
        vault.close()
