"""Staff shapes for categories and demandes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from mobile_api.demande_schemas import (
    ContactEmail,
    ContactName,
    ContactPhone,
    Description,
    PhotoOut,
    TimelineItem,
)
from mobile_api.schemas import CamelStruct, Latitude, Longitude

Status = Literal[
    "received", "acknowledged", "in_progress", "resolved", "rejected", "duplicate", "closed"
]
Text = Annotated[str, Meta(min_length=1, max_length=4000)]


class CategoryIn(CamelStruct):
    """A new category."""

    name: Annotated[str, Meta(min_length=2, max_length=120)]
    service_id: UUID
    parent_id: UUID | None = None
    slug: Annotated[str, Meta(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=80)] | None = None
    description: Annotated[str, Meta(max_length=1000)] = ""
    sla_days: Annotated[int, Meta(ge=1, le=365)] = 7
    needs_location: bool = False
    public: bool = False
    allows_anonymous: bool = False
    duplicate_radius_m: Annotated[int, Meta(ge=10, le=5000)] = 250
    position: int = 0


class CategoryUpdate(CamelStruct):
    """Category fields to change."""

    name: Annotated[str, Meta(min_length=2, max_length=120)] | UnsetType = UNSET
    service_id: UUID | UnsetType = UNSET
    description: Annotated[str, Meta(max_length=1000)] | UnsetType = UNSET
    sla_days: Annotated[int, Meta(ge=1, le=365)] | UnsetType = UNSET
    needs_location: bool | UnsetType = UNSET
    public: bool | UnsetType = UNSET
    allows_anonymous: bool | UnsetType = UNSET
    duplicate_radius_m: Annotated[int, Meta(ge=10, le=5000)] | UnsetType = UNSET
    position: int | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class StaffCategoryOut(CamelStruct):
    """A category with its routing defaults."""

    id: UUID
    parent_id: UUID | None
    name: str
    slug: str
    service_id: UUID
    sla_days: int
    needs_location: bool
    public: bool
    allows_anonymous: bool
    duplicate_radius_m: int
    active: bool


class RoutingRuleIn(CamelStruct):
    """Demandes of the category inside the zone go to the service."""

    zone_id: UUID
    service_id: UUID
    priority: int = 0


class RecordedDemandeIn(CamelStruct):
    """A demande received by e-mail, phone, at the counter or by mail, typed in by an agent."""

    category_id: UUID
    description: Description
    channel: Literal["email", "phone", "counter", "mail"]
    requester_account_id: UUID | None = None
    contact_name: ContactName = ""
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: Annotated[str, Meta(max_length=300)] = ""


class StaffDemandeOut(CamelStruct):
    """A demande as staff see it: contact details and internal notes included."""

    id: UUID
    reference: str
    channel: str
    category_id: UUID
    description: str
    status: str
    status_label: str
    service_id: UUID
    agent_id: UUID | None
    requester_id: UUID | None
    contact_name: str
    contact_email: str
    contact_phone: str
    anonymous: bool
    lat: float | None
    lon: float | None
    address: str
    due_at: datetime
    overdue: bool
    hidden: bool
    duplicate_of: UUID | None
    created_at: datetime
    updated_at: datetime
    photos: list[PhotoOut] = []
    timeline: list[TimelineItem] = []


class InboxPage(CamelStruct):
    """A page of a service inbox."""

    items: list[StaffDemandeOut]
    next_cursor: datetime | None


class StatusChange(CamelStruct):
    """A status change; `reason` required to reject, `duplicateOf` to mark a duplicate."""

    status: Status
    message: Annotated[str, Meta(max_length=4000)] = ""
    reason: Annotated[str, Meta(max_length=2000)] = ""
    duplicate_of: UUID | None = None


class BulkStatusChange(CamelStruct):
    """The same status change for several demandes."""

    ids: Annotated[list[UUID], Meta(min_length=1, max_length=200)]
    status: Status
    message: Annotated[str, Meta(max_length=4000)] = ""
    reason: Annotated[str, Meta(max_length=2000)] = ""


class Assignment(CamelStruct):
    """Another service and/or an agent."""

    service_id: UUID | None = None
    agent_id: UUID | None = None


class TextIn(CamelStruct):
    """A reply or a note."""

    text: Text


class ModerationIn(CamelStruct):
    """Hide (or show again) a report on the public map."""

    hidden: bool
    reason: Annotated[str, Meta(max_length=1000)] = ""


class RedactionIn(CamelStruct):
    """Why a photo is taken out of public view."""

    reason: Annotated[str, Meta(max_length=1000)] = ""
