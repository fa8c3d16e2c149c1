"""Residents: alerts in force that concern them, and their in-app inbox."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from alerts import crisis, inbox
from backend.auth import Principal
from backend.guards import device_required
from mobile_api.schemas import AlertOut, InboxItem, InboxPage


def alert_out(row: dict[str, Any]) -> AlertOut:
    """The app's view of an alert message."""
    return AlertOut(
        id=row["chain"],
        message_id=row["id"],
        msg_type=row["msg_type"],
        level=row["severity"],
        level_label=crisis.LEVEL_LABELS[row["severity"]],
        event=row["event"],
        headline=row["headline"],
        description=row["description"],
        instruction=row["instruction"],
        area_description=row["area_description"],
        area=row["area"]["geometry"],
        sent_at=row["sent_at"],
        expires_at=row["expires_at"],
    )


class ResidentAlertController(Controller):
    """The app's home screen: alerts in force for this device's places and zones."""

    path = "/alerts"
    tags = ["Alertes"]
    guards = [device_required]

    @get("/mine", operation_id="listMyAlerts")
    async def mine(self, principal: NamedDependency[Principal]) -> list[AlertOut]:
        """Alerts in force concerning one of the device's places or zones, newest first."""
        assert principal.device_id is not None
        return [alert_out(r) for r in await crisis.alerts_for_device(principal.device_id)]

    @post("/{alert_id:uuid}/read", operation_id="markAlertRead", status_code=HTTP_204_NO_CONTENT)
    async def read(self, alert_id: FromPath[UUID], principal: NamedDependency[Principal]) -> None:
        """The resident opened the alert (feeds the read counts staff see)."""
        assert principal.device_id is not None
        await crisis.mark_alert_read(principal.device_id, alert_id)


class InboxController(Controller):
    """Every notification the device received, pushed or not."""

    path = "/inbox"
    tags = ["Alertes"]
    guards = [device_required]

    @get("/", operation_id="listInbox")
    async def list_inbox(
        self,
        principal: NamedDependency[Principal],
        cursor: FromQuery[int | None] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> InboxPage:
        """Newest first; pass `nextCursor` back as `cursor` for older items."""
        assert principal.device_id is not None
        items, next_cursor = await inbox.inbox(principal.device_id, cursor, limit)
        return InboxPage(
            items=[
                InboxItem(
                    id=r["id"],
                    kind=r["kind"],
                    subject=r["subject"],
                    title=r["title"],
                    body=r["body"],
                    level=r["level"],
                    data=_json(r["data"]),
                    created_at=r["created_at"],
                    read_at=r["read_at"],
                )
                for r in items
            ],
            next_cursor=next_cursor,
            unread=await inbox.unread_count(principal.device_id),
        )

    @post("/{item_id:int}/read", operation_id="markInboxItemRead", status_code=HTTP_204_NO_CONTENT)
    async def read(self, item_id: FromPath[int], principal: NamedDependency[Principal]) -> None:
        """Mark one notification read."""
        assert principal.device_id is not None
        await inbox.mark_read(principal.device_id, item_id)


def _json(value: Any) -> dict[str, Any]:
    import json

    if isinstance(value, str):
        loaded: dict[str, Any] = json.loads(value)
        return loaded
    return dict(value or {})
