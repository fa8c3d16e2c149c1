"""What every push transport speaks: the message, the targets, the outcomes.

The delivery worker builds ``(PushMessage, target)`` pairs from outbox rows, hands a batch to a
transport and gets back one ``SendResult`` per pair, in the same order. The outcome alone tells
the worker what to do next; a transport never deletes anything itself.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import re
import time
import unicodedata
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypeVar

__all__ = [
    "FcmTarget",
    "Outcome",
    "PushMessage",
    "SendResult",
    "Target",
    "Transport",
    "TransportStats",
    "Urgency",
    "WebPushTarget",
    "bounded_gather",
    "collapse_id",
    "fit_text",
    "parse_retry_after",
    "web_push_topic",
]


class Urgency(StrEnum):
    """RFC 8030 urgency; also drives FCM android priority and APNs apns-priority."""

    VERY_LOW = "very-low"
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class PushMessage:
    """One notification to show on one device.

    ``collapse_key`` becomes FCM android ``collapse_key``, APNs ``apns-collapse-id`` (≤ 64 B)
    and the Web Push ``Topic`` (≤ 32 URL-safe base64 chars); transports derive a compliant
    value when the key does not fit. ``ttl_seconds`` is always explicit: 0 means "now or never".
    """

    delivery_id: int
    title: str
    body: str
    data: Mapping[str, str]
    collapse_key: str | None
    urgency: Urgency
    ttl_seconds: int


class Outcome(StrEnum):
    """What happened to one message, i.e. what the worker should do next.

    - SENT: accepted by the push service.
    - RETRY: transient (5xx, timeout, connection error); retry with jittered backoff.
    - THROTTLED: 429; ``retry_after`` seconds before this transport is used again.
    - DEAD: the credential is gone (FCM UNREGISTERED, Web Push 404/410); the ONLY outcome on
      which the worker deletes the credential.
    - FAILED: permanent for this message (bad request, too big, auth mismatch); not retried,
      credential kept.
    """

    SENT = "sent"
    RETRY = "retry"
    THROTTLED = "throttled"
    DEAD = "dead"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SendResult:
    """Outcome of one ``(message, target)`` pair, echoing the message's ``delivery_id``."""

    delivery_id: int
    outcome: Outcome
    reason: str
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class FcmTarget:
    """An FCM registration token (or, with ``fid=True``, a Firebase installation ID)."""

    token: str
    fid: bool = False


@dataclass(frozen=True, slots=True)
class WebPushTarget:
    """A browser ``PushSubscription.toJSON()``: endpoint plus base64url keys."""

    endpoint: str
    p256dh: str
    auth: str


Target = FcmTarget | WebPushTarget


class Transport(Protocol):
    """A push channel. ``send`` never raises for per-message problems: it returns outcomes."""

    name: str

    async def send(self, batch: Sequence[tuple[PushMessage, Target]]) -> list[SendResult]:
        """Send every pair; return one result per pair, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections and background resources."""
        ...


# --- helpers shared by the transports -------------------------------------------------------

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(slots=True)
class TransportStats:
    """Counters of one transport instance, for logs, metrics and tests (one event loop)."""

    messages: int = 0
    chunks: int = 0
    largest_chunk: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    outcomes: Counter[Outcome] = field(default_factory=Counter)

    def count(self, results: Sequence[SendResult]) -> None:
        """Add a batch's outcomes."""
        self.outcomes.update(r.outcome for r in results)


async def bounded_gather(
    items: Sequence[_T],
    func: Callable[[_T], Awaitable[_R]],
    semaphore: asyncio.Semaphore,
    chunk_size: int,
    stats: TransportStats,
) -> list[_R]:
    """Run ``func`` over ``items`` with at most ``semaphore``'s value in flight, keeping order.

    Items are processed in chunks of ``chunk_size`` so that a huge batch does not create one
    coroutine per item up front; inside a chunk the semaphore (shared by every concurrent batch
    of the transport) keeps the pipeline full without waiting for the slowest call of a group.
    """

    async def guarded(item: _T) -> _R:
        async with semaphore:
            stats.in_flight += 1
            stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            try:
                return await func(item)
            finally:
                stats.in_flight -= 1

    results: list[_R] = []
    for start in range(0, len(items), chunk_size):
        chunk = items[start : start + chunk_size]
        stats.chunks += 1
        stats.largest_chunk = max(stats.largest_chunk, len(chunk))
        results.extend(await asyncio.gather(*(guarded(item) for item in chunk)))
    stats.messages += len(items)
    return results


def parse_retry_after(value: str | None, default: float, now: float | None = None) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Missing or unparsable values give ``default``; dates in the past give 0.
    """
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return default
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive parse means "-0000"
        return default
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


_TOPIC_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def web_push_topic(collapse_key: str) -> str:
    """A Web Push ``Topic`` for ``collapse_key``: as is when it is ≤ 32 URL-safe base64
    characters, else the first 32 characters of base64url(SHA-256(key)) (192 bits: stable, so an
    Update of a CAP alert still replaces the original, and collisions are not a concern).
    """
    if _TOPIC_RE.fullmatch(collapse_key):
        return collapse_key
    digest = hashlib.sha256(collapse_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:32]


def collapse_id(collapse_key: str, max_bytes: int = 64) -> str:
    """An APNs ``apns-collapse-id`` / FCM ``collapse_key``: as is when printable ASCII within
    ``max_bytes``, else the SHA-256 hex digest (64 chars), cut to ``max_bytes``.
    """
    if collapse_key.isascii() and collapse_key.isprintable() and len(collapse_key) <= max_bytes:
        return collapse_key
    return hashlib.sha256(collapse_key.encode()).hexdigest()[:max_bytes]


ELLIPSIS = "…"
_JOINERS = {"\u200d", "\ufe0e", "\ufe0f"}  # ZWJ and variation selectors bind to the previous char


def fit_text(text: str, render: Callable[[str], bytes], limit: int) -> str | None:
    """Longest ``text`` prefix (plus an ellipsis) whose ``render`` is at most ``limit`` bytes.

    ``render`` turns a candidate string into the final bytes (e.g. the whole JSON payload), so
    JSON escaping and multi-byte UTF-8 are accounted for exactly. Cutting a Python ``str`` always
    lands on a UTF-8 character boundary; we also step back over combining marks and joiners so
    an accent or an emoji sequence is not split. Returns ``text`` unchanged when it fits, and
    ``None`` when even the bare ellipsis does not fit.
    """
    if len(render(text)) <= limit:
        return text
    if len(render(ELLIPSIS)) > limit:
        return None
    lo, hi = 0, len(text) - 1  # invariant: prefix of length lo fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(render(text[:mid] + ELLIPSIS)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    cut = lo
    while cut > 0 and (
        unicodedata.combining(text[cut]) or text[cut] in _JOINERS or text[cut - 1] == "\u200d"
    ):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS
