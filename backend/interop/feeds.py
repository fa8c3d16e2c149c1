"""Public feeds of a commune: Atom for news, iCalendar for events (whole commune or a topic)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from backend.exceptions import NotFound
from backend.news import reading
from backend.news.feeds import events_ics, news_atom
from backend.organisation.tables import Commune
from backend.settings import Settings


async def _commune(slug: str) -> dict[str, Any]:
    row = await Commune.select().where(Commune.slug == slug).first()
    if row is None:
        raise NotFound("Cette commune est introuvable.")
    return row


class FeedController(Controller):
    """GET /feeds/<commune>/news.atom and /feeds/<commune>/events.ics (?topic=culture)."""

    path = "/feeds"
    tags = ["Actualités"]

    @get("/{commune_slug:str}/news.atom", operation_id="newsAtomFeed")
    async def news(
        self,
        request: Request[Any, Any, Any],
        commune_slug: FromPath[str],
        settings: NamedDependency[Settings],
        topic: Annotated[str | None, QueryParameter()] = None,
    ) -> Response[bytes]:
        """The commune's news as Atom 1.0."""
        commune = await _commune(commune_slug)
        filters = reading.FeedFilter(commune["id"], (topic,) if topic else ())
        etag = f'"{await reading.version(filters, "news")}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        rows, _ = await reading.news_feed(filters, None, 50)
        body = news_atom(
            rows,
            public_url=settings.public_url,
            commune_name=commune["name"],
            self_url=f"{settings.public_url}{request.url.path}",
        )
        return Response(body, media_type="application/atom+xml; charset=utf-8", headers=headers)

    @get("/{commune_slug:str}/events.ics", operation_id="eventsIcsFeed")
    async def events(
        self,
        request: Request[Any, Any, Any],
        commune_slug: FromPath[str],
        settings: NamedDependency[Settings],
        topic: Annotated[str | None, QueryParameter()] = None,
    ) -> Response[bytes]:
        """The commune's agenda as an iCalendar subscription (cancelled events stay, CANCELLED)."""
        from datetime import UTC, datetime, timedelta

        commune = await _commune(commune_slug)
        filters = reading.FeedFilter(commune["id"], (topic,) if topic else ())
        etag = f'"{await reading.version(filters, "event")}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=300"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        start = datetime.now(UTC) - timedelta(days=90)
        rows = await reading.agenda(filters, start, start + timedelta(days=455), None, limit=1000)
        name = f"{commune['name']} – agenda" + (f" ({topic})" if topic else "")
        body = events_ics(rows, public_url=settings.public_url, name=name)
        return Response(body, media_type="text/calendar; charset=utf-8", headers=headers)
