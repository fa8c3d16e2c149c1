"""`Idempotency-Key` for POSTs that create things: a retried request replays the first answer.

Three steps, each its own short transaction or none, so that a slow request (a report's photos
being decoded) never holds the SQLite write lock other requests wait for:

1. reserve (caller, key) by inserting a pending record: the unique index lets exactly one of
   concurrent retries win; the others wait for its answer and replay it (a request with
   another body under the same key is refused with 422 at once);
2. run the handler outside any transaction of ours: its services commit their own writes;
3. store the answer on the reservation if it is a success; otherwise delete the reservation, so
   a retry with the same key runs again.

A process killed between 2 and 3 leaves a pending reservation: after ABANDONED_AFTER a retry
takes the key over and runs again. While the handler runs, the key is bound for it
(`backend.idempotency.keys`): a service can record it in its own transaction, so that run
finds the first one's work instead of doing it again. Demandes and reports do (their unique
`idempotency_key`: a report retried on a flaky 4G link is never filed twice); on the other
opted-in routes that crash window remains.

Opt in per route with `opt={"idempotent": True}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from backend.accounts.tokens import digest, read_access_token
from backend.database import is_unique_violation, transaction
from backend.exceptions import DomainError
from backend.idempotency.keys import bind_idempotency_key, unbind_idempotency_key
from backend.idempotency.tables import IdempotencyRecord
from backend.request_context import request_id_of

HEADER = b"idempotency-key"
_KEPT_HEADERS = {"content-type", "location", "etag", "last-modified", "retry-after"}


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

        scope_key = _scope_key(who, key)
        outcome = await _reserve_or_wait(scope_key, who, key, request_hash)
        if isinstance(outcome, dict):
            await _replay(scope, send, outcome, request_hash)
            return
        if outcome is None:
            await _send_stored(send, *_still_running(scope), replayed=False)
            return
        reservation = outcome

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

        # The handler runs outside any transaction of ours: its services commit their own
        # writes, and a slow handler (photos) never holds the SQLite write lock.
        bound = bind_idempotency_key(scope_key)
        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            await _release(reservation)
            raise
        finally:
            unbind_idempotency_key(bound)
        status = int(start.get("status", 500))
        response_body = b"".join(chunks)
        if 200 <= status < 300:
            kept = [
                [k.decode("latin-1"), v.decode("latin-1")]
                for k, v in start.get("headers", [])
                if k.decode("latin-1").lower() in _KEPT_HEADERS
            ]
            await _complete(reservation, status, kept, response_body)
        else:
            # A failed request is not an answer to replay: the key is free for a retry.
            await _release(reservation)
        await send(cast(Message, {**start, "type": "http.response.start"}))
        await send({"type": "http.response.body", "body": response_body, "more_body": False})


#: status_code of a reserved key whose request is still running.
PENDING = 0
#: How long a request waits for a concurrent one with the same key before answering 409.
WAIT_SECONDS = 60.0
#: A reservation older than this belongs to a request that died (process killed mid-request):
#: it no longer blocks the key.
ABANDONED_AFTER = timedelta(minutes=10)


async def _reserve_or_wait(
    scope_key: str, who: str, key: str, request_hash: str
) -> int | dict[str, Any] | None:
    """Reserve (caller, key) in a short transaction of its own.

    Returns the reservation's id (run the request), the stored answer (replay it, or refuse
    another body), or None when a concurrent request with this key is still running after
    WAIT_SECONDS. The unique index on scope_key makes exactly one of concurrent retries win;
    the others wait for its answer, or take the key over if it fails and releases it.
    """
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    pause = 0.02
    while True:
        stored = await _lookup(scope_key)
        if stored is None:
            try:
                async with transaction():
                    rows = await IdempotencyRecord.insert(
                        IdempotencyRecord(
                            scope_key=scope_key,
                            scope=who,
                            key=key,
                            request_hash=request_hash,
                            status_code=PENDING,
                            response_headers=[],
                            response_body=b"",
                        )
                    ).returning(IdempotencyRecord._meta.primary_key)
                return int(rows[0]["id"])
            except Exception as exc:
                if not is_unique_violation(exc):
                    raise
                continue  # another request reserved it first: read what it holds
        if stored["status_code"] != PENDING or stored["request_hash"] != request_hash:
            return stored
        if stored["created_at"] < datetime.now(UTC) - ABANDONED_AFTER:
            await _release(int(stored["id"]))
            continue
        if asyncio.get_running_loop().time() >= deadline:
            return None
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


async def _complete(reservation: int, status: int, headers: list[list[str]], body: bytes) -> None:
    """Store the answer on the reservation (a short transaction)."""
    async with transaction():
        await IdempotencyRecord.update(
            {
                IdempotencyRecord.status_code: status,
                IdempotencyRecord.response_headers: headers,
                IdempotencyRecord.response_body: body,
            }
        ).where(
            (IdempotencyRecord._meta.primary_key == reservation)
            & (IdempotencyRecord.status_code == PENDING)
        )


async def _release(reservation: int) -> None:
    """Free a key whose request failed (only while still pending: never a stored answer)."""
    async with transaction():
        await IdempotencyRecord.delete().where(
            (IdempotencyRecord._meta.primary_key == reservation)
            & (IdempotencyRecord.status_code == PENDING)
        )


async def _lookup(scope_key: str) -> dict[str, Any] | None:
    # A key stays bound to its first answer until the purge job removes it (after the TTL).
    return (
        await IdempotencyRecord.select()
        .where(IdempotencyRecord.scope_key == scope_key)
        .output(load_json=True)
        .first()
    )


def _still_running(scope: Scope) -> tuple[int, list[Any], bytes]:
    status, headers, body = _problem(
        scope,
        409,
        "idempotency-key-in-use",
        "Une requête avec cette clé d'idempotence est encore en cours. Réessayez dans un "
        "instant avec la même clé.",
    )
    return status, [*headers, [b"retry-after", b"5"]], body


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
