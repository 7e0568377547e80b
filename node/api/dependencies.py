"""FastAPI dependencies: the running peer is set once at app creation and injected."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledger.block import ChainHead
from node.api.errors import ApiError
from node.peer import Peer

__all__ = ["PeerDep", "committed_head", "get_peer"]


def get_peer(request: Request) -> Peer:
    peer: Peer = request.app.state.peer
    if peer.failure is not None:
        raise ApiError("unavailable", "the node stopped committing after an internal failure; see its log")
    return peer


PeerDep = Annotated[Peer, Depends(get_peer)]


def committed_head(peer: Peer) -> ChainHead:
    head = peer.store.head()
    if head is None:
        raise ApiError("unavailable", "the ledger has no genesis block yet")
    return head
