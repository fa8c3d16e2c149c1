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
