"""Opens a peer from its data directory: config, LevelDB store, orderer, genesis."""

from __future__ import annotations

import time
from pathlib import Path

from ledger.genesis import network_id
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from node.devnet import NodeConfig, create_dev_network, dev_catalogue_transactions, load_node_config
from node.ordering.inprocess import InProcessOrderer
from node.peer import Peer

__all__ = ["clock_ms", "open_peer"]


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


def open_peer(data_dir: Path, *, sync: bool = True, max_batch_txs: int = 2000) -> Peer:
    """Open (creating a development network when ``data_dir`` is new) and start the peer."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "genesis.json").exists():
        create_dev_network(data_dir, clock_ms())
    config = load_node_config(data_dir)
    store = LedgerStore(LevelDBStore(config.ledger_path))
    head = store.head()
    orderer = InProcessOrderer(max_batch_txs=max_batch_txs, last_time_ms=0 if head is None else head.time, clock_ms=clock_ms)
    peer = Peer(store, orderer, node_id=config.node_id, node_key=config.node_key, clock_ms=clock_ms, sync=sync)
    if head is None:
        peer.bootstrap(config.genesis_envelope, config.genesis["time"], network_id(config.genesis))
    peer.start()
    if head is None:
        _define_dev_catalogue(peer, config)
    return peer


def _define_dev_catalogue(peer: Peer, config: NodeConfig) -> None:
    for result in peer.submit(dev_catalogue_transactions(config, peer.network, clock_ms())):
        if result.status != "committed":
            peer.stop()
            raise RuntimeError(f"the development catalogue was refused: {result.code} {result.reason}")
