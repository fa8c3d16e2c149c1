"""Who is inside an area: every device with a followed place inside it (boundary included),
plus the devices following a zone the area covers — each device once.

Portable on SQLite and PostgreSQL without PostGIS: places carry an H3 cell; the area's
coverage gives integer ranges of cells (`BETWEEN` on a B-tree). Cells wholly inside the area
need no further check; points in edge cells are checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import shapely
import shapely.geometry
from shapely.geometry import shape

from alerts.tables import Device, Place, ZoneFollow
from alerts.zones import zone_area, zones_by_ids
from backend.exceptions import FieldError, InvalidInput
from geo import Area, CellRange, GeoError, area_from_geojson, circle


@dataclass(frozen=True)
class Recipient:
    """A targeted device and what delivery needs to know about it."""

    device_id: UUID
    push_kind: str | None
    quiet_start: str | None = None
    quiet_end: str | None = None
    locale: str = "fr"


@dataclass(frozen=True)
class TargetArea:
    """An alert's area, resolved: exact geometry, the zones it names, a description."""

    area: Area
    zone_ids: tuple[UUID, ...]
    description: str
    zone_geometries: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class Reach:
    """How many devices (and followed places) an area reaches."""

    devices: int
    places: int


def _invalid(message: str, field_name: str = "area") -> InvalidInput:
    return InvalidInput(message, errors=[FieldError(field_name, message)])


async def resolve_area(spec: dict[str, Any], commune_id: UUID | None) -> TargetArea:
    """Turn an area as staff drew it into a TargetArea.

    `spec["kind"]`: "polygon" / "multipolygon" (a GeoJSON `geometry`), "circle" (`center`
    {lat, lon} and `radiusM`), "zones" (`zoneIds`), or "commune" (the commune's own zone).
    """
    kind = spec.get("kind")
    try:
        if kind in {"polygon", "multipolygon"}:
            geometry = spec.get("geometry") or {}
            expected = "Polygon" if kind == "polygon" else "MultiPolygon"
            if geometry.get("type") != expected:
                raise _invalid(f"La géométrie doit être un {expected} GeoJSON.", "area.geometry")
            area = area_from_geojson(geometry)
            return TargetArea(area, (), spec.get("description") or "Zone dessinée")
        if kind == "circle":
            center = spec.get("center") or {}
            area = circle(float(center["lat"]), float(center["lon"]), float(spec["radiusM"]))
            description = spec.get("description") or f"Rayon de {int(spec['radiusM'])} m"
            return TargetArea(area, (), description)
    except GeoError as exc:
        raise _invalid(str(exc)) from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise _invalid("Cercle incomplet : indiquez center.lat, center.lon et radiusM.") from exc
    if kind in {"zones", "commune"}:
        if kind == "commune":
            from alerts.tables import Zone

            rows = await Zone.select(Zone.id).where(
                (Zone.commune == commune_id) & (Zone.kind == "commune")
            )
            ids = [r["id"] for r in rows]
            if not ids:
                raise _invalid(
                    "Le contour de la commune n'est pas encore importé : importez-le "
                    "(relais import-zones --kind commune) ou dessinez la zone."
                )
        else:
            ids = [UUID(str(z)) for z in spec.get("zoneIds") or []]
            if not ids:
                raise _invalid("Choisissez au moins une zone.", "area.zoneIds")
        zones = await zones_by_ids(ids, commune_id)
        geometries = [zone_area(z) for z in zones]
        if len(geometries) == 1:
            area = geometries[0]
        else:
            union = shapely.unary_union([shape(g.to_geojson()) for g in geometries])
            area = area_from_geojson(shapely.geometry.mapping(union))
        names = ", ".join(z["name"] for z in zones)
        return TargetArea(
            area,
            tuple(z["id"] for z in zones),
            spec.get("description") or names,
            tuple(z["geometry"] for z in zones),
        )
    raise _invalid("Type de zone inconnu : polygon, multipolygon, circle, zones ou commune.")


def _ranges_clause(ranges: Sequence[CellRange], column: str) -> tuple[str, list[int]]:
    if not ranges:
        return "1 = 0", []
    parts, args = [], []
    for r in ranges:
        parts.append(f"{column} BETWEEN {{}} AND {{}}")
        args.extend([r.first, r.last])
    return "(" + " OR ".join(parts) + ")", args


