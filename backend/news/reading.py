"""What residents read: the news feed, the agenda, one item; versions for conditional GET."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from backend.exceptions import NotFound
from backend.news.tables import NewsItem, NewsTopic, NewsZone
from geo import haversine_m


@dataclass(frozen=True)
class FeedFilter:
    """What a feed shows: a commune's items, optionally only some topics or zones."""

    commune_id: UUID | None = None
    topics: tuple[str, ...] = ()
    zone_ids: tuple[UUID, ...] = ()


async def _matching_ids(filters: FeedFilter) -> set[Any] | None:
    """Items tagged with one of the topics or zones (None: no such filter)."""
    if not filters.topics and not filters.zone_ids:
        return None
    ids: set[Any] = set()
    if filters.topics:
        rows = await NewsTopic.select(NewsTopic.item).where(
            NewsTopic.topic.is_in(list(filters.topics))
        )
        ids.update(r["item"] for r in rows)
    if filters.zone_ids:
        rows = await NewsZone.select(NewsZone.item).where(
            NewsZone.zone.is_in(list(filters.zone_ids))
        )
        ids.update(r["item"] for r in rows)
    return ids


def _published(filters: FeedFilter) -> Any:
    where: Any = NewsItem.state == "published"
    if filters.commune_id is not None:
        where = where & (NewsItem.commune == filters.commune_id)
    return where


async def version(filters: FeedFilter, kind: str) -> str:
    """A strong validator of a feed: changes with any publication, edit or archive.

    One aggregate query, so an unchanged feed (304) costs far less than rendering it.
    """
    rows = await NewsItem.raw(
        "SELECT COUNT(*) AS n, MAX(updated_at) AS last FROM news_item WHERE kind = {}"
        + (" AND commune = {}" if filters.commune_id else ""),
        kind,
        *([filters.commune_id] if filters.commune_id else []),
    )
    last = rows[0]["last"]
    key = f"{kind}|{filters}|{rows[0]['n']}|{last}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]


async def news_feed(
    filters: FeedFilter, before: tuple[datetime, str] | None, limit: int
) -> tuple[list[dict[str, Any]], tuple[datetime, str] | None]:
    """Published news, pinned first on the first page, then newest first, cursor-paginated."""
    allowed = await _matching_ids(filters)
    where = _published(filters) & (NewsItem.kind == "news")
    if allowed is not None:
        where = where & NewsItem.id.is_in(list(allowed) or [UUID(int=0)])
    pinned: list[dict[str, Any]] = []
    if before is None:
        pinned = (
            await NewsItem.select()
            .where(where & (NewsItem.pinned == True))  # noqa: E712
            .order_by(NewsItem.published_at, ascending=False)
            .output(load_json=True)
        )
    query = NewsItem.select().where(where & (NewsItem.pinned == False))  # noqa: E712
    if before is not None:
        at, item_id = before
        query = query.where(
            (NewsItem.published_at < at)
            | ((NewsItem.published_at == at) & (NewsItem.id < UUID(item_id)))
        )
    rows = (
        await query.order_by(NewsItem.published_at, ascending=False)
        .order_by(NewsItem.id, ascending=False)
        .limit(limit + 1)
        .output(load_json=True)
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
) -> list[dict[str, Any]]:
    """Published events overlapping [start, end], soonest first; `near` = (lat, lon, radius m)."""
    allowed = await _matching_ids(filters)
    where = _published(filters) & (NewsItem.kind == "event") & (NewsItem.starts_at <= end)
    if allowed is not None:
        where = where & NewsItem.id.is_in(list(allowed) or [UUID(int=0)])
    rows = await NewsItem.select().where(where).order_by(NewsItem.starts_at).output(load_json=True)
    events = [r for r in rows if (r["ends_at"] or r["starts_at"]) >= start]
    if near is not None:
        lat, lon, radius = near
        events = [
            r
            for r in events
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


async def zones_of(item_ids: list[Any]) -> dict[Any, list[Any]]:
    """Zone ids per item."""
    out: dict[Any, list[Any]] = {}
    if item_ids:
        for r in await NewsZone.select(NewsZone.item, NewsZone.zone).where(
            NewsZone.item.is_in(item_ids)
        ):
            out.setdefault(r["item"], []).append(r["zone"])
    return out
