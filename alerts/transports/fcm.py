"""FCM transport (HTTP v1) through firebase-admin's async path, with bounded concurrency.

What we take from firebase-admin: message building and encoding, the v1 URL and headers, and
the parsing of error bodies into typed exceptions (``UnregisteredError``...), all through the
public ``messaging.send_each_async``. What we replace, on our own named App only, is its HTTP
client (``_MessagingService._async_client``, see ``_FcmHttpClient``):

- ``send_each_async`` gathers up to 500 requests at once and ``send_each`` starts up to 500
  threads; we send one message per call under a semaphore shared by every batch of the
  transport, so at most ``max_concurrency`` requests are ever in flight. Over a jittery round
  trip this pipeline beats ``send_each_async`` in chunks of ``max_concurrency`` (each chunk
  waits for its slowest request): ~1,370 vs ~1,060 msg/s in ``tests/bench/bench_transports``.
- its httpx client retries 500/503 up to 4 times with backoff, refreshes OAuth2 tokens with a
  blocking ``requests`` call on the event loop, and tops out near 300 requests/s on loopback.
  Ours never retries (the outbox worker owns retries: jittered backoff, attempt counts, one
  throttle for the whole transport, no concurrency slot held while sleeping), refreshes the
  token in a worker thread, and moves bytes with aiohttp over keep-alive connections.
"""

from __future__ import annotations

import asyncio
import json as _json
import os
import platform
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, cast

import aiohttp
import firebase_admin
import google.auth.exceptions
import httpx
import requests
from firebase_admin import credentials as fb_credentials
from firebase_admin import exceptions as fb_exceptions
from firebase_admin import messaging
from google.auth.credentials import Credentials, TokenState
from google.auth.transport.requests import Request as GoogleAuthRequest

from .base import (
    FcmTarget,
    Outcome,
    PushMessage,
    SendResult,
    Target,
    TransportStats,
    Urgency,
    bounded_gather,
    collapse_id,
    parse_retry_after,
)

__all__ = ["DEFAULT_FCM_ENDPOINT", "FcmTransport", "build_fcm_message", "fcm_send_url"]

_FB_VERSION = firebase_admin.__version__

DEFAULT_FCM_ENDPOINT = "https://fcm.googleapis.com"
_SEND_PATH = "/v1/projects/{0}/messages:send"
MAX_BATCH = 500  # FCM's own cap per send_each call; we split larger batches the same way


def fcm_send_url(endpoint_url: str | None, project_id: str) -> str:
    """The v1 ``messages:send`` URL for ``project_id``.

    ``endpoint_url`` is an origin (``http://127.0.0.1:8081``: the path is appended), a full URL
    ending in ``:send``, or a template with ``{0}`` / ``{project_id}``.
    """
    url = (endpoint_url or DEFAULT_FCM_ENDPOINT).rstrip("/")
    if "{" in url:
        return url.format(project_id, project_id=project_id)
    if url.endswith(":send"):
        return url
    return url + _SEND_PATH.format(project_id)


def build_fcm_message(message: PushMessage, target: FcmTarget) -> messaging.Message:
    """The firebase-admin ``Message`` for one pair.

    Android: ``priority`` high only for HIGH urgency, ``ttl``, ``collapse_key``. APNs:
    ``apns-priority`` 10 (immediate) for HIGH else 5 (power-considerate), ``apns-expiration``
    = now + TTL (0 = deliver once, never store, matching a TTL of 0), ``apns-push-type`` alert
    and ``apns-collapse-id`` (≤ 64 B). The same title/body/data go to every platform.
    """
    ttl = max(0, message.ttl_seconds)
    high = message.urgency is Urgency.HIGH
    apns_headers = {
        "apns-priority": "10" if high else "5",
        "apns-push-type": "alert",
        "apns-expiration": str(int(time.time()) + ttl) if ttl else "0",
    }
    android_collapse: str | None = None
    if message.collapse_key:
        android_collapse = collapse_id(message.collapse_key)
        apns_headers["apns-collapse-id"] = android_collapse
    fcm_message = messaging.Message(
        notification=messaging.Notification(title=message.title, body=message.body),
        data=dict(message.data),
        android=messaging.AndroidConfig(
            priority="high" if high else "normal",
            ttl=ttl,
            collapse_key=android_collapse,
        ),
        apns=messaging.APNSConfig(headers=apns_headers),
        fid=target.token if target.fid else None,
    )
    if not target.fid:
        # firebase-admin 7.7 warns on every ``Message(token=...)`` (FIDs are the future), but
        # the apps hand us registration tokens today and FCM v1 still takes them in ``token``;
        # setting the attribute after construction sends the same JSON without the warning.
        fcm_message.token = target.token
    return fcm_message


