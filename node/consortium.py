"""A development consortium on one machine: N peers of N organizations, one genesis, ordered by etcd.

The real deployment runs one peer per member organization, each on its own
machine with its own node key, all following one etcd-ordered stream. This
module lays the same thing out in directories so that one machine can run it
(``qcl network up``) and tests can start it: a root directory holding the
genesis and every organization's admin key (development only: a real member's
key never leaves that member), and one data directory per peer holding only
what that peer's operator would hold — the genesis, its own node key and its
node.json (node id, etcd endpoints, the other peers' URLs for catch-up, HTTP
port). Each peer directory can be started on its own with
``qcl node start --data-dir ROOT/peerI``.

The data catalogue is not defined by any peer: a peer never holds the
custodian's admin key. The network's creator defines it once, through a
peer's API, as the custodian (``node.devnet.dev_catalogue_transactions``
takes a :class:`Consortium` for its admin keys), and records in the manifest
that it did (:meth:`Consortium.with_catalogue_defined`): a second definition
at version 1 would be refused by the catalogue rule.

Layout of ROOT::

    consortium.json    the peers (node id, organization, port), the etcd endpoints, whether the catalogue is defined
    genesis.json, genesis.tx
    keys/ORG.admin.key every organization's admin key (development only)
    peerI/             one peer's data directory (genesis.*, keys/node.key, node.json, ledger/, vault/)
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from ledger.crypto import KeyPair
from ledger.genesis import genesis_from_json, network_id
from node.devnet import DEV_CUSTODIAN, DEV_ORGS, write_dev_genesis
from node.keyfile import load_key, save_key

__all__ = [
    "MAX_PEERS",
    "Consortium",
    "ConsortiumError",
    "ConsortiumPeer",
    "create_consortium",
    "load_consortium",
]

MANIFEST = "consortium.json"
# One peer per organization, as in the real deployment; the custodian runs peer0.
PEER_ORGS: tuple[str, ...] = (DEV_CUSTODIAN, *(org_id for org_id, _, _ in DEV_ORGS if org_id != DEV_CUSTODIAN))
MAX_PEERS = len(PEER_ORGS)


class ConsortiumError(Exception):
    """A consortium directory that cannot be created or read; ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ConsortiumPeer:
    node_id: str
    org: str
    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class Consortium:
    root: Path
    network: bytes
    peers: tuple[ConsortiumPeer, ...]
    etcd_endpoints: tuple[str, ...]
    catalogue_defined: bool = False  # set once the creator has defined the development catalogue on chain

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    def admin_key(self, org_id: str) -> KeyPair:
        return load_key(self.keys_dir / f"{org_id}.admin.key")

    def peer(self, node_id: str) -> ConsortiumPeer:
        for peer in self.peers:
            if peer.node_id == node_id:
                return peer
        raise ConsortiumError("not_found", f"no peer {node_id!r} in {self.root}")

    def with_catalogue_defined(self) -> Consortium:
        """Record that the development catalogue is on chain, so that it is never submitted again."""
        updated = replace(self, catalogue_defined=True)
        updated._write()
        return updated

    def _write(self) -> None:
        manifest = {
            "network": self.network.hex(),
            "etcd_endpoints": list(self.etcd_endpoints),
            "catalogue_defined": self.catalogue_defined,
            "peers": [
                {"node_id": p.node_id, "org": p.org, "data_dir": p.data_dir.name, "port": p.port} for p in self.peers
            ],
        }
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=2))
        for peer in self.peers:
            settings = {
                "node_id": peer.node_id,
                "port": peer.port,
                "orderer": {
                    "kind": "etcd",
                    "endpoints": list(self.etcd_endpoints),
                    "peers": {other.node_id: other.url for other in self.peers if other is not peer},
                },
            }
            (peer.data_dir / "node.json").write_text(json.dumps(settings, indent=2))


def create_consortium(root: Path, *, ports: Sequence[int], etcd_endpoints: Sequence[str], time_ms: int) -> Consortium:
    """Lay out a consortium of ``len(ports)`` peers in ``root`` (which must not hold one already).

    Peer ``i`` is ``peer{i}``, run by the ``i``-th organization (the custodian
    first), serving HTTP on ``ports[i]``; each gets its own fresh node key.
    """
    count = len(ports)
    if not 1 <= count <= MAX_PEERS:
        raise ConsortiumError("invalid_argument", f"a development consortium has 1 to {MAX_PEERS} peers (one per organization), not {count}")
    if len(set(ports)) != count:
        raise ConsortiumError("invalid_argument", f"peer ports repeat: {list(ports)}")
    if not etcd_endpoints:
        raise ConsortiumError("invalid_argument", "no etcd endpoint given")
    if (root / MANIFEST).exists():
        raise ConsortiumError("already_exists", f"{root} already holds a consortium")
    root.mkdir(parents=True, exist_ok=True)
    peers = tuple(ConsortiumPeer(f"peer{i}", PEER_ORGS[i], root / f"peer{i}", port) for i, port in enumerate(ports))
    node_keys = {peer.node_id: KeyPair.generate() for peer in peers}
    write_dev_genesis(root, time_ms, {peer.org: [(peer.node_id, node_keys[peer.node_id].public_key)] for peer in peers})
    for peer in peers:
        peer.data_dir.mkdir()
        save_key(peer.data_dir / "keys" / "node.key", node_keys[peer.node_id])
        for name in ("genesis.json", "genesis.tx"):
            shutil.copyfile(root / name, peer.data_dir / name)
    consortium = Consortium(root, network_id(genesis_from_json((root / "genesis.json").read_text())), peers, tuple(etcd_endpoints))
    consortium._write()  # the manifest last: its presence means the layout is complete
    return consortium


def load_consortium(root: Path) -> Consortium:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise ConsortiumError("not_found", f"{root} holds no consortium (no {MANIFEST}); create one with qcl network up") from None
    peers = tuple(
        ConsortiumPeer(entry["node_id"], entry["org"], root / entry["data_dir"], entry["port"]) for entry in manifest["peers"]
    )
    return Consortium(
        root, bytes.fromhex(manifest["network"]), peers, tuple(manifest["etcd_endpoints"]), manifest["catalogue_defined"]
    )
