"""Reports: demandes with a place and photos. Photos go through the media pipeline before
anything is stored; suggestions of duplicates nearby; the public map."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from backend.demandes.errors import PhotoRefused
from backend.demandes.statuses import OPEN
from backend.demandes.tables import Category, Demande, Photo
from backend.exceptions import FieldError, InvalidInput
from geo import GeoError, area_from_geojson, circle
from media import Limits, MediaError, MediaStorage, ProcessedImage, process_upload

MAX_PHOTOS = 5
MAP_CAP = 500


@dataclass(frozen=True)
class StoredPhotos:
    """Photos written to storage for one report, and how to take them back."""

    photos: list[dict[str, Any]]
    keys: list[str]


async def process_photos(uploads: list[tuple[str, bytes]], limits: Limits) -> list[ProcessedImage]:
    """Check and process every photo before anything is stored (all or nothing)."""
    if len(uploads) > MAX_PHOTOS:
        message = f"{MAX_PHOTOS} photos au plus par signalement."
        raise InvalidInput(message, errors=[FieldError("photos", message)])
    processed = []
    for index, (name, data) in enumerate(uploads):
        try:
            processed.append(await process_upload(data, limits))
        except MediaError as exc:
            label = f"photo {index + 1}" + (f" ({name})" if name else "")
            raise PhotoRefused(
                f"La {label} est refusée : {exc.message}",
                errors=[FieldError(f"photos[{index}]", exc.message)],
            ) from exc
    return processed


async def store_photos(storage: MediaStorage, processed: list[ProcessedImage]) -> StoredPhotos:
    """Write display sizes and thumbnails (content-addressed); removable if the report fails."""
    photos, keys = [], []
    try:
        for image in processed:
            display = await storage.put(image.display, image.content_type)
            keys.append(display.key)
            thumb = await storage.put(image.thumbnail, image.content_type)
            keys.append(thumb.key)
            photos.append(
                {
                    "display_key": display.key,
                    "thumb_key": thumb.key,
                    "width": image.width,
                    "height": image.height,
                }
            )
    except Exception:
        await discard_photos(storage, StoredPhotos(photos, keys))
        raise
    return StoredPhotos(photos, keys)


async def discard_photos(storage: MediaStorage, stored: StoredPhotos) -> None:
    """Delete stored files no row refers to (content addressing: a file may be shared)."""
    for key in stored.keys:
        used = await Photo.exists().where((Photo.display_key == key) | (Photo.thumb_key == key))
        if not used:
            await storage.delete(key)


def gps_of(processed: list[ProcessedImage]) -> tuple[float, float] | None:
    """The first photo's EXIF position, if any (a photo taken on the spot places the report)."""
    for image in processed:
        if image.gps is not None:
            return image.gps.latitude, image.gps.longitude
    return None


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def _ranges_sql(ranges: Any) -> tuple[str, list[int]]:
    parts, args = [], []
    for r in ranges:
        parts.append("cell BETWEEN {} AND {}")
        args.extend([r.first, r.last])
    return ("(" + " OR ".join(parts) + ")") if parts else "1 = 0", args


async def nearby_open(
    commune_id: UUID, category_id: UUID, lat: float, lon: float, limit: int = 5
) -> list[dict[str, Any]]:
    """Open, visible demandes of the same category within the category's radius, nearest
    first: the app offers to follow one instead of filing a duplicate."""
    category = (
        await Category.select(Category.duplicate_radius_m)
        .where((Category.id == category_id) & (Category.commune == commune_id))
        .first()
    )
    radius = float(category["duplicate_radius_m"]) if category else 250.0
    try:
        area = circle(lat, lon, radius)
    except GeoError as exc:
        raise InvalidInput(str(exc), errors=[FieldError("lat", str(exc))]) from exc
    where, args = _ranges_sql(area.cover().ranges)
    statuses = list(OPEN)
    marks = ", ".join("{}" for _ in statuses)
    rows = await Demande.raw(
        "SELECT id, reference, description, lat, lon, status, created_at FROM demande "
        f"WHERE {where} AND category = {{}} AND hidden = {{}} AND public = {{}} "
        f"AND status IN ({marks})",
        *args,
        category_id,
        False,
        True,
        *statuses,
    )
    found = []
    for row in rows:
        distance = _distance_m(lat, lon, row["lat"], row["lon"])
        if distance <= radius:
            found.append({**row, "distance_m": round(distance)})
    found.sort(key=lambda r: r["distance_m"])
    return found[:limit]


async def first_thumbs(demande_ids: list[Any]) -> dict[Any, str]:
    """The first visible photo's thumbnail key of each demande."""
    if not demande_ids:
        return {}
    rows = (
        await Photo.select(Photo.demande, Photo.thumb_key, Photo.position)
        .where(Photo.demande.is_in(demande_ids) & (Photo.redacted == False))  # noqa: E712
        .order_by(Photo.position)
    )
    thumbs: dict[Any, str] = {}
    for row in rows:
        thumbs.setdefault(row["demande"], row["thumb_key"])
    return thumbs


@dataclass(frozen=True)
class MapQuery:
    """A bounding box (lon/lat) and filters of the public map."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    category_id: UUID | None = None
    statuses: tuple[str, ...] = ()
    max_age_days: int | None = 180
    limit: int = MAP_CAP


async def public_map(commune_id: UUID | None, query: MapQuery) -> tuple[list[dict[str, Any]], bool]:
    """Public, visible reports in the box (no personal data), newest first, capped.

    Returns the rows and whether the cap cut the list.
    """
    if not (query.min_lon < query.max_lon and query.min_lat < query.max_lat):
        message = "Rectangle invalide : bbox=ouest,sud,est,nord (longitudes puis latitudes)."
        raise InvalidInput(message, errors=[FieldError("bbox", message)])
    box = {
        "type": "Polygon",
        "coordinates": [
            [
                [query.min_lon, query.min_lat],
                [query.max_lon, query.min_lat],
                [query.max_lon, query.max_lat],
                [query.min_lon, query.max_lat],
                [query.min_lon, query.min_lat],
            ]
        ],
    }
    try:
        area = area_from_geojson(box)
    except GeoError as exc:
        raise InvalidInput(str(exc), errors=[FieldError("bbox", str(exc))]) from exc
    where, args = _ranges_sql(area.cover().ranges)
    sql = (
        "SELECT id, reference, category, status, lat, lon, created_at, updated_at FROM demande "
        f"WHERE {where} AND public = {{}} AND hidden = {{}} "
        "AND lat BETWEEN {} AND {} AND lon BETWEEN {} AND {}"
    )
    params: list[Any] = [
        *args,
        True,
        False,
        query.min_lat,
        query.max_lat,
        query.min_lon,
        query.max_lon,
    ]
    if commune_id is not None:
        sql += " AND commune = {}"
        params.append(commune_id)
    if query.category_id is not None:
        sql += " AND category = {}"
        params.append(query.category_id)
    if query.statuses:
        sql += " AND status IN (" + ", ".join("{}" for _ in query.statuses) + ")"
        params.extend(query.statuses)
    if query.max_age_days is not None:
        sql += " AND created_at >= {}"
        params.append(datetime.now(UTC) - timedelta(days=query.max_age_days))
    sql += " ORDER BY created_at DESC LIMIT {}"
    params.append(query.limit + 1)
    rows = await Demande.raw(sql, *params)
    return rows[: query.limit], len(rows) > query.limit
