"""What residents read: the news feed, the agenda, one item; versions for conditional GET."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from piccolo.columns.combination import WhereRaw
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from backend.exceptions import NotFound
from backend.news.revision import version as version  # the feeds' validator, re-exported
from backend.news.tables import NewsImage, NewsItem, NewsTopic, NewsZone
from geo import haversine_m

#: What an event adds to an item, as the app shows it (columns and JSON fields alike).
EVENT_FIELDS = (
    "starts_at",
    "ends_at",
    "all_day",
    "place_name",
    "address",
    "lat",
    "lon",
    "organiser",
    "price",
    "free",
    "accessibility",
    "registration_url",
    "event_status",
)
# What the residents' app shows of an item (mobile_api's NewsOut): feeds read only these
# columns, not the Markdown source nor the bookkeeping. Atom and iCalendar read whole rows.
APP_COLUMNS = (
    "id",
    "kind",
    "title",
    "summary",
    "body_html",
    "translations",
    "topics",
    "pinned",
    "published_at",
    "updated_at",
    *EVENT_FIELDS,
)
_JSON_COLUMNS = ("translations", "topics")
_decode_json = msgspec.json.Decoder()


@asynccontextmanager
async def one_connection() -> AsyncIterator[None]:
    """The reads of one answer on one connection, where that saves work.

    SQLite: Piccolo opens a connection (and a thread) per query outside a transaction, so the
    reads share one read transaction (deferred: no write lock; WAL lets writers go on).
    PostgreSQL: nothing (each query borrows a pooled connection; BEGIN/COMMIT would cost
    two more round trips than they save).
    """
    engine = NewsItem._meta.db
    if isinstance(engine, SQLiteEngine) and engine.current_transaction.get() is None:
        async with engine.transaction(transaction_type=TransactionType.deferred):
            yield
    else:
        yield


@dataclass(frozen=True)
class FeedFilter:
    """What a feed shows: a commune's items, optionally only some topics or zones."""

    commune_id: UUID | None = None
    topics: tuple[str, ...] = ()
    zone_ids: tuple[UUID, ...] = ()


def _targeted(filters: FeedFilter) -> Any:
    """Items tagged with one of the topics or zones, as a sub-select (None: no such filter).

    Evaluated by the database: no list of thousands of ids travels back and forth.
    """
    where: Any = None
    if filters.topics:
        where = NewsItem.id.is_in(
            NewsTopic.select(NewsTopic.item).where(NewsTopic.topic.is_in(list(filters.topics)))
        )
    if filters.zone_ids:
        in_zones = NewsItem.id.is_in(
            NewsZone.select(NewsZone.item).where(NewsZone.zone.is_in(list(filters.zone_ids)))
        )
        where = in_zones if where is None else (where | in_zones)
    return where


def _published(filters: FeedFilter, kind: str) -> Any:
    where: Any = (NewsItem.state == "published") & (NewsItem.kind == kind)
    if filters.commune_id is not None:
        where = where & (NewsItem.commune == filters.commune_id)
    targeted = _targeted(filters)
    if targeted is not None:
        where = where & targeted
    return where


_COLUMNS: dict[tuple[str, ...], list[Any]] = {}


def _select(columns: Sequence[str] | None) -> Any:
    """A select of these columns (all when None); JSON columns decoded by `_decoded`."""
    if columns is None:
        return NewsItem.select()
    key = tuple(columns)
    if key not in _COLUMNS:
        _COLUMNS[key] = [NewsItem._meta.get_column_by_name(c) for c in key]
    return NewsItem.select(*_COLUMNS[key])


async def _decoded(query: Any) -> list[dict[str, Any]]:
    """Run a select; JSON columns decoded with msgspec (Piccolo's json.loads costs more)."""
    rows: list[dict[str, Any]] = await query.output(load_json=False)
    for row in rows:
        for name in _JSON_COLUMNS:
            value = row.get(name)
            if isinstance(value, (str, bytes)):
                row[name] = _decode_json.decode(value)
    return rows


# The first page reads the pinned items and the newest ones in one query when at most this
# many items are pinned (a second query reads them all otherwise).
_PINNED_IN_ONE_QUERY = 10
_PINNED = NewsItem.pinned == True  # noqa: E712
_NOT_PINNED = NewsItem.pinned == False  # noqa: E712


def _newest_first(query: Any) -> Any:
    return query.order_by(NewsItem.published_at, ascending=False).order_by(
        NewsItem.id, ascending=False
    )


