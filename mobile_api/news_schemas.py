"""Shapes of news and events (camelCase), for residents and communications staff."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from litestar.datastructures import UploadFile
from msgspec import UNSET, Meta, UnsetType

from media import MediaStorage
from mobile_api.schemas import CamelStruct, Latitude, Longitude, Topic

Title = Annotated[str, Meta(min_length=3, max_length=200)]
Summary = Annotated[str, Meta(max_length=500)]
Body = Annotated[str, Meta(max_length=50_000)]
Url = Annotated[str, Meta(max_length=500, pattern=r"^https?://")]


class NewsTranslation(CamelStruct):
    """The item in another language."""

    title: Title
    summary: Summary = ""
    body_markdown: Body = ""


class ImageOut(CamelStruct):
    """An image of the item (metadata stripped)."""

    url: str
    thumbnail_url: str
    width: int
    height: int
    alt: str


def images_out(images: list[dict[str, Any]], storage: MediaStorage) -> list[ImageOut]:
    """The stored images of an item (display and thumbnail keys) as the app and staff see them."""
    return [
        ImageOut(
            url=storage.url_for(i["display_key"]),
            thumbnail_url=storage.url_for(i["thumb_key"]),
            width=i["width"],
            height=i["height"],
            alt=i["alt"],
        )
        for i in images
    ]


class EventListItem(CamelStruct):
    """An event in the agenda list: all but its body (the single-item view carries it)."""

    id: UUID
    kind: str
    title: str
    summary: str
    topics: list[str]
    zone_ids: list[UUID]
    pinned: bool
    images: list[ImageOut]
    published_at: datetime | None
    updated_at: datetime
    translations: dict[str, Any]  # {"en": {"title", "summary"}}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    all_day: bool = False
    place_name: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    organiser: str = ""
    price: str = ""
    free: bool = True
    accessibility: str = ""
    registration_url: str = ""
    event_status: str = "scheduled"
    ics_url: str | None = None


class NewsOut(EventListItem, kw_only=True):
    """A published news article or event, with its sanitised HTML body."""

    body_html: str


class NewsPage(CamelStruct):
    """A page of the feed; pass `nextCursor` as `cursor` for older items."""

    items: list[NewsOut]
    next_cursor: str | None


class NewsIn(CamelStruct):
    """A news article or an event to prepare (a draft)."""

    kind: Literal["news", "event"]
    title: Title
    summary: Summary = ""
    body_markdown: Body = ""
    topics: Annotated[list[Topic], Meta(max_length=10)] = []
    zone_ids: list[UUID] = []
    pinned: bool = False
    push: bool = False
    translations: dict[Annotated[str, Meta(pattern=r"^[a-z]{2}$")], NewsTranslation] = {}
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    all_day: bool = False
    place_name: Annotated[str, Meta(max_length=200)] = ""
    address: Annotated[str, Meta(max_length=300)] = ""
    lat: Latitude | None = None
    lon: Longitude | None = None
    organiser: Annotated[str, Meta(max_length=200)] = ""
    price: Annotated[str, Meta(max_length=100)] = ""
    free: bool = True
    accessibility: Annotated[str, Meta(max_length=2000)] = ""
    registration_url: Url | Literal[""] = ""


class NewsChange(CamelStruct):
    """Fields to change; the rest is kept."""

    title: Title | UnsetType = UNSET
    summary: Summary | UnsetType = UNSET
    body_markdown: Body | UnsetType = UNSET
    topics: Annotated[list[Topic], Meta(max_length=10)] | UnsetType = UNSET
    zone_ids: list[UUID] | UnsetType = UNSET
    pinned: bool | UnsetType = UNSET
    push: bool | UnsetType = UNSET
    starts_at: datetime | UnsetType = UNSET
    ends_at: datetime | UnsetType | None = UNSET
    all_day: bool | UnsetType = UNSET
    place_name: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    address: Annotated[str, Meta(max_length=300)] | UnsetType = UNSET
    lat: Latitude | UnsetType | None = UNSET
    lon: Longitude | UnsetType | None = UNSET
    price: Annotated[str, Meta(max_length=100)] | UnsetType = UNSET
    free: bool | UnsetType = UNSET
    accessibility: Annotated[str, Meta(max_length=2000)] | UnsetType = UNSET


class ScheduleIn(CamelStruct):
    """When to publish (and unpublish)."""

    publish_at: datetime
    unpublish_at: datetime | None = None


class EventStatusIn(CamelStruct):
    """Cancel or postpone an event (or set it back to scheduled)."""

    status: Literal["scheduled", "cancelled", "postponed"]
    message: Annotated[str, Meta(max_length=1000)] = ""


class ImageForm(CamelStruct):
    """An image upload (multipart)."""

    image: UploadFile
    alt: Annotated[str, Meta(max_length=300)] = ""


class StaffNewsOut(CamelStruct):
    """An item as communications staff see it."""

    id: UUID
    kind: str
    state: str
    title: str
    summary: str
    body_html: str
    topics: list[str]
    pinned: bool
    push: bool
    publish_at: datetime | None
    unpublish_at: datetime | None
    published_at: datetime | None
    sequence: int
    event_status: str
    starts_at: datetime | None
    ends_at: datetime | None
    images: list[ImageOut] = []


class NewsStats(CamelStruct):
    """Reach of an item."""

    targeted: int
    delivered: int
    opens: int
    views: int
