"""node.vault on both stores: put/get/delete, the key layout, persistence, and the format-version check."""

from __future__ import annotations

import itertools
import struct
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import FormatVersionError, StorageError
from ledger.storage.kv import KeyValueStore
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.memory import MemoryStore
from node import vault as vault_module
from node.vault import Vault, open_vault
from privacy.envelope import SealedRecord, open_record, record_aad, seal_record, vault_keypair

# The layout from node/vault.py's docstring, written out independently of the module.
FORMAT_KEY = b"\x00format"
FORMAT = b"1"


def record_key(record_id: bytes, version: int) -> bytes:
    return b"r" + record_id + struct.pack(">I", version)


RECORD_A = bytes.fromhex("0a" * 16)
RECORD_B = bytes.fromhex("0b" * 16)
VAULT_PRIVATE, VAULT_PUBLIC = vault_keypair(bytes(range(32)))

MakeStore = Callable[[], KeyValueStore]


@pytest.fixture(params=["memory", "leveldb"])
def make_store(request, tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[KeyValueStore] = []
    counter = itertools.count()

    def make() -> KeyValueStore:
        store: KeyValueStore = MemoryStore() if request.param == "memory" else LevelDBStore(tmp_path / f"vault{next(counter)}")
        opened.append(store)
        return store

    yield make
    for store in opened:
        try:
            store.close()
        except Exception:
            pass


def sealed(payload: bytes, record_id: bytes = RECORD_A, version: int = 1) -> SealedRecord:
    return seal_record(payload, VAULT_PUBLIC, record_aad(record_id, version, "household-registration", b"s" * 32))


def raw_put(kv: KeyValueStore, key: bytes, value: bytes) -> None:
    batch = kv.batch()
    batch.put(key, value)
    kv.write(batch)


def test_public_api_is_pinned():
    assert sorted(vault_module.__all__) == ["FORMAT_VERSION", "META_FORMAT", "Vault", "open_vault"]


def test_fresh_vault_writes_its_format_key(make_store):
    kv = make_store()
    Vault(kv)
    assert list(kv.iterate()) == [(FORMAT_KEY, FORMAT)]


def test_put_get_delete(make_store):
    kv = make_store()
    vault = Vault(kv)
    first, second, other = sealed(b"v1"), sealed(b"v2", version=2), sealed(b"b", RECORD_B)
    assert vault.get(RECORD_A, 1) is None
    vault.put(RECORD_A, 1, first)
    vault.put(RECORD_A, 2, second, sync=False)
    vault.put(RECORD_B, 1, other)
    assert vault.get(RECORD_A, 1) == first
    assert vault.get(RECORD_A, 2) == second
    assert vault.get(RECORD_B, 1) == other
    assert vault.get(RECORD_B, 2) is None

    vault.delete(RECORD_A, 1)
    assert vault.get(RECORD_A, 1) is None
    assert vault.get(RECORD_A, 2) == second
    vault.delete(RECORD_A, 1)  # idempotent
    vault.delete(RECORD_B, 9)  # never stored

    replacement = sealed(b"v2 again", version=2)
    vault.put(RECORD_A, 2, replacement)
    assert vault.get(RECORD_A, 2) == replacement


def test_key_layout(make_store):
    kv = make_store()
    vault = Vault(kv)
    entry = sealed(b"payload", version=0x01020304)
    vault.put(RECORD_A, 0x01020304, entry)
    vault.put(RECORD_A, 2, sealed(b"two", version=2))
    assert kv.get(b"r" + RECORD_A + bytes([1, 2, 3, 4])) == entry.encode()
    assert [key for key, _ in kv.iterate(b"r" + RECORD_A)] == [record_key(RECORD_A, 2), record_key(RECORD_A, 0x01020304)]
    assert kv.get(FORMAT_KEY) == FORMAT


def test_vault_reopens_over_the_same_store(make_store):
    kv = make_store()
    entry = sealed(b"kept")
    Vault(kv).put(RECORD_A, 1, entry)
    assert Vault(kv).get(RECORD_A, 1) == entry


def test_persists_across_close_and_reopen(tmp_path):
    path = tmp_path / "vault"
    aad = record_aad(RECORD_A, 3, "household-registration", b"s" * 32)
    entry = seal_record(b"the payload", VAULT_PUBLIC, aad)
    vault = open_vault(path)
    vault.put(RECORD_A, 3, entry)
    vault.close()

    reopened = open_vault(path)
    try:
        found = reopened.get(RECORD_A, 3)
        assert found == entry
        assert open_record(found, VAULT_PRIVATE, aad) == b"the payload"
        reopened.delete(RECORD_A, 3)
    finally:
        reopened.close()

    again = open_vault(path)
    try:
        assert again.get(RECORD_A, 3) is None
    finally:
        again.close()


@pytest.mark.parametrize("version", [b"0", b"2", b"10", b""])
def test_other_format_versions_are_refused(make_store, version):
    kv = make_store()
    raw_put(kv, FORMAT_KEY, version)
    with pytest.raises(FormatVersionError):
        Vault(kv)


def test_data_without_a_format_key_is_refused(make_store):
    kv = make_store()
    raw_put(kv, record_key(RECORD_A, 1), sealed(b"orphan").encode())
    with pytest.raises(FormatVersionError):
        Vault(kv)


def test_open_vault_refuses_a_mismatch_and_releases_the_database(tmp_path):
    path = tmp_path / "vault"
    store = LevelDBStore(path)
    raw_put(store, FORMAT_KEY, b"2")
    store.close()
    with pytest.raises(FormatVersionError) as caught:
        open_vault(path)
    # LevelDB holds an exclusive lock while open: reopening proves the failed open closed it.
    # ``caught`` keeps the traceback (and so open_vault's frame) alive, so garbage collection
    # cannot close a leaked handle for us.
    store = LevelDBStore(path)
    assert store.get(FORMAT_KEY) == b"2"
    store.close()
    assert caught.traceback


def test_corrupt_entries_are_a_storage_error(make_store):
    kv = make_store()
    vault = Vault(kv)
    raw_put(kv, record_key(RECORD_A, 1), b"\xa1anonce")
    with pytest.raises(StorageError, match=RECORD_A.hex()):
        vault.get(RECORD_A, 1)


@pytest.mark.parametrize(
    "record_id, version, argument",
    [
        (bytes(15), 1, "record_id"),
        (bytes(17), 1, "record_id"),
        ("0" * 16, 1, "record_id"),
        (RECORD_A, -1, "version"),
        (RECORD_A, 2**32, "version"),
        (RECORD_A, True, "version"),
    ],
)
def test_bad_keys_are_refused(make_store, record_id, version, argument):
    vault = Vault(make_store())
    with pytest.raises(ValueError, match=argument):
        vault.put(record_id, version, sealed(b"x"))
    with pytest.raises(ValueError, match=argument):
        vault.get(record_id, version)
    with pytest.raises(ValueError, match=argument):
        vault.delete(record_id, version)


def test_close_closes_the_store():
    kv = MemoryStore()
    Vault(kv).close()
    with pytest.raises(StorageError):
        kv.get(FORMAT_KEY)


ENTRY = sealed(b"one sealed payload")  # sealing is slow-ish; the model test cares about keys, not contents


@settings(max_examples=50)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["put", "delete"]),
            st.sampled_from([RECORD_A, RECORD_B]),
            st.sampled_from([0, 1, 2, 2**32 - 1]),
            st.binary(min_size=16, max_size=40),
        ),
        max_size=30,
    )
)
def test_behaves_like_a_dict(ops):
    vault = Vault(MemoryStore())
    model: dict[tuple[bytes, int], SealedRecord] = {}
    for op, record_id, version, ciphertext in ops:
        if op == "put":
            entry = SealedRecord(nonce=ENTRY.nonce, ciphertext=ciphertext, wrapped_key=ENTRY.wrapped_key)
            vault.put(record_id, version, entry)
            model[(record_id, version)] = entry
        else:
            vault.delete(record_id, version)
            model.pop((record_id, version), None)
    for record_id, version in itertools.product([RECORD_A, RECORD_B], [0, 1, 2, 2**32 - 1]):
        assert vault.get(record_id, version) == model.get((record_id, version))