async def news_feed(
    filters: FeedFilter,
    before: tuple[datetime, str] | None,
    limit: int,
    columns: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Published news, pinned first on the first page, then newest first, cursor-paginated.

    `columns`: only these (they must include id, pinned and published_at); None: whole rows.
    """
    where = _published(filters, "news")
    if before is None:
        # Pinned items sort first (true > false); the page follows them in the same read.
        wanted = limit + 1 + _PINNED_IN_ONE_QUERY
        pinned_first = _select(columns).where(where).order_by(NewsItem.pinned, ascending=False)
        first = await _decoded(_newest_first(pinned_first).limit(wanted))
        pinned = [r for r in first if r["pinned"]]
        rows = [r for r in first if not r["pinned"]]
        if len(first) == wanted and len(rows) <= limit:  # more pinned items than the margin
            pinned = await _decoded(_newest_first(_select(columns).where(where & _PINNED)))
            rows = await _decoded(
                _newest_first(_select(columns).where(where & _NOT_PINNED)).limit(limit + 1)
            )
    else:
        at, item_id = before
        # (published_at, id) < (at, item_id), spelt so that `published_at <= at` bounds an
        # index scan instead of filtering every newer row.
        older = (NewsItem.published_at <= at) & (
            (NewsItem.published_at < at) | (NewsItem.id < UUID(item_id))
        )
        pinned = []
        rows = await _decoded(
            _newest_first(_select(columns).where(where & _NOT_PINNED & older)).limit(limit + 1)
        )
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = (rows[-1]["published_at"], str(rows[-1]["id"])) if more and rows else None
    return pinned + rows, cursor


async def agenda(
    filters: FeedFilter,
    start: datetime,
    end: datetime,
    near: tuple[float, float, float] | None,
    limit: int = 200,
    columns: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Published events overlapping [start, end], soonest first; `near` = (lat, lon, radius m).

    The overlap (an event without an end lasts its start) and, without `near`, the limit are
    the database's work: only the events shown are read. `columns` as for `news_feed` (they
    must include lat and lon with `near`).
    """
    query = (
        _select(columns)
        .where(
            _published(filters, "event")
            & (NewsItem.starts_at <= end)
            & WhereRaw("COALESCE(ends_at, starts_at) >= {}", start)
        )
        .order_by(NewsItem.starts_at)
        .order_by(NewsItem.id)
    )
    if near is None:
        return await _decoded(query.limit(limit))
    lat, lon, radius = near
    events = [
        r
        for r in await _decoded(query)
        if r["lat"] is not None and haversine_m(lat, lon, r["lat"], r["lon"]) <= radius
    ]
    return events[:limit]


async def published_item(item_id: UUID, count_view: bool) -> dict[str, Any]:
    """A published item (drafts and archives never leak); counts a view when asked."""
    row = (
        await NewsItem.select()
        .where((NewsItem.id == item_id) & (NewsItem.state == "published"))
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound("Cette publication est introuvable.")
    if count_view:
        await NewsItem.update({NewsItem.views: NewsItem.views + 1}).where(NewsItem.id == item_id)
    return row


async def images_and_zones(
    item_ids: list[Any],
) -> tuple[dict[Any, list[dict[str, Any]]], dict[Any, list[Any]]]:
    """Images per item (in order) and zone ids per item, in one query.

    The zones come first in the UNION: SQLite types the columns by the first SELECT's.
    """
    images: dict[Any, list[dict[str, Any]]] = {}
    zones: dict[Any, list[Any]] = {}
    if not item_ids:
        return images, zones
    if isinstance(NewsImage._meta.db, PostgresEngine):
        # One array parameter instead of 2 × N placeholders: a third less client CPU for an
        # agenda page of 174 events (Piccolo's query building, asyncpg's encoding).
        where, args = "item = ANY({})", [list(item_ids)]
    else:
        where, args = f"item IN ({', '.join('{}' for _ in item_ids)})", list(item_ids)
    rows = await NewsImage.raw(
        "SELECT item, zone, NULL AS position, NULL AS display_key, NULL AS thumb_key, "
        f"NULL AS width, NULL AS height, NULL AS alt FROM news_zone WHERE {where} "
        "UNION ALL SELECT item, NULL, position, display_key, thumb_key, width, height, alt "
        f"FROM news_image WHERE {where} ORDER BY position",
        *args,
        *args,
    )
    for row in rows:
        if row["zone"] is not None:
            zones.setdefault(row["item"], []).append(row["zone"])
        else:
            images.setdefault(row["item"], []).append(row)
    return images, zones


async def zones_of(item_ids: list[Any]) -> dict[Any, list[Any]]:
    """Zone ids per item."""
    out: dict[Any, list[Any]] = {}
    if item_ids:
        for r in await NewsZone.select(NewsZone.item, NewsZone.zone).where(
            NewsZone.item.is_in(item_ids)
        ):
            out.setdefault(r["item"], []).append(r["zone"])
    return out
