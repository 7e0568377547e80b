"""The canonical codec: round-trips over the whole data model and strict rejection of everything else.

Hand-built CBOR in this file is written from RFC 8949 (§3 for the encoding,
§4.2.1 for the deterministic rules), never produced by the codec under test.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.errors import EncodingError

MAX_UINT = 2**64 - 1
MIN_NINT = -(2**64)

# --- an independent, minimal RFC 8949 encoder (major types 0-5, shortest form) ----------


def head(major: int, argument: int, width: int | None = None) -> bytes:
    """The initial byte(s) of a data item; ``width`` forces 0 (inline), 1, 2, 4 or 8 argument bytes."""
    if width is None:
        if argument < 24:
            width = 0
        elif argument < 2**8:
            width = 1
        elif argument < 2**16:
            width = 2
        elif argument < 2**32:
            width = 4
        else:
            width = 8
    if width == 0:
        assert argument < 24
        return bytes([major << 5 | argument])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + argument.to_bytes(width, "big")


def ref_encode(value) -> bytes:
    """Deterministic encoding of the data model, written straight from RFC 8949 §4.2.1."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if type(value) is int:
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if type(value) is bytes:
        return head(2, len(value)) + value
    if type(value) is str:
        raw = value.encode("utf-8")
        return head(3, len(raw)) + raw
    if type(value) is list:
        return head(4, len(value)) + b"".join(ref_encode(item) for item in value)
    if type(value) is dict:
        # §4.2.1: keys sorted by the bytewise lexicographic order of their deterministic encodings.
        pairs = sorted((ref_encode(key), ref_encode(item)) for key, item in value.items())
        return head(5, len(value)) + b"".join(key + item for key, item in pairs)
    raise TypeError(type(value))


def text_item(raw: bytes) -> bytes:
    return head(3, len(raw)) + raw


# --- strategies ---------------------------------------------------------------------------

boundary_ints = st.sampled_from(
    [0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, MAX_UINT, -1, -24, -25, -256, -257, -(2**32), -(2**32) - 1, MIN_NINT]
)
model_ints = st.one_of(boundary_ints, st.integers(MIN_NINT, MAX_UINT), st.integers(-1000, 1000))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    model_ints,
    st.binary(max_size=40),
    st.text(max_size=30),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=25,
)


def typed(value):
    """A comparison form that keeps bool apart from int (True == 1 in Python) and list apart from dict."""
    if type(value) is list:
        return ("list", [typed(item) for item in value])
    if type(value) is dict:
        return ("dict", sorted((key, typed(item)) for key, item in value.items()))
    return (type(value).__name__, value)


def shuffled(value, rng: random.Random):
    """The same value with every map rebuilt in a random insertion order."""
    if type(value) is list:
        return [shuffled(item, rng) for item in value]
    if type(value) is dict:
        items = list(value.items())
        rng.shuffle(items)
        return {key: shuffled(item, rng) for key, item in items}
    return value


# --- round-trip and determinism ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(values)
def test_decode_inverts_encode_and_matches_independent_rfc8949_encoder(value):
    encoded = codec.encode(value)
    assert type(encoded) is bytes
    assert encoded == ref_encode(value)
    assert codec.encode(value) == encoded  # repeatable
    assert typed(codec.decode(encoded)) == typed(value)


@settings(max_examples=100, deadline=None)
@given(values, st.randoms(use_true_random=False))
def test_encoding_ignores_map_insertion_order(value, rng):
    assert codec.encode(shuffled(value, rng)) == codec.encode(value)


def test_equal_values_of_different_types_encode_differently():
    encodings = {codec.encode(v) for v in (0, False, None, b"", "", [], {}, 1, True)}
    assert len(encodings) == 9


