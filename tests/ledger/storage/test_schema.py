"""Key layouts of the store (docs/PROTOCOL.md §8): round-trips, scan order and prefix-freedom."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.storage import schema

U64 = st.integers(0, 2**64 - 1)
U8 = st.integers(0, 255)
HASH = st.binary(min_size=32, max_size=32)
STATE_KEYS = st.binary(max_size=80) | st.sampled_from([b"", b"member/", b"org/a", b"\x00", b"\xff" * 3])

SETTINGS = settings(max_examples=100, deadline=None)


# --- layouts, written out from the documentation ------------------------------------------------


@SETTINGS
@given(U64)
def test_block_key_layout_and_round_trip(height):
    key = schema.block_key(height)
    assert key == b"b" + height.to_bytes(8, "big")
    assert schema.decode_block_key(key) == height


@SETTINGS
@given(U64)
def test_leaf_key_layout_and_round_trip(index):
    key = schema.leaf_key(index)
    assert key == b"l" + index.to_bytes(8, "big")
    assert schema.decode_leaf_key(key) == index


@SETTINGS
@given(U8, U64)
def test_node_key_layout_and_round_trip(level, index):
    key = schema.node_key(level, index)
    assert key == b"n" + bytes([level]) + index.to_bytes(8, "big")
    assert schema.decode_node_key(key) == (level, index)


@SETTINGS
@given(STATE_KEYS, U64)
def test_history_key_layout_and_round_trip(state_key, log_index):
    key = schema.history_key(state_key, log_index)
    assert key == b"v" + len(state_key).to_bytes(2, "big") + state_key + log_index.to_bytes(8, "big")
    assert schema.history_prefix(state_key) == b"v" + len(state_key).to_bytes(2, "big") + state_key
    assert key.startswith(schema.history_prefix(state_key))
    assert schema.decode_history_key(key) == (state_key, log_index)


@SETTINGS
@given(U64)
def test_u64_round_trip(value):
    assert schema.encode_u64(value) == value.to_bytes(8, "big")
    assert schema.decode_u64(schema.encode_u64(value)) == value


@SETTINGS
@given(HASH, st.binary(max_size=64))
def test_hash_txid_and_state_key_layouts(digest, state_key):
    assert schema.block_hash_key(digest) == b"h" + digest
    assert schema.txid_key(digest) == b"t" + digest
    assert schema.state_key(state_key) == b"s" + state_key


def test_meta_keys_and_key_spaces():
    assert (schema.META_FORMAT, schema.META_HEAD) == (b"\x00format", b"\x00head")
    assert {space.value for space in schema.KeySpace} == {b"\x00", b"b", b"h", b"l", b"t", b"s", b"v", b"n", b"c"}
    assert schema.FORMAT_VERSION.isdigit()


@pytest.mark.parametrize(
    "make",
    [
        lambda: schema.block_key(2**64),
        lambda: schema.block_key(-1),
        lambda: schema.leaf_key(2**64),
        lambda: schema.node_key(256, 0),
        lambda: schema.node_key(0, -1),
        lambda: schema.history_key(b"k", 2**64),
        lambda: schema.history_prefix(b"x" * 65536),
    ],
)
def test_out_of_range_components_are_refused_not_truncated(make):
    with pytest.raises(struct.error):
        make()


# --- byte order is numeric order --------------------------------------------------------------


@SETTINGS
@given(U64, U64)
def test_block_and_leaf_keys_sort_numerically(a, b):
    for make in (schema.block_key, schema.leaf_key):
        assert (make(a) < make(b)) == (a < b)
        assert (make(a) == make(b)) == (a == b)


@SETTINGS
@given(U8, U64, U8, U64)
def test_node_keys_sort_by_level_then_index(level_a, index_a, level_b, index_b):
    key_a, key_b = schema.node_key(level_a, index_a), schema.node_key(level_b, index_b)
    assert (key_a < key_b) == ((level_a, index_a) < (level_b, index_b))


@SETTINGS
@given(STATE_KEYS, U64, U64)
def test_history_keys_of_one_state_key_sort_by_log_index(state_key, a, b):
    assert (schema.history_key(state_key, a) < schema.history_key(state_key, b)) == (a < b)


def test_numeric_order_across_byte_boundaries():
    heights = [0, 1, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63, 2**64 - 1]
    keys = [schema.block_key(h) for h in heights]
    assert sorted(keys) == keys
    assert [schema.decode_block_key(k) for k in sorted(keys)] == heights


# --- history keys are unambiguous ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(STATE_KEYS, STATE_KEYS, U64)
def test_history_prefix_of_one_key_never_prefixes_another_keys_history(a, b, log_index):
    if a == b:
        assert schema.history_key(b, log_index).startswith(schema.history_prefix(a))
    else:
        assert not schema.history_key(b, log_index).startswith(schema.history_prefix(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (b"org/a", b"org/ab"),  # a plain prefix of the other key
        (b"k", b"k\x00"),
        (b"", b"x"),
        (b"x", b"x" + bytes(8)),  # b's history key could end like a's log index
        (b"member/", b"member/" + b"\x00" * 10),
    ],
)
def test_history_prefix_ambiguity_cases(a, b):
    for index in (0, 1, 2**64 - 1):
        assert not schema.history_key(b, index).startswith(schema.history_prefix(a))
        assert not schema.history_key(a, index).startswith(schema.history_prefix(b))
        assert schema.decode_history_key(schema.history_key(b, index)) == (b, index)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(STATE_KEYS, U64), min_size=1, max_size=20, unique=True))
def test_history_keys_are_injective(entries):
    keys = {schema.history_key(state_key, index) for state_key, index in entries}
    assert len(keys) == len(entries)


@settings(max_examples=100, deadline=None)
@given(U64, U8, U64, HASH, STATE_KEYS, U64)
def test_key_spaces_never_collide(height, level, index, digest, state_key, log_index):
    keys = [
        schema.block_key(height),
        schema.block_hash_key(digest),
        schema.leaf_key(index),
        schema.txid_key(digest),
        schema.state_key(state_key),
        schema.history_key(state_key, log_index),
        schema.node_key(level, index),
        schema.META_FORMAT,
    ]
    assert len({key[:1] for key in keys}) == len(keys)
