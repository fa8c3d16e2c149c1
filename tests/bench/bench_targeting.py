"""Benchmark: crisis-alert targeting on a département-sized population, SQLite and PostgreSQL.

Run from the project root:

    .venv/bin/python -m tests.bench.bench_targeting [--devices 1000000] [--engines sqlite,postgres]

Targets (issue), measured here and never turned into timed tests:

- preview: ``alerts.targeting.reach_of`` for a commune-sized polygon (~25 km², a few hundred
  vertices, tens of thousands of devices) ≤ 50 ms median, with 1,000,000 devices;
- send: ``select_in`` + ``notify_selection`` inside ``database.transaction()`` (what
  ``send_alert`` does) for ~100,000 targeted devices ≤ 2 s median; every run's written
  deliveries are checked against the brute-force device set (untimed).

The population: N devices over Ille-et-Vilaine (lat 47.6–48.75, lon -2.3 – -1.0), a quarter in
a dense "city" around Rennes, a quarter in a dozen towns, the rest rural; half the devices follow
a second place (work: often in the city). A few hundred more devices stand exactly on the
boundaries (polygon vertices and edge midpoints, points on the circle), where "inside" is decided
by the exact test alone.

Beside each target the same run measures a brute-force baseline: every place through the exact
point-in-area test, (a) fetched from the same database by the raw driver and tested with
``area.contains_many``, and (b) from numpy arrays already in memory with one vectorised
shapely/haversine call (the fairer baseline: no database at all). The targeted device set must
equal the brute-force set (the correctness guard), or the run fails.

Each engine gets its own database: an SQLite file in a temporary folder, and a fresh PostgreSQL
database ``relais_bench_<random>`` on 127.0.0.1:5432 (user postgres), dropped at the end. Rows
are bulk-loaded (COPY / executemany, secondary indexes dropped then rebuilt), then ANALYZEd
(VACUUM ANALYZE on PostgreSQL, which index-only scans need, as autovacuum would have done).

Every target measurement runs ``--runs`` times (15) after warm-up runs; the numpy baseline too;
the DB-scan baseline (seconds a run) ``--baseline-runs`` times (3). Each send is committed, then
its rows are deleted untimed, so every run writes into the same outbox. Printed: wall-clock
median and p90, and the median CPU time (this process, SQLite's threads included, plus the
PostgreSQL backends' from /proc): on a shared machine the wall clock includes waiting for a
core, CPU time is what the work costs. The load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")

import asyncpg
import numpy as np
import numpy.typing as npt
import shapely
from geographiclib.geodesic import Geodesic
from piccolo.engine.base import Engine
from piccolo.table import create_db_tables
from shapely.geometry import Polygon

from alerts.outbox import Notification, notify_selection
from alerts.tables import int_id_of
from alerts.targeting import TargetArea, reach_of, select_in
from backend import database
from geo import Area, CircleArea, PolygonArea, cell_of_lat_lon, circle
from geo.areas import BOUNDARY_TOLERANCE_DEG, _haversine_array
from tests.bench.bench_geo_cover import commune_outline

PREVIEW_TARGET_MS = 50.0
SEND_TARGET_MS = 2000.0
PG_BASE = os.environ.get("RELAIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")

# Ille-et-Vilaine, and Rennes as the dense city.
BBOX = (47.60, -2.30, 48.75, -1.00)  # min_lat, min_lon, max_lat, max_lon
CITY = (48.1115, -1.6800)
KM_LAT = 111.195
KM_LON = KM_LAT * math.cos(math.radians(48.1))

Floats = npt.NDArray[np.float64]


# --------------------------------------------------------------------------------------------
# The population


@dataclass
class Population:
    """Every place as numpy columns; devices are numbered 0..n-1 and get UUIDs at load time."""

    devices: int
    place_device: npt.NDArray[np.int64]
    lat: Floats
    lon: Floats
    cell: npt.NDArray[np.int64]
    device_ids: list[str] = field(default_factory=list)  # str(uuid4()): both drivers take it

    @property
    def places(self) -> int:
        return int(self.lat.size)


def _gaussian(
    rng: np.random.Generator, n: int, lat: float, lon: float, sigma_km: float
) -> tuple[Floats, Floats]:
    return (
        rng.normal(lat, sigma_km / KM_LAT, n),
        rng.normal(lon, sigma_km / KM_LON, n),
    )


def _scatter(rng: np.random.Generator, n: int) -> tuple[Floats, Floats]:
    """Home positions: 25 % city (σ 5 km), 25 % in 12 towns (σ 1.5 km), 50 % rural."""
    min_lat, min_lon, max_lat, max_lon = BBOX
    kind = rng.choice(3, size=n, p=[0.25, 0.25, 0.50])
    lat = rng.uniform(min_lat, max_lat, n)
    lon = rng.uniform(min_lon, max_lon, n)
    city = kind == 0
    lat[city], lon[city] = _gaussian(rng, int(city.sum()), *CITY, 5.0)
    towns = np.column_stack(
        [
            rng.uniform(min_lat + 0.1, max_lat - 0.1, 12),
            rng.uniform(min_lon + 0.1, max_lon - 0.1, 12),
        ]
    )
    weights = rng.uniform(0.5, 2.0, 12)
    town = np.flatnonzero(kind == 1)
    which = rng.choice(12, size=town.size, p=weights / weights.sum())
    lat[town] = rng.normal(towns[which, 0], 1.5 / KM_LAT)
    lon[town] = rng.normal(towns[which, 1], 1.5 / KM_LON)
    return np.clip(lat, min_lat, max_lat), np.clip(lon, min_lon, max_lon)


def make_population(devices: int, seed: int) -> Population:
    """Homes for every device, a second place (work) for half of them: 40 % in the city."""
    rng = np.random.default_rng(seed)
    home_lat, home_lon = _scatter(rng, devices)
    second = np.flatnonzero(rng.random(devices) < 0.5)
    work_lat, work_lon = _gaussian(rng, second.size, home_lat[second], home_lon[second], 3.0)
    commute = rng.random(second.size) < 0.4
    work_lat[commute], work_lon[commute] = _gaussian(rng, int(commute.sum()), *CITY, 5.0)
    lat = np.concatenate([home_lat, np.clip(work_lat, BBOX[0], BBOX[2])])
    lon = np.concatenate([home_lon, np.clip(work_lon, BBOX[1], BBOX[3])])
    owner = np.concatenate([np.arange(devices), second])
    return Population(devices, owner, lat, lon, np.zeros(0, dtype=np.int64))


def add_boundary_devices(pop: Population, points: list[tuple[float, float]]) -> None:
    """One more device per point, its only place exactly at the point."""
    lat = np.array([p[0] for p in points])
    lon = np.array([p[1] for p in points])
    pop.place_device = np.concatenate(
        [pop.place_device, np.arange(pop.devices, pop.devices + len(points))]
    )
    pop.lat = np.concatenate([pop.lat, lat])
    pop.lon = np.concatenate([pop.lon, lon])
    pop.devices += len(points)


def polygon_boundary_points(polygon: Polygon) -> list[tuple[float, float]]:
    """Every vertex, and the midpoint of every third edge (on the lon/lat chord)."""
    coords = list(polygon.exterior.coords)[:-1]
    points = [(y, x) for x, y in coords]
    for i in range(0, len(coords), 3):
        (x0, y0), (x1, y1) = coords[i], coords[(i + 1) % len(coords)]
        points.append(((y0 + y1) / 2, (x0 + x1) / 2))
    return points


def circle_boundary_points(area: CircleArea, count: int = 200) -> list[tuple[float, float]]:
    """Points at exactly the radius (inside) and 0.5 m beyond it (outside), WGS84 geodesics."""
    points = []
    for i in range(count):
        bearing = 360.0 * i / count
        distance = area.radius_m + (0.5 if i % 2 else 0.0)
        g = Geodesic.WGS84.Direct(area.center.lat, area.center.lon, bearing, distance)
        points.append((g["lat2"], g["lon2"]))
    return points


# --------------------------------------------------------------------------------------------
# Exact brute force (in memory: the numpy baseline and the correctness reference)


def inside_mask(area: Area, lat: Floats, lon: Floats) -> npt.NDArray[np.bool_]:
    """The exact ``area.contains`` for every point, vectorised (same rules, same tolerance)."""
    if isinstance(area, PolygonArea):
        inside = np.asarray(shapely.intersects_xy(area.geometry, lon, lat), dtype=bool)
        min_lon, min_lat, max_lon, max_lat = area.geometry.bounds
        t = BOUNDARY_TOLERANCE_DEG
        doubtful = np.flatnonzero(
            ~inside
            & (lat >= min_lat - t)
            & (lat <= max_lat + t)
            & (lon >= min_lon - t)
            & (lon <= max_lon + t)
        )
        near = shapely.dwithin(area.geometry, shapely.points(lon[doubtful], lat[doubtful]), t)
        inside[doubtful] = near
        return inside
    if isinstance(area, CircleArea):
        # CircleArea.contains_many's own rules: haversine, and the ellipsoid for the doubtful.
        rough = _haversine_array(area.center.lat, area.center.lon, lat, lon)
        inside = rough <= area.radius_m * (1 - 0.007)
        doubtful = np.flatnonzero(~inside & (rough <= area.radius_m * 1.007 + 1.0))
        for i in doubtful:
            inside[i] = area.distance_m(float(lat[i]), float(lon[i])) <= area.radius_m + 1e-3
        return inside
    return np.asarray(area.contains_many(lat, lon), dtype=bool)


@dataclass(frozen=True)
class Truth:
    devices: frozenset[int]
    places: int


def brute_memory(pop: Population, area: Area) -> Truth:
    mask = inside_mask(area, pop.lat, pop.lon)
    return Truth(frozenset(np.unique(pop.place_device[mask]).tolist()), int(mask.sum()))


def brute_memory_count(pop: Population, area: Area) -> tuple[int, int]:
    """The numpy baseline as timed: one vectorised test, then distinct devices."""
    mask = inside_mask(area, pop.lat, pop.lon)
    return int(np.unique(pop.place_device[mask]).size), int(mask.sum())


def radius_for(pop: Population, devices: int) -> float:
    """The radius (10 m steps) around the city centre holding about ``devices`` devices."""
    distance = _haversine_array(CITY[0], CITY[1], pop.lat, pop.lon)
    best = np.full(pop.devices, np.inf)
    np.minimum.at(best, pop.place_device, distance)
    return float(math.ceil(np.sort(best)[devices - 1] / 10) * 10)


# --------------------------------------------------------------------------------------------
# Databases: create, bulk-load, drop


DEVICE_COLUMNS = [
    "id",
    "token_hash",
    "platform",
    "locale",
    "push_kind",
    "push_token",
    "push_p256dh",
    "push_auth",
    "quiet_start",
    "quiet_end",
    "int_id",
]
PLACE_COLUMNS = ["id", "device", "kind", "label", "lat", "lon", "cell", "device_int_id"]


def device_rows(pop: Population, seed: int) -> list[tuple[Any, ...]]:
    """Realistic rows: 60 % FCM tokens, 30 % Web Push subscriptions, 10 % inbox only."""
    rng = np.random.default_rng(seed + 1)
    n = pop.devices
    kinds = rng.choice(3, size=n, p=[0.6, 0.3, 0.1])
    locales = rng.choice(["fr", "fr", "fr", "fr", "fr", "fr", "fr", "fr", "en", "de"], size=n)
    quiet = rng.random(n) < 0.15
    blob = os.urandom(160 * n).hex()
    hashes = os.urandom(32 * n).hex()
    rows: list[tuple[Any, ...]] = []
    for i, device_id in enumerate(pop.device_ids):
        kind = int(kinds[i])
        token = blob[i * 320 : i * 320 + 152]
        if kind == 0:
            push = ("fcm", token, None, None)
            platform = "android" if i % 3 else "ios"
        elif kind == 1:
            push = (
                "webpush",
                "https://fcm.googleapis.com/fcm/send/" + token,
                token[:87],
                token[:22],
            )
            platform = "web"
        else:
            push = (None, None, None, None)
            platform = "android"
        q = ("22:00", "07:00") if quiet[i] else (None, None)
        rows.append(
            (
                device_id,
                hashes[i * 64 : i * 64 + 64],
                platform,
                str(locales[i]),
                *push,
                *q,
                int_id_of(device_id),
            )
        )
    return rows


def place_rows(pop: Population) -> list[tuple[Any, ...]]:
    ids = pop.device_ids
    int_ids = [int_id_of(i) for i in ids]
    first = np.zeros(pop.devices, dtype=bool)
    rows: list[tuple[Any, ...]] = []
    for owner, lat, lon, cell in zip(
        pop.place_device.tolist(),
        pop.lat.tolist(),
        pop.lon.tolist(),
        pop.cell.tolist(),
        strict=True,
    ):
        label = "Travail" if first[owner] else "Maison"
        first[owner] = True
        rows.append((str(uuid.uuid4()), ids[owner], "place", label, lat, lon, cell, int_ids[owner]))
    return rows


async def secondary_indexes(engine: Engine, tables: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, DDL) of the plain indexes on ``tables`` (not those backing constraints)."""
    names = ", ".join(f"'{t}'" for t in tables)
    if database.is_postgres(engine):
        rows = await engine.run_ddl(
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes i "
            f"WHERE tablename IN ({names}) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))"
            "::regclass)"
        )
    else:
        rows = await engine.run_ddl(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({names})"
        )
    return [(r["name"], r["sql"]) for r in rows]


