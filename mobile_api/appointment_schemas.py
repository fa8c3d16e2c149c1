"""Shapes of appointments (camelCase)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from msgspec import Meta

from mobile_api.demande_schemas import ContactEmail, ContactName, ContactPhone
from mobile_api.schemas import CamelStruct

Reason = Literal["CNI", "PASSPORT", "CNI-PASSPORT"]
Persons = Annotated[int, Meta(ge=1, le=10)]


class SiteOut(CamelStruct):
    """A place to lodge an ID-card or passport file."""

    id: UUID
    name: str
    address: str
    zip_code: str
    city: str
    lat: float
    lon: float
    phone: str


class SlotOut(CamelStruct):
    """A free slot."""

    site_id: UUID
    counter_id: UUID
    start: datetime
    end: datetime


class NearestSite(CamelStruct):
    """A site with its next free slots, and how far it is."""

    site: SiteOut
    distance_m: int
    next_slots: list[SlotOut]


class HoldIn(CamelStruct):
    """The slot chosen: it is held a few minutes while the form is completed."""

    site_id: UUID
    start: datetime
    reason: Reason
    persons: Persons = 1
    counter_id: UUID | None = None


class ConfirmIn(CamelStruct):
    """One ANTS pre-request number per person, and how to reach the resident."""

    ants_ids: Annotated[
        list[Annotated[str, Meta(max_length=20)]], Meta(min_length=1, max_length=10)
    ]
    name: ContactName
    email: ContactEmail
    phone: ContactPhone = ""


class MoveIn(CamelStruct):
    """Another slot of the same site."""

    start: datetime
    counter_id: UUID | None = None


class WaitlistIn(CamelStruct):
    """Be told when an earlier slot frees up."""

    reason: Reason
    before: datetime
    persons: Persons = 1
    site_id: UUID | None = None
    email: ContactEmail = ""


class AppointmentOut(CamelStruct):
    """An appointment as its holder sees it."""

    id: UUID
    site_id: UUID
    counter_id: UUID
    status: str
    reason: str
    persons: int
    start: datetime
    end: datetime
    hold_expires_at: datetime | None
    ants_ids: list[str]
    name: str
    email: str
    sequence: int


class ConfirmedOut(CamelStruct):
    """The confirmed appointment and the secret of its cancel/move link (shown once)."""

    appointment: AppointmentOut
    manage_token: str
