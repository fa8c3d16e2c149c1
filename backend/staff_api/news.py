"""Staff HTTP API for news and events (role `communication`, and admins)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, MultipartBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from backend.auth import Principal
from backend.demandes.reports import process_photos, store_photos
from backend.guards import staff_required
from backend.news import service
from backend.news.tables import NewsItem
from backend.settings import Settings
from media import Limits, MediaStorage
from mobile_api.news_schemas import (
    EventStatusIn,
    ImageForm,
    NewsChange,
    NewsIn,
    NewsStats,
    ScheduleIn,
    StaffNewsOut,
    images_out,
)
from mobile_api.schemas import changes


async def staff_news(row: dict[str, Any], storage: MediaStorage) -> StaffNewsOut:
    """An item as staff see it."""
    images = (await service.images_of([row["id"]])).get(row["id"], [])
    return StaffNewsOut(
        id=row["id"],
        kind=row["kind"],
        state=row["state"],
        title=row["title"],
        summary=row["summary"],
        body_html=row["body_html"],
        topics=row["topics"],
        pinned=row["pinned"],
        push=row["push"],
        publish_at=row["publish_at"],
        unpublish_at=row["unpublish_at"],
        published_at=row["published_at"],
        sequence=row["sequence"],
        event_status=row["event_status"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        images=images_out(images, storage),
    )


def _translations(data: Any) -> dict[str, dict[str, str]]:
    return {
        lang: {"title": t.title, "summary": t.summary, "body_markdown": t.body_markdown}
        for lang, t in data.items()
    }


class StaffNewsController(Controller):
    """Write, schedule, publish and broadcast news and events."""

    path = "/news"
    tags = ["Actualités"]
    guards = [staff_required("communication")]

    @get("/", operation_id="staffListNews")
    async def list_items(
        self, commune_id: NamedDependency[UUID], storage: NamedDependency[MediaStorage]
    ) -> list[StaffNewsOut]:
        """Every item of the commune, newest first (drafts included)."""
        rows = (
            await NewsItem.select()
            .where(NewsItem.commune == commune_id)
            .order_by(NewsItem.created_at, ascending=False)
            .output(load_json=True)
        )
        return [await staff_news(r, storage) for r in rows]

    @post("/", operation_id="createNews", status_code=HTTP_201_CREATED, opt={"idempotent": True})
    async def create(
        self,
        data: JSONBody[NewsIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Prepare a news article or an event (a draft)."""
        fields = changes(data)
        fields["translations"] = _translations(data.translations)
        zone_ids = fields.pop("zone_ids")
        kind = fields.pop("kind")
        row = await service.create_item(commune_id, principal.account_id, kind, fields, zone_ids)
        return await staff_news(row, storage)

    @patch("/{item_id:uuid}", operation_id="updateNews")
    async def update(
        self,
        item_id: FromPath[UUID],
        data: JSONBody[NewsChange],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Edit an item (a published event's calendar copies update through SEQUENCE)."""
        fields = changes(data)
        zone_ids = fields.pop("zone_ids", None)
        row = await service.update_item(commune_id, item_id, principal.account_id, fields, zone_ids)
        return await staff_news(row, storage)

    @post(
        "/{item_id:uuid}/images",
        operation_id="addNewsImage",
        status_code=HTTP_201_CREATED,
        request_max_body_size=20 * 1024 * 1024,
    )
    async def add_image(
        self,
        item_id: FromPath[UUID],
        data: MultipartBody[ImageForm],
        commune_id: NamedDependency[UUID],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Attach an image (sniffed, stripped of metadata, resized like report photos)."""
        await service.get_item(commune_id, item_id)
        processed = await process_photos(
            [(data.image.filename or "", await data.image.read())],
            Limits(max_bytes=settings.media_max_bytes),
        )
        stored = await store_photos(storage, processed)
        row = await service.add_image(commune_id, item_id, {**stored.photos[0], "alt": data.alt})
        return await staff_news(row, storage)

    @post("/{item_id:uuid}/schedule", operation_id="scheduleNews", status_code=HTTP_200_OK)
    async def schedule(
        self,
        item_id: FromPath[UUID],
        data: JSONBody[ScheduleIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Publish at a given time (and unpublish later, if set)."""
        row = await service.schedule(
            commune_id, item_id, principal.account_id, data.publish_at, data.unpublish_at
        )
        return await staff_news(row, storage)

    @post("/{item_id:uuid}/publish", operation_id="publishNews", status_code=HTTP_200_OK)
    async def publish(
        self,
        item_id: FromPath[UUID],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Publish now (with its push, if asked)."""
        row = await service.publish_now(
            commune_id, item_id, principal.account_id, settings.daily_push_cap
        )
        return await staff_news(row, storage)

    @post("/{item_id:uuid}/archive", operation_id="archiveNews", status_code=HTTP_200_OK)
    async def archive(
        self,
        item_id: FromPath[UUID],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Take the item out of the feeds."""
        return await staff_news(
            await service.archive(commune_id, item_id, principal.account_id), storage
        )

    @post("/{item_id:uuid}/event-status", operation_id="setEventStatus", status_code=HTTP_200_OK)
    async def event_status(
        self,
        item_id: FromPath[UUID],
        data: JSONBody[EventStatusIn],
        commune_id: NamedDependency[UUID],
        principal: NamedDependency[Principal],
        settings: NamedDependency[Settings],
        storage: NamedDependency[MediaStorage],
    ) -> StaffNewsOut:
        """Cancel or postpone an event; its followers are told, calendars updated."""
        row = await service.set_event_status(
            commune_id,
            item_id,
            principal.account_id,
            data.status,
            data.message,
            settings.daily_push_cap,
        )
        return await staff_news(row, storage)

    @get("/{item_id:uuid}/stats", operation_id="newsStats")
    async def stats(self, item_id: FromPath[UUID], commune_id: NamedDependency[UUID]) -> NewsStats:
        """Devices targeted, pushes delivered, opens, views."""
        return NewsStats(**await service.stats(commune_id, item_id))