class _GoogleAuth:
    """Bearer tokens from a google-auth credential, refreshed off the event loop.

    firebase-admin's ``GoogleAuthCredentialFlow`` refreshes synchronously (``requests``) inside
    the event loop; here a refresh runs in a thread under an asyncio lock, so concurrent
    requests wait for one refresh instead of blocking the loop or stampeding the token endpoint.
    """

    FAILURE_HOLD = 5.0  # seconds during which a failed refresh is reported without retrying

    def __init__(self, credential: Credentials) -> None:
        self.credential = credential
        self._lock: asyncio.Lock | None = None
        self._session = requests.Session()
        self._request = GoogleAuthRequest(self._session)
        self._failure: tuple[float, Exception] | None = None

    async def token(self, rejected: str | None = None) -> str:
        """A valid access token; refreshed when missing/expiring or equal to ``rejected``."""
        cred = self.credential
        if rejected is None and cred.token_state is TokenState.FRESH:
            return str(cred.token)
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            stale = cred.token_state is not TokenState.FRESH or cred.token == rejected
            if stale:
                if self._failure and time.monotonic() - self._failure[0] < self.FAILURE_HOLD:
                    raise self._failure[1]  # don't hit the token endpoint once per message
                try:
                    await asyncio.to_thread(cred.refresh, self._request)
                except Exception as exc:
                    self._failure = (time.monotonic(), exc)
                    raise
                self._failure = None
            return str(cred.token)

    def close(self) -> None:
        """Close the token endpoint session."""
        self._session.close()


