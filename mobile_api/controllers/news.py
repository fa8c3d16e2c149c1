"""Residents read news and the agenda; feeds answer 304 when nothing changed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, MediaType, Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.serialization import encode_json

from alerts.tables import TopicFollow, ZoneFollow
from backend.auth import Principal
from backend.exceptions import FieldError, InvalidInput
from backend.news import reading
from backend.news.answers import AnsweredBefore, Known, answers_of, questions_of
from backend.news.feeds import events_ics
from backend.settings import Settings
from media import MediaStorage
from mobile_api.news_schemas import EventListItem, NewsOut, NewsPage, images_out

# What the agenda's list keeps of a translation; the single-item view keeps the HTML body too.
_LISTED = frozenset({"title", "summary"})
_SHOWN = frozenset({"title", "summary", "body_html"})


def _fields(
    row: dict[str, Any],
    images: list[dict[str, Any]],
    zone_ids: list[Any],
    storage: MediaStorage,
    public_url: str,
    translated: frozenset[str],
) -> dict[str, Any]:
    """What the app shows of a published item, but its body."""
    return {
        "id": row["id"],
        "kind": row["kind"],
        "title": row["title"],
        "summary": row["summary"],
        "topics": row["topics"],
        "zone_ids": zone_ids,
        "pinned": row["pinned"],
        "images": images_out(images, storage),
        "published_at": row["published_at"],
        "updated_at": row["updated_at"],
        "translations": {
            lang: {k: v for k, v in t.items() if k in translated}
            for lang, t in row["translations"].items()
        },
        **{name: row[name] for name in reading.EVENT_FIELDS},
        "ics_url": (
            f"{public_url}/api/v1/events/{row['id']}/calendar.ics"
            if row["kind"] == "event"
            else None
        ),
    }


def news_out(
    row: dict[str, Any],
    images: list[dict[str, Any]],
    zone_ids: list[Any],
    storage: MediaStorage,
    public_url: str,
) -> NewsOut:
    """The app's view of a published item."""
    fields = _fields(row, images, zone_ids, storage, public_url, _SHOWN)
    return NewsOut(**fields, body_html=row["body_html"])


async def many_out(
    rows: list[dict[str, Any]], storage: MediaStorage, public_url: str
) -> list[NewsOut]:
    """Several items, with their images and zones in one query."""
    images, zones = await reading.images_and_zones([r["id"] for r in rows])
    return [
        news_out(r, images.get(r["id"], []), zones.get(r["id"], []), storage, public_url)
        for r in rows
    ]


async def agenda_out(
    rows: list[dict[str, Any]], storage: MediaStorage, public_url: str
) -> list[EventListItem]:
    """The agenda's list: each event without its body (the single-item view has it)."""
    images, zones = await reading.images_and_zones([r["id"] for r in rows])
    return [
        EventListItem(
            **_fields(
                r, images.get(r["id"], []), zones.get(r["id"], []), storage, public_url, _LISTED
            )
        )
        for r in rows
    ]


def _json(body: bytes, headers: dict[str, str]) -> Response[Any]:
    return Response(body, media_type=MediaType.JSON, headers=headers)


async def device_filter(principal: Principal, commune_id: UUID | None) -> reading.FeedFilter:
    """The zones and topics the calling device follows (`mine=true`)."""
    if principal.device_id is None:
        message = "Le fil personnalisé demande un appareil enregistré (X-Device-Token)."
        raise InvalidInput(message, errors=[FieldError("mine", message)])
    topics = await TopicFollow.select(TopicFollow.topic).where(
        TopicFollow.device == principal.device_id
    )
    zones = await ZoneFollow.select(ZoneFollow.zone).where(ZoneFollow.device == principal.device_id)
    return reading.FeedFilter(
        commune_id,
        tuple(r["topic"] for r in topics) or ("-",),
        tuple(r["zone"] for r in zones),
    )


def _not_modified(request: Request[Any, Any, Any], etag: str) -> bool:
    return request.headers.get("if-none-match") == etag


def _topics(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip().lower() for t in (value or "").split(",") if t.strip())


