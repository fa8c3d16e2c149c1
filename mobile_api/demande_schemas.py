"""The app's shapes for demandes and reports (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar.datastructures import UploadFile
from msgspec import Meta

from mobile_api.schemas import CamelStruct, Latitude, Longitude

Description = Annotated[str, Meta(min_length=3, max_length=4000)]
ContactName = Annotated[str, Meta(max_length=100)]
ContactEmail = Annotated[str, Meta(max_length=254, pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")]
ContactPhone = Annotated[str, Meta(max_length=30, pattern=r"^[0-9+ ().-]*$")]


class CategoryOut(CamelStruct):
    """A category of the tree (parentId null at the top)."""

    id: UUID
    parent_id: UUID | None
    name: str
    description: str
    needs_location: bool
    allows_anonymous: bool
    sla_days: int


class CategoryTree(CamelStruct):
    """The commune's categories; `version` changes whenever any of them does."""

    version: str
    categories: list[CategoryOut]


class DemandeIn(CamelStruct):
    """A demande from the app or the website (no photo; use /reports for those)."""

    commune_id: UUID
    category_id: UUID
    description: Description
    lat: Latitude | None = None
    lon: Longitude | None = None
    contact_name: ContactName = ""
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""
    anonymous: bool = False
    channel: Literal["app", "web"] = "app"


class ReportForm(CamelStruct):
    """A report sent as multipart/form-data: fields, and up to 5 `photos` files."""

    commune_id: UUID
    category_id: UUID
    description: Description
    lat: Latitude | None = None
    lon: Longitude | None = None
    location_source: Literal["gps", "pin"] = "gps"
    contact_name: ContactName = ""
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""
    anonymous: bool = False
    photos: list[UploadFile] = []


class PhotoOut(CamelStruct):
    """A photo: display size and thumbnail, metadata stripped."""

    id: UUID
    url: str
    thumbnail_url: str
    width: int
    height: int


class TimelineItem(CamelStruct):
    """One step of a demande's life."""

    kind: str
    text: str
    status_from: str
    status_to: str
    created_at: datetime
    public: bool = True
    data: dict[str, Any] = {}


class DemandeOut(CamelStruct):
    """A demande as its requester sees it."""

    id: UUID
    reference: str
    channel: str
    category_id: UUID
    description: str
    status: str
    status_label: str
    service_name: str
    lat: float | None
    lon: float | None
    address: str
    due_at: datetime
    created_at: datetime
    updated_at: datetime
    can_reopen: bool
    photos: list[PhotoOut]
    timeline: list[TimelineItem]
    followers: int


class DemandeSummary(CamelStruct):
    """A line of "my demandes"."""

    id: UUID
    reference: str
    status: str
    status_label: str
    description: str
    created_at: datetime


class ReopenIn(CamelStruct):
    """Why it is not fixed."""

    reason: Annotated[str, Meta(min_length=3, max_length=2000)]


class NearbyReport(CamelStruct):
    """An open report of the same category nearby: follow it instead of filing a duplicate."""

    id: UUID
    reference: str
    description: str
    status: str
    distance_m: int
    thumbnail_url: str | None
    created_at: datetime


class PublicReport(CamelStruct):
    """A report as anyone may see it: no personal data."""

    id: UUID
    reference: str
    category_id: UUID
    status: str
    status_label: str
    description: str
    lat: float
    lon: float
    address: str
    created_at: datetime
    updated_at: datetime
    photos: list[PhotoOut]
    followers: int
