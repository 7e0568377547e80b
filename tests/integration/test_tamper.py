"""Tampering with a real LevelDB store: every changed, removed or added key is caught and located."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from workload import enrollments_for
from processes import run_verify
from ledger import codec
from ledger.genesis import network_id
from ledger.storage import schema
from ledger.storage.leveldb import LevelDBStore
from ledger.verify import verify_store
from node.devnet import load_node_config
from node.runtime import open_peer

pytestmark = pytest.mark.slow

TRIALS_PER_KEYSPACE = 12


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with several blocks, valid and invalid transactions, and a checkpoint."""
    data_dir = tmp_path_factory.mktemp("tamper") / "node"
    peer = open_peer(data_dir)
    config = load_node_config(data_dir)
    network = network_id(config.genesis)
    for seed in range(4):
        batch = enrollments_for(config, network, 60, seed=seed)
        peer.submit(batch + batch[:5])  # the replays stay in the block as DUPLICATE_TXID
    peer.stop()
    return data_dir


def mutate(rng: random.Random, value: bytes) -> bytes:
    kind = rng.choice(["flip", "truncate", "extend"] if value else ["extend"])
    if kind == "flip":
        position = rng.randrange(len(value))
        return value[:position] + bytes([value[position] ^ (1 << rng.randrange(8))]) + value[position + 1 :]
    if kind == "truncate":
        return value[: rng.randrange(len(value))]
    return value + bytes([rng.randrange(256)])


def leaf_index(key: bytes) -> int | None:
    return schema.decode_leaf_key(key) if key[:1] == schema.KeySpace.LEAF.value else None


@pytest.mark.parametrize("space", [s for s in schema.KeySpace])
def test_every_change_to_every_keyspace_is_detected_and_located(populated: Path, space: schema.KeySpace) -> None:
    rng = random.Random(space.value)
    kv = LevelDBStore(populated / "ledger")
    try:
        keys = [key for key, _ in kv.iterate(space.value) if key != schema.META_FORMAT]
        assert keys, f"no keys in {space.name}"
        for key in rng.sample(keys, min(TRIALS_PER_KEYSPACE, len(keys))):
            original = kv.get(key)
            operation = rng.choice(["change", "change", "delete"])
            batch = kv.batch()
            if operation == "delete":
                batch.delete(key)
            else:
                batch.put(key, mutate(rng, original))
            kv.write(batch)
            try:
                report = verify_store(kv)
            finally:
                restore = kv.batch()
                restore.put(key, original)
                kv.write(restore)
            assert not report.ok, f"{operation} of {key.hex()} went unnoticed"
            located = any(d.key == key or (d.log_index is not None and d.log_index == leaf_index(key)) for d in report.discrepancies)
            assert located, f"{operation} of {key.hex()} detected but not located: {[str(d) for d in report.discrepancies[:3]]}"
        assert verify_store(kv).ok, "restoring every key should make the store verify again"
    finally:
        kv.close()


def test_an_added_key_is_detected(populated: Path) -> None:
    kv = LevelDBStore(populated / "ledger")
    try:
        for key in (schema.state_key(b"org/intruder"), schema.txid_key(bytes(32)), schema.node_key(30, 0), b"zzz"):
            batch = kv.batch()
            batch.put(key, codec.encode({"x": 1}))
            kv.write(batch)
            report = verify_store(kv)
            undo = kv.batch()
            undo.delete(key)
            kv.write(undo)
            assert any(d.key == key and "should not exist" in d.what for d in report.discrepancies)
    finally:
        kv.close()


def test_qcl_verify_exits_nonzero_and_prints_where(populated: Path) -> None:
    assert run_verify(populated).returncode == 0
    kv = LevelDBStore(populated / "ledger")
    key = schema.leaf_key(7)
    original = kv.get(key)
    batch = kv.batch()
    batch.put(key, mutate(random.Random(7), original))
    kv.write(batch)
    kv.close()
    try:
        result = run_verify(populated)
        report = json.loads(result.stdout)
        assert result.returncode == 1
        assert any(d["log_index"] == 7 and d["block"] is not None and d["tx"] is not None for d in report["discrepancies"])
    finally:
        kv = LevelDBStore(populated / "ledger")
        restore = kv.batch()
        restore.put(key, original)
        kv.write(restore)
        kv.close()
