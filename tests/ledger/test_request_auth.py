"""Signed API requests (ledger.request_auth): what the signature binds, the time window, malformed headers."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import codec
from ledger.crypto import CONTEXT_REQUEST, KeyPair, sha256, verify
from ledger.errors import LedgerError
from ledger.request_auth import (
    HEADER_KEY,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIME,
    MAX_REQUEST_SKEW_MS,
    NONCE_SIZE,
    RequestAuthError,
    request_message,
    sign_request,
    verify_request,
)

KEY = KeyPair.from_seed(bytes(range(32)))
NOW = 1_767_225_600_000
NONCE = bytes(range(100, 100 + NONCE_SIZE))
REQUEST = ("POST", b"/v1/transactions", b'{"transactions": []}')


def signed(method: str = "POST", target: bytes = b"/v1/transactions", body: bytes = b'{"transactions": []}', **kw) -> dict[str, str]:
    return sign_request(kw.pop("key", KEY), method, target, body, time_ms=kw.pop("time_ms", NOW), nonce=kw.pop("nonce", NONCE))


def refused(headers, method="POST", target=b"/v1/transactions", body=b'{"transactions": []}', now_ms=NOW) -> RequestAuthError:
    with pytest.raises(RequestAuthError) as caught:
        verify_request(headers, method, target, body, now_ms=now_ms)
    return caught.value


def test_round_trip_returns_the_key_and_nonce():
    headers = signed()
    assert set(headers) == {HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE}
    assert headers[HEADER_KEY] == KEY.public_key.hex() and headers[HEADER_TIME] == str(NOW)
    verified = verify_request(headers, *REQUEST, now_ms=NOW)
    assert (verified.public_key, verified.nonce) == (KEY.public_key, NONCE)
    assert verified.digest == sha256(request_message(REQUEST[0], REQUEST[1], REQUEST[2], NOW, NONCE))


def test_the_message_is_the_documented_cbor_array():
    body = b'{"transactions": []}'
    message = request_message("post", b"/v1/log/entries?start=0&end=5", body, NOW, NONCE)
    assert codec.decode(message) == ["POST", b"/v1/log/entries?start=0&end=5", hashlib.sha256(body).digest(), NOW, NONCE]
    headers = sign_request(KEY, "post", b"/v1/log/entries?start=0&end=5", body, time_ms=NOW, nonce=NONCE)
    verify(KEY.public_key, CONTEXT_REQUEST, message, bytes.fromhex(headers[HEADER_SIGNATURE]))


def test_header_names_are_case_insensitive_and_method_case_is_folded():
    headers = {name.lower(): value for name, value in signed(method="get").items()}
    assert verify_request(headers, "GET", b"/v1/transactions", b'{"transactions": []}', now_ms=NOW).public_key == KEY.public_key


def test_a_fresh_random_nonce_by_default():
    first = sign_request(KEY, *REQUEST, time_ms=NOW)
    second = sign_request(KEY, *REQUEST, time_ms=NOW)
    assert first[HEADER_NONCE] != second[HEADER_NONCE]
    assert len(bytes.fromhex(first[HEADER_NONCE])) == NONCE_SIZE


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("method", {"method": "PUT"}),
        ("path", {"target": b"/v1/transaction"}),
        ("query", {"target": b"/v1/transactions?x=1"}),
        ("body", {"body": b'{"transactions": [""]}'}),
    ],
)
def test_changing_the_request_breaks_the_signature(field, change):
    request = {"method": "POST", "target": b"/v1/transactions", "body": b'{"transactions": []}', **change}
    error = refused(signed(), request["method"], request["target"], request["body"])
    assert error.reason == "forged", field
    assert "does not verify" in str(error)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_TIME, str(NOW + 1)),
        (HEADER_NONCE, bytes(NONCE_SIZE).hex()),
        (HEADER_KEY, KeyPair.from_seed(bytes(32)).public_key.hex()),
        (HEADER_SIGNATURE, "00" * 64),
    ],
)
def test_changing_a_header_breaks_the_signature(header, value):
    assert refused({**signed(), header: value}).reason == "forged"


def test_a_query_is_bound_exactly_as_sent():
    headers = signed("GET", b"/v1/log/entries?start=0&end=5", b"")
    assert verify_request(headers, "GET", b"/v1/log/entries?start=0&end=5", b"", now_ms=NOW)
    for other in (b"/v1/log/entries?end=5&start=0", b"/v1/log/entries?start=0&end=6", b"/v1/log/entries"):
        assert refused(headers, "GET", other, b"").reason == "forged"


METHODS = ["GET", "POST", "PUT", "DELETE"]


def flip_a_bit(data: bytes, position: int, bit: int) -> bytes:
    if not data:
        return b"\x00"
    position %= len(data)
    return data[:position] + bytes([data[position] ^ (1 << bit)]) + data[position + 1 :]


@settings(max_examples=80, deadline=None)
@given(
    method=st.sampled_from(METHODS),
    target=st.binary(min_size=1, max_size=200),
    body=st.binary(max_size=500),
    time_ms=st.integers(1, 2**64 - 2),
    nonce=st.binary(min_size=NONCE_SIZE, max_size=NONCE_SIZE),
    field=st.sampled_from(["method", "target", "body", "time", "nonce", "key"]),
    position=st.integers(0, 10_000),
    bit=st.integers(0, 7),
)
def test_any_request_round_trips_and_any_change_is_caught(method, target, body, time_ms, nonce, field, position, bit):
    headers = sign_request(KEY, method, target, body, time_ms=time_ms, nonce=nonce)
    verified = verify_request(headers, method, target, body, now_ms=time_ms)
    assert (verified.public_key, verified.nonce) == (KEY.public_key, nonce)
    request = {"method": method, "target": target, "body": body}
    now = time_ms
    if field == "method":
        request["method"] = METHODS[(METHODS.index(method) + 1) % len(METHODS)]
    elif field in ("target", "body"):
        request[field] = flip_a_bit(request[field], position, bit)
    elif field == "time":
        now = time_ms + (1 if bit % 2 else -1)  # still inside the window: only the signature can catch it
        headers = {**headers, HEADER_TIME: str(now)}
    elif field == "nonce":
        headers = {**headers, HEADER_NONCE: flip_a_bit(nonce, position, bit).hex()}
    else:
        headers = {**headers, HEADER_KEY: KeyPair.from_seed(flip_a_bit(KEY.seed, position, bit)).public_key.hex()}
    with pytest.raises(RequestAuthError) as caught:
        verify_request(headers, request["method"], request["target"], request["body"], now_ms=now)
    assert caught.value.reason == "forged"


@pytest.mark.parametrize("offset", [MAX_REQUEST_SKEW_MS + 1, -(MAX_REQUEST_SKEW_MS + 1), 75_000, -75_000, 10**9])
def test_a_request_outside_the_window_is_stale_either_way(offset):
    error = refused(signed(time_ms=NOW + offset))
    assert error.reason == "stale"
    assert f"(max {MAX_REQUEST_SKEW_MS // 1000} s)" in str(error)
    assert ("ahead of" if offset > 0 else "behind") in str(error)


def test_the_window_edges_are_inclusive_and_messages_name_seconds():
    for offset in (MAX_REQUEST_SKEW_MS, -MAX_REQUEST_SKEW_MS, 0):
        verify_request(signed(time_ms=NOW + offset), *REQUEST, now_ms=NOW)
    assert "75 s behind" in str(refused(signed(time_ms=NOW - 75_000)))


def test_stale_is_checked_before_the_signature():
    assert refused({**signed(time_ms=NOW - 10**6), HEADER_SIGNATURE: "00" * 64}).reason == "stale"


@pytest.mark.parametrize("header", [HEADER_KEY, HEADER_TIME, HEADER_NONCE, HEADER_SIGNATURE])
def test_a_missing_header_is_named(header):
    headers = signed()
    del headers[header]
    error = refused(headers)
    assert error.reason == "missing"
    assert f"missing header {header}" in str(error)


def test_no_headers_at_all():
    assert refused({}).reason == "missing"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_KEY, "zz" * 32),
        (HEADER_KEY, "ab" * 31),
        (HEADER_KEY, KEY.public_key.hex().upper()),
        (HEADER_KEY, ""),
        (HEADER_NONCE, "00" * 15),
        (HEADER_NONCE, "00" * 17),
        (HEADER_SIGNATURE, "00" * 63),
        (HEADER_SIGNATURE, "0" * 127),
        (HEADER_TIME, "-1"),
        (HEADER_TIME, "+1767225600000"),
        (HEADER_TIME, "01767225600000"),
        (HEADER_TIME, "1767225600000.0"),
        (HEADER_TIME, " 1767225600000"),
        (HEADER_TIME, str(2**64)),
        (HEADER_TIME, "1e12"),
        (HEADER_TIME, "١٢٣"),  # Arabic-Indic digits: int() accepts them, the protocol does not
    ],
)
def test_malformed_headers_are_named(header, value):
    error = refused({**signed(), header: value})
    assert error.reason == "malformed"
    assert f"malformed header {header}" in str(error)


def test_a_header_given_twice_is_malformed():
    headers = list(signed().items()) + [(HEADER_NONCE.lower(), bytes(NONCE_SIZE).hex())]

    class Multi(dict):
        def items(self):
            return headers

    assert refused(Multi()).reason == "malformed"


def test_errors_are_ledger_errors_and_never_carry_the_secret():
    error = refused({**signed(), HEADER_SIGNATURE: "00" * 64})
    assert isinstance(error, LedgerError)
    assert KEY.seed.hex() not in str(error) and KEY.seed.hex() not in repr(KEY)


def test_signing_refuses_a_bad_nonce_or_time():
    with pytest.raises(ValueError):
        sign_request(KEY, *REQUEST, time_ms=NOW, nonce=b"short")
    with pytest.raises(ValueError):
        sign_request(KEY, *REQUEST, time_ms=-1)


def test_the_protocol_example():
    """docs/PROTOCOL.md §10.1 prints these bytes."""
    key = KeyPair.from_seed(bytes(range(32)))
    target = b"/v1/log/entries?start=0&end=5"
    message = request_message("GET", target, b"", 1767225600000, bytes(range(16)))
    assert message.hex() == (
        "8563474554581d2f76312f6c6f672f656e74726965733f73746172743d3026656e643d35"
        "5820e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        "1b0000019b76daa80050000102030405060708090a0b0c0d0e0f"
    )
    assert sign_request(key, "GET", target, b"", time_ms=1767225600000, nonce=bytes(range(16))) == {
        "QCL-Key": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
        "QCL-Time": "1767225600000",
        "QCL-Nonce": "000102030405060708090a0b0c0d0e0f",
        "QCL-Signature": "8b40b58a034cf63855add20b4827e01d9b279c3ee7885268372575a31680dc55"
        "d5c9b12c2d3ce5d4156419bf63cc2e7d9798cc9343fb65711edb4b6fb248ee03",
    }
