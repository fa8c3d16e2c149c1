"""A Web Push service on loopback (RFC 8030 / 8291 / 8292), for tests and benchmarks.

It plays both the push service and the browser: ``create_subscription()`` makes the P-256 key
pair and auth secret a browser would (the private key never leaves the peer) and returns the
``PushSubscription`` JSON; a POST to the endpoint is checked like a real push service would
(VAPID ES256 JWT, ``aud``, ``exp`` ≤ 24 h, ``sub``, ``TTL``, ``Content-Encoding: aes128gcm``,
4,096 B) and then decrypted with http_ece like the browser would, and recorded.

In a test (server thread with its own event loop)::

    with WebPushService() as push:
        sub = push.create_subscription()            # .endpoint .p256dh .auth
        push.set_behaviour(sub.id, "throttle", retry_after="7", first=1)
        ...
        [received] = await push.wait_for(1)         # .payload .ttl .urgency .topic

As a process (benchmarks)::

    python -m tests.peers.webpush_service --port 0   # prints "READY http://127.0.0.1:PORT"
    RemotePeer(url).call("create_subscription")      # same methods, over /_peer/<method>

This module also holds ``LoopbackPeer``, the small uvicorn-based runner every peer shares.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import json
import os
import random
import secrets
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Self

import http_ece
import httpx
import uvicorn
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = [
    "Behaviour",
    "LoopbackPeer",
    "PeerRequest",
    "ReceivedPush",
    "RemotePeer",
    "Subscription",
    "WebPushService",
]

Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, Headers, bytes]


def b64url(raw: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str | bytes) -> bytes:
    """base64url with or without padding."""
    if isinstance(text, str):
        text = text.encode()
    return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))


def json_reply(status: int, doc: Any, headers: Headers | None = None) -> Reply:
    """A JSON response tuple."""
    body = json.dumps(doc, separators=(",", ":")).encode()
    return status, [(b"content-type", b"application/json"), *(headers or [])], body


# --- the shared runner ----------------------------------------------------------------------


@dataclass(slots=True)
class PeerRequest:
    """What a peer handler sees of one HTTP request."""

    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    http_version: str


@dataclass(slots=True)
class Behaviour:
    """How a peer answers for one subscription / token.

    ``first``: apply to the first k requests only, then answer normally (``None``: always).
    ``status``: for ``error`` (500 by default, 503...). ``retry_after``: the header value sent
    with 429 (and with 503 if given). ``delay``: seconds to wait before answering (``slow``).
    """

    kind: str = "ok"
    status: int | None = None
    retry_after: str | None = None
    first: int | None = None
    delay: float = 0.0
    hits: int = 0

    def active(self) -> bool:
        """Whether this request gets the behaviour (counts it when limited to ``first``)."""
        if self.kind == "ok":
            return False
        if self.first is None:
            return True
        if self.hits < self.first:
            self.hits += 1
            return True
        return False


class LoopbackPeer:
    """A minimal ASGI app served by uvicorn (httptools, uvloop) on 127.0.0.1.

    Subclasses implement ``handle``. Run it in a background thread with ``start()``/``stop()``
    or ``with peer:`` (tests), or in the foreground with ``serve_forever()`` (a separate
    process, for benchmarks). Every method named in ``remote_methods`` is also reachable as
    ``POST /_peer/<method>`` with JSON keyword arguments (see ``RemotePeer``). The peer counts
    requests in flight and remembers the peak, so tests can assert a client's concurrency.
    """

    remote_methods: ClassVar[frozenset[str]] = frozenset(
        {"stats", "reset", "records", "set_latency"}
    )

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port: int | None = None
        self.received: list[Any] = []
        self.requests = 0
        self.in_flight = 0
        self.peak_concurrency = 0
        self.latency = 0.0
        self.jitter = 0.0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- to implement ----------------------------------------------------------------------
    async def handle(self, request: PeerRequest) -> Reply:
        """Answer one request (not under ``/_peer/``)."""
        raise NotImplementedError

    def on_ready(self) -> None:
        """Called in ``serve_forever`` once listening, before ``READY`` is printed."""

    # -- introspection ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` once started."""
        if self.port is None:
            raise RuntimeError("peer not started")
        return f"http://{self.host}:{self.port}"

    def stats(self) -> dict[str, int]:
        """Counters: requests seen, messages recorded, peak concurrent requests."""
        return {
            "requests": self.requests,
            "received": len(self.received),
            "peak_concurrency": self.peak_concurrency,
            "in_flight": self.in_flight,
        }

    def set_latency(self, latency: float, jitter: float = 0.0) -> None:
        """Delay every answer by ``latency`` + uniform(0, ``jitter``) seconds, like a network
        round trip: requests then overlap, which makes a client's concurrency observable."""
        self.latency, self.jitter = latency, jitter

    def reset(self) -> None:
        """Forget recorded messages and counters (not subscriptions or behaviours)."""
        self.received.clear()
        self.requests = 0
        self.peak_concurrency = self.in_flight

    def records(self) -> list[dict[str, Any]]:
        """Recorded messages as JSON-able dicts (for ``RemotePeer``)."""
        return [_jsonable(r) for r in self.received]

    async def wait_for(self, n: int, within: float = 10.0) -> list[Any]:
        """Wait (without blocking the caller's event loop) until ``n`` messages were recorded;
        ``TimeoutError`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(self.received) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.received)}/{n} messages after {within}s")
            await asyncio.sleep(0.005)
        return list(self.received)

    async def idle(self, within: float = 10.0) -> None:
        """Wait until no request is being handled (e.g. a ``slow`` one the client gave up on)."""
        deadline = time.monotonic() + within
        while self.in_flight:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.in_flight} requests still in flight after {within}s")
            await asyncio.sleep(0.01)

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        self.in_flight += 1
        self.peak_concurrency = max(self.peak_concurrency, self.in_flight)
        try:
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            request = PeerRequest(
                method=scope["method"],
                path=scope["path"],
                headers={k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                body=b"".join(chunks),
                http_version=scope.get("http_version", "1.1"),
            )
            if request.path.startswith("/_peer/"):
                status, headers, body = self._remote(request)
            else:
                if self.latency or self.jitter:
                    await asyncio.sleep(self.latency + random.random() * self.jitter)
                status, headers, body = await self.handle(request)
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            self.in_flight -= 1

    def _remote(self, request: PeerRequest) -> Reply:
        name = request.path.removeprefix("/_peer/")
        if request.method != "POST" or name not in self.remote_methods:
            return json_reply(404, {"error": f"no remote method {name!r}"})
        kwargs = json.loads(request.body or b"{}")
        return json_reply(200, _jsonable(getattr(self, name)(**kwargs)))

    # -- running -----------------------------------------------------------------------------
    def _make_server(self, port: int) -> tuple[uvicorn.Server, socket.socket]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self,
            interface="asgi3",
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
            backlog=4096,
            timeout_keep_alive=120,  # longer than clients' idle keep-alive: no reset races
            timeout_graceful_shutdown=1,
        )
        return uvicorn.Server(config), sock

    def start(self, port: int = 0) -> Self:
        """Serve in a daemon thread with its own event loop; returns once listening."""
        server, sock = self._make_server(port)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("peer failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop the background server and wait for its thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def serve_forever(self, port: int = 0) -> None:
        """Serve in the foreground (own process); prints ``READY <base_url>`` when listening."""
        server, sock = self._make_server(port)

        async def announce() -> None:
            while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
                await asyncio.sleep(0.005)
            self.on_ready()
            print(f"READY {self.base_url}", flush=True)

        async def main() -> None:
            task = asyncio.ensure_future(announce())
            await server.serve(sockets=[sock])
            task.cancel()

        import uvloop

        uvloop.run(main())


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if f.metadata.get("remote", True)
        }
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bytes):
        return b64url(value)
    return value


class RemotePeer:
    """Drives a peer running in another process through ``POST /_peer/<method>``."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=60)

    def call(self, method: str, **kwargs: Any) -> Any:
        """Call ``method`` on the peer with JSON-able keyword arguments; returns its JSON."""
        response = self._client.post(f"/_peer/{method}", json=kwargs)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


