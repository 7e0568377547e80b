"""Operations: liveness for process supervisors and tests."""

from __future__ import annotations

from fastapi import APIRouter, Request

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request) -> dict:
    """Unauthenticated by design: reports only whether the node commits, and its height."""
    peer = request.app.state.peer
    head = peer.store.head()
    return {"ok": peer.failure is None, "height": None if head is None else head.height}
