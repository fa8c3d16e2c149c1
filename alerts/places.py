"""Places a device follows: named points ("home", "work"), and an opt-in live position.

Only the latest live position is kept (no location trail), and it is forgotten after a while.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from alerts.tables import Place
from backend.database import transaction
from backend.exceptions import DomainError, FieldError, InvalidInput, NotFound
from geo import Geocoder, GeocodingUnavailable, GeoError, GeoPoint, cell_of, require_in_france

MAX_PLACES = 10
LIVE_RETENTION = timedelta(hours=48)


class GeocoderDown(DomainError):
    """The address service did not answer."""

    status, code, title = 503, "geocoder-unavailable", "Service d'adresses indisponible"


def checked_point(lat: float, lon: float, field: str = "lat") -> GeoPoint:
    """A point in France, or InvalidInput naming the field."""
    try:
        point = GeoPoint(lat, lon)
        require_in_france(point)
    except GeoError as exc:
        raise InvalidInput(str(exc), errors=[FieldError(field, str(exc))]) from exc
    return point


async def resolve_point(
    lat: float | None, lon: float | None, address: str | None, geocoder: Geocoder
) -> tuple[GeoPoint, str]:
    """A point from coordinates, or from an address geocoded (BAN by default)."""
    if lat is not None and lon is not None:
        return checked_point(lat, lon), address or ""
    if not address:
        message = "Indiquez une position (latitude et longitude) ou une adresse."
        raise InvalidInput(message, errors=[FieldError("address", message)])
    try:
        found = await geocoder.geocode(address)
    except GeocodingUnavailable as exc:
        raise GeocoderDown(
            "Le service d'adresses ne répond pas. Placez le point sur la carte, ou réessayez "
            "dans quelques minutes."
        ) from exc
    if found is None:
        message = "Adresse introuvable. Vérifiez-la ou placez le point sur la carte."
        raise InvalidInput(message, errors=[FieldError("address", message)])
    return checked_point(found.lat, found.lon, "address"), found.label


async def add_place(device_id: UUID, label: str, point: GeoPoint, address: str) -> dict[str, Any]:
    """Follow a new place (at most MAX_PLACES per device)."""
    async with transaction():
        count = await Place.count().where((Place.device == device_id) & (Place.kind == "place"))
        if count >= MAX_PLACES:
            message = f"Vous suivez déjà {MAX_PLACES} lieux : supprimez-en un pour en ajouter."
            raise InvalidInput(message)
        place = Place(
            device=device_id,
            kind="place",
            label=label.strip() or "Lieu",
            lat=point.lat,
            lon=point.lon,
            cell=cell_of(point),
            address=address,
        )
        await place.save()
    return await get_place(device_id, place.id)


async def get_place(device_id: UUID, place_id: UUID) -> dict[str, Any]:
    """One place of the device, or NotFound (another device's places are invisible)."""
    row = await Place.select().where((Place.id == place_id) & (Place.device == device_id)).first()
    if row is None:
        raise NotFound("Ce lieu est introuvable.")
    return row


async def list_places(device_id: UUID) -> list[dict[str, Any]]:
    """The device's places, live position included, oldest first."""
    return await Place.select().where(Place.device == device_id).order_by(Place.created_at)


async def delete_place(device_id: UUID, place_id: UUID) -> None:
    """Stop following a place."""
    await get_place(device_id, place_id)
    await Place.delete().where((Place.id == place_id) & (Place.device == device_id))


async def set_live_position(device_id: UUID, point: GeoPoint) -> dict[str, Any]:
    """Replace the device's live position: only the latest one is ever stored."""
    now = datetime.now(UTC)
    async with transaction():
        await Place.delete().where((Place.device == device_id) & (Place.kind == "live"))
        place = Place(
            device=device_id,
            kind="live",
            label="Position actuelle",
            lat=point.lat,
            lon=point.lon,
            cell=cell_of(point),
            created_at=now,
            updated_at=now,
        )
        await place.save()
    return await get_place(device_id, place.id)


async def clear_live_position(device_id: UUID) -> None:
    """Forget the live position (the resident turned sharing off)."""
    await Place.delete().where((Place.device == device_id) & (Place.kind == "live"))


async def purge_stale_live_positions(now: datetime | None = None) -> int:
    """Forget live positions older than LIVE_RETENTION (RGPD: no lingering location)."""
    cutoff = (now or datetime.now(UTC)) - LIVE_RETENTION
    deleted = (
        await Place.delete()
        .where((Place.kind == "live") & (Place.updated_at < cutoff))
        .returning(Place.id)
    )
    return len(deleted)
