"""Staff tools' JSON shapes (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from mobile_api.schemas import CamelStruct, DisplayName, Email, Password, Phone

Name = Annotated[str, Meta(min_length=2, max_length=150)]
Slug = Annotated[str, Meta(min_length=2, max_length=80, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Address = Annotated[str, Meta(max_length=500)]
ContactEmail = Annotated[str, Meta(max_length=254)]


class ServiceIn(CamelStruct):
    """A new service of the commune."""

    name: Name
    slug: Slug | None = None
    address: Address = ""
    phone: Phone = ""
    email: ContactEmail = ""


class ServiceUpdate(CamelStruct):
    """Service fields to change."""

    name: Name | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    phone: Phone | UnsetType = UNSET
    email: ContactEmail | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class ServiceOut(CamelStruct):
    """A service of the commune."""

    id: UUID
    name: str
    slug: str
    address: str
    phone: str
    email: str
    active: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ServiceOut:
        """From a Service row."""
        return cls(
            id=row["id"],
            name=row["name"],
            slug=row["slug"],
            address=row["address"],
            phone=row["phone"],
            email=row["email"],
            active=row["active"],
        )


class StaffIn(CamelStruct):
    """A new staff account (the admin hands over the initial password)."""

    email: Email
    password: Password
    role: Annotated[str, Meta(pattern=r"^(agent|communication|admin)$")]
    display_name: DisplayName = ""
    service_ids: list[UUID] = []


class StaffUpdate(CamelStruct):
    """Staff fields to change."""

    role: Annotated[str, Meta(pattern=r"^(agent|communication|admin)$")] | UnsetType = UNSET
    display_name: DisplayName | UnsetType = UNSET
    service_ids: list[UUID] | UnsetType = UNSET
    is_active: bool | UnsetType = UNSET
    can_send_alerts: bool | UnsetType = UNSET


class StaffOut(CamelStruct):
    """A staff member with the services they work for."""

    id: UUID
    email: str
    display_name: str
    role: str
    is_active: bool
    can_send_alerts: bool
    service_ids: list[UUID]
    created_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> StaffOut:
        """From a staff view (Account row + service_ids)."""
        return cls(
            id=row["id"],
            email=row["email"],
            display_name=row["display_name"],
            role=row["role"],
            is_active=row["is_active"],
            can_send_alerts=row["can_send_alerts"],
            service_ids=list(row["service_ids"]),
            created_at=row["created_at"],
        )
