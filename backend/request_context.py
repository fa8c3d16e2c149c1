"""Request ids: one per request, in the `X-Request-ID` response header and every log line."""

from __future__ import annotations

import logging
import re
import time
import uuid
from contextvars import ContextVar
from typing import Any, cast

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_SCOPE_KEY = "relais_request_id"
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("relais.access")


def request_id_of(scope: Scope) -> str:
    """The request's id: the client's `X-Request-ID` when sane, else a new one (kept in scope)."""
    raw = cast(dict[str, Any], scope)
    if _SCOPE_KEY not in raw:
        incoming = ""
        for name, value in scope.get("headers", []):
            if name == HEADER.encode():
                incoming = value.decode("latin-1")
        raw[_SCOPE_KEY] = incoming if _ACCEPTABLE.match(incoming) else uuid.uuid4().hex
    return str(raw[_SCOPE_KEY])


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def configure_logging(level: str) -> None:
    """One format for every logger, request id included."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO: ANTS management URLs and push endpoints are not
    # for the logs.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))


class RequestIdMiddleware:
    """Binds the request id for logging and writes one access-log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = request_id_var.set(request_id_of(scope))
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_log.info(
                "%s %s %s %.1fms",
                scope.get("method"),
                scope.get("path"),
                status,
                (time.perf_counter() - started) * 1000,
            )
            request_id_var.reset(token)


async def add_request_id_header(message: Message, scope: Scope) -> None:
    """`before_send` hook: every response, routed or not, carries its request id."""
    if message["type"] == "http.response.start":
        headers = MutableScopeHeaders.from_message(message)
        headers[HEADER] = request_id_of(scope)
