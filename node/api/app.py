"""The node's HTTP API: one router per resource, the peer injected as a dependency."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import anyio.to_thread
from fastapi import FastAPI

from ledger.storage.memory import MemoryStore
from node.api.auth import ReplayGuard
from node.api.errors import install_error_handlers
from node.api.routers import access, aggregates, compute, consents, log, network, operations, records, transactions
from node.peer import Peer
from node.runtime import clock_ms as wall_clock_ms
from node.services import build_services
from node.vault import Vault

__all__ = ["create_app"]

# Data requests wait in worker threads until their access record is durable; many of them
# waiting together is what lets one block (one fsync) carry many access records.
API_WORKER_THREADS = 256


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = API_WORKER_THREADS
    yield


def create_app(peer: Peer, *, vault: Vault | None = None, clock_ms: Callable[[], int] = wall_clock_ms) -> FastAPI:
    """``vault``: the node's record vault (an in-memory one when None, for tests that publish nothing)."""
    app = FastAPI(title="Quancheng Ledger node", version="0.1.0", lifespan=_lifespan)
    app.state.peer = peer
    app.state.clock_ms = clock_ms
    app.state.node = build_services(peer, vault if vault is not None else Vault(MemoryStore()), clock_ms)
    app.state.replay_guard = ReplayGuard()
    install_error_handlers(app)
    app.include_router(log.router)
    app.include_router(network.router)
    app.include_router(transactions.router)
    app.include_router(records.router)
    app.include_router(records.corrections_router)
    app.include_router(consents.router)
    app.include_router(access.router)
    app.include_router(compute.router)
    app.include_router(aggregates.router)
    app.include_router(operations.router)
    return app