class _FcmHttpClient:
    """Stands in for firebase-admin's ``HttpxAsyncClient`` on our App's messaging service.

    The service only calls ``await request("post", url, headers=..., json=...)`` and expects a
    ``raise_for_status()``-ed ``httpx.Response`` or an ``httpx.HTTPError``, which it parses into
    ``UnregisteredError`` & co. We honour exactly that contract but move the bytes with aiohttp:
    measured on loopback, httpx's async client tops out around 300 requests/s (encode/httpx#3215)
    where aiohttp does several thousand. Cost: HTTP/1.1 only (FCM v1 serves it; the keep-alive
    pool holds up to ``max_connections`` connections instead of one HTTP/2 connection).
    """

    def __init__(self, credential: Credentials, timeout: float, max_connections: int) -> None:
        self.auth = _GoogleAuth(credential)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._api_client = f"gl-python/{platform.python_version()} fire-admin/{_FB_VERSION}"

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # lazily: binds to the running loop
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, keepalive_timeout=60
            )
            # No trust_env: aiohttp would then look up netrc and proxies in a thread on every
            # request (and a netrc entry would clash with our Authorization header).
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        **_: Any,
    ) -> httpx.Response:
        """POST ``json``; return an ``httpx.Response`` or raise ``httpx.HTTPError``."""
        body = _json.dumps(json, separators=(",", ":")).encode()
        request_headers = {
            **(headers or {}),
            "content-type": "application/json; charset=UTF-8",
            "x-goog-api-client": self._api_client,
        }
        rejected: str | None = None
        while True:
            token = await self.auth.token(rejected)
            request_headers["authorization"] = f"Bearer {token}"
            try:
                async with self._get_session().request(
                    method, url, data=body, headers=request_headers
                ) as resp:
                    content = await resp.read()
            # Translated to the httpx errors firebase-admin maps (DeadlineExceeded, Unavailable,
            # Unknown): all three end up as RETRY.
            except TimeoutError as exc:
                message = f"timed out after {self._timeout.total}s"
                raise httpx.ReadTimeout(message, request=self._httpx_request(method, url)) from exc
            except aiohttp.ClientConnectorError as exc:
                failed = self._httpx_request(method, url)
                raise httpx.ConnectError(str(exc), request=failed) from exc
            except aiohttp.ClientError as exc:
                failed = self._httpx_request(method, url)
                raise httpx.NetworkError(repr(exc), request=failed) from exc
            if resp.status == 401 and rejected is None:  # revoked or expired early: refresh once
                rejected = token
                continue
            if 200 <= resp.status < 300:
                # Hot path: firebase-admin only reads ``.json()``; skip httpx's (slow) URL and
                # header parsing.
                return httpx.Response(resp.status, content=content)
            response = httpx.Response(
                resp.status,
                headers=list(resp.headers.items()),
                content=content,
                request=self._httpx_request(method, url),
            )
            return response.raise_for_status()

    def _httpx_request(self, method: str, url: str) -> httpx.Request:
        """An ``httpx.Request`` for error objects (URL parsed once per distinct URL)."""
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = httpx.URL(url)
        return httpx.Request(method.upper(), parsed)

    async def aclose(self) -> None:
        """Close connections and the token session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.auth.close()


# firebase-admin exception type -> outcome. Order matters: subclasses first.
_FAILED_TYPES: tuple[type[Exception], ...] = (
    messaging.SenderIdMismatchError,
    messaging.ThirdPartyAuthError,
    fb_exceptions.InvalidArgumentError,
    fb_exceptions.PermissionDeniedError,
    fb_exceptions.FailedPreconditionError,
    fb_exceptions.OutOfRangeError,
    fb_exceptions.NotFoundError,  # 404 without UNREGISTERED (e.g. wrong project): keep token
)
_RETRY_TYPES: tuple[type[Exception], ...] = (
    fb_exceptions.UnavailableError,
    fb_exceptions.InternalError,
    fb_exceptions.DeadlineExceededError,
    fb_exceptions.UnauthenticatedError,
    fb_exceptions.AbortedError,
    fb_exceptions.CancelledError,
    fb_exceptions.DataLossError,
)


class FcmTransport:
    """Sends ``(PushMessage, FcmTarget)`` pairs through FCM HTTP v1.

    Builds its own named firebase-admin App (several transports or tests can coexist), points
    that App's messaging service at ``endpoint_url`` and gives it our HTTP client.
    """

    name = "fcm"

    def __init__(
        self,
        project_id: str,
        credentials: str | os.PathLike[str] | fb_credentials.Base,
        endpoint_url: str | None = None,
        max_concurrency: int = 50,
        timeout: float = 10.0,
        *,
        default_retry_after: float = 60.0,
    ) -> None:
        """``credentials``: path of a service-account JSON (its ``token_uri`` decides where
        OAuth2 tokens come from) or a firebase-admin credential object. ``endpoint_url``:
        ``RELAIS_FCM_ENDPOINT``, default Google's. ``default_retry_after``: seconds for a 429
        without ``Retry-After`` (FCM asks for at least a minute of backoff on quota errors).
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1")
        credential = (
            credentials
            if isinstance(credentials, fb_credentials.Base)
            else fb_credentials.Certificate(os.fspath(credentials))
        )
        self._app: firebase_admin.App | None = firebase_admin.initialize_app(
            credential,
            options={"projectId": project_id, "httpTimeout": timeout},
            name=f"relais-fcm-{uuid.uuid4().hex}",
        )
        service = messaging._get_messaging_service(self._app)
        # Per App instance, not by patching ``_MessagingService.FCM_URL`` for the process:
        # another App (or test) keeps Google's URL. ``_fcm_url`` is set once in __init__ and
        # read by every send; there is no public emulator hook for messaging.
        if not hasattr(service, "_fcm_url") or not hasattr(service, "_async_client"):
            raise RuntimeError("unsupported firebase-admin version: messaging internals moved")
        service._fcm_url = fcm_send_url(endpoint_url, project_id)
        self._original_client = service._async_client
        self._client = _FcmHttpClient(credential.get_credential(), timeout, max_concurrency)
        service._async_client = self._client
        self._service = service
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.stats = TransportStats()
        self._default_retry_after = default_retry_after
        self.endpoint = service._fcm_url

    async def send(self, batch: Sequence[tuple[PushMessage, Target]]) -> list[SendResult]:
        """Send every pair; one ``SendResult`` per pair, in order. Batches above 500 are split
        into ≤ 500-message chunks; in-flight requests never exceed ``max_concurrency``."""
        results = await bounded_gather(
            batch, self._send_pair, self._semaphore, MAX_BATCH, self.stats
        )
        self.stats.count(results)
        return results

    async def _send_pair(self, pair: tuple[PushMessage, Target]) -> SendResult:
        message, target = pair
        did = message.delivery_id
        if not isinstance(target, FcmTarget):
            return SendResult(did, Outcome.FAILED, f"not an FCM target: {type(target)}")
        try:
            fcm_message = build_fcm_message(message, target)
            # One message per call: the public async API, without its 500-wide gather.
            response = await messaging.send_each_async([fcm_message], app=self._app)
        except ValueError as exc:  # encoder validation: this message can never be sent
            return SendResult(did, Outcome.FAILED, f"invalid message: {exc}")
        except fb_exceptions.FirebaseError as exc:  # e.g. OAuth2 refresh failed (UnknownError)
            return self._outcome(did, exc)
        except Exception as exc:
            return SendResult(did, Outcome.RETRY, f"unexpected: {exc!r}")
        result = response.responses[0]
        if result.success:
            return SendResult(did, Outcome.SENT, str(result.message_id))
        return self._outcome(did, cast(fb_exceptions.FirebaseError, result.exception))

    def _outcome(self, did: int, exc: fb_exceptions.FirebaseError) -> SendResult:
        reason = f"{type(exc).__name__}: {exc}"
        http_response = exc.http_response
        status = http_response.status_code if http_response is not None else None
        if isinstance(exc, messaging.UnregisteredError):
            return SendResult(did, Outcome.DEAD, reason)
        if isinstance(exc, messaging.QuotaExceededError | fb_exceptions.ResourceExhaustedError):
            header = http_response.headers.get("Retry-After") if http_response is not None else None
            delay = parse_retry_after(header, self._default_retry_after)
            return SendResult(did, Outcome.THROTTLED, reason, delay)
        if isinstance(exc, _FAILED_TYPES):
            return SendResult(did, Outcome.FAILED, reason)
        if isinstance(exc, _RETRY_TYPES):
            return SendResult(did, Outcome.RETRY, reason)
        # UnknownError & co: decide on what we know of the exchange.
        if status is not None and 400 <= status < 500 and status not in (401, 408):
            return SendResult(did, Outcome.FAILED, reason)
        cause = exc.cause
        if isinstance(cause, google.auth.exceptions.RefreshError):
            # Bad or revoked service account: an operator must act, but alerts must not be
            # dropped meanwhile, so the worker keeps retrying with backoff.
            return SendResult(did, Outcome.RETRY, f"oauth2: {cause}")
        return SendResult(did, Outcome.RETRY, reason)

    async def aclose(self) -> None:
        """Close HTTP connections and delete the firebase-admin App (idempotent)."""
        if self._app is None:
            return
        await self._client.aclose()
        await self._original_client.aclose()
        # ``delete_app`` closes the service with ``asyncio.run(client.aclose())``, which cannot
        # run inside our loop: hand it the (already closed) original client, in a thread.
        self._service._async_client = self._original_client
        app, self._app = self._app, None
        await asyncio.to_thread(firebase_admin.delete_app, app)
