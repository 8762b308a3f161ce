"""Exceptions to JSON errors, once each: `{"error": {"code": ..., "message": ...}}`.

No traceback and no library exception text ever reaches a client; an unexpected error is
logged under an incident id, which the client gets.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from gateway.access.api_keys import Forbidden, Unauthorized
from gateway.errors import (
    Conflict,
    GatewayError,
    InvalidValue,
    NetworkError,
    NotFound,
    StoreError,
    VaultError,
)

log = logging.getLogger("gateway.web")

_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (InvalidValue, 422, "invalid_value"),
    (VaultError, 503, "vault_unavailable"),
    (StoreError, 503, "store_unavailable"),
    (NetworkError, 504, "upstream_unavailable"),
)


def error(status: int, code: str, message: str,
          headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    for kind, status, code in _STATUS:
        if isinstance(exc, kind):
            return error(status, code, exc.message)
    return await _unexpected(request, exc)


async def _unauthorized(request: Request, exc: Exception) -> JSONResponse:
    return error(401, "unauthorized", "A valid API key is required "
                 "(Authorization: Bearer ocg_...).", {"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return error(403, "forbidden", str(exc) or "This key's role does not allow that.")


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return error(422, "invalid_request", f"{where}: {first.get('msg', 'invalid')}".strip(": "))


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error(exc.status_code, "http_error", str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    incident = secrets.token_hex(4)
    log.error("request failed", exc_info=exc, extra={"incident": incident,
                                                     "path": request.url.path})
    return error(500, "internal", f"Internal error (incident {incident}).")


ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"], "additionalProperties": False,
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}
_ERROR_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _declare_errors(method: str, operation: dict[str, Any],
                    responses: dict[str, Any]) -> None:
    """What a route behind an API key may answer besides its own result (each JSON as the
    Error schema): schemathesis' conformance checks hold the API to this list."""
    declared = {"401": "No valid API key",
                "403": "The key's role or tenant does not allow this",
                "404": "A named object does not exist (or is another tenant's)",
                "503": "The database or the vault is unavailable; retry later",
                "504": "A remote service (DNS, a token endpoint, a mail server) did not "
                       "answer"}
    if "requestBody" in operation:
        declared["400"] = "The body could not be read as its content type"
    if method != "get":
        declared["409"] = "The object's state does not allow this now, or it exists already"
    for status, description in declared.items():
        responses.setdefault(status, {"description": description, **_ERROR_REF})


def _documented(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document as the API answers: FastAPI declares its own 422 body
    (`HTTPValidationError`), but every error here is `{"error": {"code", "message"}}`
    (and a route that needs a key may answer 401 and 403)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec: dict[str, Any] = generate()
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR_SCHEMA
        for operations in spec.get("paths", {}).values():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if "422" in responses:
                    responses["422"] = {"description": "The request is not valid", **_ERROR_REF}
                if operation.get("security"):
                    _declare_errors(method, operation, responses)
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = spec
        return spec

    return openapi


def install(app: FastAPI) -> None:
    app.openapi = _documented(app)  # type: ignore[method-assign]
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(Unauthorized, _unauthorized)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
