"""Reading bookings, and who books (re-exported by ``booking``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from backend.accounts.tokens import digest
from backend.appointments.tables import Booking
from backend.exceptions import NotFound


@dataclass(frozen=True)
class Identity:
    """Who books: an account and/or an app installation (and, for staff, who typed it in)."""

    account_id: UUID | None
    device_id: UUID | None
    staff: bool = False


@dataclass(frozen=True)
class Contact:
    """How to reach the resident."""

    name: str
    email: str
    phone: str


async def get_booking(booking_id: UUID) -> dict[str, Any]:
    """A booking, or NotFound."""
    row = await Booking.select().where(Booking.id == booking_id).output(load_json=True).first()
    if row is None:
        raise NotFound("Ce rendez-vous est introuvable.")
    return row


async def booking_for(booking_id: UUID, who: Identity) -> dict[str, Any]:
    """A booking of this resident (others are not found)."""
    row = await get_booking(booking_id)
    mine = (who.account_id is not None and row["account"] == who.account_id) or (
        who.device_id is not None and row["device"] == who.device_id
    )
    if not (mine or who.staff):
        raise NotFound("Ce rendez-vous est introuvable.")
    return row


async def booking_by_token(token: str) -> dict[str, Any]:
    """The booking a signed link (from the confirmation e-mail) points at."""
    row = (
        await Booking.select()
        .where(Booking.cancel_token_hash == digest(token))
        .output(load_json=True)
        .first()
    )
    if row is None:
        raise NotFound("Ce lien n'est plus valable : le rendez-vous a été modifié ou annulé.")
    return row


async def my_bookings(who: Identity) -> list[dict[str, Any]]:
    """The resident's upcoming appointments."""
    condition: Any = None
    if who.account_id is not None:
        condition = Booking.account == who.account_id
    if who.device_id is not None:
        by_device = Booking.device == who.device_id
        condition = by_device if condition is None else condition | by_device
    if condition is None:
        return []
    return (
        await Booking.select()
        .where(
            condition
            & Booking.status.is_in(["held", "confirmed"])
            & (Booking.starts_at > datetime.now(UTC))
        )
        .order_by(Booking.starts_at)
        .output(load_json=True)
    )
