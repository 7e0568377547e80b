"""One contract, two stores: MemoryStore and LevelDBStore must be indistinguishable.

Every test takes ``make_store`` (parametrized over both backends), which opens a
fresh, empty store per call, so hypothesis examples never share state.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import FormatVersionError, StorageError
from ledger.storage import schema
from ledger.storage.kv import KeyValueStore
from ledger.storage.ledger_store import LedgerStore
from ledger.storage.leveldb import LevelDBStore
from ledger.storage.memory import MemoryStore

FORMAT_KEY = b"\x00format"  # docs/PROTOCOL.md §8, written out independently of schema.py

MakeStore = Callable[[], KeyValueStore]


@pytest.fixture(params=["memory", "leveldb"])
def make_store(request, tmp_path: Path) -> Iterator[MakeStore]:
    opened: list[KeyValueStore] = []
    counter = itertools.count()

    def make() -> KeyValueStore:
        if request.param == "memory":
            store: KeyValueStore = MemoryStore()
        else:
            store = LevelDBStore(tmp_path / f"db{next(counter)}")
        opened.append(store)
        return store

    yield make
    for store in opened:
        try:
            store.close()
        except Exception:
            pass


@pytest.fixture
def store(make_store: MakeStore) -> KeyValueStore:
    return make_store()


def write(store: KeyValueStore, ops: dict[bytes, bytes | None] | list[tuple[bytes, bytes | None]]) -> None:
    batch = store.batch()
    for key, value in ops.items() if isinstance(ops, dict) else ops:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    store.write(batch)


def scan(store: KeyValueStore, prefix: bytes = b"", start: bytes | None = None) -> list[tuple[bytes, bytes]]:
    if start is None:
        return list(store.iterate(prefix))
    return list(store.iterate(prefix, start))


def model_scan(model: dict[bytes, bytes], prefix: bytes = b"", start: bytes | None = None) -> list[tuple[bytes, bytes]]:
    keys = sorted(k for k in model if k.startswith(prefix) and (start is None or k >= start))
    return [(k, model[k]) for k in keys]


# --- get / put / delete ---------------------------------------------------------------------


def test_fresh_store_is_empty(store):
    assert store.get(b"a") is None
    assert scan(store) == []


def test_put_get_overwrite_delete(store):
    write(store, {b"a": b"1", b"b": b"2"})
    assert (store.get(b"a"), store.get(b"b"), store.get(b"c")) == (b"1", b"2", None)
    write(store, {b"a": b"3"})
    assert store.get(b"a") == b"3"
    write(store, {b"a": None})
    assert store.get(b"a") is None
    assert store.get(b"b") == b"2"
    write(store, {b"missing": None})  # deleting an absent key is not an error
    assert scan(store) == [(b"b", b"2")]


def test_empty_value_is_distinct_from_absent(store):
    write(store, {b"k": b""})
    assert store.get(b"k") == b""
    assert scan(store) == [(b"k", b"")]


def test_empty_key_is_a_key(store):
    write(store, {b"": b"root", b"a": b"1"})
    assert store.get(b"") == b"root"
    assert scan(store) == [(b"", b"root"), (b"a", b"1")]


def test_binary_keys_and_values_are_kept_exactly(store):
    items = {bytes([i]) * 3: bytes([255 - i]) * (i % 5) for i in range(256)}
    write(store, items)
    for key, value in items.items():
        assert store.get(key) == value
    assert scan(store) == sorted(items.items())


def test_bytes_like_values_are_stored_as_bytes(store):
    write(store, {b"a": bytearray(b"xy")})
    got = store.get(b"a")
    assert got == b"xy" and type(got) is bytes


def test_empty_batch_is_fine(store):
    write(store, {b"a": b"1"})
    store.write(store.batch())
    assert scan(store) == [(b"a", b"1")]


# --- batches ---------------------------------------------------------------------------------


def test_batch_is_invisible_until_written_then_fully_visible(store):
    write(store, {b"old": b"0", b"gone": b"x"})
    batch = store.batch()
    batch.put(b"a", b"1")
    batch.put(b"b", b"2")
    batch.delete(b"gone")
    batch.put(b"old", b"new")
    assert (store.get(b"a"), store.get(b"b"), store.get(b"gone"), store.get(b"old")) == (None, None, b"x", b"0")
    assert scan(store) == [(b"gone", b"x"), (b"old", b"0")]
    store.write(batch)
    assert scan(store) == [(b"a", b"1"), (b"b", b"2"), (b"old", b"new")]


def test_batch_reads_its_own_pending_writes(store):
    write(store, {b"kept": b"k", b"deleted": b"d", b"replaced": b"r"})
    batch = store.batch()
    batch.put(b"new", b"n")
    batch.delete(b"deleted")
    batch.put(b"replaced", b"R")
    assert batch.get(b"new") == b"n"
    assert batch.get(b"deleted") is None
    assert batch.get(b"replaced") == b"R"
    assert batch.get(b"kept") == b"k"  # falls through to the store
    assert batch.get(b"nothing") is None
    # the store itself is untouched until write
    assert store.get(b"new") is None and store.get(b"deleted") == b"d"


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([(b"k", b"1"), (b"k", b"2")], b"2"),
        ([(b"k", b"1"), (b"k", None)], None),
        ([(b"k", None), (b"k", b"3")], b"3"),
        ([(b"k", b"1"), (b"k", None), (b"k", b"4")], b"4"),
        ([(b"k", b"1"), (b"k", b"2"), (b"k", None)], None),
    ],
)
@pytest.mark.parametrize("preexisting", [None, b"old"])
def test_last_op_on_a_key_within_one_batch_wins(store, ops, expected, preexisting):
    if preexisting is not None:
        write(store, {b"k": preexisting})
    batch = store.batch()
    for key, value in ops:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    assert batch.get(b"k") == expected
    store.write(batch)
    assert store.get(b"k") == expected
    assert scan(store) == ([] if expected is None else [(b"k", expected)])


def test_a_write_that_fails_midway_changes_nothing(store):
    write(store, {b"a": b"before"})
    batch = store.batch()
    batch.put(b"a", b"after")
    batch.put(b"b", b"new")
    batch.put(b"c", "not bytes")  # type: ignore[arg-type]  # the write must fail on this op
    with pytest.raises(Exception):
        store.write(batch)
    assert scan(store) == [(b"a", b"before")]


# --- iteration ---------------------------------------------------------------------------------

ORDER_KEYS = [
    b"",
    b"\x00",
    b"\x00\x00",
    b"\x00\xff",
    b"\x01",
    b"a",
    b"a\x00",
    b"a\x7f",
    b"a\x80",
    b"a\xff",
    b"a\xff\xff",
    b"ab",
    b"b",
    b"\x7f",
    b"\x80",
    b"\xfe\xff",
    b"\xff",
    b"\xff\x00",
    b"\xff\xff",
    b"\xff\xff\x00",
    b"\xff\xff\xff",
]


@pytest.fixture
def ordered(store) -> tuple[KeyValueStore, dict[bytes, bytes]]:
    model = {key: key[::-1] + b"v" for key in ORDER_KEYS}
    write(store, model)
    return store, model


def test_iterate_yields_all_keys_in_unsigned_byte_order(ordered):
    store, model = ordered
    result = scan(store)
    keys = [k for k, _ in result]
    # unsigned bytewise order, a proper prefix first — written out, not computed by sorting
    assert keys == [
        b"", b"\x00", b"\x00\x00", b"\x00\xff", b"\x01",
        b"a", b"a\x00", b"ab", b"a\x7f", b"a\x80", b"a\xff", b"a\xff\xff", b"b",
        b"\x7f", b"\x80", b"\xfe\xff", b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff",
    ]  # fmt: skip
    assert result == [(k, model[k]) for k in keys]
    assert all(type(k) is bytes and type(v) is bytes for k, v in result)


@pytest.mark.parametrize(
    "prefix",
    [b"", b"\x00", b"a", b"a\xff", b"ab", b"abc", b"\x7f", b"\xfe", b"\xff", b"\xff\xff", b"\xff\xff\xff", b"\xff\xff\xff\xff"],
)
def test_iterate_with_prefix(ordered, prefix):
    store, model = ordered
    assert scan(store, prefix) == model_scan(model, prefix)


def test_prefix_scans_spot_checks(ordered):
    store, _ = ordered
    assert [k for k, _ in scan(store, b"a")] == [b"a", b"a\x00", b"ab", b"a\x7f", b"a\x80", b"a\xff", b"a\xff\xff"]
    assert [k for k, _ in scan(store, b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff"]
    assert [k for k, _ in scan(store, b"\xff")] == [b"\xff", b"\xff\x00", b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff"]
    assert scan(store, b"zzz") == []


@pytest.mark.parametrize(
    ("prefix", "start"),
    [
        (b"", b""),
        (b"", b"a"),
        (b"", b"a\x00"),
        (b"", b"\x80"),
        (b"", b"\xff\xff"),
        (b"", b"\xff\xff\xff\xff"),
        (b"a", b""),  # start before the prefix: the whole prefix range
        (b"a", b"\x00"),
        (b"a", b"a"),
        (b"a", b"a\x01"),
        (b"a", b"a\xff"),
        (b"a", b"a\xff\xff\xff"),
        (b"a", b"b"),  # start past the prefix range: nothing
        (b"a", b"\xff"),
        (b"\xff", b"\xff\x01"),
        (b"\xff", b"\xff\xff"),
        (b"\xff\xff", b"\xff\xff\x00"),
        (b"\xff\xff", b"\xff\xff\x01"),
        (b"\xff\xff", b"a"),
        (b"\x00", b"\x00\x01"),
        (b"a\xff", b"a\xff\x00"),
    ],
)
def test_iterate_with_prefix_and_start(ordered, prefix, start):
    store, model = ordered
    assert scan(store, prefix, start) == model_scan(model, prefix, start)


def test_iterate_with_start_spot_checks(ordered):
    store, _ = ordered
    assert [k for k, _ in scan(store, b"a", b"a\x80")] == [b"a\x80", b"a\xff", b"a\xff\xff"]
    assert [k for k, _ in scan(store, b"a", b"a\x01")] == [b"ab", b"a\x7f", b"a\x80", b"a\xff", b"a\xff\xff"]
    assert [k for k, _ in scan(store, b"", b"\xff\xff")] == [b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff"]
    assert [k for k, _ in scan(store, b"\xff", b"\xff\x01")] == [b"\xff\xff", b"\xff\xff\x00", b"\xff\xff\xff"]
    assert scan(store, b"a", b"b") == []


def test_iterate_sees_later_writes(store):
    write(store, {b"b": b"1"})
    assert scan(store) == [(b"b", b"1")]
    write(store, {b"a": b"0", b"c": b"2", b"b": None})
    assert scan(store) == [(b"a", b"0"), (b"c", b"2")]
    assert scan(store, b"b") == []


# --- random operations against a dict model --------------------------------------------------

key_bytes = st.lists(st.sampled_from([0x00, 0x01, 0x61, 0x7F, 0x80, 0xFE, 0xFF]), max_size=3).map(bytes)
keys = st.one_of(key_bytes, st.sampled_from([b"", b"\xff", b"\xff\xff", b"\x00", b"a"]))
values = st.binary(max_size=4)
op = st.one_of(
    st.tuples(st.just("put"), keys, values),
    st.tuples(st.just("delete"), keys, st.none()),
    st.tuples(st.just("check"), keys, st.none()),
)
batches = st.lists(st.lists(op, max_size=8), min_size=1, max_size=6)
scans = st.lists(st.tuples(keys, st.one_of(st.none(), keys)), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches, scans=scans)
def test_random_batches_match_a_dict_model(make_store, batches, scans):
    store = make_store()
    model: dict[bytes, bytes] = {}
    for ops in batches:
        batch = store.batch()
        pending = dict(model)
        for kind, key, value in ops:
            if kind == "put":
                batch.put(key, value)
                pending[key] = value
            elif kind == "delete":
                batch.delete(key)
                pending.pop(key, None)
            else:
                assert batch.get(key) == pending.get(key)
                assert store.get(key) == model.get(key)
        store.write(batch)
        model = pending
        assert scan(store) == model_scan(model)
    for key in set(model) | {k for k, _ in scans}:
        assert store.get(key) == model.get(key)
    for prefix, start in scans:
        assert scan(store, prefix, start) == model_scan(model, prefix, start)


# --- LevelDB: durability ---------------------------------------------------------------------


def test_leveldb_persists_across_reopen(tmp_path):
    path = tmp_path / "db"
    store = LevelDBStore(path)
    write(store, {b"a": b"1", b"b": b"2", b"\xff": b"3"})
    write(store, {b"b": None})
    batch = store.batch()
    batch.put(b"c", b"unsynced")
    store.write(batch, sync=False)
    store.close()

    reopened = LevelDBStore(path, create=False)
    try:
        assert scan(reopened) == [(b"a", b"1"), (b"c", b"unsynced"), (b"\xff", b"3")]
        assert reopened.get(b"b") is None
    finally:
        reopened.close()


def test_leveldb_refuses_a_missing_store_without_create(tmp_path):
    with pytest.raises(StorageError):
        LevelDBStore(tmp_path / "absent", create=False)


def test_leveldb_refuses_a_store_that_is_already_open(tmp_path):
    store = LevelDBStore(tmp_path / "db")
    try:
        with pytest.raises(StorageError):
            LevelDBStore(tmp_path / "db")
    finally:
        store.close()


# --- LedgerStore: the format-version key -----------------------------------------------------


def test_ledger_store_writes_the_format_key_on_a_fresh_store(store):
    LedgerStore(store)
    version = store.get(FORMAT_KEY)
    assert version is not None and version.isdigit()
    assert scan(store) == [(FORMAT_KEY, version)]
    LedgerStore(store)  # opening again accepts what it wrote and changes nothing
    assert scan(store) == [(FORMAT_KEY, version)]


def test_ledger_store_reopens_a_leveldb_store(tmp_path):
    path = tmp_path / "db"
    LedgerStore(LevelDBStore(path)).close()
    reopened = LedgerStore(LevelDBStore(path, create=False))
    try:
        assert reopened.head() is None
        assert reopened.kv.get(FORMAT_KEY).isdigit()
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "other", [v for v in (b"0", b"1", b"2", b"3", b"1.0", b"01", b"", b"\x01") if v != schema.FORMAT_VERSION]
)
def test_ledger_store_refuses_another_format_version(store, other):
    LedgerStore(store)
    assert store.get(FORMAT_KEY) != other
    write(store, {FORMAT_KEY: other})
    with pytest.raises(FormatVersionError):
        LedgerStore(store)
    assert store.get(FORMAT_KEY) == other  # a refused open must not "repair" the key


def test_ledger_store_refuses_another_format_version_after_leveldb_reopen(tmp_path):
    path = tmp_path / "db"
    kv = LevelDBStore(path)
    LedgerStore(kv)
    write(kv, {FORMAT_KEY: b"999"})
    kv.close()
    kv = LevelDBStore(path, create=False)
    try:
        with pytest.raises(FormatVersionError):
            LedgerStore(kv)
    finally:
        kv.close()


@pytest.mark.parametrize("data_key", [b"b" + bytes(8), b"\x00head", b"zzz", b"\xff"])
def test_ledger_store_refuses_data_without_a_format_key(store, data_key):
    write(store, {data_key: b"something"})
    with pytest.raises(FormatVersionError):
        LedgerStore(store)
    assert store.get(FORMAT_KEY) is None  # nothing was written by the refused open
    assert scan(store) == [(data_key, b"something")]


def test_format_version_error_is_a_storage_error():
    assert issubclass(FormatVersionError, StorageError)