@pytest.mark.parametrize("wrapper", [bytes, bytearray, memoryview])
def test_decode_accepts_bytes_like_inputs(wrapper):
    assert codec.decode(wrapper(bytes.fromhex("a2616101616202"))) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("value", "hex_encoding"),
    [
        # RFC 8949 Appendix A examples that fall inside the data model.
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (1000000, "1a000f4240"),
        (18446744073709551615, "1bffffffffffffffff"),
        (-18446744073709551616, "3bffffffffffffffff"),
        (-1000, "3903e7"),
        (False, "f4"),
        (True, "f5"),
        (None, "f6"),
        (b"\x01\x02\x03\x04", "4401020304"),
        ("IETF", "6449455446"),
        ("\u00fc", "62c3bc"),
        ("\U00010151", "64f0908591"),
        ([1, [2, 3], [4, 5]], "8301820203820405"),
        ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
        (["a", {"b": "c"}], "826161a161626163"),
        ({"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, "a56161614161626142616361436164614461656145"),
    ],
)
def test_rfc8949_appendix_a_vectors(value, hex_encoding):
    assert codec.encode(value).hex() == hex_encoding
    assert typed(codec.decode(bytes.fromhex(hex_encoding))) == typed(value)


# --- key order: RFC 8949 §4.2.1 ------------------------------------------------------------

short_keys = st.text(
    alphabet=st.sampled_from(["a", "b", "z", "A", "0", "~", "\u00e9", "\u00ff", "\u4e2d", "\U0001f600"]),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(short_keys, st.integers(0, 2**40), min_size=2, max_size=8))
def test_map_keys_are_in_bytewise_order_of_their_encodings(mapping):
    encoded = codec.encode(mapping)
    expected_order = sorted(mapping, key=lambda key: text_item(key.encode("utf-8")))
    expected = head(5, len(mapping)) + b"".join(
        text_item(key.encode("utf-8")) + head(0, mapping[key]) for key in expected_order
    )
    assert encoded == expected
    assert list(codec.decode(encoded)) == expected_order


def test_key_order_is_by_encoded_bytes_not_by_code_points_or_characters():
    # "é" (U+00E9) is one character but two UTF-8 bytes, so its encoding (0x62 c3 a9)
    # sorts after "ab" (0x62 61 62) and after every one-byte key (0x61 ..).
    # "zz...z" (23 bytes, head 0x77) sorts before any 24-byte key (head 0x78 0x18).
    mapping = {"\u00e9": 0, "ab": 1, "b": 2, "z" * 23: 3, "a" * 24: 4, "": 5}
    encoded = codec.encode(mapping)
    assert list(codec.decode(encoded)) == ["", "b", "ab", "\u00e9", "z" * 23, "a" * 24]


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(short_keys, st.integers(0, 30), min_size=2, max_size=6), st.randoms(use_true_random=False))
def test_decode_rejects_maps_in_any_other_key_order(mapping, rng):
    pairs = [(text_item(key.encode("utf-8")), head(0, item)) for key, item in mapping.items()]
    pairs.sort()
    canonical = head(5, len(pairs)) + b"".join(k + v for k, v in pairs)
    assert codec.decode(canonical) == mapping
    rng.shuffle(pairs)
    assume(pairs != sorted(pairs))
    scrambled = head(5, len(pairs)) + b"".join(k + v for k, v in pairs)
    with pytest.raises(EncodingError):
        codec.decode(scrambled)


# --- strict decoding: every non-canonical form is refused ----------------------------------

