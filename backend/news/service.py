"""News and events: writing, scheduling, publishing with an optional push, reading."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from alerts.outbox import Notification, notify
from alerts.tables import Delivery, Zone, ZoneFollow
from alerts.targeting import Recipient, recipients_of_devices
from backend.audit.service import record
from backend.database import transaction
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from backend.news.content import render_markdown
from backend.news.revision import bump
from backend.news.tables import NewsImage, NewsItem, NewsTopic, NewsZone
from geo import cell_of_lat_lon

EDITABLE = {
    "title",
    "summary",
    "body_markdown",
    "topics",
    "pinned",
    "push",
    "translations",
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
    "unpublish_at",
}


def _invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, errors=[FieldError(field, message)])


def _check_event(values: dict[str, Any]) -> None:
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is None:
        raise _invalid("startsAt", "Un événement a une date de début.")
    if ends is not None and ends < starts:
        raise _invalid("endsAt", "La fin de l'événement précède son début.")


def _rendered(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "body_markdown" in values:
        out["body_html"] = render_markdown(values["body_markdown"])
    if "translations" in values:
        out["translations"] = {
            lang: {**t, "body_html": render_markdown(t.get("body_markdown", ""))}
            for lang, t in values["translations"].items()
        }
    if "topics" in values:
        out["topics"] = sorted({t.strip().lower() for t in values["topics"] if t.strip()})
    if values.get("lat") is not None and values.get("lon") is not None:
        out["cell"] = cell_of_lat_lon(values["lat"], values["lon"])
    return out


async def _set_targets(
    item_id: UUID, topics: list[str] | None, zone_ids: list[UUID] | None
) -> None:
    if topics is not None:
        await NewsTopic.delete().where(NewsTopic.item == item_id)
        for topic in topics:
            await NewsTopic.insert(NewsTopic(item=item_id, topic=topic))
    if zone_ids is not None:
        await NewsZone.delete().where(NewsZone.item == item_id)
        for zone_id in dict.fromkeys(zone_ids):
            await NewsZone.insert(NewsZone(item=item_id, zone=zone_id))


async def _check_zones(commune_id: UUID, zone_ids: list[UUID]) -> None:
    if zone_ids:
        found = await Zone.count().where(Zone.id.is_in(zone_ids) & (Zone.commune == commune_id))
        if found != len(set(zone_ids)):
            raise _invalid("zoneIds", "Une des zones indiquées n'existe pas dans la commune.")


async def create_item(
    commune_id: UUID, actor_id: UUID | None, kind: str, fields: dict[str, Any], zone_ids: list[UUID]
) -> dict[str, Any]:
    """A draft news article or event."""
    values = _rendered({k: v for k, v in fields.items() if k in EDITABLE})
    if kind == "event":
        _check_event(values)
    await _check_zones(commune_id, zone_ids)
    item_id = uuid4()
    async with transaction():
        await NewsItem.insert(
            NewsItem(id=item_id, commune=commune_id, kind=kind, created_by=actor_id, **values)
        )
        await _set_targets(item_id, values.get("topics", []), zone_ids)
        await record(actor_id, f"{kind}.create", "news", item_id, {"title": values["title"]})
    return await get_item(commune_id, item_id)


async def get_item(commune_id: UUID, item_id: UUID) -> dict[str, Any]:
    """One item of the commune (any state), or NotFound."""
    row = (
        await NewsItem.select()
        .where((NewsItem.id == item_id) & (NewsItem.commune == commune_id))
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound("Cette publication est introuvable.")
    return row


async def zone_ids_of(item_id: UUID) -> list[UUID]:
    """The zones an item targets."""
    return [r["zone"] for r in await NewsZone.select(NewsZone.zone).where(NewsZone.item == item_id)]


async def update_item(
    commune_id: UUID,
    item_id: UUID,
    actor_id: UUID | None,
    changes: dict[str, Any],
    zone_ids: list[UUID] | None,
) -> dict[str, Any]:
    """Edit an item; once published, each change bumps the iCalendar SEQUENCE."""
    item = await get_item(commune_id, item_id)
    values = _rendered({k: v for k, v in changes.items() if k in EDITABLE})
    if item["kind"] == "event":
        _check_event({**item, **values})
    if zone_ids is not None:
        await _check_zones(commune_id, zone_ids)
    now = datetime.now(UTC)
    columns = {getattr(NewsItem, k): v for k, v in values.items()}
    columns[NewsItem.updated_at] = now
    if item["state"] == "published":
        columns[NewsItem.sequence] = NewsItem.sequence + 1
    async with transaction():
        await NewsItem.update(columns).where(NewsItem.id == item_id)
        await _set_targets(item_id, values.get("topics"), zone_ids)
        await record(actor_id, "news.update", "news", item_id, {"fields": sorted(values)})
        await bump(commune_id, item["kind"])
    return await get_item(commune_id, item_id)


async def add_image(commune_id: UUID, item_id: UUID, image: dict[str, Any]) -> dict[str, Any]:
    """Attach a processed image (display size + thumbnail keys, alt text) to the item."""
    item = await get_item(commune_id, item_id)
    async with transaction():
        count = await NewsImage.count().where(NewsImage.item == item_id)
        if count >= 10:
            raise _invalid("image", "10 images au plus par publication.")
        await NewsImage.insert(NewsImage(item=item_id, position=count, **image))
        await NewsItem.update({NewsItem.updated_at: datetime.now(UTC)}).where(
            NewsItem.id == item_id
        )
        await bump(commune_id, item["kind"])
    return await get_item(commune_id, item_id)


async def images_of(item_ids: list[Any]) -> dict[Any, list[dict[str, Any]]]:
    """Images per item, in order."""
    out: dict[Any, list[dict[str, Any]]] = {}
    if item_ids:
        rows = (
            await NewsImage.select()
            .where(NewsImage.item.is_in(item_ids))
            .order_by(NewsImage.position)
        )
        for row in rows:
            out.setdefault(row["item"], []).append(row)
    return out


async def schedule(
    commune_id: UUID,
    item_id: UUID,
    actor_id: UUID | None,
    publish_at: datetime,
    unpublish_at: datetime | None,
) -> dict[str, Any]:
    """Publish later (the worker publishes it at `publish_at`), and unpublish later if asked."""
    item = await get_item(commune_id, item_id)
    if item["state"] not in {"draft", "scheduled"}:
        raise Conflict("Seul un brouillon peut être programmé.")
    if unpublish_at is not None and unpublish_at <= publish_at:
        raise _invalid("unpublishAt", "La dépublication doit suivre la publication.")
    async with transaction():
        await NewsItem.update(
            {
                NewsItem.state: "scheduled",
                NewsItem.publish_at: publish_at,
                NewsItem.unpublish_at: unpublish_at,
                NewsItem.updated_at: datetime.now(UTC),
            }
        ).where(NewsItem.id == item_id)
        await record(
            actor_id, "news.schedule", "news", item_id, {"publishAt": publish_at.isoformat()}
        )
    return await get_item(commune_id, item_id)


async def _audience(item: dict[str, Any]) -> list[Recipient]:
    """Devices following the item's zones (or the commune's own zone) or one of its topics."""
    zone_ids = await zone_ids_of(item["id"])
    if not zone_ids:
        zone_ids = [
            r["id"]
            for r in await Zone.select(Zone.id).where(
                (Zone.commune == item["commune"]) & (Zone.kind == "commune")
            )
        ]
    devices: list[Any] = []
    if zone_ids:
        devices += [
            r["device"]
            for r in await ZoneFollow.select(ZoneFollow.device).where(
                ZoneFollow.zone.is_in(zone_ids)
            )
        ]
    if item["topics"]:
        from alerts.tables import TopicFollow

        devices += [
            r["device"]
            for r in await TopicFollow.select(TopicFollow.device).where(
                TopicFollow.topic.is_in(item["topics"])
            )
        ]
    return await recipients_of_devices(devices)


async def _publish(item: dict[str, Any], now: datetime, daily_cap: int) -> None:
    changed = (
        await NewsItem.update(
            {NewsItem.state: "published", NewsItem.published_at: now, NewsItem.updated_at: now}
        )
        .where((NewsItem.id == item["id"]) & NewsItem.state.is_in(["draft", "scheduled"]))
        .returning(NewsItem.id)
    )
    if not changed:
        raise Conflict("Cette publication est déjà publiée ou archivée.")
    if item["push"]:
        audience = await _audience(item)
        body = item["summary"] or item["title"]
        if item["kind"] == "event" and item["starts_at"] is not None:
            body = f"{_when(item)} — {body}"
        result = await notify(
            Notification(
                kind=item["kind"],
                subject=f"news:{item['id']}",
                title=item["title"],
                body=body,
                data={"newsId": str(item["id"]), "kind": item["kind"]},
                collapse_key=f"news-{item['id'].hex[:20]}",
            ),
            audience,
            daily_cap=daily_cap,
            now=now,
        )
        await NewsItem.update(
            {
                NewsItem.pushed_at: now,
                NewsItem.message: result.message_id,
                NewsItem.targeted: result.targeted,
            }
        ).where(NewsItem.id == item["id"])
    await bump(item["commune"], item["kind"])  # last: the revision row stays locked to commit


def _when(item: dict[str, Any]) -> str:
    from zoneinfo import ZoneInfo

    local = item["starts_at"].astimezone(ZoneInfo("Europe/Paris"))
    return local.strftime("%d/%m") if item["all_day"] else local.strftime("%d/%m à %Hh%M")


async def publish_now(
    commune_id: UUID, item_id: UUID, actor_id: UUID | None, daily_cap: int
) -> dict[str, Any]:
    """Publish at once (and broadcast if the item asks for a push)."""
    item = await get_item(commune_id, item_id)
    async with transaction():
        await _publish(item, datetime.now(UTC), daily_cap)
        await record(actor_id, "news.publish", "news", item_id)
    return await get_item(commune_id, item_id)


async def archive(commune_id: UUID, item_id: UUID, actor_id: UUID | None) -> dict[str, Any]:
    """Take an item out of the feeds."""
    item = await get_item(commune_id, item_id)
    async with transaction():
        await NewsItem.update(
            {NewsItem.state: "archived", NewsItem.updated_at: datetime.now(UTC)}
        ).where(NewsItem.id == item_id)
        await record(actor_id, "news.archive", "news", item_id)
        await bump(commune_id, item["kind"])
    return await get_item(commune_id, item_id)


async def set_event_status(
    commune_id: UUID,
    item_id: UUID,
    actor_id: UUID | None,
    status: str,
    message: str,
    daily_cap: int,
) -> dict[str, Any]:
    """Cancel or postpone an event: calendars see it (SEQUENCE), followers are told."""
    item = await get_item(commune_id, item_id)
    if item["kind"] != "event":
        raise Conflict("Seul un événement peut être annulé ou reporté.")
    now = datetime.now(UTC)
    async with transaction():
        await NewsItem.update(
            {
                NewsItem.event_status: status,
                NewsItem.sequence: NewsItem.sequence + 1,
                NewsItem.updated_at: now,
            }
        ).where(NewsItem.id == item_id)
        await record(actor_id, f"event.{status}", "news", item_id, {"message": message})
        if item["state"] == "published" and status != "scheduled":
            received = (
                [
                    r["device"]
                    for r in await Delivery.select(Delivery.device).where(
                        Delivery.message == item["message"]
                    )
                ]
                if item["message"]
                else []
            )
            audience = await _audience(item) + await recipients_of_devices(received)
            label = "Annulé" if status == "cancelled" else "Reporté"
            await notify(
                Notification(
                    kind="event",
                    subject=f"news:{item['id']}",
                    title=f"{label} : {item['title']}",
                    body=message or f"L'événement « {item['title']} » est {label.lower()}.",
                    data={"newsId": str(item["id"]), "kind": "event", "eventStatus": status},
                    collapse_key=f"news-{item['id'].hex[:20]}",
                ),
                audience,
                daily_cap=daily_cap,
                now=now,
            )
        await bump(commune_id, item["kind"])
    return await get_item(commune_id, item_id)


async def publish_due(daily_cap: int, now: datetime | None = None) -> int:
    """Worker: publish scheduled items whose time has come, archive those past unpublish_at."""
    now = now or datetime.now(UTC)
    due = (
        await NewsItem.select()
        .where((NewsItem.state == "scheduled") & (NewsItem.publish_at <= now))
        .output(load_json=True)
    )
    for item in due:
        async with transaction():
            try:
                await _publish(item, now, daily_cap)
            except Conflict:
                continue  # another worker published it
    async with transaction():
        expired = (
            await NewsItem.update({NewsItem.state: "archived", NewsItem.updated_at: now})
            .where((NewsItem.state == "published") & (NewsItem.unpublish_at <= now))
            .returning(NewsItem.commune, NewsItem.kind)
        )
        for commune_id, kind in sorted({(str(r["commune"]), r["kind"]) for r in expired}):
            await bump(commune_id, kind)
    return len(due) + len(expired)


async def stats(commune_id: UUID, item_id: UUID) -> dict[str, int]:
    """Devices targeted, pushes delivered, opens (notifications read), views."""
    item = await get_item(commune_id, item_id)
    delivered = opens = 0
    if item["message"]:
        delivered = await Delivery.count().where(
            (Delivery.message == item["message"]) & (Delivery.status == "sent")
        )
        opens = await Delivery.count().where(
            (Delivery.message == item["message"]) & Delivery.read_at.is_not_null()
        )
    return {
        "targeted": item["targeted"],
        "delivered": delivered,
        "opens": opens,
        "views": item["views"],
    }
