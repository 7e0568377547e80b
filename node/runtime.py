"""Opens a peer from its data directory: config, LevelDB store, orderer, genesis.

The orderer is chosen by node.json's ``orderer`` setting: absent or
``{"kind": "inprocess"}`` is the embedded orderer of a one-peer network (the
default); ``{"kind": "etcd", "endpoints": [...], "peers": {...}}`` joins a
consortium ordered by etcd (node/ordering/etcd.py).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ledger.genesis import network_id
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from node.devnet import NodeConfig, create_dev_network, dev_catalogue_transactions, load_node_config
from node.ordering.base import Orderer, OrderingError
from node.ordering.etcd import POSITION_FILE, PUT_TIMEOUT_S, EtcdOrderer, EtcdSettings
from node.ordering.etcd_gateway import EtcdGateway
from node.ordering.inprocess import InProcessOrderer
from node.peer import Peer
from node.sync import PeerSync

__all__ = ["clock_ms", "open_peer", "orderer_setting"]


def clock_ms() -> int:
    return time.time_ns() // 1_000_000


def orderer_setting(data_dir: Path) -> dict[str, Any]:
    """node.json's ``orderer`` object (``{"kind": "inprocess"}`` when absent)."""
    setting = json.loads((data_dir / "node.json").read_text()).get("orderer", {"kind": "inprocess"})
    if not isinstance(setting, dict) or setting.get("kind") not in ("inprocess", "etcd"):
        raise OrderingError('node.json: orderer.kind must be "inprocess" or "etcd"', code="config")
    return setting


def open_peer(data_dir: Path, *, sync: bool = True, max_batch_txs: int = 2000) -> Peer:
    """Open (creating a development network when ``data_dir`` is new) and start the peer."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "genesis.json").exists():
        create_dev_network(data_dir, clock_ms())
    config = load_node_config(data_dir)
    setting = orderer_setting(data_dir)
    store = LedgerStore(LevelDBStore(config.ledger_path))
    head = store.head()
    orderer: Orderer
    if setting["kind"] == "etcd":
        orderer = _etcd_orderer(EtcdSettings.from_config(setting), config, store, max_batch_txs)
    else:
        orderer = InProcessOrderer(max_batch_txs=max_batch_txs, last_time_ms=0 if head is None else head.time, clock_ms=clock_ms)
    peer = Peer(store, orderer, node_id=config.node_id, node_key=config.node_key, clock_ms=clock_ms, sync=sync)
    if head is None:
        peer.bootstrap(config.genesis_envelope, config.genesis["time"], network_id(config.genesis))
    peer.start()
    # A consortium's catalogue is defined once, by its creator through a peer's API: no peer holds admin keys.
    if head is None and setting["kind"] == "inprocess":
        _define_dev_catalogue(peer, config)
    return peer


def _etcd_orderer(settings: EtcdSettings, config: NodeConfig, store: LedgerStore, max_batch_txs: int) -> EtcdOrderer:
    head = store.head()
    peers = {node_id: url for node_id, url in settings.peers.items() if node_id != config.node_id}
    return EtcdOrderer(
        EtcdGateway(settings.endpoints, timeout_s=PUT_TIMEOUT_S),
        network=network_id(config.genesis),
        node_id=config.node_id,
        position_file=config.data_dir / POSITION_FILE,
        last_time_ms=config.genesis["time"] if head is None else head.time,
        sync=PeerSync(peers, node_key=config.node_key, store=store),
        clock_ms=clock_ms,
        max_batch_txs=max_batch_txs,
    )


def _define_dev_catalogue(peer: Peer, config: NodeConfig) -> None:
    for result in peer.submit(dev_catalogue_transactions(config, peer.network, clock_ms())):
        if result.status != "committed":
            peer.stop()
            raise RuntimeError(f"the development catalogue was refused: {result.code} {result.reason}")
