"""The in-app inbox: every notification a device received, pushed or not."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from alerts.tables import Delivery
from backend.exceptions import NotFound


async def inbox(
    device_id: UUID, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first, `limit` items older than the cursor `before`; returns (items, next cursor)."""
    args: list[Any] = [device_id]
    where = "d.device = {}"
    if before is not None:
        where += " AND d.id < {}"
        args.append(before)
    rows = await Delivery.raw(
        "SELECT d.id, d.read_at, d.created_at, d.status, m.kind, m.subject, m.title, m.body, "
        "m.data, m.level FROM delivery d JOIN message m ON m.id = d.message "
        f"WHERE {where} ORDER BY d.id DESC LIMIT {{}}",
        *args,
        limit + 1,
    )
    more = len(rows) > limit
    items = rows[:limit]
    return items, (items[-1]["id"] if more and items else None)


async def mark_read(device_id: UUID, delivery_id: int) -> None:
    """Mark one inbox item read (idempotent); another device's items are not found."""
    found = await Delivery.exists().where(
        (Delivery.id == delivery_id) & (Delivery.device == device_id)
    )
    if not found:
        raise NotFound("Cette notification est introuvable.")
    await Delivery.update({Delivery.read_at: datetime.now(UTC)}).where(
        (Delivery.id == delivery_id) & Delivery.read_at.is_null()
    )


async def unread_count(device_id: UUID) -> int:
    """How many inbox items are unread."""
    return await Delivery.count().where((Delivery.device == device_id) & Delivery.read_at.is_null())
