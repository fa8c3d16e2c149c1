"""Named zones (quartiers, communes, risk areas) and the devices that follow them."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any
from uuid import UUID

from alerts.tables import Zone, ZoneFollow
from backend.database import is_unique_violation, transaction
from backend.exceptions import Conflict, FieldError, InvalidInput, NotFound
from geo import Area, GeoError, NamedZone, PolygonArea, area_from_geojson, parse_named_zones


def _polygon_area(geometry: dict[str, Any], field: str = "geometry") -> Area:
    try:
        area = area_from_geojson(geometry)
    except GeoError as exc:
        raise InvalidInput(str(exc), errors=[FieldError(field, str(exc))]) from exc
    if not isinstance(area, PolygonArea):
        message = "Une zone doit être un polygone ou un multipolygone."
        raise InvalidInput(message, errors=[FieldError(field, message)])
    return area


def _row(commune_id: UUID | None, name: str, code: str, kind: str, area: Area) -> Zone:
    box = area.bbox()
    return Zone(
        commune=commune_id,
        name=name,
        code=code,
        kind=kind,
        geometry=area.to_geojson(),
        min_lat=box.min_lat,
        min_lon=box.min_lon,
        max_lat=box.max_lat,
        max_lon=box.max_lon,
        area_km2=area.area_km2,
        zone_key=f"{commune_id}:{code}",
    )


async def create_zone(
    commune_id: UUID, name: str, code: str, kind: str, geometry: dict[str, Any]
) -> dict[str, Any]:
    """Create a zone drawn by staff (a polygon or multipolygon in GeoJSON)."""
    zone = _row(commune_id, name.strip(), code.strip(), kind, _polygon_area(geometry))
    try:
        await zone.save()
    except Exception as exc:
        if is_unique_violation(exc):
            raise Conflict(
                "Une zone porte déjà ce code dans la commune.",
                errors=[FieldError("code", "Code déjà utilisé.")],
            ) from exc
        raise
    return await get_zone(commune_id, zone.id)


async def import_zones(
    commune_id: UUID,
    data: bytes | str | dict[str, Any],
    kind: str,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int, list[str]]:
    """Import a GeoJSON FeatureCollection of named zones; a zone with a known code is replaced.

    Returns (created, updated, problems): a broken feature is reported, not fatal.
    """
    parsed = parse_named_zones(data)
    created = updated = 0
    zones: tuple[NamedZone, ...] = parsed.zones
    for done, named in enumerate(zones, start=1):
        code = named.code or named.name
        row = _row(commune_id, named.name, code, kind, named.area)
        async with transaction():
            existing = await Zone.select(Zone.id).where(Zone.zone_key == row.zone_key).first()
            if existing is None:
                await row.save()
                created += 1
            else:
                await Zone.update(
                    {
                        Zone.name: row.name,
                        Zone.kind: kind,
                        Zone.geometry: row.geometry,
                        Zone.min_lat: row.min_lat,
                        Zone.min_lon: row.min_lon,
                        Zone.max_lat: row.max_lat,
                        Zone.max_lon: row.max_lon,
                        Zone.area_km2: row.area_km2,
                    }
                ).where(Zone.id == existing["id"])
                updated += 1
        if progress is not None:
            progress(done, len(zones))
    return created, updated, [str(p) for p in parsed.problems]


async def get_zone(commune_id: UUID | None, zone_id: UUID) -> dict[str, Any]:
    """One zone (of the commune when given), or NotFound."""
    query = Zone.select().where(Zone.id == zone_id)
    if commune_id is not None:
        query = query.where(Zone.commune == commune_id)
    row = await query.output(load_json=True).first()
    if row is None:
        raise NotFound("Cette zone est introuvable.")
    return row


async def list_zones(commune_id: UUID | None = None) -> list[dict[str, Any]]:
    """Zones by name (of one commune, or all), without their geometry."""
    query = Zone.select(
        Zone.id, Zone.commune, Zone.name, Zone.code, Zone.kind, Zone.area_km2
    ).order_by(Zone.name)
    if commune_id is not None:
        query = query.where(Zone.commune == commune_id)
    return await query


async def zones_by_ids(zone_ids: list[UUID], commune_id: UUID | None) -> list[dict[str, Any]]:
    """Zones with their geometry; every id must exist (in the commune when given)."""
    if not zone_ids:
        return []
    query = Zone.select().where(Zone.id.is_in(zone_ids))
    if commune_id is not None:
        query = query.where(Zone.commune == commune_id)
    rows = await query.output(load_json=True)
    if len(rows) != len(set(zone_ids)):
        message = "Une des zones indiquées n'existe pas."
        raise InvalidInput(message, errors=[FieldError("area.zoneIds", message)])
    return rows


@lru_cache(maxsize=256)
def _cached_area(zone_id: UUID, geometry_json: str) -> Area:
    import json

    return area_from_geojson(json.loads(geometry_json))


def zone_area(zone: dict[str, Any]) -> Area:
    """The zone's Area, cached (covering a zone costs milliseconds; zones rarely change)."""
    import json

    return _cached_area(zone["id"], json.dumps(zone["geometry"], sort_keys=True))


async def follow_zone(device_id: UUID, zone_id: UUID) -> None:
    """The device follows the zone (idempotent)."""
    await get_zone(None, zone_id)
    key = f"{device_id}:{zone_id}"
    if not await ZoneFollow.exists().where(ZoneFollow.follow_key == key):
        try:
            await ZoneFollow.insert(ZoneFollow(device=device_id, zone=zone_id, follow_key=key))
        except Exception as exc:
            if not is_unique_violation(exc):  # a concurrent identical follow is fine
                raise


async def unfollow_zone(device_id: UUID, zone_id: UUID) -> None:
    """The device stops following the zone."""
    await ZoneFollow.delete().where(ZoneFollow.follow_key == f"{device_id}:{zone_id}")


async def followed_zones(device_id: UUID) -> list[dict[str, Any]]:
    """The zones the device follows."""
    ids = [
        r["zone"]
        for r in await ZoneFollow.select(ZoneFollow.zone).where(ZoneFollow.device == device_id)
    ]
    if not ids:
        return []
    return (
        await Zone.select(Zone.id, Zone.commune, Zone.name, Zone.code, Zone.kind, Zone.area_km2)
        .where(Zone.id.is_in(ids))
        .order_by(Zone.name)
    )
