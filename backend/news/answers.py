"""Rendered feed answers kept in memory, keyed by the question and the feed's version.

The feeds are read far more often than they change: an answer rendered once serves every
request that asks the same thing until the feed's version (`reading.version`, read from the
database on every request, so every server process sees a publication at once) moves.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar.types import (
    ASGIApp,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Receive,
    Scope,
    Send,
)

from backend.news import reading
from backend.news.reading import FeedFilter

#: Bounds of one process's memory for rendered answers (least recently used go first).
MAX_ENTRIES = 512
MAX_BYTES = 64 * 1024 * 1024


class RenderedAnswers:
    """A bounded LRU map: question → (version it was rendered at, encoded body)."""

    def __init__(self, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES) -> None:
        self._entries: OrderedDict[str, tuple[str, bytes]] = OrderedDict()
        self._bytes = 0
        self.max_entries, self.max_bytes = max_entries, max_bytes

    def get(self, question: str, version: str) -> bytes | None:
        """The body rendered for this question at this version, if kept."""
        entry = self._entries.get(question)
        if entry is None or entry[0] != version:
            return None
        self._entries.move_to_end(question)
        return entry[1]

    def put(self, question: str, version: str, body: bytes) -> None:
        """Keep a rendered body (replacing an older version's), evicting the least used."""
        old = self._entries.pop(question, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(body) > self.max_bytes // 4:
            return  # one huge answer must not flush everything else
        self._entries[question] = (version, body)
        self._bytes += len(body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, (_, dropped) = self._entries.popitem(last=False)
            self._bytes -= len(dropped)

    def __len__(self) -> int:
        return len(self._entries)


def _per_app(state: Any, name: str, factory: Callable[[], Any]) -> Any:
    """One object per app, kept in its state (tests build several apps with other settings)."""
    found = getattr(state, name, None)
    if found is None:
        found = factory()
        setattr(state, name, found)
    return found


def answers_of(state: Any) -> RenderedAnswers:
    """The app's rendered answers."""
    answers: RenderedAnswers = _per_app(state, "news_answers", RenderedAnswers)
    return answers


@dataclass(frozen=True, slots=True)
class Known:
    """A question this process already answered, recognised by its exact query string.

    `etag` builds the ETag from a version; `valid_until`: when the question itself changes
    (the agenda's default window moves at midnight), None if never.
    """

    question: str
    filters: FeedFilter
    kind: str
    etag: Callable[[str], str]
    valid_until: datetime | None = None


class KnownQuestions:
    """Query strings (per route) → what they ask, learnt by the handlers as they answer."""

    def __init__(self, max_entries: int = 4 * MAX_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[str, bytes], Known] = OrderedDict()
        self.max_entries = max_entries

    def learn(self, route: str, query: bytes, known: Known) -> None:
        """Remember what this query string asks (only for answers shared by every caller)."""
        self._entries[(route, query)] = known
        self._entries.move_to_end((route, query))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def recall(self, route: str, query: bytes) -> Known | None:
        """What this query string asks, if this process answered it before and it still holds."""
        known = self._entries.get((route, query))
        if known is not None and known.valid_until and datetime.now(UTC) >= known.valid_until:
            return None
        return known


def questions_of(state: Any) -> KnownQuestions:
    """The app's known questions."""
    known: KnownQuestions = _per_app(state, "news_questions", KnownQuestions)
    return known


_PERSONAL = (b"authorization", b"x-device-token")


class AnsweredBefore:
    """Route middleware: a question already answered is answered again before the handler runs.

    The feeds' answers are the same for every caller who sends no credentials, so when this
    process already validated and answered the exact query string, it only reads the feed's
    version (one primary-key lookup) and answers 304 or the kept body. Anything else (first
    time, credentials, a version not rendered yet, any error) goes to the handler, which
    validates, renders, keeps the answer and learns the question.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = scope.get("route_handler")
        route = getattr(handler, "operation_id", None)
        headers = dict(scope.get("headers", ()))
        known = None
        if route and not any(name in headers for name in _PERSONAL):
            known = questions_of(scope["app"].state).recall(route, scope.get("query_string", b""))
        if known is None:
            await self.app(scope, receive, send)
            return
        try:
            version = await reading.version(known.filters, known.kind)
        except Exception:  # the handler meets the same error and answers it properly
            await self.app(scope, receive, send)
            return
        etag = known.etag(version)
        out = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
        if headers.get(b"if-none-match", b"").decode("latin-1") == etag:
            await _answer(send, 304, out, b"")
            return
        body = answers_of(scope["app"].state).get(known.question, version)
        if body is None:
            await self.app(scope, receive, send)
            return
        out += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await _answer(send, 200, out, body)


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: HTTPResponseStartEvent = {
        "type": "http.response.start",
        "status": status,
        "headers": headers,
    }
    await send(start)
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)
