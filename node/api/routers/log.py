"""The audit surface, after Certificate Transparency (RFC 6962 §4): checkpoint, entries, proofs, blocks.

Every route needs a signed request (docs/PROTOCOL.md §10.1). Checkpoints and
proofs reveal only hashes, so any authenticated caller may ask; entries and block
headers expose every transaction's metadata, so only regulators and custodians
may, and the network's peers (signing with their node keys) to catch up.
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from ledger.block import BlockHeader
from ledger.merkle import ProofBuilder, hash_leaf
from ledger.rules import Code
from node.api.auth import CallerDep, require_log_reader
from node.api.dependencies import PeerDep, committed_head
from node.api.errors import ApiError

router = APIRouter(prefix="/v1/log", tags=["log"])

MAX_ENTRIES_PER_PAGE = 1000



@router.get("/checkpoint")
def get_checkpoint(caller: CallerDep, peer: PeerDep, height: Annotated[int | None, Query(ge=0)] = None) -> dict:
    """The checkpoint this node signed after block ``height`` (default: the latest), with the signed bytes."""
    if height is None:
        signed = peer.store.latest_checkpoint()
    else:
        chain_height = committed_head(peer).height
        if height > chain_height:
            raise ApiError("not_found", f"no block {height}; the chain height is {chain_height}")
        signed = peer.store.checkpoint(height)
    if signed is None:
        raise ApiError("unavailable", "no checkpoint has been signed yet")
    checkpoint = signed.checkpoint
    return {
        "node_id": checkpoint.node_id,
        "node_key": signed.node_key.hex(),
        "checkpoint": {
            "network": checkpoint.network.hex(),
            "node_id": checkpoint.node_id,
            "tree_size": checkpoint.tree_size,
            "root_hash": checkpoint.root_hash.hex(),
            "height": checkpoint.height,
            "block_hash": checkpoint.block_hash.hex(),
            "time": checkpoint.time,
        },
        "signed_bytes": base64.b64encode(checkpoint.encode()).decode(),
        "signature": signed.signature.hex(),
        "encoded": base64.b64encode(signed.encode()).decode(),
    }


@router.get("/entries")
def get_entries(
    caller: CallerDep,
    peer: PeerDep,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(ge=1)],
) -> dict:
    """Leaves start..end-1; the page is clipped to MAX_ENTRIES_PER_PAGE and to the log size. Auditors and peers only."""
    require_log_reader(caller)
    size = committed_head(peer).tree_size
    if end <= start:
        raise ApiError("invalid_argument", f"end ({end}) must be greater than start ({start})")
    if start >= size:
        raise ApiError("invalid_argument", f"start ({start}) is beyond the log size ({size})")
    end = min(end, size, start + MAX_ENTRIES_PER_PAGE)
    leaves = peer.store.leaves(start, end)
    return {
        "start": start,
        "end": end,
        "tree_size": size,
        "entries": [base64.b64encode(leaf).decode() for leaf in leaves],
        "meta": _entry_meta(peer, start, end),
    }


def _entry_meta(peer: PeerDep, start: int, end: int) -> list[dict]:
    """Per leaf: its block height, the block's time and the validity code the block gives it."""
    meta: list[dict] = []
    height = peer.store.height_of_log_index(start)
    while start + len(meta) < end:
        header = peer.store.header(height)
        for position in range(start + len(meta) - header.first_index, header.tx_count):
            if start + len(meta) >= end:
                break
            meta.append({"height": height, "time": header.time, "code": Code(header.codes[position]).name})
        height += 1
    return meta


def proof_builder(peer: PeerDep) -> ProofBuilder:
    """Proofs for any size up to the committed log (a ProofError answers invalid_argument)."""
    return ProofBuilder(peer.store, tree_size=committed_head(peer).tree_size)


BuilderDep = Annotated[ProofBuilder, Depends(proof_builder)]


@router.get("/proof/inclusion")
def get_inclusion_proof(
    caller: CallerDep,
    peer: PeerDep,
    builder: BuilderDep,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(ge=1)],
) -> dict:
    path = builder.inclusion_proof(index, tree_size)
    return {
        "index": index,
        "tree_size": tree_size,
        "leaf_hash": hash_leaf(peer.store.leaf(index)).hex(),
        "audit_path": [node.hex() for node in path],
    }


@router.get("/proof/consistency")
def get_consistency_proof(
    caller: CallerDep,
    builder: BuilderDep,
    first: Annotated[int, Query(ge=1)],
    second: Annotated[int, Query(ge=1)],
) -> dict:
    proof = builder.consistency_proof(first, second)
    return {"first": first, "second": second, "consistency": [node.hex() for node in proof]}


@router.get("/headers")
def get_headers(
    caller: CallerDep,
    peer: PeerDep,
    start: Annotated[int, Query(ge=0)],
    end: Annotated[int, Query(ge=1)],
) -> dict:
    """Canonical header bytes of blocks start..end-1 (clipped to MAX_ENTRIES_PER_PAGE and the chain). Auditors and peers only.

    With them an auditor checks the hash chain up to a signed checkpoint and takes each
    leaf's validity code and block time from the headers themselves."""
    require_log_reader(caller)
    height = committed_head(peer).height
    if end <= start or start > height:
        raise ApiError("invalid_argument", f"need start < end and start <= the chain height ({height})")
    end = min(end, height + 1, start + MAX_ENTRIES_PER_PAGE)
    return {"start": start, "end": end, "headers": [base64.b64encode(peer.store.header_bytes(h)).decode() for h in range(start, end)]}


@router.get("/blocks/{height}")
def get_block(caller: CallerDep, peer: PeerDep, height: int) -> dict:
    """A block header (and its canonical bytes) so auditors can check the hash chain. Auditors and peers only."""
    require_log_reader(caller)
    head = committed_head(peer)
    if not 0 <= height <= head.height:
        raise ApiError("not_found", f"no block {height}; the chain height is {head.height}")
    raw = peer.store.header_bytes(height)
    header = BlockHeader.decode(raw)
    return {
        "version": header.version,
        "network": header.network.hex(),
        "height": header.height,
        "hash": header.hash().hex(),
        "prev_hash": header.prev_hash.hex(),
        "order_seq": header.order_seq,
        "time": header.time,
        "first_index": header.first_index,
        "tx_count": header.tx_count,
        "codes": list(header.codes),
        "log_root": header.log_root.hex(),
        "state_hash": header.state_hash.hex(),
        "header": base64.b64encode(raw).decode(),
    }