async def load(
    engine: Engine,
    sqlite_path: Path | None,
    pg_url: str | None,
    pop: Population,
    devices: list[tuple[Any, ...]],
    places: list[tuple[Any, ...]],
) -> dict[str, float]:
    """Bulk-load devices and places with secondary indexes dropped, then rebuild and ANALYZE."""
    timings: dict[str, float] = {}
    indexes = await secondary_indexes(engine, ("device", "place"))
    for name, _ in indexes:
        await engine.run_ddl(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    if sqlite_path is not None:
        conn = sqlite3.connect(sqlite_path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("BEGIN")
        cols = ", ".join(DEVICE_COLUMNS)
        marks = ", ".join("?" for _ in DEVICE_COLUMNS)
        conn.executemany(f"INSERT INTO device ({cols}) VALUES ({marks})", devices)
        cols = ", ".join(PLACE_COLUMNS)
        marks = ", ".join("?" for _ in PLACE_COLUMNS)
        conn.executemany(f"INSERT INTO place ({cols}) VALUES ({marks})", places)
        conn.execute("COMMIT")
        timings["rows"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, sql in indexes:
            conn.execute(sql)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA optimize")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        timings["analyze"] = time.perf_counter() - started
    else:
        assert pg_url is not None
        conn_pg = await asyncpg.connect(pg_url)
        # The rows are consistent by construction: skip the per-row foreign-key triggers.
        await conn_pg.execute("SET session_replication_role = replica")
        await conn_pg.copy_records_to_table("device", records=devices, columns=DEVICE_COLUMNS)
        await conn_pg.copy_records_to_table("place", records=places, columns=PLACE_COLUMNS)
        timings["rows"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn_pg.execute("SET maintenance_work_mem = '512MB'")
        for _, sql in indexes:
            await conn_pg.execute(sql)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        # VACUUM sets the visibility map: index-only scans on the covering index need it (as
        # autovacuum would have done on a live database).
        await conn_pg.execute("VACUUM ANALYZE device")
        await conn_pg.execute("VACUUM ANALYZE place")
        await conn_pg.execute("VACUUM ANALYZE delivery")
        await conn_pg.execute("VACUUM ANALYZE message")
        await conn_pg.close()
        timings["analyze"] = time.perf_counter() - started
    return timings


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Timing:
    samples: list[float]
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0]
        return statistics.quantiles(self.samples, n=10, method="inclusive")[-1]

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")


CpuProbe = Callable[[], Awaitable[float]]


async def timed(
    action: Callable[[], Awaitable[Any]],
    runs: int,
    warmup: int = 2,
    after: Callable[[Any], Awaitable[None]] | None = None,
    server_cpu: CpuProbe | None = None,
) -> tuple[Timing, Any]:
    """Milliseconds of ``runs`` calls after ``warmup`` untimed ones; ``after`` runs untimed.

    Beside wall time, CPU time: this process's (SQLite works in its threads) plus, through
    ``server_cpu``, the PostgreSQL backends'. On a shared machine wall time includes waiting
    for a core; CPU time is what the work costs.
    """
    result: Any = None
    timing = Timing([])
    for i in range(warmup + runs):
        server_before = await server_cpu() if server_cpu else 0.0
        cpu_before = time.process_time()
        started = time.perf_counter()
        result = await action()
        elapsed = (time.perf_counter() - started) * 1000
        cpu = (time.process_time() - cpu_before) * 1000
        if server_cpu:
            cpu += await server_cpu() - server_before
        if i >= warmup:
            timing.samples.append(elapsed)
            timing.cpu.append(cpu)
        if after is not None:
            await after(result)
    return timing, result


@dataclass
class Row:
    engine: str
    what: str
    timing: Timing
    target_ms: float
    baseline_db: Timing
    baseline_mem: Timing
    detail: str
    ok: bool


class EngineBench:
    """One engine's database, loaded, and its measurements."""

    def __init__(
        self,
        name: str,
        engine: Engine,
        raw: Callable[[str], Awaitable[list[Any]]],
        server_cpu: CpuProbe | None,
        baseline_runs: int,
    ):
        self.name = name
        self.engine = engine
        self.raw = raw  # the raw driver: a query to a list of tuples / records
        self.server_cpu = server_cpu
        self.baseline_runs = baseline_runs

    async def brute_db(self, area: Area) -> tuple[int, int]:
        """Fetch every place, test each with ``area.contains_many``, count distinct devices."""
        rows = await self.raw("SELECT device, lat, lon FROM place")
        inside = area.contains_many([r[1] for r in rows], [r[2] for r in rows])
        devices = {r[0] for r, ok in zip(rows, inside, strict=True) if ok}
        return len(devices), sum(inside)


def backend_cpu_probe(raw: asyncpg.Connection, database_name: str) -> CpuProbe:
    """CPU milliseconds used so far by the PostgreSQL backends of ``database_name`` (but the
    probe's own), from /proc/<pid>/schedstat (nanoseconds; the server runs on this machine)."""

    async def probe() -> float:
        pids = await raw.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            database_name,
        )
        return sum(_schedstat_ns(pid) for (pid,) in pids) / 1e6

    return probe


def _schedstat_ns(pid: int) -> int:
    """Nanoseconds a process has run (0 when it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _uuid_set(values: Any) -> set[str]:
    return {str(v) for v in values}


async def run_engine(
    bench: EngineBench,
    pop: Population,
    commune: Polygon,
    send_area: CircleArea,
    runs: int,
    truth_commune: Truth,
    truth_send: Truth,
) -> list[Row]:
    rows: list[Row] = []
    ids = pop.device_ids
    expected_commune = _uuid_set(ids[i] for i in truth_commune.devices)
    expected_send = _uuid_set(ids[i] for i in truth_send.devices)

    # --- preview: reach_of for the commune polygon (a fresh area each time: cover() included)
    def preview() -> Awaitable[Any]:
        return reach_of(TargetArea(PolygonArea(commune), (), "bench"))

    timing, reach = await timed(preview, runs, server_cpu=bench.server_cpu)
    area = PolygonArea(commune)
    coverage = area.cover()
    candidates = await bench.raw(_count_sql(coverage.edge))
    inner_places = await bench.raw(_count_sql(coverage.inner))
    base_db, (db_devices, db_places) = await timed(
        lambda: bench.brute_db(area), bench.baseline_runs, warmup=1
    )
    base_mem, mem = await timed(_wrap(lambda: brute_memory_count(pop, area)), runs, warmup=1)
    ok = (
        reach.devices == len(expected_commune) == db_devices == mem[0]
        and reach.places == truth_commune.places == db_places == mem[1]
    )
    print(
        f"  preview  reach_of commune: {reach.devices:,} devices, {reach.places:,} places "
        f"(brute force {len(expected_commune):,} / {truth_commune.places:,}) "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    print(
        f"           coverage: edge res {coverage.edge_resolution}, {len(coverage.inner)} inner + "
        f"{len(coverage.edge)} edge ranges = {len(coverage.ranges)} merged; "
        f"{inner_places[0][0]:,} inner places, {candidates[0][0]:,} edge candidates"
    )
    rows.append(
        Row(
            bench.name,
            f"preview reach_of commune {area.area_km2:.0f} km²",
            timing,
            PREVIEW_TARGET_MS,
            base_db,
            base_mem,
            f"{reach.devices:,} dev; {len(coverage.ranges)} ranges; {candidates[0][0]:,} cand",
            ok,
        )
    )

    # --- send: what send_alert does (select_in + notify_selection) in one transaction,
    # committed; the written rows are checked and cleaned up untimed
    async def send() -> tuple[int, int, int]:
        target = TargetArea(
            circle(send_area.center.lat, send_area.center.lon, send_area.radius_m), (), "bench"
        )
        async with database.transaction():
            selection = await select_in(target)
            results = await notify_selection(
                {
                    "fr": Notification(
                        kind="alert",
                        subject="alert:bench",
                        title="Danger : inondation",
                        body="Montez dans les étages.",
                        level="danger",
                        collapse_key="bench",
                    )
                },
                selection,
            )
        return selection.places, results[0].targeted, results[0].message_id

    written: list[set[str]] = []

    async def check_and_clean(result: tuple[int, int, int]) -> None:
        message_id = result[2]
        rows = await bench.raw(f"SELECT device FROM delivery WHERE message = {message_id}")
        devices = _uuid_set(r[0] for r in rows)
        if len(devices) != len(rows):
            raise RuntimeError("a device got two deliveries")
        written.append(devices)
        await bench.raw(f"DELETE FROM delivery WHERE message = {message_id}")
        await bench.raw(f"DELETE FROM message WHERE id = {message_id}")

    timing, (sent_places, targeted, _) = await timed(
        send, runs, warmup=1, after=check_and_clean, server_cpu=bench.server_cpu
    )
    send_coverage = send_area.cover()
    candidates = await bench.raw(_count_sql(send_coverage.edge))
    base_db, db_result = await timed(
        lambda: bench.brute_db(send_area), bench.baseline_runs, warmup=1
    )
    base_mem, mem = await timed(_wrap(lambda: brute_memory_count(pop, send_area)), runs, warmup=1)
    ok = (
        all(w == expected_send for w in written)
        and targeted == len(expected_send)
        and sent_places == truth_send.places
        and db_result == (len(expected_send), truth_send.places)
        and mem == (len(expected_send), truth_send.places)
    )
    print(
        f"  send     circle {send_area.radius_m:.0f} m: {targeted:,} deliveries, "
        f"{sent_places:,} places (brute force {len(expected_send):,} / {truth_send.places:,}) "
        f"{'OK' if ok else 'MISMATCH'}"
    )
    rows.append(
        Row(
            bench.name,
            f"send {len(expected_send) / 1000:.0f}k (select_in+notify_sel.)",
            timing,
            SEND_TARGET_MS,
            base_db,
            base_mem,
            f"{targeted:,} dev; {len(send_coverage.ranges)} ranges; {candidates[0][0]:,} cand",
            ok,
        )
    )
    return rows


def _count_sql(ranges: Any) -> str:
    if not ranges:
        return "SELECT 0"
    where = " OR ".join(f"cell BETWEEN {r.first} AND {r.last}" for r in ranges)
    return f"SELECT COUNT(*) FROM place WHERE {where}"


def _wrap(function: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def run() -> Any:
        return function()

    return run


# --------------------------------------------------------------------------------------------
# Main


async def bench_sqlite(args: argparse.Namespace, ctx: dict[str, Any]) -> list[Row]:
    folder = Path(tempfile.mkdtemp(prefix="relais-bench-"))
    path = folder / "bench.sqlite3"
    try:
        engine = database.engine_from_url(f"sqlite:///{path}")
        return await _bench_engine("sqlite", engine, path, None, ctx)
    finally:
        if args.keep:
            print(f"  (kept {path})")
        else:
            shutil.rmtree(folder, ignore_errors=True)


async def bench_postgres(args: argparse.Namespace, ctx: dict[str, Any]) -> list[Row]:
    name = f"relais_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(f"{PG_BASE}/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = f"{PG_BASE}/{name}"
    try:
        engine = database.engine_from_url(url)
        return await _bench_engine("postgres", engine, None, url, ctx)
    finally:
        if args.keep:
            print(f"  (kept database {name})")
        else:
            admin = await asyncpg.connect(f"{PG_BASE}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


async def _bench_engine(
    name: str, engine: Engine, path: Path | None, url: str | None, ctx: dict[str, Any]
) -> list[Row]:
    print(f"\n[{name}]")
    await database.start(engine)
    database.bind_engine(engine)
    try:
        await create_db_tables(*database.all_tables(), if_not_exists=True)
        await database.create_extra_indexes()
        started = time.perf_counter()
        timings = await load(engine, path, url, ctx["pop"], ctx["device_rows"], ctx["place_rows"])
        print(
            f"  loaded {ctx['pop'].devices:,} devices + {ctx['pop'].places:,} places in "
            f"{time.perf_counter() - started:.1f} s (rows {timings['rows']:.1f} s, indexes "
            f"{timings['indexes']:.1f} s, analyze {timings['analyze']:.1f} s)"
        )
        if path is not None:
            print(f"  database file: {_mib(path):,.0f} MiB")
        raw_pg: asyncpg.Connection | None = None
        raw_lite: sqlite3.Connection | None = None
        if url is not None:
            raw_pg = await asyncpg.connect(url)

            async def raw(sql: str) -> list[Any]:
                assert raw_pg is not None
                return list(await raw_pg.fetch(sql))

        else:
            raw_lite = sqlite3.connect(str(path), isolation_level=None)

            async def raw(sql: str) -> list[Any]:
                assert raw_lite is not None
                return raw_lite.execute(sql).fetchall()

        probe = backend_cpu_probe(raw_pg, url.rsplit("/", 1)[1]) if raw_pg and url else None
        bench = EngineBench(name, engine, raw, probe, ctx["baseline_runs"])
        try:
            return await run_engine(
                bench,
                ctx["pop"],
                ctx["commune"],
                ctx["send_area"],
                ctx["runs"],
                ctx["truth_commune"],
                ctx["truth_send"],
            )
        finally:
            if raw_pg is not None:
                await raw_pg.close()
            if raw_lite is not None:
                raw_lite.close()
    finally:
        await database.stop(engine)


def _mib(path: Path) -> float:
    return os.path.getsize(path) / 2**20


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) + f" on {os.cpu_count()} cores"


def print_table(rows: list[Row]) -> None:
    print(
        "\nResults (ms): wall-clock median and p90 of the runs; cpu = median CPU time (this "
        "process + PostgreSQL backends);\nbrute DB = every place fetched from the database and "
        "tested with area.contains_many; brute np = every place tested\nfrom numpy arrays in "
        "memory (vectorised shapely / haversine); ratio = baseline median / median"
    )
    header = (
        f"{'engine':<9} {'measurement':<36} {'median':>8} {'p90':>8} {'cpu':>8} {'target':>9} "
        f"{'brute DB':>9} {'ratio':>7} {'brute np':>9} {'ratio':>7}  {'check':<5} detail"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        verdict = ("ok " if r.timing.median <= r.target_ms else "MISS ") + f"{r.target_ms:.0f}"
        print(
            f"{r.engine:<9} {r.what:<36} {r.timing.median:>8.1f} {r.timing.p90:>8.1f} "
            f"{r.timing.cpu_median:>8.1f} {verdict:>9} {r.baseline_db.median:>9.1f} "
            f"{r.baseline_db.median / r.timing.median:>6.1f}x {r.baseline_mem.median:>9.1f} "
            f"{r.baseline_mem.median / r.timing.median:>6.2f}x  {'ok' if r.ok else 'FAIL':<5} "
            f"{r.detail}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--baseline-runs",
        type=int,
        default=3,
        help="runs of the DB-scan brute force (seconds each; the numpy one gets --runs)",
    )
    parser.add_argument("--send-devices", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=20260)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not set(engines) <= {"sqlite", "postgres"} or min(args.runs, args.baseline_runs) < 1:
        parser.error("--engines takes sqlite and/or postgres; runs at least 1")
    return asyncio.run(_main(args, engines))


async def _main(args: argparse.Namespace, engines: list[str]) -> int:
    began = time.perf_counter()
    started = time.perf_counter()
    pop = make_population(args.devices, args.seed)
    commune = commune_outline(CITY[0] + 0.004, CITY[1] - 0.006, 25.0, seed=35, vertices=300)
    send_devices = min(args.send_devices, max(1, args.devices // 10))
    send_area = circle(CITY[0], CITY[1], radius_for(pop, send_devices))
    add_boundary_devices(pop, polygon_boundary_points(commune) + circle_boundary_points(send_area))
    pop.cell = np.array(
        [cell_of_lat_lon(a, b) for a, b in zip(pop.lat.tolist(), pop.lon.tolist(), strict=True)],
        dtype=np.int64,
    )
    pop.device_ids = [str(uuid.uuid4()) for _ in range(pop.devices)]
    ctx: dict[str, Any] = {
        "pop": pop,
        "commune": commune,
        "send_area": send_area,
        "runs": args.runs,
        "baseline_runs": args.baseline_runs,
        "truth_commune": brute_memory(pop, PolygonArea(commune)),
        "truth_send": brute_memory(pop, send_area),
        "device_rows": device_rows(pop, args.seed),
        "place_rows": place_rows(pop),
    }
    print(
        f"population: {pop.devices:,} devices, {pop.places:,} places "
        f"(generated in {time.perf_counter() - started:.1f} s); commune polygon "
        f"{PolygonArea(commune).area_km2:.1f} km², {len(commune.exterior.coords) - 1} vertices, "
        f"{len(ctx['truth_commune'].devices):,} devices inside; send circle r = "
        f"{send_area.radius_m:.0f} m, {len(ctx['truth_send'].devices):,} devices inside; "
        f"{args.runs} timed runs each ({args.baseline_runs} for the DB-scan brute force); "
        f"load average {_load()}"
    )
    rows: list[Row] = []
    for name in engines:
        runner = bench_sqlite if name == "sqlite" else bench_postgres
        rows.extend(await runner(args, ctx))
    print_table(rows)
    print(f"\ntotal {time.perf_counter() - began:.0f} s; load average at the end {_load()}")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
