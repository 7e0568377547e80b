"""Request authentication on the real app: signatures, time window, replay, membership and role visibility."""

from __future__ import annotations

import base64
import random
import re
import threading
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from client.auth import RequestSigner
from client.enrollment import enrollment_transaction, synthetic_national_id
from ledger.crypto import KeyPair
from ledger.genesis import Role
from ledger.identity import new_salt
from ledger.request_auth import HEADER_SIGNATURE, MAX_REQUEST_SKEW_MS, sign_request
from ledger.tx import parse_transaction
from node.api.app import create_app
from node.api.auth import Caller, ReplayGuard, authenticate, require_role
from node.api.errors import ApiError
from node.devnet import NodeConfig
from node.peer import Peer
from node.runtime import clock_ms

NOW = 1_767_225_600_000


@pytest.fixture
def app(peer: Peer):
    return create_app(peer)


@pytest.fixture
def raw(app) -> Iterator[TestClient]:
    """A client that signs nothing by itself."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def citizens(peer: Peer, dev_config: NodeConfig) -> list[tuple[KeyPair, bytes]]:
    """Two enrolled citizens, each with the envelope of their enrollment."""
    authority = dev_config.admin_key("jinan-bigdata")
    rng = random.Random(7)
    enrolled = []
    for _ in range(2):
        citizen = KeyPair.generate()
        envelope = enrollment_transaction(authority, citizen, peer.network, synthetic_national_id(rng), new_salt(), time_ms=clock_ms())
        result, = peer.submit([envelope])
        assert result.status == "committed", result.reason
        enrolled.append((citizen, envelope))
    return enrolled


def signed_headers(key: KeyPair, method: str, target: str, body: bytes = b"", *, time_ms: int | None = None) -> dict[str, str]:
    return sign_request(key, method, target.encode(), body, time_ms=clock_ms() if time_ms is None else time_ms)


def as_caller(raw: TestClient, key: KeyPair, method: str, target: str, body: bytes = b""):
    return raw.request(method, target, content=body, headers=signed_headers(key, method, target, body))


def assert_error(response, status: int, code: str, mentions: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"], error["message"]


# --- authentication --------------------------------------------------------


def test_unsigned_request_is_401_with_the_error_shape(raw):
    response = raw.get("/v1/network")
    assert_error(response, 401, "unauthenticated", "missing header QCL-Key")
    assert response.headers["WWW-Authenticate"].startswith("QCL-Signature")


def test_healthz_needs_no_signature(raw):
    response = raw.get("/healthz")
    assert response.status_code == 200 and response.json()["ok"] is True


def test_a_signed_member_request_is_answered(raw, dev_config):
    response = as_caller(raw, dev_config.admin_key("qilu-bank"), "GET", "/v1/network")
    assert response.status_code == 200, response.text


def test_forged_signature_is_401(raw, dev_config):
    headers = {**signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/network"), HEADER_SIGNATURE: "ab" * 64}
    assert_error(raw.get("/v1/network", headers=headers), 401, "unauthenticated", "request signature does not verify")


@pytest.mark.parametrize("offset", [-75_000, 75_000])
def test_stale_or_future_request_is_401(raw, dev_config, offset):
    headers = signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/network", time_ms=clock_ms() + offset)
    assert_error(raw.get("/v1/network", headers=headers), 401, "unauthenticated", "(max 60 s)")


def test_the_node_clock_is_injectable(app, raw, dev_config):
    app.state.clock_ms = lambda: NOW
    key = dev_config.admin_key("pbc-jinan")
    on_time = signed_headers(key, "GET", "/v1/network", time_ms=NOW - MAX_REQUEST_SKEW_MS)
    assert raw.get("/v1/network", headers=on_time).status_code == 200
    late = signed_headers(key, "GET", "/v1/network", time_ms=NOW - MAX_REQUEST_SKEW_MS - 1)
    assert_error(raw.get("/v1/network", headers=late), 401, "unauthenticated", "behind the node's clock")


def test_replayed_request_is_401(raw, dev_config):
    headers = signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/log/checkpoint")
    assert raw.get("/v1/log/checkpoint", headers=headers).status_code == 200
    assert_error(raw.get("/v1/log/checkpoint", headers=headers), 401, "unauthenticated", "replayed")


def test_a_nonce_is_per_key(raw, dev_config):
    nonce = bytes(16)
    for org in ("pbc-jinan", "qilu-bank"):
        headers = sign_request(dev_config.admin_key(org), "GET", b"/v1/network", b"", time_ms=clock_ms(), nonce=nonce)
        assert raw.get("/v1/network", headers=headers).status_code == 200


def test_a_repeated_signature_header_is_401(raw, dev_config):
    headers = list(signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/network").items())
    headers.append((HEADER_SIGNATURE, "ab" * 64))
    assert_error(raw.get("/v1/network", headers=headers), 401, "unauthenticated", "appears more than once")


def test_unknown_key_is_401(raw):
    stranger = KeyPair.generate()
    response = as_caller(raw, stranger, "GET", "/v1/network")
    assert_error(response, 401, "unauthenticated", "is not a member of the network")
    assert stranger.seed.hex() not in response.text


def test_body_changed_after_signing_is_401(raw, dev_config, make_enrollments):
    key = dev_config.admin_key("jinan-bigdata")
    signed_body = b'{"transactions": []}'
    sent_body = b'{"transactions": ["' + base64.b64encode(make_enrollments(1)[0]) + b'"]}'
    headers = {**signed_headers(key, "POST", "/v1/transactions", signed_body), "content-type": "application/json"}
    response = raw.post("/v1/transactions", content=sent_body, headers=headers)
    assert_error(response, 401, "unauthenticated", "does not verify")


def test_query_changed_after_signing_is_401(raw, dev_config):
    headers = signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/log/entries?start=0&end=1")
    assert_error(raw.get("/v1/log/entries?start=0&end=2", headers=headers), 401, "unauthenticated", "does not verify")


def test_path_changed_after_signing_is_401(raw, dev_config):
    headers = signed_headers(dev_config.admin_key("pbc-jinan"), "GET", "/v1/log/blocks/0")
    assert_error(raw.get("/v1/log/blocks/1", headers=headers), 401, "unauthenticated", "does not verify")


def test_authentication_comes_before_parameter_checks(raw):
    assert_error(raw.get("/v1/log/entries", params={"start": "x"}), 401, "unauthenticated")


# --- who may see what --------------------------------------------------------


AUDIT_ROUTES = ["/v1/log/entries?start=0&end=1", "/v1/log/blocks/0"]
OPEN_ROUTES = ["/v1/network", "/v1/log/checkpoint", "/v1/log/proof/inclusion?index=0&tree_size=1"]


@pytest.mark.parametrize("target", AUDIT_ROUTES)
def test_citizen_consumer_and_provider_may_not_read_entries_or_blocks(raw, dev_config, citizens, target):
    for key in (citizens[0][0], dev_config.admin_key("qilu-bank"), dev_config.admin_key("jinan-psb")):
        assert_error(as_caller(raw, key, "GET", target), 403, "forbidden", "regulator")


@pytest.mark.parametrize("target", AUDIT_ROUTES)
def test_regulator_and_custodian_may(raw, dev_config, target):
    for org in ("pbc-jinan", "jinan-bigdata"):
        response = as_caller(raw, dev_config.admin_key(org), "GET", target)
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("target", OPEN_ROUTES)
def test_any_authenticated_caller_may_read_the_network_checkpoints_and_proofs(raw, citizens, target):
    response = as_caller(raw, citizens[0][0], "GET", target)
    assert response.status_code == 200, response.text


def test_a_citizen_may_submit(raw, citizens):
    body = b'{"transactions": ["' + base64.b64encode(b"junk") + b'"]}'
    response = raw.post(
        "/v1/transactions",
        content=body,
        headers={**signed_headers(citizens[0][0], "POST", "/v1/transactions", body), "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["code"] == "BAD_ENCODING"


def test_a_transaction_is_shown_to_its_signers_and_auditors_only(raw, dev_config, citizens):
    (alice, alice_enrollment), (bob, _) = citizens
    target = f"/v1/transactions/{parse_transaction(alice_enrollment).tx_id.hex()}"
    for key in (alice, dev_config.admin_key("jinan-bigdata"), dev_config.admin_key("pbc-jinan")):
        response = as_caller(raw, key, "GET", target)
        assert response.status_code == 200, response.text
        assert base64.b64decode(response.json()["envelope"]) == alice_enrollment
    tx_id = target.rsplit("/", 1)[1]
    missing = as_caller(raw, bob, "GET", "/v1/transactions/" + "00" * 32)
    assert missing.json()["error"] == {"code": "not_found", "message": f"no committed transaction {'00' * 32}"}
    for key in (bob, dev_config.admin_key("qilu-bank")):
        hidden = as_caller(raw, key, "GET", target)  # exactly what a missing transaction looks like
        assert hidden.status_code == 404
        assert hidden.json()["error"] == {"code": "not_found", "message": f"no committed transaction {tx_id}"}


def test_the_sdk_signs_every_request(peer, app, dev_config):
    from client.sdk import ApiError as ClientApiError
    from client.sdk import LedgerClient

    with TestClient(app) as test_client:
        transport = test_client._transport
        with LedgerClient("http://testserver", key=dev_config.admin_key("pbc-jinan"), transport=transport) as regulator:
            checkpoint = regulator.checkpoint()
            assert regulator.audit_log(checkpoint.checkpoint).entries_checked == checkpoint.checkpoint.tree_size
        with LedgerClient("http://testserver", key=dev_config.admin_key("qilu-bank"), transport=transport) as bank:
            bank.network()
            with pytest.raises(ClientApiError) as refused:
                bank.entries(0, 1)
            assert (refused.value.status, refused.value.code) == (403, "forbidden")


def test_every_route_but_healthz_and_metrics_refuses_an_unsigned_request(app, raw):
    """A guard for new routers: every documented operation answers an unsigned call with 401 — but the
    liveness probe and the Prometheus scrape, which carry no data (counts only)."""
    answered = {}
    for path, operations in app.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "0", path)
        for method in operations:
            response = raw.request(method.upper(), concrete, content=b"{}", headers={"content-type": "application/json"})
            answered[f"{method.upper()} {path}"] = response.status_code
    assert answered.pop("GET /healthz") == 200
    assert answered.pop("GET /metrics") == 200
    assert answered and all(status == 401 for status in answered.values()), answered


def test_auth_can_be_overridden_in_tests(app, raw):
    app.dependency_overrides[authenticate] = lambda: Caller(key=bytes(32), org="pbc-jinan", roles=frozenset({Role.REGULATOR}))
    assert raw.get("/v1/log/entries", params={"start": 0, "end": 1}).status_code == 200


def test_the_sdk_signer_works_with_the_test_client(raw, dev_config):
    raw.auth = RequestSigner(dev_config.admin_key("jinan-bigdata"))
    assert raw.get("/v1/log/entries", params={"start": 0, "end": 1}).status_code == 200
    assert raw.post("/v1/transactions", json={"transactions": []}).json()["error"]["code"] == "invalid_argument"


# --- the pieces --------------------------------------------------------------


def test_caller_roles():
    citizen = Caller(key=bytes(32), org=None, roles=frozenset())
    bureau = Caller(key=bytes(32), org="jinan-bigdata", roles=frozenset({Role.CUSTODIAN, Role.REGULATOR}))
    assert citizen.is_citizen and not bureau.is_citizen
    assert bureau.has_role(Role.PROVIDER, Role.REGULATOR) and not citizen.has_role(Role.REGULATOR)
    require_role(bureau, Role.CUSTODIAN)
    with pytest.raises(ApiError) as refused:
        require_role(citizen, Role.REGULATOR, Role.CUSTODIAN)
    assert (refused.value.code, refused.value.status) == ("forbidden", 403)
    assert "custodian, regulator" in refused.value.message


def test_replay_guard_forgets_after_twice_the_window():
    guard = ReplayGuard()
    guard.check(b"k", b"n", NOW)
    with pytest.raises(ApiError, match="replayed"):
        guard.check(b"k", b"n", NOW + 2 * MAX_REQUEST_SKEW_MS)
    guard.check(b"k", b"other", NOW + 2 * MAX_REQUEST_SKEW_MS)
    guard.check(b"k", b"n", NOW + 2 * MAX_REQUEST_SKEW_MS + 1)  # the request it would replay is long stale
    assert len(guard) == 2


def test_replay_guard_is_bounded():
    guard = ReplayGuard(capacity=3)
    for nonce in (b"1", b"2", b"3"):
        guard.check(b"k", nonce, NOW)
    with pytest.raises(ApiError) as full:
        guard.check(b"k", b"4", NOW + 1)
    assert (full.value.code, full.value.status) == ("unavailable", 503)
    guard.check(b"k", b"4", NOW + 2 * MAX_REQUEST_SKEW_MS + 1)  # expired ones are dropped on insertion
    assert len(guard) == 1


def test_replay_guard_admits_each_nonce_once_across_threads():
    guard = ReplayGuard()
    admitted = []
    lock = threading.Lock()

    def worker() -> None:
        for nonce in range(500):
            try:
                guard.check(b"k", nonce.to_bytes(2, "big"), NOW)
            except ApiError:
                continue
            with lock:
                admitted.append(nonce)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(admitted) == list(range(500))
