"""The HTTP audit API on a real peer (LevelDB, in-process orderer), through FastAPI's test client.

Requests are signed by the Big Data Bureau's admin key (custodian and regulator:
it may read everything); who may read what is tested in test_auth.py.
"""

from __future__ import annotations

import base64
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from client.auth import RequestSigner
from ledger import codec
from ledger.checkpoint import SignedCheckpoint
from ledger.errors import ProofError
from ledger.merkle import ProofBuilder, hash_leaf, verify_consistency, verify_inclusion
from ledger.tx import parse_transaction
from node.api.app import create_app
from node.api.routers.log import MAX_ENTRIES_PER_PAGE
from node.devnet import NodeConfig
from node.peer import Peer


@pytest.fixture
def client(peer: Peer, dev_config: NodeConfig) -> Iterator[TestClient]:
    with TestClient(create_app(peer)) as test_client:
        test_client.auth = RequestSigner(dev_config.admin_key("jinan-bigdata"))
        yield test_client


def submit(client: TestClient, envelopes: list[bytes]) -> list[dict]:
    response = client.post("/v1/transactions", json={"transactions": [base64.b64encode(e).decode() for e in envelopes]})
    assert response.status_code == 200, response.text
    return response.json()["results"]


def checkpoint(client: TestClient) -> SignedCheckpoint:
    body = client.get("/v1/log/checkpoint").json()
    signed = SignedCheckpoint.decode(base64.b64decode(body["encoded"]))
    signed.verify()
    assert body["checkpoint"]["root_hash"] == signed.checkpoint.root_hash.hex()
    return signed


def assert_error(response, status: int, code: str, mentions: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert mentions in error["message"]


def test_submitted_transactions_commit_and_are_findable(client, make_enrollments):
    envelopes = make_enrollments(30)
    results = submit(client, envelopes)
    assert [r["status"] for r in results] == ["committed"] * 30
    for envelope, result in zip(envelopes, results):
        tx_id = parse_transaction(envelope).tx_id.hex()
        assert result["tx_id"] == tx_id
        found = client.get(f"/v1/transactions/{tx_id}").json()
        assert (found["status"], found["log_index"]) == ("committed", result["log_index"])
        assert base64.b64decode(found["envelope"]) == envelope


def test_replayed_transaction_is_kept_as_invalid(client, make_enrollments):
    envelope = make_enrollments(1)[0]
    first, = submit(client, [envelope])
    replay, = submit(client, [envelope])
    assert first["status"] == "committed"
    assert (replay["status"], replay["code"]) == ("invalid", "DUPLICATE_TXID")
    assert replay["log_index"] > first["log_index"]
    assert client.get(f"/v1/transactions/{first['tx_id']}").json()["log_index"] == first["log_index"]


def test_forged_signature_is_rejected_before_ordering(client, make_enrollments):
    body, signatures = codec.decode(make_enrollments(1)[0])
    signatures[0][1] = bytes(64)
    size_before = checkpoint(client).checkpoint.tree_size
    result, = submit(client, [codec.encode([body, signatures])])
    assert (result["status"], result["code"]) == ("rejected", "BAD_SIGNATURE")
    assert checkpoint(client).checkpoint.tree_size == size_before


def test_every_leaf_has_an_inclusion_proof_against_the_signed_root(client, make_enrollments):
    submit(client, make_enrollments(40))
    signed = checkpoint(client)
    size = signed.checkpoint.tree_size
    entries = client.get("/v1/log/entries", params={"start": 0, "end": size}).json()["entries"]
    assert len(entries) == size
    for index, leaf in enumerate(entries):
        proof = client.get("/v1/log/proof/inclusion", params={"index": index, "tree_size": size}).json()
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        leaf_hash = hash_leaf(base64.b64decode(leaf))
        assert proof["leaf_hash"] == leaf_hash.hex()
        verify_inclusion(leaf_hash, index, size, path, signed.checkpoint.root_hash)
        with pytest.raises(ProofError):
            verify_inclusion(hash_leaf(b"not the leaf"), index, size, path, signed.checkpoint.root_hash)


def test_consistency_between_two_signed_checkpoints(client, make_enrollments):
    submit(client, make_enrollments(7))
    old = checkpoint(client).checkpoint
    submit(client, make_enrollments(13))
    new = checkpoint(client).checkpoint
    proof = client.get("/v1/log/proof/consistency", params={"first": old.tree_size, "second": new.tree_size}).json()
    nodes = [bytes.fromhex(node) for node in proof["consistency"]]
    verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, nodes)
    with pytest.raises(ProofError):
        verify_consistency(old.tree_size, new.tree_size, bytes(32), new.root_hash, nodes)


