"""Reports: demandes with a place and photos. Photos go through the media pipeline before
anything is stored; suggestions of duplicates nearby; the public map."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from backend.database import is_postgres
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
    # All at once: the media pool decodes them on every core (Pillow releases the GIL), so a
    # report's two photos take the time of one on an idle server.
    outcomes = await asyncio.gather(
        *(process_upload(data, limits) for _, data in uploads), return_exceptions=True
    )
    processed = []
    for index, ((name, _), outcome) in enumerate(zip(uploads, outcomes, strict=True)):
        if isinstance(outcome, MediaError):
            label = f"photo {index + 1}" + (f" ({name})" if name else "")
            raise PhotoRefused(
                f"La {label} est refusée : {outcome.message}",
                errors=[FieldError(f"photos[{index}]", outcome.message)],
            ) from outcome
        if isinstance(outcome, BaseException):
            raise outcome
        processed.append(outcome)
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


def _in_ranges(
    ranges: Any,
    columns: str,
    *,
    count: bool = False,
    where: str = "",
    where_args: Sequence[Any] = (),
    sqlite_index: str = "",
) -> tuple[str, list[Any]]:
    """A subquery of ``columns`` of the demandes whose cell lies in the ranges (and, with
    ``where``, that pass those filters).

    - PostgreSQL: ``cell BETWEEN … OR cell BETWEEN …``, a bitmap of every range, then the
      table's pages in order;
    - SQLite: one index range scan per range, UNION ALL: with more than a handful of ranges
      SQLite estimates the OR dearer than reading the whole table, and reads it (two seconds for
      a countryside box on 1,000,000 demandes). ``where`` is repeated in every range's scan,
      and ``sqlite_index`` names the index it scans: one holding the filtered columns, so that
      they are checked in the index and only the rows that pass are read;
    - counting (``count``): UNION ALL on both, index only (the OR would read the table on
      PostgreSQL).
    """
    if not ranges:
        return f"SELECT {columns} FROM demande WHERE 1 = 0", []
    bounds = [bound for r in ranges for bound in (r.first, r.last)]
    if is_postgres() and not count:
        cells = " OR ".join("cell BETWEEN {} AND {}" for _ in ranges)
        filters = f" AND {where}" if where else ""
        return f"SELECT {columns} FROM demande WHERE ({cells}){filters}", [*bounds, *where_args]
    # INDEXED BY: SQLite would take the narrower plain cell index and read every row.
    indexed = f" INDEXED BY {sqlite_index}" if sqlite_index else ""
    one = f"SELECT {columns} FROM demande{indexed} WHERE cell BETWEEN {{}} AND {{}}"
    if where:
        one += f" AND {where}"
    args = [a for r in ranges for a in (r.first, r.last, *where_args)]
    return " UNION ALL ".join(one for _ in ranges), args


def _fenced(column: str) -> str:
    """``column`` behind an expression no index serves (same value: the column is NOT NULL).

    Both engines then have to reach the rows the way the query is written. Left to themselves
    they take the index of ``category`` (every pothole of the commune), ``status`` or
    ``created_at`` (to skip the sort) and read hundreds of thousands of rows instead of a few
    thousand.
    """
    return f"COALESCE({column}, {column})"


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
    columns = "id, reference, description, lat, lon, status, created_at, category, hidden, public"
    candidates, args = _in_ranges(area.cover().ranges, columns)
    statuses = list(OPEN)
    marks = ", ".join("{}" for _ in statuses)
    # Through the cell index only: the category's own index holds every report of the kind in
    # the commune (see _fenced).
    rows = await Demande.raw(
        "SELECT id, reference, description, lat, lon, status, created_at "
        f"FROM ({candidates}) AS candidates "
        f"WHERE {_fenced('category')} = {{}} AND hidden = {{}} AND public = {{}} "
        f"AND {_fenced('status')} IN ({marks})",
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


#: Edge cells aimed at when covering the map's box. The lat/lon filter is exact, so a coarse
#: coverage costs only a few more candidates, and covering a city-sized box takes ~1 ms
#: instead of ~8 ms with the default budget of 400 (small boxes get the same ranges).
MAP_EDGE_CELLS = 100
#: Below this many stored demandes in the box's cell ranges (an index-only count), the map reads
#: them all through the cell index; from it, it lets the engine walk the newest demandes
#: instead. Measured on 1,000,000 reports (tests/bench/bench_reports_map.py): a street's 4,000
#: candidates cost a third of the walk's CPU, a quarter's 27,000 no less than the walk.
MAP_SPATIAL_MAX = 10_000

_MAP_COLUMNS = "id, reference, category, status, lat, lon, created_at, updated_at"
#: The index the map scans per cell range on SQLite (tables.EXTRA_INDEXES, a migration).
MAP_CELL_INDEX = "demande_map_cell"


def _map_filters(
    commune_id: UUID | None, query: MapQuery, *, fenced: bool
) -> tuple[str, list[Any]]:
    """What the map shows: public, visible, in the box, the filters and the period."""

    def col(name: str) -> str:
        return _fenced(name) if fenced else name

    sql = "public = {} AND hidden = {} AND lat BETWEEN {} AND {} AND lon BETWEEN {} AND {}"
    params: list[Any] = [True, False, query.min_lat, query.max_lat, query.min_lon, query.max_lon]
    if commune_id is not None:
        sql += f" AND {col('commune')} = {{}}"
        params.append(commune_id)
    if query.category_id is not None:
        sql += f" AND {col('category')} = {{}}"
        params.append(query.category_id)
    if query.statuses:
        sql += f" AND {col('status')} IN (" + ", ".join("{}" for _ in query.statuses) + ")"
        params.extend(query.statuses)
    if query.max_age_days is not None:
        sql += f" AND {col('created_at')} >= {{}}"
        params.append(datetime.now(UTC) - timedelta(days=query.max_age_days))
    return sql, params


async def public_map(commune_id: UUID | None, query: MapQuery) -> tuple[list[dict[str, Any]], bool]:
    """Public, visible reports in the box (no personal data), newest first, capped.

    Returns the rows and whether the cap cut the list.

    Two ways to the same rows, chosen by how many demandes the box's cell ranges hold (an
    index-only count that stops at MAP_SPATIAL_MAX):

    - few (a street, a village, the countryside): read them all through the cell index, keep
      those shown, sort. The other indexes are fenced off (``_fenced``): left to themselves both
      engines walk created_at to skip the sort, and read the whole period for a street's dozen
      reports (0.2–2 s on 1,000,000 reports);
    - many (a quarter, a city: the cap is reached): no cell ranges at all, the engine walks the
      newest demandes (or intersects its indexes) and stops at the cap. Hundreds of OR-ed ranges
      only mislead it there: PostgreSQL then reads every demande of the city before sorting.
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
    ranges = area.cover(MAP_EDGE_CELLS).ranges
    counted, args = _in_ranges(ranges, "1", count=True)
    count = await Demande.raw(
        f"SELECT COUNT(*) AS n FROM ({counted} LIMIT {{}}) AS candidates", *args, MAP_SPATIAL_MAX
    )
    candidates = int(count[0]["n"])
    if candidates == 0:
        return [], False
    if candidates < MAP_SPATIAL_MAX:
        filters, filter_params = _map_filters(commune_id, query, fenced=True)
        if is_postgres():
            inside, params = _in_ranges(
                ranges, _MAP_COLUMNS, where=filters, where_args=filter_params
            )
            sql = (
                f"SELECT {_MAP_COLUMNS} FROM ({inside}) AS candidates "
                f"ORDER BY {_fenced('created_at')} DESC LIMIT {{}}"
            )
        else:
            # From the index alone, the rowids of the reports shown, newest first and capped;
            # then only those rows are read (a street over five years: 500 rows, not 2,600).
            inside, params = _in_ranges(
                ranges,
                "rowid AS row_id, created_at",
                where=filters,
                where_args=filter_params,
                sqlite_index=MAP_CELL_INDEX,
            )
            newest = f"SELECT row_id FROM ({inside}) ORDER BY created_at DESC LIMIT {{}}"
            sql = (
                f"SELECT {_MAP_COLUMNS} FROM demande WHERE rowid IN ({newest}) "
                f"ORDER BY {_fenced('created_at')} DESC"
            )
    else:
        filters, params = _map_filters(commune_id, query, fenced=False)
        sql = (
            f"SELECT {_MAP_COLUMNS} FROM demande WHERE {filters} "
            "ORDER BY created_at DESC LIMIT {}"
        )
    rows = await Demande.raw(sql, *params, query.limit + 1)
    return rows[: query.limit], len(rows) > query.limit