REJECTED = {
    # unsorted / duplicate map keys
    "unsorted keys": "a2616201616102",  # {"b": 1, "a": 2}
    "unsorted by length": "a2626161016162" + "02",  # {"aa": 1, "b": 2}: "b" must come first
    "duplicate keys": "a2616101616102",  # {"a": 1, "a": 2}
    "duplicate keys same value": "a2616101616101",
    # non-shortest integers and lengths
    "uint 1 in one extra byte": "1801",
    "uint 1 in two bytes": "190001",
    "uint 255 in two bytes": "1900ff",
    "uint 65535 in four bytes": "1a0000ffff",
    "uint 2^32-1 in eight bytes": "1b00000000ffffffff",
    "nint -1 in one extra byte": "3800",
    "nint -24 in one extra byte": "3817",
    "bytes length in extra byte": "5801ff",
    "text length in extra byte": "780161",
    "array length in extra byte": "980101",
    "map length in extra byte": "b8016161" + "01",
    "array length in four bytes": "9a0000000101",
    # floats (all widths, including integral values and specials)
    "half float 1.0": "f93c00",
    "single float 1.0": "fa3f800000",
    "double float 1.0": "fb3ff0000000000000",
    "double float 1.1": "fb3ff199999999999a",
    "half NaN": "f97e00",
    "half infinity": "f97c00",
    "float inside array": "8201f93c00",
    # tags
    "tag 0 date string": "c074323031332d30332d32315432303a30343a30305a",
    "tag 1 epoch datetime": "c11a514b67b0",
    "tag 2 bignum 1": "c24101",
    "tag 2 bignum 0": "c240",
    "tag 3 negative bignum -1": "c34100",
    "tag 2 bignum 2^64": "c249010000000000000000",
    "tag 24 embedded cbor": "d8184101",
    "tag 55799 self-describe": "d9d9f701",
    "tag 6000 unknown": "d9177001",
    "tag inside array": "81c24101",
    "tag inside map value": "a16161c11a514b67b0",
    # indefinite-length items
    "indefinite bytes": "5f4101ff",
    "indefinite bytes one chunk canonical inside": "5f42abcdff",
    "indefinite text": "7f6161ff",
    "indefinite array": "9f01ff",
    "indefinite empty array": "9fff",
    "indefinite map": "bf616101ff",
    "indefinite array nested": "819f01ff",
    # non-text map keys
    "uint key": "a10101",
    "nint key": "a12001",
    "bytes key": "a1416101",
    "array key": "a1810101",
    "map key": "a1a0" + "01",
    "bool key": "a1f501",
    "null key": "a1f601",
    "mixed keys": "a2016161616102",
    # other simple values
    "undefined": "f7",
    "simple 16": "f0",
    "simple 255": "f8ff",
    # invalid UTF-8
    "invalid utf8 continuation": "62c328",
    "overlong utf8 nul": "62c080",
    "utf8 encoded surrogate": "63eda080",
    "lone continuation byte": "6180",
    "invalid utf8 in map key": "a162c32801",
    # truncated / empty / malformed
    "empty input": "",
    "truncated uint": "19ff",
    "truncated bytes": "4301",
    "truncated array": "8201",
    "lone break": "ff",
    "reserved additional info": "1c",
    # trailing bytes
    "trailing zero": "0100",
    "two items": "f6f6",
    "trailing break": "80ff",
    # nesting beyond the limit
    "41 nested arrays": "81" * 40 + "80",
}


@pytest.mark.parametrize("hex_data", list(REJECTED.values()), ids=list(REJECTED))
def test_decode_rejects_non_canonical_or_out_of_model(hex_data):
    with pytest.raises(EncodingError):
        codec.decode(bytes.fromhex(hex_data))


@settings(max_examples=75, deadline=None)
@given(values, st.binary(min_size=1, max_size=8))
def test_decode_rejects_trailing_bytes(value, trailing):
    with pytest.raises(EncodingError):
        codec.decode(codec.encode(value) + trailing)


@settings(max_examples=75, deadline=None)
@given(values, st.data())
def test_decode_rejects_every_truncation(value, data):
    encoded = codec.encode(value)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    with pytest.raises(EncodingError):
        codec.decode(encoded[:cut])


WIDTHS = (0, 1, 2, 4, 8)