def test_block_headers_chain_and_carry_the_log_root(client, peer, make_enrollments):
    submit(client, make_enrollments(5))
    submit(client, make_enrollments(5))
    head = checkpoint(client).checkpoint
    previous = bytes(32)
    builder = ProofBuilder(peer.store)
    for height in range(head.height + 1):
        block = client.get(f"/v1/log/blocks/{height}").json()
        assert bytes.fromhex(block["prev_hash"]) == previous
        assert block["log_root"] == builder.root(block["first_index"] + block["tx_count"]).hex()
        previous = bytes.fromhex(block["hash"])
    assert previous == head.block_hash


def test_checkpoint_is_signed_by_a_node_listed_in_the_network(client):
    signed = checkpoint(client)
    network = client.get("/v1/network").json()
    node_keys = {node["key"] for org in network["orgs"] for node in org["nodes"]}
    assert signed.node_key.hex() in node_keys
    assert network["network"] == signed.checkpoint.network.hex()
    assert {org["id"] for org in network["orgs"]} >= {"jinan-bigdata", "qilu-bank", "pbc-jinan"}


def test_entries_page_is_clipped(client, make_enrollments):
    submit(client, make_enrollments(5))
    size = checkpoint(client).checkpoint.tree_size
    page = client.get("/v1/log/entries", params={"start": 2, "end": 10**9}).json()
    assert (page["start"], page["end"]) == (2, min(size, 2 + MAX_ENTRIES_PER_PAGE))
    assert len(page["entries"]) == page["end"] - 2


@pytest.mark.parametrize(
    ("path", "params", "status", "code", "mentions"),
    [
        ("/v1/log/entries", {"start": 5, "end": 5}, 400, "invalid_argument", "end"),
        ("/v1/log/entries", {"start": 10**6, "end": 10**6 + 1}, 400, "invalid_argument", "start"),
        ("/v1/log/entries", {"start": -1, "end": 3}, 400, "invalid_argument", "start"),
        ("/v1/log/entries", {"start": "x", "end": 3}, 400, "invalid_argument", "start"),
        ("/v1/log/proof/inclusion", {"index": 1, "tree_size": 1}, 400, "invalid_argument", "index"),
        ("/v1/log/proof/inclusion", {"index": 0, "tree_size": 10**6}, 400, "invalid_argument", "exceeds"),
        ("/v1/log/proof/consistency", {"first": 2, "second": 1}, 400, "invalid_argument", "size1"),
        ("/v1/log/proof/consistency", {"first": 0, "second": 2}, 400, "invalid_argument", "first"),
        ("/v1/log/blocks/99", {}, 404, "not_found", "block 99"),
        ("/v1/transactions/zz", {}, 400, "invalid_argument", "tx_id"),
        ("/v1/transactions/" + "00" * 32, {}, 404, "not_found", "no committed transaction"),
        ("/v1/nothing-here", {}, 404, "not_found", ""),
    ],
)
def test_errors_have_a_stable_code_and_name_the_problem(client, path, params, status, code, mentions):
    assert_error(client.get(path, params=params), status, code, mentions)


def test_submission_errors(client):
    assert_error(client.post("/v1/transactions", json={"transactions": []}), 400, "invalid_argument", "empty")
    assert_error(client.post("/v1/transactions", json={"transactions": ["%%%"]}), 400, "invalid_argument", "transactions[0]")
    assert_error(client.post("/v1/transactions", json={"nope": 1}), 400, "invalid_argument", "transactions")
    junk, = client.post("/v1/transactions", json={"transactions": [base64.b64encode(b"junk").decode()]}).json()["results"]
    assert (junk["status"], junk["code"]) == ("rejected", "BAD_ENCODING")


def test_every_block_keeps_its_signed_checkpoint(client, make_enrollments):
    submit(client, make_enrollments(3))
    submit(client, make_enrollments(4))
    latest = checkpoint(client).checkpoint
    sizes = []
    for height in range(latest.height + 1):
        body = client.get("/v1/log/checkpoint", params={"height": height}).json()
        signed = SignedCheckpoint.decode(base64.b64decode(body["encoded"]))
        signed.verify()
        block = client.get(f"/v1/log/blocks/{height}").json()
        assert (signed.checkpoint.height, signed.checkpoint.block_hash.hex()) == (height, block["hash"])
        sizes.append(signed.checkpoint.tree_size)
    assert sizes == sorted(sizes) and sizes[-1] == latest.tree_size
    assert_error(client.get("/v1/log/checkpoint", params={"height": latest.height + 1}), 404, "not_found", "no block")


def test_framework_errors_keep_their_status(client):
    assert_error(client.delete("/v1/network"), 405, "method_not_allowed", "")
