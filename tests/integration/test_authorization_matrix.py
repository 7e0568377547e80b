"""Who may call what: every API route × every kind of caller, on a real node over HTTP.

:data:`MATRIX` is the explicit table: one row per probe (a route, with the
path and query it is called with), one expected status per caller. A route the
app serves without a row fails :func:`test_the_matrix_covers_every_route`.
Every cell is one raw, signed httpx request (client.auth.RequestSigner), and
besides its status each answer must keep the sharing promises:

- a payload (``sealed_result``) leaves only through ``POST /v1/access``, only
  to the consented consumer or the subject, and only after a granted
  ``access.record`` naming the caller as requester is committed at the
  returned log index (checked in the regulator's copy of the log);
- no answer carries a record's plaintext;
- a listing shows a citizen, consumer or provider only what is theirs.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest
import wasmtime

from client.aggregates import AggregateRequester, register_joint_key
from client.citizen import SafeBox
from client.sdk import ApiError, b64
from ledger import codec
from ledger.crypto import KeyPair, sha256
from ledger.rules.access import access_result_hash
from ledger.rules.records import commit_record_payload
from ledger.tx import build_transaction
from node.runtime import clock_ms
from privacy.envelope import generate_x25519, open_sealed, record_aad, seal_record, x25519_public_from_ed25519
from privacy.he.params import THRESHOLD_PARAMS
from privacy.he.threshold import run_ceremony
from sharing import AUTHORITY, BANK, DAY_MS, INSURER, REGULATOR, SAMPLE_PAYLOADS, Sharing, sharing_network

VEHICLE, TRAFFIC = "vehicle.registration", "traffic.violation"
PROVIDER_ORG = "jinan-psb"
MARKER = "MARKER-7c1e9a"  # only inside the subject's sealed record payload: must never appear in clear

ROLES = ("subject", "other_citizen", "consumer", "other_consumer", "provider", "regulator", "custodian", "unknown_key", "unsigned", "peer")
CITIZENS = ("subject", "other_citizen")
AUDITORS = ("regulator", "custodian")

# Probe: "METHOD path[?query]"; {placeholders} are filled from the world. Path placeholders carry the
# route's own parameter names, so the part before "?" is the route as the OpenAPI document names it.
# The consumer holds an active consent from the subject; the other consumer holds one from the other
# citizen only; the provider published the subject's records; the custodian is also the identity
# authority and a regulator; the peer signs with a node key of the network (log routes only).
#                                                   subject other  cons.  other  prov.  regul. custod. unknown unsigned peer
MATRIX: dict[str, tuple[int, ...]] = {
    "GET /healthz":                                   (200,   200,   200,   200,   200,   200,   200,   200,    200,  200),
    "GET /metrics":                                   (200,   200,   200,   200,   200,   200,   200,   200,    200,  200),  # scrapers don't sign; counts only
    "GET /v1/network":                                (200,   200,   200,   200,   200,   200,   200,   401,    401,  403),
    "GET /v1/log/checkpoint":                         (200,   200,   200,   200,   200,   200,   200,   401,    401,  200),
    "GET /v1/log/entries?start=0&end=5":              (403,   403,   403,   403,   403,   200,   200,   401,    401,  200),
    "GET /v1/log/proof/inclusion?index=0&tree_size=2": (200,  200,   200,   200,   200,   200,   200,   401,    401,  200),
    "GET /v1/log/proof/consistency?first=1&second=2": (200,   200,   200,   200,   200,   200,   200,   401,    401,  200),
    "GET /v1/log/headers?start=0&end=2":              (403,   403,   403,   403,   403,   200,   200,   401,    401,  200),
    "GET /v1/log/blocks/{height}":                    (403,   403,   403,   403,   403,   200,   200,   401,    401,  200),
    "POST /v1/transactions":                          (200,   200,   200,   200,   200,   200,   200,   401,    401,  403),
    "GET /v1/transactions/{tx_id}":                   (200,   404,   404,   404,   404,   200,   200,   401,    401,  403),
    "POST /v1/records":                               (403,   403,   403,   403,   200,   403,   403,   401,    401,  403),
    "GET /v1/records":                                (200,   200,   403,   403,   200,   400,   400,   401,    401,  403),
    "GET /v1/records?subject={subject}":              (200,   403,   403,   403,   403,   200,   200,   401,    401,  403),
    "GET /v1/records/{record_id}":                    (200,   404,   404,   404,   200,   200,   200,   401,    401,  403),
    "GET /v1/corrections":                            (200,   200,   403,   403,   200,   200,   200,   401,    401,  403),
    "GET /v1/consents":                               (200,   200,   200,   200,   403,   200,   200,   401,    401,  403),
    "GET /v1/consents?subject={subject}":             (200,   200,   200,   200,   403,   200,   200,   401,    401,  403),
    "GET /v1/consents/{consent_id}":                  (200,   404,   200,   404,   404,   200,   200,   401,    401,  403),
    "POST /v1/access":                                (200,   403,   200,   403,   403,   403,   403,   401,    401,  403),
    "GET /v1/access":                                 (200,   200,   200,   200,   403,   200,   200,   401,    401,  403),
    "GET /v1/access?subject={subject}":               (200,   403,   200,   200,   403,   200,   200,   401,    401,  403),
    "GET /v1/access?consumer={consumer}":             (200,   200,   200,   403,   403,   200,   200,   401,    401,  403),
    "POST /v1/modules":                               (403,   403,   200,   200,   403,   403,   403,   401,    401,  403),
    "GET /v1/modules/{module_hash}":                  (200,   200,   200,   200,   200,   200,   200,   401,    401,  403),
    "POST /v1/compute":                               (403,   403,   200,   403,   403,   403,   403,   401,    401,  403),
    "POST /v1/compute/replay":                        (403,   403,   403,   403,   403,   200,   200,   401,    401,  403),
    "POST /v1/keysets":                               (403,   403,   200,   200,   200,   200,   200,   401,    401,  403),
    "GET /v1/keysets/{keyset_id}":                    (403,   403,   200,   200,   200,   200,   200,   401,    401,  403),
    "POST /v1/aggregates":                            (403,   403,   403,   403,   403,   403,   403,   401,    401,  403),
    "GET /v1/aggregates/{aggregate_id}":              (404,   404,   200,   404,   200,   200,   200,   401,    401,  403),
    "POST /v1/aggregates/{aggregate_id}/shares":      (403,   403,   200,   200,   200,   200,   200,   401,    401,  403),
    "GET /v1/privacy/budgets/{data_type}":            (403,   403,   200,   200,   200,   200,   200,   401,    401,  403),
}
PLAIN_TEXT = {"GET /metrics"}  # Prometheus text exposition, not JSON
ERROR_CODES = {400: "invalid_argument", 401: "unauthenticated", 403: "forbidden", 404: "not_found"}
SPECIAL_CODES = {
    ("POST /v1/access", "other_consumer"): "no_consent",  # refused by the consent check, and recorded
    ("POST /v1/compute", "other_consumer"): "no_consent",
    # consumers and regulators may ask; the one citizen who consented is fewer than the minimum cohort
    **{("POST /v1/aggregates", role): "cohort_too_small" for role in ("consumer", "other_consumer", "regulator", "custodian")},
}
# Answers that carry a sealed result: data, or a computation's output over it.
PAYLOAD_CELLS = {("POST /v1/access", "subject"), ("POST /v1/access", "consumer"), ("POST /v1/compute", "consumer")}
CONSTANT_MODULE = """(module (memory (export "memory") 1)
  (func (export "qcl_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "qcl_run") (param i32 i32) (result i64) (i64.const 1)))"""
MODULE_LAYOUT = [[{"type": VEHICLE, "field": "registered", "encode": "years_to_as_of"}]]
PARTIES = [AUTHORITY, REGULATOR, PROVIDER_ORG]

# What each listing holds, and who each listed item belongs to (citizen keys in hex, organization ids).
LISTINGS = {
    "GET /v1/records": ("records", lambda item: {item["subject"], item["provider"]}),
    "GET /v1/corrections": ("corrections", lambda item: {item["subject"], item["provider"]}),
    "GET /v1/consents": ("consents", lambda item: {item["terms"]["subject"], item["grantor"], item["consumer"]}),
    "GET /v1/access": ("accesses", lambda item: {item["subject"], item.get("consumer")}),
}


@dataclass(frozen=True)
class World:
    net: Sharing
    keys: dict[str, KeyPair | None]
    http: dict[str, httpx.Client]  # each caller's raw client: signed by its key, or unsigned
    identity: dict[str, str]  # who a caller is in listings: a citizen's key in hex, or an organization id
    values: dict[str, str]  # the probes' placeholders
    recipient_private_key: bytes
    recipient_public_key: bytes
    joint_key: bytes


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Two citizens with records, a consent and an access each (to different consumers), and a correction request each."""
    with sharing_network(tmp_path_factory.mktemp("matrix") / "node") as net:
        subject, other = net.enrol(), net.enrol()
        record_id = net.publish(subject, VEHICLE, {**SAMPLE_PAYLOADS[VEHICLE], "brand": MARKER})
        net.publish(other, VEHICLE)
        consent_id, grant = _consent_used_once(net, subject, INSURER)
        _consent_used_once(net, other, BANK)
        for citizen in (subject, other):
            (own,) = citizen.records()
            citizen.request_correction(bytes.fromhex(own["record_id"]), "the plate is wrong")
        subject.open_my_data()
        insurer = net.consumer(INSURER)
        module_hash = insurer.pin_module(wasmtime.wat2wasm(CONSTANT_MODULE), "constant", MODULE_LAYOUT, "int")
        net.provider(PROVIDER_ORG).approve_module(module_hash)
        computed = insurer.run_module(consent_id, subject.key.public_key, module_hash)
        net.provider(PROVIDER_ORG).set_privacy_budget(TRAFFIC, consumer_epsilon=100, total_epsilon=100, min_cohort=2)
        shares, joint = run_ceremony(PARTIES)
        keyset_id = register_joint_key(net.client(net.admin_key(REGULATOR)), joint, clock_ms)
        requester = AggregateRequester(net.client(net.admin_key(INSURER)), clock_ms)
        with pytest.raises(ApiError):
            requester.request(TRAFFIC, "count", "count", bounds=(0, 1), epsilon=0.001, keyset_id=keyset_id, purpose="claims.stats")
        (aggregate_id,) = [key[len(b"aggregate/"):] for key, _ in net.node.peer.store.state_scan(b"aggregate/")]
        keys: dict[str, KeyPair | None] = {
            "subject": subject.key,
            "other_citizen": other.key,
            "consumer": net.admin_key(INSURER),
            "other_consumer": net.admin_key(BANK),
            "provider": net.admin_key(PROVIDER_ORG),
            "regulator": net.admin_key(REGULATOR),
            "custodian": net.admin_key(AUTHORITY),
            "unknown_key": KeyPair.generate(),
            "unsigned": None,
            "peer": net.node.peer.node_key,  # a node key of the network, as a peer catching up signs
        }
        identity = {
            "subject": subject.key.public_key.hex(),
            "other_citizen": other.key.public_key.hex(),
            "consumer": INSURER,
            "other_consumer": BANK,
            "provider": PROVIDER_ORG,
        }
        values = {
            "subject": subject.key.public_key.hex(),
            "consumer": INSURER,
            "record_id": record_id.hex(),
            "consent_id": consent_id.hex(),
            "tx_id": grant["tx_id"],
            "height": "1",
            "module_hash": module_hash.hex(),
            "keyset_id": keyset_id.hex(),
            "aggregate_id": aggregate_id.hex(),
            "data_type": TRAFFIC,
            "computed_index": str(computed.log_index),
        }
        private_key, public_key = generate_x25519()
        http = {role: net.http(key) for role, key in keys.items()}
        yield World(net, keys, http, identity, values, private_key, public_key, joint.to_bytes())


def _consent_used_once(net: Sharing, citizen: SafeBox, org: str) -> tuple[bytes, dict[str, Any]]:
    """A consent of ``citizen`` to ``org`` for the vehicle registration, granted and used once: (id, grant result)."""
    consumer = net.consumer(org)
    consent_id = consumer.request_consent(
        citizen.key.public_key, [VEHICLE], purpose_code="insurance.claim", purpose_text="claim", valid_days=7,
        contact="privacy@example.cn", max_uses=1000, frequency=(1000, "day"),
    )
    grant = citizen.grant(consent_id)
    consumer.fetch(consent_id, citizen.key.public_key)
    return consent_id, grant


def route_of(probe: str) -> str:
    return probe.split("?")[0]


def body_for(world: World, probe: str, role: str) -> dict[str, Any] | None:
    """The JSON body a POST probe sends: the same request for every caller, except that a citizen opening
    their own data names no consent (an organization names the consumer's consent and the type it covers)."""
    net, values = world.net, world.values
    if probe == "POST /v1/access":
        body = {"subject": values["subject"], "recipient_key": world.recipient_public_key.hex()}
        return body if role in CITIZENS else {**body, "consent_id": values["consent_id"], "data_types": [VEHICLE]}
    if probe == "POST /v1/records":
        return _publish_body(net, bytes.fromhex(values["subject"]))
    if probe == "POST /v1/transactions":
        return {"transactions": [base64.b64encode(_badly_signed(net)).decode()]}
    if probe == "POST /v1/compute":
        job = {"kind": "sandbox", "module_hash": values["module_hash"]}
        return {"subject": values["subject"], "consent_id": values["consent_id"], "recipient_key": world.recipient_public_key.hex(), "job": job}
    if probe == "POST /v1/compute/replay":
        return {"log_index": int(values["computed_index"])}
    return _blob_body(world, probe)


def _signed(net: Sharing, org: str, tx_type: str, payload: dict[str, Any]) -> str:
    return b64(build_transaction(net.admin_key(org), net.node.peer.network, tx_type, payload, time_ms=clock_ms()))


def _blob_body(world: World, probe: str) -> dict[str, Any] | None:
    """Bodies of the routes that carry a signed transaction (and the bytes it names): fresh each call."""
    net, values = world.net, world.values
    if probe == "POST /v1/modules":
        wasm = wasmtime.wat2wasm(CONSTANT_MODULE) + b"\x00\x11\x08qcl-test" + os.urandom(8)  # a custom section: a new hash
        pin = {"module_hash": sha256(wasm), "name": "constant", "inputs": MODULE_LAYOUT, "output": "int"}
        return {"transaction": _signed(net, INSURER, "module.submit", pin), "wasm": b64(wasm)}
    if probe == "POST /v1/keysets":
        keyset = {"keyset_id": sha256(world.joint_key), "params": THRESHOLD_PARAMS.name, "parties": PARTIES}
        return {"transaction": _signed(net, REGULATOR, "threshold.keyset", keyset), "data": b64(world.joint_key)}
    if probe == "POST /v1/aggregates":
        request = {
            "aggregate_id": os.urandom(16), "data_type": TRAFFIC, "field": "count", "statistic": "count", "lower": 0, "upper": 1,
            "epsilon_milli": 1, "keyset_id": bytes.fromhex(values["keyset_id"]), "purpose": "claims.stats",
        }
        return {"transaction": _signed(net, INSURER, "aggregate.request", request)}
    if probe == "POST /v1/aggregates/{aggregate_id}/shares":
        share = os.urandom(64)
        payload = {"aggregate_id": bytes.fromhex(values["aggregate_id"]), "share_hash": sha256(share)}
        return {"transaction": _signed(net, REGULATOR, "aggregate.share", payload), "data": b64(share)}
    return None


def _publish_body(net: Sharing, subject: bytes) -> dict[str, str]:
    """A well-formed record.publish by the provider, its payload sealed to the node's vault key."""
    record_id, salt, payload = os.urandom(16), os.urandom(32), SAMPLE_PAYLOADS[VEHICLE]
    vault_key = x25519_public_from_ed25519(net.node.peer.node_key.public_key)
    sealed = seal_record(codec.encode({"salt": salt, "payload": payload}), vault_key, record_aad(record_id, 1, VEHICLE, subject))
    transaction = build_transaction(
        net.admin_key(PROVIDER_ORG),
        net.node.peer.network,
        "record.publish",
        {"record_id": record_id, "subject": subject, "type": VEHICLE, "as_of": clock_ms() - DAY_MS,
         "commitment": commit_record_payload(salt, codec.encode(payload))},
        time_ms=clock_ms(),
    )
    return {"transaction": base64.b64encode(transaction).decode(), "sealed_payload": base64.b64encode(sealed.encode()).decode()}


def _badly_signed(net: Sharing) -> bytes:
    """An envelope whose signature does not verify: every authenticated caller may submit it; it is never ordered."""
    envelope = build_transaction(net.admin_key(AUTHORITY), net.node.peer.network, "org.remove", {"org": BANK}, time_ms=clock_ms())
    body, signatures = codec.decode(envelope)
    signatures[0][1] = bytes(64)
    return codec.encode([body, signatures])


def call(world: World, probe: str, role: str) -> httpx.Response:
    method, target = probe.split(" ", 1)
    return world.http[role].request(method, target.format(**world.values), json=body_for(world, probe, role))


# --- the table is complete ----------------------------------------------------------------


def test_the_matrix_covers_every_route(world):
    """Every route of the app's OpenAPI document has at least one row, and every row names a route of the app."""
    document = httpx.get(world.net.url + "/openapi.json").json()
    served = {f"{method.upper()} {path}" for path, operations in document["paths"].items() for method in operations}
    assert {route_of(probe) for probe in MATRIX} == served
    assert all(len(row) == len(ROLES) for row in MATRIX.values())
    assert set(LISTINGS) <= set(MATRIX)


def test_every_listing_a_member_may_read_has_something_to_hide(world):
    """The ownership checks below are not vacuous: each unfiltered listing a member may read is non-empty."""
    readable = [(probe, role) for probe in LISTINGS for role in world.identity if MATRIX[probe][ROLES.index(role)] == 200]
    assert readable
    for probe, role in readable:
        assert call(world, probe, role).json()[LISTINGS[probe][0]], (probe, role)


# --- every cell ---------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("probe", list(MATRIX))
def test_cell(world, probe, role):
    response = call(world, probe, role)
    expected = MATRIX[probe][ROLES.index(role)]
    assert response.status_code == expected, response.text
    body = response.json() if route_of(probe) not in PLAIN_TEXT else {}
    if expected >= 400:
        assert list(body) == ["error"]
        assert body["error"]["code"] == SPECIAL_CODES.get((probe, role), ERROR_CODES[expected])
    assert MARKER not in response.text
    assert ("sealed_result" in body) == ((probe, role) in PAYLOAD_CELLS)
    if "sealed_result" in body:
        check_released_after_a_committed_access(world, body, world.keys[role])
    if expected == 200 and route_of(probe) in LISTINGS and role in world.identity:
        key, owners = LISTINGS[route_of(probe)]
        foreign = [item for item in body[key] if world.identity[role] not in owners(item)]
        assert not foreign, f"{role} sees {key} of others: {foreign}"


def check_released_after_a_committed_access(world: World, body: dict[str, Any], caller: KeyPair) -> None:
    """The payload went out under a granted access.record committed at the returned index, naming the caller."""
    log_index = body["access"]["log_index"]
    tx, code = world.net.leaf(log_index)
    assert (code, tx.type, tx.signer) == ("VALID", "access.record", world.net.node.peer.node_key.public_key)
    assert (tx.payload["outcome"], tx.payload["requester"]) == ("granted", caller.public_key)
    assert tx.tx_id.hex() == body["access"]["tx_id"]
    looked_up = world.net.client(world.net.admin_key(REGULATOR)).transaction(tx.tx_id)
    assert (looked_up["status"], looked_up["log_index"]) == ("committed", log_index)
    plaintext = open_sealed(base64.b64decode(body["sealed_result"]), world.recipient_private_key)
    assert access_result_hash(plaintext) == tx.payload["result_hash"]
    released = codec.decode(plaintext)
    if tx.payload["mode"] == "computed":  # a computation's output leaves, never a record's payload
        assert MARKER.encode() not in plaintext and all("payload" not in record for record in released["records"])
    else:
        assert MARKER in [record["payload"]["brand"] for record in released["records"]]