class NewsController(Controller):
    """The news feed and single items."""

    path = "/news"
    tags = ["Actualités"]

    @get("/", operation_id="newsFeed", middleware=[AnsweredBefore])
    async def feed(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
        commune_id: Annotated[UUID | None, QueryParameter(name="communeId")] = None,
        topics: Annotated[str | None, QueryParameter()] = None,
        mine: Annotated[bool, QueryParameter()] = False,
        cursor: Annotated[str | None, QueryParameter()] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=50)] = 20,
    ) -> Response[Any]:
        """Published news, pinned first; `mine=true` keeps the device's zones and topics."""
        before = None
        if cursor:
            try:
                at, _, item_id = cursor.partition("|")
                before = (datetime.fromisoformat(at), str(UUID(item_id)))
            except ValueError as exc:
                raise InvalidInput(
                    "Curseur invalide.", errors=[FieldError("cursor", "Curseur invalide.")]
                ) from exc
        async with reading.one_connection():
            filters = (
                await device_filter(principal, commune_id)
                if mine
                else reading.FeedFilter(commune_id, _topics(topics))
            )
            version = await reading.version(filters, "news")

            def feed_etag(version: str) -> str:
                return f'"{version}-{cursor or ""}-{limit}"'

            etag = feed_etag(version)
            question = f"feed|{filters}|{before}|{limit}"
            if not mine:  # the same answer for every caller: answered before the handler next
                known = Known(question, filters, "news", feed_etag)
                questions_of(request.app.state).learn(
                    "newsFeed", request.scope["query_string"], known
                )
            headers = {"ETag": etag, "Cache-Control": "no-cache"}
            if _not_modified(request, etag):
                return Response(None, status_code=304, headers=headers)
            answers = answers_of(request.app.state)
            if (body := answers.get(question, version)) is not None:
                return _json(body, headers)
            rows, next_before = await reading.news_feed(
                filters, before, limit, columns=reading.APP_COLUMNS
            )
            items = await many_out(rows, storage, settings.public_url)
        page = NewsPage(
            items=items,
            next_cursor=f"{next_before[0].isoformat()}|{next_before[1]}" if next_before else None,
        )
        body = encode_json(page)
        answers.put(question, version, body)
        return _json(body, headers)

    @get("/{item_id:uuid}", operation_id="getNews")
    async def get_one(
        self,
        item_id: FromPath[UUID],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> NewsOut:
        """One published news article or event (counts a view)."""
        row = await reading.published_item(item_id, count_view=True)
        [out] = await many_out([row], storage, settings.public_url)
        return out


class AgendaController(Controller):
    """The agenda of events."""

    path = "/events"
    tags = ["Actualités"]

    @get("/", operation_id="agenda", middleware=[AnsweredBefore])
    async def agenda(
        self,
        request: Request[Any, Any, Any],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
        commune_id: Annotated[UUID | None, QueryParameter(name="communeId")] = None,
        start: Annotated[datetime | None, QueryParameter(name="from")] = None,
        end: Annotated[datetime | None, QueryParameter(name="to")] = None,
        topics: Annotated[str | None, QueryParameter()] = None,
        lat: Annotated[float | None, QueryParameter(ge=-90, le=90)] = None,
        lon: Annotated[float | None, QueryParameter(ge=-180, le=180)] = None,
        radius_m: Annotated[int, QueryParameter(name="radiusM", ge=100, le=100_000)] = 5000,
    ) -> Response[Any]:
        """Events between `from` and `to` (default: the next 3 months), by topic, near a point."""
        # Default window by whole days, so the answer (and its ETag) stays the same all day.
        until = None
        if start is None:
            start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            until = start + timedelta(days=1)  # then the question means another window
        end = end or start + timedelta(days=92)
        if end < start:
            raise InvalidInput(
                "« to » précède « from ».", errors=[FieldError("to", "Période inversée.")]
            )
        filters = reading.FeedFilter(commune_id, _topics(topics))
        near = (lat, lon, float(radius_m)) if lat is not None and lon is not None else None
        async with reading.one_connection():
            version = await reading.version(filters, "event")
            window = f"{start.isoformat()}|{end.isoformat()}|{near}"
            question = f"agenda|{filters}|{window}"

            def agenda_etag(version: str) -> str:
                return f'"{hashlib.sha256(f"{version}|{window}".encode()).hexdigest()[:24]}"'

            etag = agenda_etag(version)
            known = Known(question, filters, "event", agenda_etag, until)
            questions_of(request.app.state).learn("agenda", request.scope["query_string"], known)
            headers = {"ETag": etag, "Cache-Control": "no-cache"}
            if _not_modified(request, etag):
                return Response(None, status_code=304, headers=headers)
            answers = answers_of(request.app.state)
            if (body := answers.get(question, version)) is not None:
                return _json(body, headers)
            rows = await reading.agenda(filters, start, end, near, columns=reading.APP_COLUMNS)
            items = await agenda_out(rows, storage, settings.public_url)
        body = encode_json(items)
        answers.put(question, version, body)
        return _json(body, headers)

    @get("/{item_id:uuid}/calendar.ics", operation_id="eventIcs", media_type="text/calendar")
    async def ics(
        self, item_id: FromPath[UUID], settings: NamedDependency[Settings]
    ) -> Response[bytes]:
        """One event as an iCalendar file (add it to one's own calendar)."""
        row = await reading.published_item(item_id, count_view=False)
        if row["kind"] != "event":
            from backend.exceptions import NotFound

            raise NotFound("Cette publication n'est pas un événement.")
        body = events_ics([row], public_url=settings.public_url, name=row["title"])
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="evenement-{item_id}.ics"'},
        )
