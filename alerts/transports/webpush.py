"""Web Push transport (RFC 8030 delivery, RFC 8291 aes128gcm, RFC 8292 VAPID) over pywebpush.

pywebpush 2.5 has an async path: ``WebPusher(..., aiohttp_session=...).send_async`` encrypts
with http_ece and POSTs through the given aiohttp session. We use it with one long-lived session
(keep-alive pools per push service origin) and do the rest ourselves: the VAPID header comes
from ``VapidSigner`` (cached per audience, never a shared mutable claims dict), TTL / Urgency /
Topic are always explicit, and the plaintext is cut to fit the 4,096-byte record.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec
from pywebpush import WebPusher, WebPushException

from .base import (
    Outcome,
    PushMessage,
    SendResult,
    Target,
    TransportStats,
    WebPushTarget,
    bounded_gather,
    fit_text,
    parse_retry_after,
    web_push_topic,
)
from .vapid import VapidSigner

__all__ = ["MAX_PLAINTEXT", "PayloadTooLargeError", "WebPushTransport", "encode_payload"]

logger = logging.getLogger(__name__)

MAX_PLAINTEXT = 3993
"""RFC 8291 aes128gcm, one record: 86 B header + plaintext + 1 B padding delimiter + 16 B tag
must stay within the 4,096 B every push service accepts, so 3,993 B of plaintext at most."""

_CHUNK = 500  # coroutines created per step of a big batch; concurrency is the semaphore's job


class PayloadTooLargeError(ValueError):
    """Even with an empty body and a shortened title, the payload exceeds the limit."""


def _dumps(obj: Mapping[str, object]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


def encode_payload(message: PushMessage, limit: int = MAX_PLAINTEXT) -> bytes:
    """Compact JSON ``{"title", "body", "data"[, "tag"]}`` of at most ``limit`` bytes.

    The service worker shows ``title``/``body``, uses ``tag`` (the collapse key) to replace an
    older notification of the same alert, and reads ``data`` (kind, id, url...). When too big,
    the body is cut on a character boundary with an ellipsis; if that is not enough the title
    is cut too; ``data`` is never cut (the app relies on it), so oversize data raises.
    """
    doc: dict[str, object] = {"title": message.title, "body": message.body}
    doc["data"] = dict(message.data)
    if message.collapse_key:
        doc["tag"] = message.collapse_key
    raw = _dumps(doc)
    if len(raw) <= limit:
        return raw

    def with_body(body: str) -> bytes:
        return _dumps({**doc, "body": body})

    body = fit_text(message.body, with_body, limit)
    if body is not None:
        return with_body(body)

    def with_title(title: str) -> bytes:
        return _dumps({**doc, "title": title, "body": ""})

    title = fit_text(message.title, with_title, limit)
    if title is None:
        raise PayloadTooLargeError(f"data alone exceeds {limit} bytes")
    return with_title(title)


class WebPushTransport:
    """Sends ``(PushMessage, WebPushTarget)`` pairs to browsers' push services.

    At most ``max_concurrency`` pushes are in flight across all concurrent ``send`` calls of
    this instance (encryption included); HTTP connections are kept alive per push service.
    """

    name = "webpush"

    def __init__(
        self,
        vapid_private_key: str | bytes | Path | ec.EllipticCurvePrivateKey,
        vapid_subject: str,
        max_concurrency: int = 100,
        timeout: float = 10.0,
        *,
        default_retry_after: float = 60.0,
        signer: VapidSigner | None = None,
    ) -> None:
        """``vapid_private_key``: PEM, base64url raw/DER, a ``Path`` to a PEM file or a key
        object; ``vapid_subject``: ``mailto:`` or ``https:`` contact for push services;
        ``timeout``: whole-request seconds; ``default_retry_after``: for 429 without a usable
        ``Retry-After``. ``signer`` lets tests inject a ``VapidSigner`` with a fake clock.
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        self._signer = signer or VapidSigner(vapid_private_key, vapid_subject)
        self._max_concurrency = max_concurrency
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.stats = TransportStats()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._default_retry_after = default_retry_after
        self._session: aiohttp.ClientSession | None = None

    def vapid_public_key_b64url(self) -> str:
        """Application server key for the PWA (uncompressed P-256 point, base64url, no pad)."""
        return self._signer.public_key_b64url

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp binds the session to the running loop.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_concurrency,
                limit_per_host=0,
                keepalive_timeout=60,
                ttl_dns_cache=300,
            )
            # No trust_env: aiohttp would then look up netrc and proxies in a thread on every
            # request (and a netrc entry would clash with our Authorization header).
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def send(self, batch: Sequence[tuple[PushMessage, Target]]) -> list[SendResult]:
        """Encrypt and POST every pair; one ``SendResult`` per pair, in order."""
        results = await bounded_gather(batch, self._send_pair, self._semaphore, _CHUNK, self.stats)
        self.stats.count(results)
        return results

    async def _send_pair(self, pair: tuple[PushMessage, Target]) -> SendResult:
        message, target = pair
        try:
            return await self._send_one(message, target)
        except Exception as exc:  # a bug must not sink the whole batch; worker retries later
            logger.exception("web push to delivery %s failed unexpectedly", message.delivery_id)
            return SendResult(message.delivery_id, Outcome.RETRY, f"unexpected: {exc!r}")

    async def _send_one(self, message: PushMessage, target: Target) -> SendResult:
        did = message.delivery_id
        if not isinstance(target, WebPushTarget):
            return SendResult(did, Outcome.FAILED, f"not a web push target: {type(target)}")
        try:
            payload = encode_payload(message)
            authorization = self._signer.authorization(target.endpoint)
        except ValueError as exc:  # PayloadTooLargeError, bad endpoint URL
            return SendResult(did, Outcome.FAILED, str(exc))
        headers = {"Authorization": authorization, "Urgency": message.urgency.value}
        if message.collapse_key:
            headers["Topic"] = web_push_topic(message.collapse_key)
        subscription = {
            "endpoint": target.endpoint,
            "keys": {"p256dh": target.p256dh, "auth": target.auth},
        }
        try:
            pusher = WebPusher(subscription, aiohttp_session=self._get_session())
            response = await pusher.send_async(
                payload,
                headers,
                ttl=max(0, message.ttl_seconds),
                content_encoding="aes128gcm",
                timeout=self._timeout,
            )
        except TimeoutError:
            return SendResult(did, Outcome.RETRY, "timeout")
        except aiohttp.ClientError as exc:
            return SendResult(did, Outcome.RETRY, f"connection error: {exc!r}")
        except (WebPushException, ValueError) as exc:
            # Undecodable p256dh/auth or a point not on the curve: nothing to send, ever.
            return SendResult(did, Outcome.FAILED, f"invalid subscription keys: {exc}")
        if isinstance(response, str):  # only with curl=True, never here
            return SendResult(did, Outcome.FAILED, "unexpected curl output")
        return self._outcome(did, response.status, response.headers.get("Retry-After"))

    def _outcome(self, did: int, status: int, retry_after: str | None) -> SendResult:
        if 200 <= status < 300:
            return SendResult(did, Outcome.SENT, str(status))
        if status in (404, 410):
            return SendResult(did, Outcome.DEAD, f"{status} subscription gone")
        if status == 429:
            delay = parse_retry_after(retry_after, self._default_retry_after)
            return SendResult(did, Outcome.THROTTLED, "429 too many requests", delay)
        if status >= 500 or status == 408:
            hint = parse_retry_after(retry_after, 0.0) if retry_after else None
            return SendResult(did, Outcome.RETRY, f"{status} push service error", hint)
        # 400 bad headers, 401/403 VAPID rejected, 413 too big, other 4xx/3xx: permanent.
        return SendResult(did, Outcome.FAILED, f"{status} rejected by push service")

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