async def _covered_zone_followers(target: TargetArea) -> list[dict[str, Any]]:
    """Followers of the zones the alert names, or of zones lying wholly inside its area."""
    from alerts.tables import Zone

    zone_ids = set(target.zone_ids)
    box = target.area.bbox()
    candidates = (
        await Zone.select(Zone.id, Zone.geometry)
        .where(
            (Zone.min_lat >= box.min_lat)
            & (Zone.max_lat <= box.max_lat)
            & (Zone.min_lon >= box.min_lon)
            & (Zone.max_lon <= box.max_lon)
        )
        .output(load_json=True)
    )
    area_shape = shape(target.area.to_geojson())
    shapely.prepare(area_shape)
    for zone in candidates:
        if zone["id"] not in zone_ids and area_shape.covers(shape(zone["geometry"])):
            zone_ids.add(zone["id"])
    if not zone_ids:
        return []
    return await ZoneFollow.raw(
        "SELECT DISTINCT d.id AS device, d.push_kind, d.quiet_start, d.quiet_end, d.locale "
        "FROM zone_follow f JOIN device d ON d.id = f.device WHERE f.zone IN ("
        + ", ".join("{}" for _ in zone_ids)
        + ")",
        *zone_ids,
    )


async def recipients_in(target: TargetArea) -> tuple[list[Recipient], int]:
    """Every device to notify for the area (each once), and the number of places inside."""
    coverage = target.area.cover()
    select = (
        "SELECT p.device, p.lat, p.lon, d.push_kind, d.quiet_start, d.quiet_end, d.locale "
        "FROM place p JOIN device d ON d.id = p.device WHERE "
    )
    found: dict[UUID, Recipient] = {}
    places = 0
    inner_sql, inner_args = _ranges_clause(coverage.inner, "p.cell")
    for row in await Place.raw(select + inner_sql, *inner_args):
        places += 1
        found.setdefault(row["device"], _recipient(row))
    edge_sql, edge_args = _ranges_clause(coverage.edge, "p.cell")
    edge_rows = await Place.raw(select + edge_sql, *edge_args)
    inside = target.area.contains_many([r["lat"] for r in edge_rows], [r["lon"] for r in edge_rows])
    for row, ok in zip(edge_rows, inside, strict=True):
        if ok:
            places += 1
            found.setdefault(row["device"], _recipient(row))
    for row in await _covered_zone_followers(target):
        found.setdefault(row["device"], _recipient(row))
    return list(found.values()), places


def _recipient(row: dict[str, Any]) -> Recipient:
    return Recipient(
        row["device"], row["push_kind"], row["quiet_start"], row["quiet_end"], row["locale"]
    )


async def reach_of(target: TargetArea) -> Reach:
    """Preview: how many devices and places the area reaches, counted without fetching them all.

    Inner cells are counted by the database; only edge candidates and zone followers come back
    to be checked, and the overlap between them and the inner devices is counted once.
    """
    coverage = target.area.cover()
    inner_sql, inner_args = _ranges_clause(coverage.inner, "cell")
    counted = await Place.raw(
        "SELECT COUNT(*) AS places, COUNT(DISTINCT device) AS devices FROM place "
        f"WHERE {inner_sql}",
        *inner_args,
    )
    inner_places, inner_devices = counted[0]["places"], counted[0]["devices"]
    edge_sql, edge_args = _ranges_clause(coverage.edge, "cell")
    edge_rows = await Place.raw(f"SELECT device, lat, lon FROM place WHERE {edge_sql}", *edge_args)
    inside = target.area.contains_many([r["lat"] for r in edge_rows], [r["lon"] for r in edge_rows])
    extra = {row["device"] for row, ok in zip(edge_rows, inside, strict=True) if ok}
    edge_places = sum(inside)
    extra.update(r["device"] for r in await _covered_zone_followers(target))
    overlap = 0
    ids = list(extra)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("{}" for _ in chunk)
        rows = await Place.raw(
            f"SELECT COUNT(DISTINCT device) AS n FROM place WHERE device IN ({marks}) "
            f"AND {inner_sql}",
            *chunk,
            *inner_args,
        )
        overlap += rows[0]["n"]
    return Reach(devices=inner_devices + len(extra) - overlap, places=inner_places + edge_places)


async def recipients_of_devices(device_ids: Iterable[UUID]) -> list[Recipient]:
    """Recipients for known devices (e.g. everyone who received an earlier message)."""
    ids = list(dict.fromkeys(device_ids))
    out: list[Recipient] = []
    for start in range(0, len(ids), 500):
        rows = await Device.select(
            Device.id, Device.push_kind, Device.quiet_start, Device.quiet_end, Device.locale
        ).where(Device.id.is_in(ids[start : start + 500]))
        out.extend(device_recipient(r) for r in rows)
    return out


def device_recipient(row: dict[str, Any]) -> Recipient:
    return Recipient(
        row["id"], row["push_kind"], row["quiet_start"], row["quiet_end"], row["locale"]
    )
