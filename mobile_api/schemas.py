"""The citizen app's JSON contract (camelCase), with the constraints the server enforces."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, UnsetType


class CamelStruct(msgspec.Struct, rename="camel"):
    """Base of every API shape: snake_case in Python, camelCase on the wire."""


Email = Annotated[str, Meta(min_length=3, max_length=254, examples=["camille@exemple.fr"])]
Password = Annotated[str, Meta(min_length=1, max_length=128)]
DisplayName = Annotated[str, Meta(max_length=100)]
Phone = Annotated[str, Meta(max_length=30, pattern=r"^[0-9+ ().-]*$")]
Locale = Annotated[str, Meta(min_length=2, max_length=10, pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]
Opaque = Annotated[str, Meta(min_length=1, max_length=200)]


class SignUp(CamelStruct):
    """A new citizen account."""

    email: Email
    password: Password
    display_name: DisplayName = ""


class Credentials(CamelStruct):
    """E-mail and password."""

    email: Email
    password: Password


class RefreshRequest(CamelStruct):
    """A refresh token to rotate or revoke."""

    refresh_token: Opaque


class AccountOut(CamelStruct):
    """The signed-in person's account."""

    id: UUID
    email: str
    display_name: str
    phone: str
    locale: str
    role: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> AccountOut:
        """From an Account row."""
        return cls(
            id=row["id"],
            email=row["email"],
            display_name=row["display_name"],
            phone=row["phone"],
            locale=row["locale"],
            role=row["role"],
            created_at=row["created_at"],
        )


class Session(CamelStruct):
    """Tokens of a signed-in session: a short access token and a rotating refresh token."""

    access_token: str
    refresh_token: str
    expires_in: int
    account: AccountOut
    token_type: str = "Bearer"


class ProfileUpdate(CamelStruct):
    """Fields of the profile to change; absent fields are left as they are."""

    display_name: DisplayName | UnsetType = UNSET
    phone: Phone | UnsetType = UNSET
    locale: Locale | UnsetType = UNSET


class PasswordChange(CamelStruct):
    """The current password and the new one."""

    current_password: Password
    new_password: Password


class DeviceRegistration(CamelStruct):
    """An app installation announcing itself."""

    platform: Literal["android", "ios", "web"]
    locale: Locale = "fr"
    app_version: Annotated[str, Meta(max_length=40)] = ""


class DeviceUpdate(CamelStruct):
    """Device settings to change."""

    locale: Locale | UnsetType = UNSET
    app_version: Annotated[str, Meta(max_length=40)] | UnsetType = UNSET


class DeviceOut(CamelStruct):
    """A registered device."""

    id: UUID
    platform: str
    locale: str
    app_version: str
    account_id: UUID | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> DeviceOut:
        """From a Device row."""
        return cls(
            id=row["id"],
            platform=row["platform"],
            locale=row["locale"],
            app_version=row["app_version"],
            account_id=row["account"],
            created_at=row["created_at"],
        )


class DeviceRegistered(CamelStruct):
    """The new device and its secret token: keep it, it is shown only once."""

    device: DeviceOut
    device_token: str


def changes(struct: msgspec.Struct) -> dict[str, Any]:
    """The fields of a PATCH body that were actually sent (snake_case names)."""
    return {
        name: value
        for name in struct.__struct_fields__
        if (value := getattr(struct, name)) is not UNSET
    }


HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]
Label = Annotated[str, Meta(min_length=1, max_length=60)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]
Address = Annotated[str, Meta(min_length=3, max_length=300)]


class DevicePreferences(CamelStruct):
    """Language and quiet hours (urgent alerts ignore quiet hours); null clears them."""

    locale: Locale | UnsetType = UNSET
    app_version: Annotated[str, Meta(max_length=40)] | UnsetType = UNSET
    quiet_start: HHMM | UnsetType | None = UNSET
    quiet_end: HHMM | UnsetType | None = UNSET


class WebPushKeys(CamelStruct):
    """The keys of a browser's PushSubscription."""

    p256dh: Annotated[str, Meta(min_length=80, max_length=100, pattern=r"^[A-Za-z0-9_-]+=*$")]
    auth: Annotated[str, Meta(min_length=16, max_length=32, pattern=r"^[A-Za-z0-9_-]+=*$")]


class PushCredentialIn(CamelStruct):
    """An FCM registration token, or a Web Push subscription (`PushSubscription.toJSON()`)."""

    kind: Literal["fcm", "webpush"]
    token: Annotated[str, Meta(min_length=20, max_length=4096)] | None = None
    endpoint: Annotated[str, Meta(max_length=2048, pattern=r"^https?://")] | None = None
    keys: WebPushKeys | None = None


class PushStatus(CamelStruct):
    """Whether the device can receive pushes, and how."""

    kind: str | None
    updated_at: datetime | None


class VapidKey(CamelStruct):
    """The application server key for `pushManager.subscribe`."""

    public_key: str


class PlaceIn(CamelStruct):
    """A place to follow: coordinates, or an address to geocode."""

    label: Label
    lat: Latitude | None = None
    lon: Longitude | None = None
    address: Address | None = None


class LivePosition(CamelStruct):
    """The device's current position (only the latest is kept, for 48 hours at most)."""

    lat: Latitude
    lon: Longitude


class PlaceOut(CamelStruct):
    """A followed place."""

    id: UUID
    kind: str
    label: str
    lat: float
    lon: float
    address: str
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> PlaceOut:
        """From a Place row."""
        return cls(
            id=row["id"],
            kind=row["kind"],
            label=row["label"],
            lat=row["lat"],
            lon=row["lon"],
            address=row["address"],
            updated_at=row["updated_at"],
        )


class ZoneOut(CamelStruct):
    """A named zone residents can follow."""

    id: UUID
    name: str
    code: str
    kind: str
    area_km2: float

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ZoneOut:
        """From a Zone row."""
        return cls(
            id=row["id"],
            name=row["name"],
            code=row["code"],
            kind=row["kind"],
            area_km2=round(row["area_km2"], 3),
        )


Topic = Annotated[str, Meta(min_length=2, max_length=40, pattern=r"^[a-z0-9-]+$")]


class Topics(CamelStruct):
    """Topics the device follows (travaux, culture, ...)."""

    topics: Annotated[list[Topic], Meta(max_length=30)]


class AlertOut(CamelStruct):
    """An alert in force, as the app's home screen shows it."""

    id: UUID
    message_id: UUID
    msg_type: str
    level: str
    level_label: str
    event: str
    headline: str
    description: str
    instruction: str
    area_description: str
    area: dict[str, Any]
    sent_at: datetime | None
    expires_at: datetime


class InboxItem(CamelStruct):
    """One notification received by the device."""

    id: int
    kind: str
    subject: str
    title: str
    body: str
    level: str
    data: dict[str, Any]
    created_at: datetime
    read_at: datetime | None


class InboxPage(CamelStruct):
    """A page of the inbox, newest first; pass `nextCursor` as `cursor` for the next one."""

    items: list[InboxItem]
    next_cursor: int | None
    unread: int
