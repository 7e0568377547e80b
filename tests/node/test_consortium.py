"""The development consortium generator: one genesis for every peer, one key per peer, each peer's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.genesis import genesis_from_json, network_id
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.memory import MemoryStore
from node.consortium import MAX_PEERS, Consortium, ConsortiumError, create_consortium, load_consortium
from node.devnet import DEV_CUSTODIAN, dev_catalogue_transactions, load_node_config
from node.ordering.inprocess import InProcessOrderer
from node.peer import Peer
from node.runtime import clock_ms

PORTS = (9101, 9102, 9103, 9104)
ETCD = ("http://127.0.0.1:2479", "http://127.0.0.1:2481", "http://127.0.0.1:2483")


@pytest.fixture
def consortium(tmp_path: Path) -> Consortium:
    return create_consortium(tmp_path / "net", ports=PORTS, etcd_endpoints=ETCD, time_ms=clock_ms())


def test_every_peer_holds_the_same_genesis_naming_every_peer(consortium: Consortium) -> None:
    root = consortium.root
    for peer in consortium.peers:
        for name in ("genesis.json", "genesis.tx"):
            assert (peer.data_dir / name).read_bytes() == (root / name).read_bytes()
    genesis = genesis_from_json((root / "genesis.json").read_text())
    assert network_id(genesis) == consortium.network
    named = {node["id"]: (org["id"], node["key"]) for org in genesis["orgs"] for node in org["nodes"]}
    assert named == {
        peer.node_id: (peer.org, load_node_config(peer.data_dir).node_key.public_key) for peer in consortium.peers
    }
    assert [peer.node_id for peer in consortium.peers] == ["peer0", "peer1", "peer2", "peer3"]
    assert consortium.peers[0].org == DEV_CUSTODIAN
    assert len({peer.org for peer in consortium.peers}) == len(PORTS)  # one peer per organization


def test_node_keys_are_distinct_and_admin_keys_stay_out_of_the_peers(consortium: Consortium) -> None:
    keys = [load_node_config(peer.data_dir).node_key for peer in consortium.peers]
    assert len({key.public_key for key in keys}) == len(keys)
    genesis = genesis_from_json((consortium.root / "genesis.json").read_text())
    admins = {org["id"]: org["admin_keys"] for org in genesis["orgs"]}
    assert all(consortium.admin_key(org).public_key in keys_of_org for org, keys_of_org in admins.items())
    for peer in consortium.peers:
        assert sorted(path.name for path in (peer.data_dir / "keys").iterdir()) == ["node.key"]


def test_each_peer_is_configured_for_etcd_and_knows_the_others(consortium: Consortium) -> None:
    urls = {peer.node_id: f"http://127.0.0.1:{port}" for peer, port in zip(consortium.peers, PORTS)}
    for peer in consortium.peers:
        settings = json.loads((peer.data_dir / "node.json").read_text())
        assert settings == {
            "node_id": peer.node_id,
            "port": peer.port,
            "orderer": {
                "kind": "etcd",
                "endpoints": list(ETCD),
                "peers": {node_id: url for node_id, url in urls.items() if node_id != peer.node_id},
            },
        }
        config = load_node_config(peer.data_dir)
        assert (config.node_id, config.port) == (peer.node_id, peer.port)


def test_the_manifest_reads_back_and_remembers_the_catalogue(consortium: Consortium) -> None:
    assert load_consortium(consortium.root) == consortium
    assert not consortium.catalogue_defined
    defined = consortium.with_catalogue_defined()
    assert defined.catalogue_defined and load_consortium(consortium.root) == defined


def test_every_peer_builds_the_same_genesis_block_and_the_catalogue_is_defined_once(consortium: Consortium) -> None:
    """Block 0 is byte-identical on every peer; the catalogue, defined once by the custodian, cannot be defined twice."""
    peers = [open_on_memory(peer.data_dir) for peer in consortium.peers]
    try:
        assert len({peer.store.head().block_hash for peer in peers}) == 1
        first = peers[0]
        results = first.submit(dev_catalogue_transactions(consortium, consortium.network, clock_ms()))
        assert {result.status for result in results} == {"committed"}
        again = first.submit(dev_catalogue_transactions(consortium, consortium.network, clock_ms()))
        assert {(result.status, result.code.name) for result in again} == {("invalid", "BAD_PAYLOAD")}
    finally:
        for peer in peers:
            peer.stop()


def open_on_memory(data_dir: Path) -> Peer:
    """A peer of the consortium on an in-memory store with the embedded orderer: genesis only, no etcd needed."""
    config = load_node_config(data_dir)
    peer = Peer(LedgerStore(MemoryStore()), InProcessOrderer(), node_id=config.node_id, node_key=config.node_key, clock_ms=clock_ms)
    peer.bootstrap(config.genesis_envelope, config.genesis["time"], network_id(config.genesis))
    peer.start()
    return peer


@pytest.mark.parametrize(
    ("ports", "code"),
    [((), "invalid_argument"), (tuple(range(9200, 9201 + MAX_PEERS)), "invalid_argument"), ((9300, 9300), "invalid_argument")],
)
def test_refuses_a_bad_size_or_repeated_ports(tmp_path: Path, ports: tuple[int, ...], code: str) -> None:
    with pytest.raises(ConsortiumError) as caught:
        create_consortium(tmp_path / "net", ports=ports, etcd_endpoints=ETCD, time_ms=clock_ms())
    assert caught.value.code == code
    assert not (tmp_path / "net").exists()


def test_refuses_to_overwrite_a_consortium_and_to_load_nothing(consortium: Consortium, tmp_path: Path) -> None:
    with pytest.raises(ConsortiumError) as caught:
        create_consortium(consortium.root, ports=PORTS, etcd_endpoints=ETCD, time_ms=clock_ms())
    assert caught.value.code == "already_exists"
    with pytest.raises(ConsortiumError) as caught:
        load_consortium(tmp_path / "nothing")
    assert caught.value.code == "not_found"
