"""Who is inside an area: every device with a followed place inside it (boundary included),
plus the devices following a zone the area covers — each device once.

Portable on SQLite and PostgreSQL without PostGIS: places carry an H3 cell; the area's
coverage gives integer ranges of cells (`BETWEEN` on a B-tree). Cells wholly inside the area
need no further check; points in edge cells are checked exactly.

Speed (tests/bench/bench_targeting.py, 1,000,000 devices): the ranges are joined as a table
(json_each on SQLite, unnest on PostgreSQL), each one index-only range scan of place_targeting;
the preview gets the inner cells' devices back as one value holding their integer ids, read and
de-duplicated by numpy (cheaper than COUNT(DISTINCT) on either engine); only edge candidates
come back as rows, and their exact test runs in a worker thread while the database reads the
inner cells. Sending (`select_in`) leaves the inner cells' devices in the database: the outbox
inserts from the selection, so no Python object is built per device. Every query of a call
shares one connection and returns tuples, not Piccolo's dicts.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
import shapely
import shapely.geometry
from shapely.geometry import shape

from alerts.tables import Device, ZoneFollow, int_id_of
from alerts.zones import zone_area, zones_by_ids
from backend.database import current_engine, in_transaction, is_postgres
from backend.exceptions import FieldError, InvalidInput
from geo import Area, CellRange, GeoError, area_from_geojson, circle

IntIds = npt.NDArray[np.int64]
_NO_IDS: IntIds = np.zeros(0, dtype=np.int64)


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


class _Reader:
    """Raw queries on one connection, rows as tuples (Piccolo's `raw` builds a dict per row)."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self.connection = connection
        self.postgres = postgres

    async def rows(self, sql: str, *args: Any) -> Sequence[Sequence[Any]]:
        if self.postgres:
            return await self.connection.fetch(sql, *args)
        factory = self.connection.row_factory
        self.connection.row_factory = None
        try:
            async with self.connection.execute(sql, args) as cursor:
                return await cursor.fetchall()
        finally:
            self.connection.row_factory = factory

    def _ranges(self, ranges: Sequence[CellRange]) -> tuple[str, list[Any]]:
        """The ranges as a table r(lo, hi) to join: one index range scan each."""
        if self.postgres:
            return "unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)", [
                [r.first for r in ranges],
                [r.last for r in ranges],
            ]
        table = (
            "(SELECT json_extract(value, '$[0]') AS lo, json_extract(value, '$[1]') AS hi "
            "FROM json_each(?)) AS r"
        )
        return table, [json.dumps([[r.first, r.last] for r in ranges])]

    async def candidates(
        self, ranges: Sequence[CellRange], *, int_ids: bool = False
    ) -> Sequence[Sequence[Any]]:
        """(device id as text, or its int_id; lat, lon) of every place in the ranges."""
        if not ranges:
            return []
        table, args = self._ranges(ranges)
        if int_ids:
            # (On SQLite an expression: a column declared INTEGER goes through Piccolo's
            # converter, a Python call per row.)
            device = "p.device_int_id" if self.postgres else "CAST(p.device_int_id AS INTEGER)"
        else:
            device = "p.device::text" if self.postgres else "CAST(p.device AS TEXT)"
        return await self.rows(
            f"SELECT {device}, p.lat, p.lon FROM {table} "
            "JOIN place p ON p.cell BETWEEN r.lo AND r.hi",
            *args,
        )

    async def devices_in(self, ranges: Sequence[CellRange]) -> tuple[int, set[str]]:
        """How many places lie in the ranges, and their devices (ids as text)."""
        if not ranges:
            return 0, set()
        table, args = self._ranges(ranges)
        concat = "string_agg(p.device::text, ',')" if self.postgres else "group_concat(p.device)"
        rows = await self.rows(
            f"SELECT COUNT(*), {concat} FROM {table} JOIN place p ON p.cell BETWEEN r.lo AND r.hi",
            *args,
        )
        count, ids = rows[0][0], rows[0][1]
        return int(count), set(ids.split(",")) if ids else set()

    async def int_ids_in(self, ranges: Sequence[CellRange]) -> tuple[int, IntIds]:
        """How many places lie in the ranges, and their devices' int_ids as one numpy array:
        from PostgreSQL one bytea of big-endian int8, from SQLite one comma-separated string;
        no Python object per place."""
        if not ranges:
            return 0, _NO_IDS
        table, args = self._ranges(ranges)
        if self.postgres:
            ids = "string_agg(int8send(p.device_int_id), ''::bytea)"
        else:
            ids = "group_concat(p.device_int_id)"
        rows = await self.rows(
            f"SELECT COUNT(*), {ids} FROM {table} JOIN place p ON p.cell BETWEEN r.lo AND r.hi",
            *args,
        )
        count, found = rows[0][0], rows[0][1]
        if not found:
            return int(count), _NO_IDS
        if self.postgres:
            return int(count), np.frombuffer(found, dtype=">i8").astype(np.int64)
        return int(count), np.fromstring(found, dtype=np.int64, sep=",")

    async def count_in(self, ranges: Sequence[CellRange]) -> int:
        """How many places lie in the ranges (an index-only count)."""
        if not ranges:
            return 0
        table, args = self._ranges(ranges)
        rows = await self.rows(
            f"SELECT COUNT(*) FROM {table} JOIN place p ON p.cell BETWEEN r.lo AND r.hi", *args
        )
        return int(rows[0][0])

    async def recipients(self, device_ids: list[str]) -> list[Recipient]:
        """The recipients for these device ids (text), read in id order."""
        if not device_ids:
            return []
        if self.postgres:
            rows = await self.rows(
                "SELECT id, push_kind, quiet_start, quiet_end, locale FROM device "
                "WHERE id = ANY($1::uuid[])",
                device_ids,
            )
        else:
            rows = await self.rows(
                "SELECT d.id, d.push_kind, d.quiet_start, d.quiet_end, d.locale "
                "FROM json_each(?) AS j JOIN device d ON d.id = j.value",
                json.dumps(device_ids),
            )
        return [Recipient(*row) for row in rows]


@asynccontextmanager
async def _reading() -> AsyncIterator[_Reader]:
    """One connection for all the queries of a call: the caller's transaction's, or a read
    transaction of our own (one snapshot; on SQLite one connection instead of one per query).

    PostgreSQL's JIT is switched off meanwhile: the planner cannot size a join on an array of
    ranges and would spend tens of milliseconds compiling a query that runs in a few.
    """
    engine = current_engine()
    postgres = is_postgres(engine)
    outer = engine.current_transaction.get()
    if outer is not None:
        reader = _Reader(outer.connection, postgres)
        if not postgres:
            yield reader
            return
        previous = await outer.connection.fetchval("SELECT current_setting('jit')")
        await outer.connection.execute("SET LOCAL jit = off")
        yield reader  # (after an error the transaction is aborted, and rolls the setting back)
        await outer.connection.execute("SELECT set_config('jit', $1, true)", previous)
        return
    async with engine.transaction() as transaction:
        connection = transaction.connection
        if postgres:
            await connection.execute("SET LOCAL jit = off")
        yield _Reader(connection, postgres)


def _exact_test(area: Area, candidates: Sequence[Sequence[Any]]) -> asyncio.Future[list[bool]]:
    """Start the exact test of the edge candidates (device, lat, lon) in a worker thread: it runs
    while the database reads the inner cells (GEOS and the database release the GIL)."""
    if not candidates:
        done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        done.set_result([])
        return done
    lats, lons = [r[1] for r in candidates], [r[2] for r in candidates]
    return asyncio.ensure_future(asyncio.to_thread(area.contains_many, lats, lons))


async def _covered_zone_followers(reader: _Reader, target: TargetArea) -> list[dict[str, Any]]:
    """Followers of the zones the alert names, or of zones lying wholly inside its area.

    The zones within the area's box are read raw on the call's connection (most areas hold
    none: that costs a fraction of a millisecond, where a Piccolo query costs several).
    """
    zone_ids = set(target.zone_ids)
    box = target.area.bbox()
    marks = ("$1", "$2", "$3", "$4") if reader.postgres else ("?", "?", "?", "?")
    candidates = await reader.rows(
        f"SELECT id, geometry FROM zone WHERE min_lat >= {marks[0]} AND max_lat <= {marks[1]} "
        f"AND min_lon >= {marks[2]} AND max_lon <= {marks[3]}",
        box.min_lat,
        box.max_lat,
        box.min_lon,
        box.max_lon,
    )
    if candidates:
        area_shape = shape(target.area.to_geojson())
        shapely.prepare(area_shape)
        for zone_id, geometry in candidates:
            zone = _uuid(zone_id)
            if zone not in zone_ids:
                data = json.loads(geometry) if isinstance(geometry, str | bytes) else geometry
                if area_shape.covers(shape(data)):
                    zone_ids.add(zone)
    if not zone_ids:
        return []
    return await ZoneFollow.raw(
        "SELECT DISTINCT d.id AS device, d.push_kind, d.quiet_start, d.quiet_end, d.locale "
        "FROM zone_follow f JOIN device d ON d.id = f.device WHERE f.zone IN ("
        + ", ".join("{}" for _ in zone_ids)
        + ")",
        *zone_ids,
    )


@dataclass(frozen=True)
class DeviceSelection:
    """The devices an area reaches, left in the database for an INSERT … SELECT: the places in
    the inner cell ranges, plus listed devices (exact hits in edge cells, zone followers).

    Sending to 100,000 devices so never builds a Python object per device: only the edge
    candidates (a few percent) come back for the exact test.
    """

    inner: tuple[CellRange, ...]
    listed: tuple[str, ...]  # device ids as text
    places: int

    def subquery(self, postgres: bool, first_param: int = 1) -> tuple[str, list[Any]]:
        """`SELECT device …` (each device once) and its arguments; PostgreSQL parameters are
        numbered from `first_param`."""
        if postgres:
            n = first_param
            parts = [f"SELECT unnest(${n}::uuid[]) AS device"]
            args: list[Any] = [list(self.listed)]
            if self.inner:
                parts.append(
                    f"SELECT p.device FROM unnest(${n + 1}::bigint[], ${n + 2}::bigint[]) "
                    "AS r(lo, hi) JOIN place p ON p.cell BETWEEN r.lo AND r.hi"
                )
                args += [[r.first for r in self.inner], [r.last for r in self.inner]]
            return " UNION ".join(parts), args
        parts = ["SELECT value AS device FROM json_each(?)"]
        args = [json.dumps(self.listed)]
        if self.inner:
            parts.append(
                "SELECT p.device FROM (SELECT json_extract(value, '$[0]') AS lo, "
                "json_extract(value, '$[1]') AS hi FROM json_each(?)) AS r "
                "JOIN place p ON p.cell BETWEEN r.lo AND r.hi"
            )
            args.append(json.dumps([[r.first, r.last] for r in self.inner]))
        return " UNION ".join(parts), args


async def select_in(target: TargetArea) -> DeviceSelection:
    """The devices inside the area (boundary included) and zone followers, as a selection the
    outbox inserts from; the exact test runs on the edge candidates only."""
    coverage = target.area.cover()
    async with _reading() as reader:
        candidates = await reader.candidates(coverage.edge)
        exact = _exact_test(target.area, candidates)
        try:
            inner_places = await reader.count_in(coverage.inner)
            followers = await _covered_zone_followers(reader, target)
            inside = await exact
        finally:
            exact.cancel()
    listed = {row[0] for row, ok in zip(candidates, inside, strict=True) if ok}
    listed.update(str(row["device"]) for row in followers)
    return DeviceSelection(tuple(coverage.inner), tuple(sorted(listed)), inner_places + sum(inside))


async def recipients_of_selection(selection: DeviceSelection) -> list[Recipient]:
    """The recipients of a selection, read in device order (for notify's per-device rules)."""
    async with _reading() as reader:
        sub, args = selection.subquery(reader.postgres)
        rows = await reader.rows(
            "SELECT d.id, d.push_kind, d.quiet_start, d.quiet_end, d.locale "
            f"FROM ({sub}) AS t JOIN device d ON d.id = t.device ORDER BY d.id",
            *args,
        )
    return [Recipient(_uuid(row[0]), *row[1:]) for row in rows]


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


async def recipients_in(target: TargetArea) -> tuple[list[Recipient], int]:
    """Every device to notify for the area (each once), and the number of places inside."""
    coverage = target.area.cover()
    async with _reading() as reader:
        candidates = await reader.candidates(coverage.edge)
        exact = _exact_test(target.area, candidates)
        try:
            inner_places, inner_devices = await reader.devices_in(coverage.inner)
            recipients = await reader.recipients(sorted(inner_devices))
            inside = await exact
        finally:
            exact.cancel()  # (a no-op once done)
        edge_devices = {row[0] for row, ok in zip(candidates, inside, strict=True) if ok}
        recipients += await reader.recipients(sorted(edge_devices - inner_devices))
        followers = await _covered_zone_followers(reader, target)
    if followers:
        known = {r.device_id for r in recipients}
        for row in followers:
            if row["device"] not in known:
                known.add(row["device"])
                recipients.append(_recipient(row))
    return recipients, inner_places + sum(inside)


def _recipient(row: dict[str, Any]) -> Recipient:
    return Recipient(
        row["device"], row["push_kind"], row["quiet_start"], row["quiet_end"], row["locale"]
    )


async def reach_of(target: TargetArea) -> Reach:
    """Preview: how many devices and places the area reaches, without reading the devices.

    The devices of the places inside (and of zone followers) are counted once each, by their
    `int_id` (unique, and on every place): the inner cells' come back as one value (bytes on
    PostgreSQL, a string on SQLite) that numpy reads into an array, sorted to count each id once
    (cheaper than COUNT(DISTINCT) on either engine, and than a Python set). Outside a caller's
    transaction that read runs on a connection of its own, while the edge candidates are read
    and tested exactly (in a worker thread): 6 to 12 ms less on SQLite, where both connections
    work in threads of their own (tests/bench/bench_targeting.py). The two reads are then two
    snapshots a few milliseconds apart, which a preview can afford (sending reads one).
    """
    coverage = target.area.cover()
    inner_read = None
    if not in_transaction():
        inner_read = asyncio.ensure_future(_inner_int_ids(coverage.inner))
    try:
        async with _reading() as reader:
            candidates = await reader.candidates(coverage.edge, int_ids=True)
            exact = _exact_test(target.area, candidates)
            try:
                if inner_read is None:
                    inner_places, inner = await reader.int_ids_in(coverage.inner)
                followers = await _covered_zone_followers(reader, target)
                inside = await exact
            finally:
                exact.cancel()
        if inner_read is not None:
            inner_places, inner = await inner_read
    finally:
        if inner_read is not None:
            inner_read.cancel()  # (a no-op once done)
    edge = [row[0] for row, ok in zip(candidates, inside, strict=True) if ok]
    edge += [int_id_of(row["device"]) for row in followers]
    return Reach(
        devices=_distinct(np.concatenate([inner, np.array(edge, dtype=np.int64)])),
        places=inner_places + sum(inside),
    )


async def _inner_int_ids(ranges: Sequence[CellRange]) -> tuple[int, IntIds]:
    """`int_ids_in` on a read transaction of its own."""
    async with _reading() as reader:
        return await reader.int_ids_in(ranges)


def _distinct(ids: IntIds) -> int:
    """How many different values: sorted in place, then each change counted (numpy's
    `unique` does more work than that)."""
    if not ids.size:
        return 0
    ids.sort()
    return 1 + int(np.count_nonzero(ids[1:] != ids[:-1]))


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
