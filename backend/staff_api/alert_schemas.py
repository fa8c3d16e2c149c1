"""Staff shapes for zones and crisis alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from mobile_api.schemas import CamelStruct

Level = Literal["information", "avertissement", "danger", "urgence_extreme"]
Category = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]


class ZoneIn(CamelStruct):
    """A zone drawn on the map (GeoJSON Polygon or MultiPolygon, lon/lat order)."""

    name: Annotated[str, Meta(min_length=2, max_length=150)]
    code: Annotated[str, Meta(min_length=1, max_length=60)]
    geometry: dict[str, Any]
    kind: Annotated[str, Meta(max_length=30)] = "quartier"


class ZoneDetail(CamelStruct):
    """A zone with its geometry."""

    id: UUID
    name: str
    code: str
    kind: str
    area_km2: float
    geometry: dict[str, Any]


class Translation(CamelStruct):
    """The alert's texts in another language."""

    headline: Annotated[str, Meta(max_length=140)] = ""
    description: Annotated[str, Meta(max_length=4000)] = ""
    instruction: Annotated[str, Meta(max_length=1000)] = ""


class AlertIn(CamelStruct):
    """A crisis alert to prepare. `area.kind`: polygon, multipolygon, circle, zones, commune."""

    severity: Level
    event: Annotated[str, Meta(min_length=2, max_length=34)]
    headline: Annotated[str, Meta(min_length=3, max_length=140)]
    description: Annotated[str, Meta(min_length=3, max_length=4000)]
    area: dict[str, Any]
    expires_at: datetime
    instruction: Annotated[str, Meta(max_length=1000)] = ""
    category: Category = "Safety"
    translations: dict[Annotated[str, Meta(pattern=r"^[a-z]{2}$")], Translation] = {}


class AlertChange(CamelStruct):
    """What an update changes; the rest is kept."""

    severity: Level | UnsetType = UNSET
    event: Annotated[str, Meta(min_length=2, max_length=34)] | UnsetType = UNSET
    headline: Annotated[str, Meta(min_length=3, max_length=140)] | UnsetType = UNSET
    description: Annotated[str, Meta(min_length=3, max_length=4000)] | UnsetType = UNSET
    instruction: Annotated[str, Meta(max_length=1000)] | UnsetType = UNSET
    area: dict[str, Any] | UnsetType = UNSET
    expires_at: datetime | UnsetType = UNSET


class AlertCancel(CamelStruct):
    """Why the alert is lifted (shown to residents)."""

    note: Annotated[str, Meta(max_length=1000)] = ""


class AreaPreviewIn(CamelStruct):
    """An area to count before creating anything."""

    area: dict[str, Any]


class Reach(CamelStruct):
    """How many devices and followed places an area reaches."""

    devices: int
    places: int


class StaffAlertOut(CamelStruct):
    """An alert as staff see it (its newest message)."""

    id: UUID
    message_id: UUID
    identifier: str
    state: str
    msg_type: str
    severity: str
    event: str
    headline: str
    description: str
    instruction: str
    area: dict[str, Any]
    area_description: str
    expires_at: datetime
    sent_at: datetime | None
    targeted_devices: int
    targeted_places: int
    translations: dict[str, Any]


class DeliveryReport(CamelStruct):
    """Delivery of an alert over all its messages."""

    alert_id: UUID
    targeted: int
    sent: int
    pending: int
    inbox_only: int
    failed: int
    pruned: int
    expired: int
    read: int
    failures: dict[str, int]
    messages: int


class AuditOut(CamelStruct):
    """One audited action."""

    action: str
    actor_id: UUID | None
    detail: dict[str, Any]
    created_at: datetime