def run_peer_process(
    argv: list[str], factory: Callable[[argparse.Namespace], LoopbackPeer]
) -> None:
    """CLI entry shared by peers: ``--port N`` (0: any free port) and peer options."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--project", default="relais-test")
    parser.add_argument("--service-account", default=None, help="FCM: write SA JSON here")
    parser.add_argument("--no-decrypt", action="store_true", help="Web Push: skip decryption")
    args = parser.parse_args(argv)
    factory(args).serve_forever(args.port)


# --- the Web Push service -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Subscription:
    """What ``PushSubscription.toJSON()`` gives the application server."""

    id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class ReceivedPush:
    """One accepted and decrypted push, as the service worker would see it."""

    subscription_id: str
    ttl: int
    urgency: str | None
    topic: str | None
    payload: Any  # decoded JSON (None if not JSON or not decrypted)
    plaintext_length: int
    body_length: int
    vapid_claims: dict[str, Any]
    plaintext: bytes = field(default=b"", repr=False, metadata={"remote": False})


@dataclass(slots=True)
class _Sub:
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes
    behaviour: Behaviour
    application_server_key: str | None


_URGENCIES = {"very-low", "low", "normal", "high"}
_TOPIC_ALPHABET = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
MAX_BODY = 4096


class WebPushService(LoopbackPeer):
    """The push service plus the browsers' side of each subscription."""

    remote_methods = LoopbackPeer.remote_methods | {"create_subscription", "set_behaviour"}

    def __init__(self, host: str = "127.0.0.1", *, decrypt: bool = True) -> None:
        super().__init__(host)
        self.decrypt = decrypt
        self._subs: dict[str, _Sub] = {}
        # Verified (t, k) -> claims: application servers reuse one JWT per audience, and ES256
        # verification is the costliest check; exp/aud/sub are still checked on every request.
        self._verified: dict[tuple[str, str], dict[str, Any]] = {}

    def create_subscription(
        self,
        behaviour: str = "ok",
        application_server_key: str | None = None,
        **behaviour_options: Any,
    ) -> Subscription:
        """Subscribe a new "browser": P-256 key pair + 16-byte auth secret kept here.

        ``application_server_key`` restricts the subscription to that VAPID public key (as
        ``pushManager.subscribe({applicationServerKey})`` does): other keys get 403.
        """
        sub_id = secrets.token_urlsafe(12)
        key = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self._subs[sub_id] = _Sub(
            key, auth, Behaviour(behaviour, **behaviour_options), application_server_key
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return Subscription(sub_id, f"{self.base_url}/push/{sub_id}", b64url(public), b64url(auth))

    def set_behaviour(self, subscription_id: str, kind: str, **options: Any) -> None:
        """Change how the service answers pushes to this subscription (see ``Behaviour``)."""
        self._subs[subscription_id].behaviour = Behaviour(kind, **options)

    def drop_subscription(self, subscription_id: str) -> None:
        """Forget a subscription entirely (its endpoint then answers 404)."""
        self._subs.pop(subscription_id, None)

    async def handle(self, request: PeerRequest) -> Reply:
        """Accept (201), refuse or misbehave, per the subscription's behaviour."""
        prefix = "/push/"
        if not request.path.startswith(prefix):
            return 404, [], b""
        if request.method != "POST":
            return 405, [], b""
        sub_id = request.path[len(prefix) :]
        sub = self._subs.get(sub_id)
        if sub is None:
            return 404, [], b"no such subscription"
        behaviour = sub.behaviour
        if behaviour.kind == "gone" and behaviour.active():
            return 410, [], b"subscription expired"
        if behaviour.kind == "not_found" and behaviour.active():
            return 404, [], b"subscription not found"

        denied, claims = self._check_vapid(request.headers.get("authorization"), sub)
        if denied is not None:
            return denied
        ttl_header = request.headers.get("ttl", "")
        if not ttl_header.isdigit():
            return 400, [], b"TTL header missing or invalid"
        urgency = request.headers.get("urgency")
        if urgency is not None and urgency not in _URGENCIES:
            return 400, [], b"invalid Urgency"
        topic = request.headers.get("topic")
        if topic is not None and (len(topic) > 32 or not set(topic) <= _TOPIC_ALPHABET):
            return 400, [], b"invalid Topic"
        if request.headers.get("content-encoding") != "aes128gcm":
            return 400, [], b"Content-Encoding must be aes128gcm"
        if len(request.body) > MAX_BODY:
            return 413, [], b"payload too large"

        if behaviour.kind == "throttle" and behaviour.active():
            return 429, [(b"retry-after", (behaviour.retry_after or "30").encode())], b""
        if behaviour.kind == "error" and behaviour.active():
            extra = (
                [(b"retry-after", behaviour.retry_after.encode())] if behaviour.retry_after else []
            )
            return behaviour.status or 500, extra, b"push service error"
        if behaviour.kind == "slow" and behaviour.active():
            await asyncio.sleep(behaviour.delay)

        plaintext = b""
        payload: Any = None
        if self.decrypt:
            try:
                plaintext = http_ece.decrypt(
                    request.body,
                    private_key=sub.private_key,
                    auth_secret=sub.auth_secret,
                    version="aes128gcm",
                )
            except Exception as exc:  # what a browser would drop silently
                return 400, [], f"cannot decrypt: {exc}".encode()
            try:
                payload = json.loads(plaintext)
            except ValueError:
                payload = None
        self.received.append(
            ReceivedPush(
                subscription_id=sub_id,
                ttl=int(ttl_header),
                urgency=urgency,
                topic=topic,
                payload=payload,
                plaintext_length=len(plaintext),
                body_length=len(request.body),
                vapid_claims=claims,
                plaintext=plaintext,
            )
        )
        location = f"/message/{secrets.token_urlsafe(8)}".encode()
        return 201, [(b"location", location)], b""

    def _check_vapid(
        self, authorization: str | None, sub: _Sub
    ) -> tuple[Reply | None, dict[str, Any]]:
        """RFC 8292: ``vapid t=<JWT>, k=<key>``; 401 when absent, 403 when invalid."""
        if not authorization:
            return (401, [], b"VAPID authorization required"), {}
        scheme, _, params = authorization.partition(" ")
        parts: dict[str, str] = {}
        for item in params.split(","):
            name, _, value = item.strip().partition("=")
            parts[name.strip()] = value.strip()
        token, key = parts.get("t"), parts.get("k")
        if scheme.lower() != "vapid" or not token or not key:
            return (401, [], b"malformed VAPID authorization"), {}
        if sub.application_server_key is not None and key != sub.application_server_key:
            return (403, [], b"VAPID key does not match the subscription"), {}
        claims = self._verified.get((token, key))
        if claims is None:
            try:
                claims = _verify_es256(token, key)
            except (InvalidSignature, ValueError) as exc:
                return (403, [], f"invalid VAPID JWT: {exc}".encode()), {}
            self._verified[(token, key)] = claims
        now = time.time()
        exp = claims.get("exp")
        if claims.get("aud") != self.base_url:
            return (403, [], b"VAPID aud is not this push service's origin"), claims
        if not isinstance(exp, int) or not now < exp <= now + 24 * 3600 + 60:
            return (403, [], b"VAPID exp missing, past, or more than 24 h ahead"), claims
        sub_claim = claims.get("sub")
        if not isinstance(sub_claim, str) or not sub_claim.startswith(("mailto:", "https:")):
            return (403, [], b"VAPID sub must be a mailto: or https: URI"), claims
        return None, claims


def _verify_es256(token: str, key_b64: str) -> dict[str, Any]:
    """Verify an ES256 JWS against an uncompressed P-256 key; return its claims."""
    try:
        header_b64, claims_b64, sig_b64 = token.split(".")
        header = json.loads(b64url_decode(header_b64))
        public = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), b64url_decode(key_b64)
        )
        signature = b64url_decode(sig_b64)
    except Exception as exc:
        raise ValueError(f"undecodable JWT or key: {exc}") from exc
    if header.get("alg") != "ES256" or len(signature) != 64:
        raise ValueError("JWT must be ES256 with a 64-byte signature")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    claims = json.loads(b64url_decode(claims_b64))
    if not isinstance(claims, dict):
        raise ValueError("JWT claims are not an object")
    return claims


if __name__ == "__main__":
    run_peer_process(sys.argv[1:], lambda args: WebPushService(decrypt=not args.no_decrypt))
