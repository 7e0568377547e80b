"""Operations: liveness and metrics for process supervisors, scrapers and tests.

Both routes are unauthenticated by design: supervisors and Prometheus do not
sign requests, and neither answer carries data — only whether the node commits,
heights, counts and durations (see node/metrics.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from node.metrics import CONTENT_TYPE, render

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz(request: Request) -> dict:
    """Whether the node commits, and its height."""
    peer = request.app.state.peer
    head = peer.store.head()
    return {"ok": peer.failure is None, "height": None if head is None else head.height}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(request: Request) -> PlainTextResponse:
    """Prometheus text exposition: heights, counts, commit latency, orderer lag, etcd connection."""
    return PlainTextResponse(render(request.app.state.peer), media_type=CONTENT_TYPE)
