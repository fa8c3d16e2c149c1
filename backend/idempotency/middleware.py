"""`Idempotency-Key` for POSTs that create things: a retried request replays the first answer.

The whole request runs in one database transaction together with the stored answer, so either
both the effect and its record are committed, or neither is: a retry after a crash re-runs
cleanly, and two concurrent retries cannot both take effect (the unique (caller, key) index
makes the loser roll back, and it then replays the winner's answer).

Opt in per route with `opt={"idempotent": True}`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.tokens import digest, read_access_token
from backend.database import is_unique_violation, transaction
from backend.exceptions import DomainError
from backend.idempotency.tables import IdempotencyRecord
from backend.request_context import request_id_of

HEADER = b"idempotency-key"
_KEPT_HEADERS = {"content-type", "location", "etag", "last-modified", "retry-after"}


class _NotStored(Exception):
    """Raised inside the transaction to roll back a request that did not succeed."""


def _scope_key(who: str, key: str) -> str:
    return hashlib.sha256(f"{who}\0{key}".encode()).hexdigest()


def _request_hash(scope: Scope, body: bytes) -> str:
    """What makes two requests "the same": path, query, content type and body.

    A retried multipart upload carries a new random boundary: it is normalised away, so the
    same form and files count as the same request.
    """
    content_type = _header(scope, b"content-type") or ""
    if content_type.startswith("multipart/") and "boundary=" in content_type:
        boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip('"')
        body = body.replace(boundary.encode("latin-1"), b"<boundary>")
        content_type = content_type.replace(boundary, "<boundary>")
    parts = [scope.get("path", "").encode(), scope.get("query_string", b""), content_type.encode()]
    return hashlib.sha256(b"\0".join([*parts, body])).hexdigest()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def caller_scope(scope: Scope, secret: str) -> str:
    """Whose key this is: the account, else the device, else the client address.

    Keys are per caller, so two residents choosing the same key never see each other's answers.
    """
    auth = _header(scope, b"authorization") or ""
    if auth.lower().startswith("bearer "):
        try:
            return f"acct:{read_access_token(auth[7:].strip(), secret).account_id}"
        except DomainError:
            pass  # the handler's guard will refuse it; key it by the raw credential meanwhile
        return f"cred:{digest(auth)[:32]}"
    if device := _header(scope, b"x-device-token"):
        return f"dev:{digest(device.strip())[:32]}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(cast(bytes, message.get("body", b"")))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _problem(scope: Scope, status: int, code: str, detail: str) -> tuple[int, list[Any], bytes]:
    body = {
        "type": f"urn:relais:problem:{code}",
        "title": "Clé d'idempotence invalide",
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
        "code": code,
        "requestId": request_id_of(scope),
    }
    return status, [[b"content-type", b"application/problem+json"]], json.dumps(body).encode()


async def _send_stored(
    send: Send, status: int, headers: list[Any], body: bytes, replayed: bool
) -> None:
    raw_headers = [(bytes(k), bytes(v)) for k, v in headers]
    raw_headers.append((b"content-length", str(len(body)).encode()))
    if replayed:
        raw_headers.append((b"idempotent-replayed", b"true"))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


class IdempotencyMiddleware:
    """Route-level middleware; routes without `opt["idempotent"]` pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        key = _header(scope, HEADER)
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or key is None
            or handler is None
            or not handler.opt.get("idempotent")
        ):
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 255 or not key.isprintable():
            await _send_stored(
                send,
                *_problem(
                    scope,
                    400,
                    "invalid-idempotency-key",
                    "L'en-tête Idempotency-Key doit compter de 1 à 255 caractères imprimables.",
                ),
                replayed=False,
            )
            return

        who = caller_scope(scope, scope["app"].state.settings.secret_key)
        body = await _read_body(receive)
        request_hash = _request_hash(scope, body)

        stored = await self._lookup(who, key)
        if stored is not None:
            await self._replay(scope, send, stored, request_hash)
            return

        replay_body_sent = False

        async def replay_receive() -> Any:
            nonlocal replay_body_sent
            if replay_body_sent:
                return {"type": "http.disconnect"}
            replay_body_sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        try:
            async with transaction():
                await self.app(scope, replay_receive, capture)
                status = int(start.get("status", 500))
                if not 200 <= status < 300:
                    raise _NotStored
                headers = [
                    [k, v]
                    for k, v in start.get("headers", [])
                    if k.decode().lower() in _KEPT_HEADERS
                ]
                await IdempotencyRecord.insert(
                    IdempotencyRecord(
                        scope_key=_scope_key(who, key),
                        scope=who,
                        key=key,
                        request_hash=request_hash,
                        status_code=status,
                        response_headers=[[k.decode(), v.decode()] for k, v in headers],
                        response_body=b"".join(chunks),
                    )
                )
        except _NotStored:
            # Rolled back: a failed request leaves nothing behind and is not stored. But if a
            # concurrent retry with the same key succeeded meanwhile (ours failed *because* of
            # it, e.g. the slot it just confirmed), the client must see that first answer.
            stored = await self._lookup(who, key)
            if stored is not None:
                await self._replay(scope, send, stored, request_hash)
                return
        except Exception as exc:
            if not is_unique_violation(exc):
                raise
            # A concurrent request with the same key committed first: ours is rolled back.
            stored = await self._lookup(who, key)
            if stored is None:
                raise
            await self._replay(scope, send, stored, request_hash)
            return
        await send(cast(Message, {**start, "type": "http.response.start"}))
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})

    @staticmethod
    async def _lookup(who: str, key: str) -> dict[str, Any] | None:
        # A key stays bound to its first answer until the purge job removes it (after the TTL).
        return (
            await IdempotencyRecord.select()
            .where(IdempotencyRecord.scope_key == _scope_key(who, key))
            .output(load_json=True)
            .first()
        )

    @staticmethod
    async def _replay(scope: Scope, send: Send, stored: dict[str, Any], request_hash: str) -> None:
        if stored["request_hash"] != request_hash:
            await _send_stored(
                send,
                *_problem(
                    scope,
                    422,
                    "idempotency-key-reused",
                    "Cette clé d'idempotence a déjà servi pour une autre requête. Utilisez une "
                    "nouvelle clé pour une nouvelle demande.",
                ),
                replayed=False,
            )
            return
        headers = [[k.encode(), v.encode()] for k, v in stored["response_headers"]]
        await _send_stored(
            send, stored["status_code"], headers, bytes(stored["response_body"]), replayed=True
        )


async def purge_expired(ttl: int) -> int:
    """Delete records older than `ttl` seconds (a worker job); returns how many."""
    since = datetime.now(UTC) - timedelta(seconds=ttl)
    deleted = (
        await IdempotencyRecord.delete()
        .where(IdempotencyRecord.created_at <= since)
        .returning(IdempotencyRecord._meta.primary_key)
    )
    return len(deleted)