def shortest_width(argument: int) -> int:
    return next(w for w in WIDTHS if (argument < 24 if w == 0 else argument < 2 ** (8 * w)))


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_UINT), st.sampled_from(WIDTHS), st.sampled_from(["uint", "nint", "bytes", "text", "array", "map"]))
def test_arguments_are_accepted_only_in_shortest_form(argument, width, kind):
    assume(width >= shortest_width(argument))
    if kind in ("bytes", "text", "array", "map"):
        argument %= 30  # keep bodies small; widths above the shortest are still exercised
        assume(width >= shortest_width(argument))
    if kind == "uint":
        data, value = head(0, argument, width), argument
    elif kind == "nint":
        data, value = head(1, argument, width), -1 - argument
    elif kind == "bytes":
        value = bytes(range(argument))
        data = head(2, argument, width) + value
    elif kind == "text":
        value = "x" * argument
        data = head(3, argument, width) + value.encode()
    elif kind == "array":
        value = [0] * argument
        data = head(4, argument, width) + b"\x00" * argument
    else:
        keys = sorted((f"k{i:02d}" for i in range(argument)), key=lambda k: text_item(k.encode()))
        value = {key: 0 for key in keys}
        data = head(5, argument, width) + b"".join(text_item(k.encode()) + b"\x00" for k in keys)
    if width == shortest_width(argument):
        assert typed(codec.decode(data)) == typed(value)
        assert codec.encode(value) == data
    else:
        with pytest.raises(EncodingError):
            codec.decode(data)


@pytest.mark.parametrize("data", ["x", None, 1, [0], {"a": 1}, 1.5])
def test_decode_rejects_non_bytes_input(data):
    with pytest.raises(EncodingError):
        codec.decode(data)


# --- the encoder refuses values outside the model ------------------------------------------


@pytest.mark.parametrize("value", [MAX_UINT, MIN_NINT, 0, -1])
def test_encode_accepts_integer_range_boundaries(value):
    assert codec.decode(codec.encode(value)) == value


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(min_value=MAX_UINT + 1), st.integers(max_value=MIN_NINT - 1)))
def test_encode_rejects_integers_outside_64_bits(value):
    with pytest.raises(EncodingError):
        codec.encode(value)
    with pytest.raises(EncodingError):
        codec.encode({"nested": [value]})


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        float("nan"),
        [0.5],
        {"a": 1.5},
        (1, 2),
        {1, 2},
        frozenset(),
        bytearray(b"x"),
        memoryview(b"x"),
        {1: "int key"},
        {b"k": "bytes key"},
        {("t",): "tuple key"},
        {None: "null key"},
        {"ok": {2: "nested non-text key"}},
        object(),
        1j,
        pytest.param(b"x".decode, id="function"),
    ],
)
def test_encode_rejects_values_outside_the_model(value):
    with pytest.raises(EncodingError):
        codec.encode(value)


def test_encode_rejects_subclasses_of_model_types():
    class Text(str):
        pass

    class Mapping(dict):
        pass

    with pytest.raises(EncodingError):
        codec.encode(Text("a"))
    with pytest.raises(EncodingError):
        codec.encode(Mapping(a=1))


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}, ["ok", "a\ud83d"]])
def test_encode_rejects_text_that_is_not_valid_unicode(value):
    with pytest.raises(EncodingError):
        codec.encode(value)


def nested_lists(depth: int):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", range(28, 38))
def test_encoder_and_decoder_agree_on_the_nesting_limit(depth):
    data = b"\x81" * depth + b"\x80"  # `depth` one-element arrays around an empty array
    try:
        encoded = codec.encode(nested_lists(depth))
    except EncodingError:
        with pytest.raises(EncodingError):
            codec.decode(data)
    else:
        assert encoded == data
        assert codec.decode(data) == nested_lists(depth)


def test_nesting_limit_exists():
    with pytest.raises(EncodingError):
        codec.encode(nested_lists(100))
    with pytest.raises(EncodingError):
        codec.decode(b"\x81" * 100 + b"\x80")


def test_single_and_multi_byte_text_round_trip_exactly():
    for text in ["", "a", "\u4e2d\u6587", "\U0001f600", "\x00", "a" * 300]:
        encoded = codec.encode(text)
        assert encoded == text_item(text.encode("utf-8"))
        assert codec.decode(encoded) == text


def test_large_byte_string_uses_four_byte_length():
    blob = bytes(70000)
    encoded = codec.encode(blob)
    assert encoded[:5] == b"\x5a" + struct.pack(">I", 70000)
    assert codec.decode(encoded) == blob
