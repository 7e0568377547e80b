"""API errors: one JSON shape, stable codes (docs/PROTOCOL.md §10).

    {"error": {"code": "<stable code>", "message": "<what is wrong, naming the field>"}}
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.consent import ACCESS_REFUSALS
from ledger.errors import ProofError
from node.peer import PeerUnavailable

__all__ = ["ApiError", "install_error_handlers"]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """Raised by a route to answer with a documented error."""

    STATUS = {
        "invalid_argument": 400,
        "bad_request": 400,
        "unauthenticated": 401,
        "forbidden": 403,
        "not_found": 404,
        "method_not_allowed": 405,
        "conflict": 409,
        "payload_too_large": 413,
        "module_refused": 422,  # the node's check refused a module's bytes (recorded as module.check)
        "budget_exhausted": 403,  # a privacy budget cap would be exceeded (the refused request is in the log)
        "no_budget": 403,  # the data type's provider set no privacy budget: aggregates over it are refused
        "cohort_too_small": 403,  # fewer consenting citizens than the data type's minimum cohort
        "unavailable": 503,
        "internal": 500,
        # A refused data access answers 403 with the reason code recorded on the ledger.
        **{reason: 403 for reason in ACCESS_REFUSALS},
    }

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = self.STATUS[code]


def _body(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        response = _body(exc.code, exc.message, exc.status)
        if exc.status == 401:  # RFC 9110 §11.6.1: a 401 names the scheme that would succeed
            response.headers["WWW-Authenticate"] = 'QCL-Signature realm="quancheng-ledger"'
        return response

    @app.exception_handler(ProofError)
    async def proof_error(_: Request, exc: ProofError) -> JSONResponse:
        return _body("invalid_argument", str(exc), 400)

    @app.exception_handler(PeerUnavailable)
    async def peer_unavailable(_: Request, exc: PeerUnavailable) -> JSONResponse:
        return _body("unavailable", str(exc), 503)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        return _body("invalid_argument", problems, 400)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 503: "unavailable"}
        code = codes.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal")
        return _body(code, str(exc.detail), exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return _body("internal", "internal error; see the node's log", 500)
