"""The node's HTTP API: one router per resource, the peer injected as a dependency."""

from __future__ import annotations

from fastapi import FastAPI

from node.api.errors import install_error_handlers
from node.api.routers import log, network, operations, transactions
from node.peer import Peer

__all__ = ["create_app"]


def create_app(peer: Peer) -> FastAPI:
    app = FastAPI(title="Quancheng Ledger node", version="0.1.0")
    app.state.peer = peer
    install_error_handlers(app)
    app.include_router(log.router)
    app.include_router(network.router)
    app.include_router(transactions.router)
    app.include_router(operations.router)
    return app
