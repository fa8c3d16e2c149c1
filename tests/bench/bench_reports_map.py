"""Benchmark: the public map's bounding-box query over 1,000,000 reports, SQLite and PostgreSQL.

Run from the project root:

    .venv/bin/python -m tests.bench.bench_reports_map [--reports 1000000] [--runs 21]
        [--engines sqlite,postgres] [--explain] [--keep]

Target (issue), measured and printed here, never turned into a timed test: a bounding-box
query over 1,000,000 reports returns in ≤ 30 ms median, on SQLite and on PostgreSQL.

The data: N demandes over Ille-et-Vilaine (lat 47.6–48.75, lon -2.3 – -1.0) — 40 % in and
around Rennes (half σ 1.5 km around the centre, half σ 4 km), 25 % in a dozen towns (σ 1.2 km),
35 % rural — in 14 communes with 9 categories each (6 shown on the public map, so about 2/3 of
the reports are public), 1.5 % hidden by moderation, five years of history growing over time
(≈ 19 % in the last 180 days), statuses following the age (recent ones open, old ones resolved
or closed). Rows are stored in creation order, as a live table stores them (the newest reports
share the last pages), bulk-loaded (COPY / executemany, secondary indexes dropped then rebuilt)
and ANALYZEd; created once per engine in its own database (a temporary SQLite file; a fresh
PostgreSQL database ``relais_bench_<random>`` on 127.0.0.1:5432, dropped at the end).

Measured for each box and filter set, interleaved run by run so all see the same machine:

- ``public_map`` — the real service function (cover of the box, its SQL, Piccolo's raw query
  and row conversion), ``--runs`` runs: median and p90; the "path" column says which way it
  went (``cells``: every demande in the box's cell ranges; ``walk``: newest first);
- two baselines through the same Piccolo raw query, for ``--naive-runs`` of those runs:
  *naive*, the same filters with only ``lat BETWEEN … AND lon BETWEEN …`` (no cell ranges),
  whatever plan the engine picks; *original*, ``public_map`` as first written (every cell range
  OR-ed, plain filters, the engine picks the plan);
- ``nearby_open`` (duplicates within 250 m) at three places, beside its first version;
- the full HTTP path (``GET /api/v1/reports/map`` through the app, httpx ASGI transport) for two
  boxes, to show what the handler and the GeoJSON serialisation add.

Correctness guard: for every case the rows of ``public_map`` must equal, in order, the naive
query's, the original's, and a numpy brute force over the generated columns (public, not
hidden, inside the box, filters, newest first, capped), and the "truncated" flags must agree;
nearby_open must find the 5 nearest of the original's rows within 250 m; else the run fails.

The shipped schema includes the map's indexes (``backend.demandes.tables.EXTRA_INDEXES``:
``demande_map_cell`` for the cell ranges, ``demande_map`` and ``demande_map_category`` for the
walk), which the set-up creates like every secondary index and rebuilds after the bulk load.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import logging
import math
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
# The app's var/ (secret key, media): a temporary folder of this run, never the project's.
os.environ["RELAIS_VAR_DIR"] = os.path.join(
    tempfile.gettempdir(), f"relais-bench-map-{os.getpid()}"
)

import asyncpg
import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt
from piccolo.engine.base import Engine
from piccolo.table import create_db_tables

from backend import database
from backend.demandes import reports
from backend.demandes.categories import create_category
from backend.demandes.reports import MAP_CAP, MapQuery, nearby_open, public_map
from backend.demandes.statuses import OPEN
from backend.demandes.tables import Demande
from backend.organisation import service as organisation
from backend.settings import load_settings
from geo import STORAGE_RESOLUTION, area_from_geojson, circle
from tests.http import http_client

_VAR = Path(os.environ["RELAIS_VAR_DIR"])
TARGET_MS = 30.0
PG_BASE = os.environ.get("RELAIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")

# Ille-et-Vilaine, and Rennes as the dense city.
DEPT = (47.60, -2.30, 48.75, -1.00)  # min_lat, min_lon, max_lat, max_lon
CITY = (48.1115, -1.6800)
KM_LAT = 111.195
KM_LON = KM_LAT * math.cos(math.radians(48.1))
HISTORY_DAYS = 5 * 365
#: Ages (days) used as cut-offs by the cases: no generated report lies within 2 h of one, so
#: the database's "now" and the brute force's "now" (a few minutes apart) select the same rows.
CUTOFF_DAYS = (30, 180, 365)

# (name, share of reports, shown on the public map)
CATEGORIES = [
    ("Nid-de-poule", 0.20, True),
    ("Dépôt sauvage", 0.15, True),
    ("Tag ou graffiti", 0.12, True),
    ("Éclairage public", 0.10, True),
    ("Mobilier urbain", 0.06, True),
    ("Espaces verts", 0.04, True),
    ("Bruit et voisinage", 0.13, False),
    ("Stationnement gênant", 0.12, False),
    ("Autre demande", 0.08, False),
]
STATUSES = [
    "received",
    "acknowledged",
    "in_progress",
    "resolved",
    "rejected",
    "duplicate",
    "closed",
]
TOWNS = 12
COMMUNES = 1 + TOWNS + 1  # Rennes, the towns, one rural commune for the countryside
DESCRIPTIONS = [
    "Nid-de-poule profond sur la chaussée, dangereux pour les vélos et les deux-roues.",
    "Dépôt sauvage de sacs et d'encombrants au pied des conteneurs depuis plusieurs jours.",
    "Tag sur la façade de l'école, côté rue, environ deux mètres de large.",
    "Lampadaire éteint depuis une semaine, la rue est complètement dans le noir le soir.",
    "Banc cassé près de l'arrêt de bus, une latte manque et une autre est fendue.",
    "Branche tombée sur le trottoir après le coup de vent, le passage est bloqué.",
    "Voiture garée sur le trottoir tous les matins, les poussettes passent sur la route.",
    "Musique très forte tous les soirs après 23 h dans le parc.",
    "Plaque d'égout qui claque au passage des voitures, bruit toute la nuit.",
    "Marquage du passage piéton effacé devant la boulangerie.",
]
STREETS = [
    "rue de Paris",
    "boulevard de la Liberté",
    "place Sainte-Anne",
    "rue de Brest",
    "avenue Janvier",
    "rue Saint-Hélier",
    "chemin des Prés",
    "route de Lorient",
]

Floats = npt.NDArray[np.float64]
BBox = tuple[float, float, float, float]  # west, south, east, north
Ints = npt.NDArray[np.int64]


# --------------------------------------------------------------------------------------------
# The reports, as numpy columns (the brute force reads these)


@dataclass
class Reports:
    """Every report as numpy columns, in creation order (the order a live table stores them)."""

    lat: Floats
    lon: Floats
    cell: Ints
    commune: Ints  # 0 = Rennes
    category: Ints  # index in CATEGORIES
    status: Ints  # index in STATUSES
    public: npt.NDArray[np.bool_]
    hidden: npt.NDArray[np.bool_]
    created: Ints  # epoch microseconds (never a whole second: see _timestamps)
    ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return int(self.lat.size)


def make_reports(n: int, seed: int, now: float) -> Reports:
    rng = np.random.default_rng(seed)
    min_lat, min_lon, max_lat, max_lon = DEPT
    kind = rng.choice(3, size=n, p=[0.40, 0.25, 0.35])
    lat = rng.uniform(min_lat, max_lat, n)
    lon = rng.uniform(min_lon, max_lon, n)
    commune = np.full(n, COMMUNES - 1, dtype=np.int64)
    city = np.flatnonzero(kind == 0)
    sigma = np.where(rng.random(city.size) < 0.5, 1.5, 4.0)
    lat[city] = rng.normal(CITY[0], sigma / KM_LAT)
    lon[city] = rng.normal(CITY[1], sigma / KM_LON)
    commune[city] = 0
    towns = np.column_stack(
        [
            rng.uniform(min_lat + 0.1, max_lat - 0.1, TOWNS),
            rng.uniform(min_lon + 0.1, max_lon - 0.1, TOWNS),
        ]
    )
    weights = rng.uniform(0.5, 2.0, TOWNS)
    town = np.flatnonzero(kind == 1)
    which = rng.choice(TOWNS, size=town.size, p=weights / weights.sum())
    lat[town] = rng.normal(towns[which, 0], 1.2 / KM_LAT)
    lon[town] = rng.normal(towns[which, 1], 1.2 / KM_LON)
    commune[town] = 1 + which
    lat = np.clip(lat, min_lat, max_lat)
    lon = np.clip(lon, min_lon, max_lon)

    shares = np.array([c[1] for c in CATEGORIES])
    category = rng.choice(len(CATEGORIES), size=n, p=shares / shares.sum())
    public = np.array([c[2] for c in CATEGORIES])[category]
    hidden = rng.random(n) < 0.015

    # Five years, growing: creation time density ∝ t, so age = T (1 - sqrt(u)).
    age = HISTORY_DAYS * (1 - np.sqrt(rng.random(n)))
    for cut in CUTOFF_DAYS:
        near = np.abs(age - cut) < 2 / 24
        age[near] = cut + 3 / 24
    created = np.round((now - age * 86400.0) * 1e6).astype(np.int64)
    created[created % 1_000_000 == 0] += 1

    status = np.empty(n, dtype=np.int64)
    young, middle, old = age < 7, (age >= 7) & (age < 60), age >= 60
    status[young] = rng.choice(3, size=int(young.sum()), p=[0.3, 0.5, 0.2])
    status[middle] = rng.choice(7, size=int(middle.sum()), p=[0, 0.2, 0.4, 0.3, 0.05, 0.05, 0])
    status[old] = rng.choice(7, size=int(old.sum()), p=[0, 0, 0.05, 0.3, 0.08, 0.07, 0.5])

    # Stored in creation order, as a live table is: the newest reports share the last pages.
    order = np.argsort(created, kind="stable")
    lat, lon = lat[order], lon[order]
    cell = np.fromiter(
        (h3.latlng_to_cell(a, b, STORAGE_RESOLUTION) for a, b in zip(lat, lon, strict=True)),
        dtype=np.int64,
        count=n,
    )
    hexa = os.urandom(16 * n).hex()
    ids = [
        f"{hexa[i : i + 8]}-{hexa[i + 8 : i + 12]}-{hexa[i + 12 : i + 16]}-"
        f"{hexa[i + 16 : i + 20]}-{hexa[i + 20 : i + 32]}"
        for i in range(0, 32 * n, 32)
    ]
    return Reports(
        lat,
        lon,
        cell,
        commune[order],
        category[order],
        status[order],
        public[order],
        hidden[order],
        created[order],
        ids,
    )


# --------------------------------------------------------------------------------------------
# Reference data (through the services) and bulk rows


@dataclass
class Refs:
    communes: list[uuid.UUID]
    services: list[uuid.UUID]
    categories: list[list[uuid.UUID]]  # [commune][category index]
    sla: list[int]


async def make_refs() -> Refs:
    communes, services, categories = [], [], []
    names = ["Rennes"] + [f"Bourg-{i + 1}" for i in range(TOWNS)] + ["Campagne"]
    for i, name in enumerate(names):
        commune = await organisation.create_commune(name, f"35{i + 1:03d}", phone="02 99 00 00 00")
        voirie = await organisation.create_service(commune["id"], None, {"name": "Voirie"})
        cats = []
        for position, (cat_name, _, public) in enumerate(CATEGORIES):
            row = await create_category(
                commune["id"],
                {
                    "name": cat_name,
                    "service_id": voirie["id"],
                    "needs_location": True,
                    "public": public,
                    "sla_days": 7,
                    "position": position,
                },
            )
            cats.append(row["id"])
        communes.append(commune["id"])
        services.append(voirie["id"])
        categories.append(cats)
    return Refs(communes, services, categories, [7] * len(CATEGORIES))


COLUMNS = [
    "id", "commune", "reference", "channel", "category", "description", "requester", "device",
    "contact_name", "contact_email", "contact_phone", "anonymous", "lat", "lon", "cell",
    "address", "location_source", "status", "service", "agent", "due_at", "duplicate_of",
    "rejection_reason", "public", "hidden", "reminded_at", "created_at", "updated_at",
    "resolved_at", "closed_at",
]  # fmt: skip


def _timestamps(micros: Ints) -> list[str]:
    """Timestamps written as Piccolo's SQLite adapter writes them (``str()`` of a UTC datetime:
    '2026-11-22 06:44:35.123456+00:00'), which PostgreSQL's COPY reads as well."""
    text = np.datetime_as_string(micros.astype("datetime64[us]"), unit="us")
    return [t.replace("T", " ") + "+00:00" for t in text.tolist()]


def demande_columns(data: Reports, refs: Refs) -> list[list[Any]]:
    """Every column as a list, strings where SQLite stores strings (UUIDs, timestamps).

    Vectorised: building 1,000,000 rows value by value through datetime objects takes a minute.
    """
    n = data.size
    index = np.arange(n)
    day = 86_400_000_000
    finished = np.isin(data.status, [3, 4, 5, 6])
    closed = data.status == 6
    resolved_at = data.created + (3 + index % 20) * day
    closed_at = data.created + (10 + index % 30) * day
    updated = np.where(
        closed,
        closed_at,
        np.where(finished, resolved_at, data.created + (index % 48) * 3_600_000_000),
    )
    created_text = _timestamps(data.created)
    resolved_text = _timestamps(resolved_at)
    closed_text = _timestamps(closed_at)
    finished_l, closed_l = finished.tolist(), closed.tolist()
    commune_ids = [str(c) for c in refs.communes]
    service_ids = [str(s) for s in refs.services]
    category_ids = [[str(c) for c in cats] for cats in refs.categories]
    commune_l, category_l = data.commune.tolist(), data.category.tolist()
    status_l = data.status.tolist()
    years = [t[:4] for t in created_text]
    nones = [None] * n
    empties = [""] * n
    return [
        data.ids,
        [commune_ids[c] for c in commune_l],
        [f"{y}-{i:07d}" for y, i in zip(years, range(n), strict=True)],
        ["web" if i % 5 == 0 else "app" for i in range(n)],
        [category_ids[c][k] for c, k in zip(commune_l, category_l, strict=True)],
        [DESCRIPTIONS[i % len(DESCRIPTIONS)] for i in range(n)],
        nones,
        nones,
        empties,
        empties,
        empties,
        [0] * n,
        data.lat.tolist(),
        data.lon.tolist(),
        data.cell.tolist(),
        [f"{1 + i % 120} {STREETS[i % len(STREETS)]}, 35000" for i in range(n)],
        ["pin" if i % 3 == 0 else "gps" for i in range(n)],
        [STATUSES[s] for s in status_l],
        [service_ids[c] for c in commune_l],
        nones,
        _timestamps(data.created + 7 * day),
        nones,
        ["Hors compétence communale." if s == 4 else "" for s in status_l],
        data.public.astype(np.int64).tolist(),
        data.hidden.astype(np.int64).tolist(),
        nones,
        created_text,
        _timestamps(updated),
        [t if f else None for t, f in zip(resolved_text, finished_l, strict=True)],
        [t if c else None for t, c in zip(closed_text, closed_l, strict=True)],
    ]


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, size):
        yield start, min(total, start + size)


def csv_chunk(columns: list[list[Any]], start: int, stop: int) -> bytes:
    """Rows start:stop as CSV for PostgreSQL's COPY (None and "" both empty: see NOT_NULL)."""
    out = io.StringIO()
    rows = zip(*(c[start:stop] for c in columns), strict=True)
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


#: Text columns holding empty strings: COPY must not read their empty fields as NULL.
NOT_NULL = ["contact_name", "contact_email", "contact_phone", "rejection_reason"]


async def secondary_indexes(engine: Engine, table: str) -> list[tuple[str, str]]:
    """(name, DDL) of the plain indexes on ``table`` (not those backing constraints)."""
    if database.is_postgres(engine):
        rows = await engine.run_ddl(
            "SELECT indexname AS name, indexdef AS sql FROM pg_indexes i "
            f"WHERE tablename = '{table}' AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "WHERE c.conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))"
            "::regclass)"
        )
    else:
        rows = await engine.run_ddl(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name = '{table}'"
        )
    return [(r["name"], r["sql"]) for r in rows]


async def load(
    engine: Engine, path: Path | None, url: str | None, columns: list[list[Any]]
) -> dict[str, float]:
    """Bulk-load the demandes with secondary indexes dropped, rebuild them, ANALYZE."""
    timings: dict[str, float] = {}
    total = len(columns[0])
    indexes = await secondary_indexes(engine, "demande")
    for name, _ in indexes:
        await engine.run_ddl(f'DROP INDEX "{name}"')
    started = time.perf_counter()
    chunk = 100_000
    if path is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute("PRAGMA temp_store = MEMORY")
        conn.execute("BEGIN")
        sql = (
            f"INSERT INTO demande ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
        )
        for start, stop in chunks(total, chunk):
            conn.executemany(sql, zip(*(c[start:stop] for c in columns), strict=True))
        conn.execute("COMMIT")
        timings["rows"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, ddl in indexes:
            conn.execute(ddl)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA optimize")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        timings["analyze"] = time.perf_counter() - started
    else:
        assert url is not None
        conn_pg = await asyncpg.connect(url)
        # Consistent by construction: skip the per-row foreign-key triggers.
        await conn_pg.execute("SET session_replication_role = replica")
        for start, stop in chunks(total, chunk):
            await conn_pg.copy_to_table(
                "demande",
                source=io.BytesIO(csv_chunk(columns, start, stop)),
                columns=COLUMNS,
                format="csv",
                force_not_null=NOT_NULL,
            )
        timings["rows"] = time.perf_counter() - started
        started = time.perf_counter()
        await conn_pg.execute("SET maintenance_work_mem = '512MB'")
        for _, ddl in indexes:
            await conn_pg.execute(ddl)
        timings["indexes"] = time.perf_counter() - started
        started = time.perf_counter()
        # VACUUM sets the visibility map (as autovacuum would on a live database).
        await conn_pg.execute("VACUUM ANALYZE demande")
        await conn_pg.close()
        timings["analyze"] = time.perf_counter() - started
    return timings


# --------------------------------------------------------------------------------------------
# The cases


def box(width_km: float, height_km: float, lat: float, lon: float) -> BBox:
    """(west, south, east, north) of a width × height km box centred on (lat, lon)."""
    dlat = height_km / 2 / KM_LAT
    dlon = width_km / 2 / KM_LON
    return (lon - dlon, lat - dlat, lon + dlon, lat + dlat)


@dataclass(frozen=True)
class Case:
    name: str
    bbox: BBox
    category: int | None = None  # index in CATEGORIES, a Rennes category
    statuses: tuple[str, ...] = ()
    max_age_days: int | None = 180
    rennes_only: bool = False

    def query(self, refs: Refs) -> MapQuery:
        return MapQuery(
            *self.bbox,
            category_id=refs.categories[0][self.category] if self.category is not None else None,
            statuses=self.statuses,
            max_age_days=self.max_age_days,
        )

    def commune(self, refs: Refs) -> uuid.UUID | None:
        return refs.communes[0] if self.rennes_only else None


def cases() -> list[Case]:
    centre = (CITY[0] + 0.002, CITY[1] + 0.004)
    street = box(0.40, 0.25, *centre)
    quarter = box(1.6, 1.0, CITY[0] - 0.006, CITY[1] - 0.01)
    city = box(12.0, 8.0, *CITY)
    metro = box(30.0, 20.0, *CITY)
    rural = box(4.0, 3.0, 48.55, -1.45)
    open_ = tuple(sorted(OPEN))
    return [
        Case("street 400×250 m", street),
        Case("street, all ages", street, max_age_days=None),
        Case("quarter 1.6×1 km", quarter),
        Case("quarter, pothole+open", quarter, category=0, statuses=open_),
        Case("quarter, 30 days", quarter, max_age_days=30),
        Case("city 12×8 km (cap)", city),
        Case("city, all ages (cap)", city, max_age_days=None),
        Case("city, Rennes commune", city, rennes_only=True),
        Case("city, lighting 30 d", city, category=3, max_age_days=30),
        Case("city, rejected 365 d", city, statuses=("rejected",), max_age_days=365),
        Case("metro 30×20 km (cap)", metro),
        Case("rural 4×3 km", rural),
    ]


# --------------------------------------------------------------------------------------------
# The brute force and the naive SQL


def brute_force(data: Reports, case: Case, now: float) -> list[str]:
    """The expected rows: every filter in numpy, newest first, capped (limit + 1)."""
    west, south, east, north = case.bbox
    mask = (
        data.public
        & ~data.hidden
        & (data.lat >= south)
        & (data.lat <= north)
        & (data.lon >= west)
        & (data.lon <= east)
    )
    if case.rennes_only:
        mask &= data.commune == 0
    if case.category is not None:
        mask &= (data.category == case.category) & (data.commune == 0)
    if case.statuses:
        mask &= np.isin(data.status, [STATUSES.index(s) for s in case.statuses])
    if case.max_age_days is not None:
        mask &= data.created >= (now - case.max_age_days * 86400.0) * 1e6
    found = np.flatnonzero(mask)
    order = found[np.argsort(-data.created[found], kind="stable")][: MAP_CAP + 1]
    return [data.ids[i] for i in order]


def naive_sql(commune_id: uuid.UUID | None, query: MapQuery) -> tuple[str, list[Any]]:
    """``public_map``'s SQL without the cell ranges: lat/lon BETWEEN and the same filters."""
    sql = (
        "SELECT id, reference, category, status, lat, lon, created_at, updated_at FROM demande "
        "WHERE public = {} AND hidden = {} AND lat BETWEEN {} AND {} AND lon BETWEEN {} AND {}"
    )
    params: list[Any] = [True, False, query.min_lat, query.max_lat, query.min_lon, query.max_lon]
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
    return sql, params


async def naive_map(
    commune_id: uuid.UUID | None, query: MapQuery
) -> tuple[list[dict[str, Any]], bool]:
    sql, params = naive_sql(commune_id, query)
    rows = await Demande.raw(sql, *params)
    return rows[: query.limit], len(rows) > query.limit


def _or_ranges(ranges: Any) -> tuple[str, list[int]]:
    where = " OR ".join("cell BETWEEN {} AND {}" for _ in ranges)
    return f"({where})" if ranges else "1 = 0", [b for r in ranges for b in (r.first, r.last)]


async def original_map(
    commune_id: uuid.UUID | None, query: MapQuery
) -> tuple[list[dict[str, Any]], bool]:
    """``public_map`` as first written (before this benchmark): the default coverage (400 edge
    cells), every range OR-ed, the filters as plain columns, the engine picks the plan."""
    where, args = _or_ranges(
        cover_of((query.min_lon, query.min_lat, query.max_lon, query.max_lat)).ranges
    )
    sql, params = naive_sql(commune_id, query)
    sql = sql.replace("WHERE ", f"WHERE {where} AND ", 1)
    rows = await Demande.raw(sql, *args, *params)
    return rows[: query.limit], len(rows) > query.limit


async def original_nearby(category_id: uuid.UUID, lat: float, lon: float) -> list[Any]:
    """``nearby_open``'s query as first written (plain category and status columns)."""
    where, args = _or_ranges(circle(lat, lon, 250).cover().ranges)
    statuses = sorted(OPEN)
    rows = await Demande.raw(
        "SELECT id, reference, description, lat, lon, status, created_at FROM demande "
        f"WHERE {where} AND category = {{}} AND hidden = {{}} AND public = {{}} "
        f"AND status IN ({', '.join('{}' for _ in statuses)})",
        *args,
        category_id,
        False,
        True,
        *statuses,
    )
    return rows


# --------------------------------------------------------------------------------------------
# Measuring


@dataclass
class Timing:
    samples: list[float]
    cpu: list[float] = field(default_factory=list)  # CPU ms of each call (see CpuClock)

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else math.nan

    @property
    def cpu_mean(self) -> float:
        return statistics.fmean(self.cpu) if self.cpu else math.nan

    @property
    def p90(self) -> float:
        if len(self.samples) < 2:
            return self.samples[0] if self.samples else math.nan
        return statistics.quantiles(self.samples, n=10, method="inclusive")[-1]


CLK_TCK = os.sysconf("SC_CLK_TCK")


class CpuClock:
    """CPU seconds spent for the queries: this process (its aiosqlite threads included) and,
    on PostgreSQL, the server backends connected to the bench database (from /proc).

    On a loaded machine wall time includes waiting for a core; CPU time does not, so it tells
    what a call costs on an idle machine. Backends count in jiffies (10 ms): per-call values
    are noisy, their mean over the runs is not.
    """

    def __init__(self) -> None:
        self.backends: list[int] = []

    async def refresh(self) -> None:
        if database.is_postgres():
            rows = await Demande.raw(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            )
            self.backends = [int(r["pid"]) for r in rows]

    def __call__(self) -> float:
        total = time.process_time()
        for pid in self.backends:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        return total


async def interleaved(
    actions: dict[str, Callable[[], Awaitable[Any]]],
    runs: int,
    limited: dict[str, int],
    warmup: int = 2,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Milliseconds per action, the actions taking turns each run (``limited``: fewer runs)."""
    timings = {name: Timing([]) for name in actions}
    results: dict[str, Any] = {}
    for name, action in actions.items():
        for _ in range(warmup if name not in limited else 1):
            results[name] = await action()
    clock = CpuClock()
    await clock.refresh()
    for i in range(runs):
        for name, action in actions.items():
            if i >= limited.get(name, runs):
                continue
            cpu = clock()
            started = time.perf_counter()
            results[name] = await action()
            timings[name].samples.append((time.perf_counter() - started) * 1000)
            timings[name].cpu.append((clock() - cpu) * 1000)
    return timings, results


@dataclass
class Row:
    engine: str
    variant: str
    case: str
    fast: Timing
    naive: Timing
    orig: Timing
    cover_ms: float
    ranges: int
    candidates: int
    path: str
    found: int
    truncated: bool
    ok: bool


def cover_of(bbox: BBox, edge_cells: int | None = None) -> Any:
    west, south, east, north = bbox
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    area = area_from_geojson({"type": "Polygon", "coordinates": [ring]})
    return area.cover() if edge_cells is None else area.cover(edge_cells)


#: The edge budget public_map covers its box with (the default before it had its own).
MAP_EDGE_CELLS: int | None = getattr(reports, "MAP_EDGE_CELLS", None)


def cover_ms(bbox: BBox, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        cover_of(bbox, MAP_EDGE_CELLS)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def count_in_ranges(bbox: BBox) -> tuple[int, int]:
    """(ranges, rows in them whatever the filters): what the cell index hands over."""
    ranges = cover_of(bbox, MAP_EDGE_CELLS).ranges
    where = " OR ".join(f"cell BETWEEN {r.first} AND {r.last}" for r in ranges)
    rows = await Demande.raw(f"SELECT COUNT(*) AS n FROM demande WHERE {where}")
    return len(ranges), int(rows[0]["n"])


async def explain(engine_name: str, sql: str, params: list[Any]) -> str:
    """The engine's plan for one of the queries, condensed to one line per node."""
    prefix = "EXPLAIN QUERY PLAN " if engine_name == "sqlite" else "EXPLAIN "
    rows = await Demande.raw(prefix + sql, *params)
    if engine_name == "sqlite":
        lines = [str(r["detail"]) for r in rows]
    else:
        lines = [str(r["QUERY PLAN"]).strip() for r in rows]
    return " | ".join(line[:110] for line in lines[:8])


async def public_map_sql(commune_id: uuid.UUID | None, query: MapQuery) -> tuple[str, list[Any]]:
    """The SQL public_map sends (captured from Demande.raw) for --explain."""
    captured: dict[str, Any] = {}
    original = Demande.raw

    def capture(sql: str, *args: Any) -> Any:
        captured["sql"], captured["args"] = sql, list(args)
        return original(sql, *args)

    Demande.raw = capture  # type: ignore[method-assign]
    try:
        await public_map(commune_id, query)
    finally:
        Demande.raw = original  # type: ignore[method-assign]
    return captured["sql"], captured["args"]


def path_of(candidates: int) -> str:
    """Which way public_map goes for this many demandes in the ranges (see reports.py)."""
    limit = getattr(reports, "MAP_SPATIAL_MAX", None)
    if limit is None:
        return "-"
    return "cells" if candidates < limit else "walk"


async def run_cases(
    engine_name: str, variant: str, data: Reports, refs: Refs, args: argparse.Namespace
) -> list[Row]:
    rows: list[Row] = []
    for case in cases():
        query = case.query(refs)
        commune_id = case.commune(refs)
        timings, results = await interleaved(
            {
                "fast": partial(public_map, commune_id, query),
                "naive": partial(naive_map, commune_id, query),
                "orig": partial(original_map, commune_id, query),
            },
            args.runs,
            {"naive": args.naive_runs, "orig": args.naive_runs},
        )
        fast_rows, fast_cut = results["fast"]
        expected = brute_force(data, case, time.time())
        fast_ids = [str(r["id"]) for r in fast_rows]
        ok = fast_ids == expected[:MAP_CAP] and fast_cut == (len(expected) > MAP_CAP)
        for other in ("naive", "orig"):
            other_rows, other_cut = results[other]
            ok = ok and fast_ids == [str(r["id"]) for r in other_rows] and other_cut == fast_cut
        ranges, candidates = await count_in_ranges(case.bbox)
        row = Row(
            engine_name,
            variant,
            case.name,
            timings["fast"],
            timings["naive"],
            timings["orig"],
            cover_ms(case.bbox),
            ranges,
            candidates,
            path_of(candidates),
            len(fast_rows),
            fast_cut,
            ok,
        )
        rows.append(row)
        print(
            f"  {case.name:<24} {row.fast.median:7.1f} ms (p90 {row.fast.p90:6.1f})  naive "
            f"{row.naive.median:7.1f}  original {row.orig.median:7.1f}  {len(fast_rows):>3} rows"
            f"{'+' if fast_cut else ' '} {row.path:<5} {'OK' if ok else 'MISMATCH'}",
            flush=True,
        )
        if args.explain:
            sql, params = await public_map_sql(commune_id, query)
            print(f"      fast plan:  {await explain(engine_name, sql, params)}")
            sql, params = naive_sql(commune_id, query)
            print(f"      naive plan: {await explain(engine_name, sql, params)}")
    return rows


@dataclass
class NearbyRow:
    engine: str
    variant: str
    place: str
    fast: Timing
    orig: Timing
    found: int
    ok: bool


async def run_nearby(engine_name: str, variant: str, refs: Refs, runs: int) -> list[NearbyRow]:
    """nearby_open (duplicates within 250 m, before filing) beside its first version."""
    places = [
        ("city centre", 0, CITY[0] + 0.002, CITY[1] + 0.004),
        ("quarter", 0, CITY[0] - 0.006, CITY[1] - 0.01),
        ("countryside", COMMUNES - 1, 48.55, -1.45),
    ]
    out: list[NearbyRow] = []
    for name, commune, lat, lon in places:
        category = refs.categories[commune][0]  # potholes
        timings, results = await interleaved(
            {
                "fast": partial(nearby_open, refs.communes[commune], category, lat, lon),
                "orig": partial(original_nearby, category, lat, lon),
            },
            runs,
            {"orig": max(3, runs // 3)},
        )
        fast, orig = results["fast"], results["orig"]
        near = sorted(
            (d, str(r["id"]))
            for r in orig
            if (d := reports._distance_m(lat, lon, r["lat"], r["lon"])) <= 250
        )
        ok = [str(r["id"]) for r in fast] == [i for _, i in near[:5]]
        out.append(
            NearbyRow(engine_name, variant, name, timings["fast"], timings["orig"], len(fast), ok)
        )
        print(
            f"  nearby_open {name:<12} {timings['fast'].median:7.1f} ms (p90 "
            f"{timings['fast'].p90:6.1f})  original {timings['orig'].median:7.1f}  "
            f"{len(fast)} found {'OK' if ok else 'MISMATCH'}",
            flush=True,
        )
    return out


@dataclass
class HttpRow:
    engine: str
    case: str
    http: Timing
    direct: Timing
    features: int
    ok: bool


async def run_http(
    engine_name: str, engine: Engine, url: str, refs: Refs, runs: int
) -> list[HttpRow]:
    """GET /api/v1/reports/map through the app (ASGI, in process) beside public_map itself."""
    from backend.app import create_app

    settings = load_settings().with_(database_url=url, var_dir=_VAR / engine_name)
    app = create_app(settings, engine=engine)
    out: list[HttpRow] = []
    by_name = {c.name: c for c in cases()}
    async with http_client(app) as client:
        for name in ("quarter 1.6×1 km", "city 12×8 km (cap)"):
            case = by_name[name]
            params = {"bbox": ",".join(f"{v:.6f}" for v in case.bbox)}
            west, south, east, north = (float(v) for v in params["bbox"].split(","))
            query = MapQuery(west, south, east, north)

            async def get(p: dict[str, str] = params) -> Any:
                response = await client.get("/api/v1/reports/map", params=p)
                response.raise_for_status()
                return response.json()

            timings, results = await interleaved(
                {"http": get, "direct": partial(public_map, None, query)}, runs, {}
            )
            body, (direct_rows, cut) = results["http"], results["direct"]
            ok = [f["id"] for f in body["features"]] == [str(r["id"]) for r in direct_rows] and (
                body["truncated"] == cut
            )
            out.append(
                HttpRow(
                    engine_name, name, timings["http"], timings["direct"], len(body["features"]), ok
                )
            )
            print(
                f"  HTTP {name:<24} {timings['http'].median:7.1f} ms (public_map alone "
                f"{timings['direct'].median:.1f} ms), {len(body['features'])} features "
                f"{'OK' if ok else 'MISMATCH'}",
                flush=True,
            )
    return out


# --------------------------------------------------------------------------------------------
# Main


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    http: list[HttpRow] = field(default_factory=list)
    nearby: list[NearbyRow] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        checks = [r.ok for r in self.rows] + [h.ok for h in self.http]
        return all(checks) and all(n.ok for n in self.nearby)


async def bench_engine(name: str, args: argparse.Namespace, data: Reports, out: Results) -> None:
    folder: Path | None = None
    path: Path | None = None
    db_name = ""
    if name == "sqlite":
        folder = Path(tempfile.mkdtemp(prefix="relais-bench-map-"))
        path = folder / "bench.sqlite3"
        url = f"sqlite:///{path}"
    else:
        db_name = f"relais_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(f"{PG_BASE}/postgres")
        await admin.execute(f'CREATE DATABASE "{db_name}"')
        await admin.close()
        url = f"{PG_BASE}/{db_name}"
    engine = database.engine_from_url(url)
    print(f"\n[{name}]  load average {os.getloadavg()[0]:.2f}", flush=True)
    try:
        await database.start(engine)
        database.bind_engine(engine)
        try:
            await create_db_tables(*database.all_tables(), if_not_exists=True)
            await database.create_extra_indexes()
            refs = await make_refs()
            started = time.perf_counter()
            columns = demande_columns(data, refs)
            built = time.perf_counter() - started
            t = await load(engine, path, url if name == "postgres" else None, columns)
            del columns
            size = f", file {path.stat().st_size / 2**20:,.0f} MiB" if path else ""
            print(
                f"  loaded {data.size:,} demandes in {time.perf_counter() - started:.1f} s "
                f"(columns {built:.1f} s, rows {t['rows']:.1f} s, indexes {t['indexes']:.1f} s, "
                f"analyze {t['analyze']:.1f} s){size}",
                flush=True,
            )
            variant = "shipped"
            out.rows += await run_cases(name, variant, data, refs, args)
            out.nearby += await run_nearby(name, variant, refs, args.runs)
            out.http += await run_http(name, engine, url, refs, args.runs)
        finally:
            await database.stop(engine)
    finally:
        if args.keep:
            print(f"  (kept {path or db_name})")
        else:
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)
            if db_name:
                admin = await asyncpg.connect(f"{PG_BASE}/postgres")
                await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                await admin.close()


def print_tables(out: Results, runs: int, naive_runs: int) -> None:
    print(
        f"\npublic_map (ms): median and p90 over {runs} runs. Interleaved with them, over "
        f"{naive_runs} runs: naive = lat/lon BETWEEN only, no cell ranges; original = "
        "public_map as first written (OR-ed cell ranges, plain filters). x = baseline / median. "
        "cpu = mean CPU ms per call, this process + PostgreSQL backends (what a call costs on "
        "an idle machine; wall times here include waiting for a core)."
    )
    header = (
        f"{'engine':<9}{'schema':<13}{'case':<25}{'median':>7}{'p90':>7}{'≤30':>5}{'cpu':>6}"
        f"{'naive':>8}{'x':>6}{'cpu':>6}{'orig':>8}{'x':>6}{'cpu':>6}{'cover':>6}{'rngs':>5}"
        f"{'in rngs':>9}{'path':>6}{'rows':>6} check"
    )
    print(header)
    print("-" * len(header))
    for r in out.rows:
        verdict = "ok" if r.fast.median <= TARGET_MS else "MISS"
        cut = "+" if r.truncated else " "
        print(
            f"{r.engine:<9}{r.variant:<13}{r.case:<25}{r.fast.median:>7.1f}{r.fast.p90:>7.1f}"
            f"{verdict:>5}{r.fast.cpu_mean:>6.0f}{r.naive.median:>8.1f}"
            f"{r.naive.median / r.fast.median:>5.1f}x{r.naive.cpu_mean:>6.0f}"
            f"{r.orig.median:>8.1f}{r.orig.median / r.fast.median:>5.1f}x{r.orig.cpu_mean:>6.0f}"
            f"{r.cover_ms:>6.1f}"
            f"{r.ranges:>5}{r.candidates:>9,}{r.path:>6}{r.found:>5}{cut} "
            f"{'ok' if r.ok else 'FAIL'}"
        )
    if out.nearby:
        print("\nnearby_open, duplicates within 250 m before filing (ms, medians / p90)")
        for n in out.nearby:
            print(
                f"{n.engine:<9}{n.place:<13} {n.fast.median:6.1f} / {n.fast.p90:6.1f}   original "
                f"{n.orig.median:7.1f}  {n.orig.median / n.fast.median:5.1f}x  {n.found} found  "
                f"{'ok' if n.ok else 'FAIL'}"
            )
    if out.http:
        print("\nFull HTTP path (GET /api/v1/reports/map, in-process ASGI), ms medians / p90")
        for h in out.http:
            print(
                f"{h.engine:<9}{h.case:<25} HTTP {h.http.median:6.1f} / {h.http.p90:6.1f}   "
                f"public_map {h.direct.median:6.1f}   handler+JSON "
                f"{h.http.median - h.direct.median:5.1f}   {h.features} features  "
                f"{'ok' if h.ok else 'FAIL'}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--naive-runs", type=int, default=7, help="runs of both baselines")
    parser.add_argument("--seed", type=int, default=35238)
    parser.add_argument("--explain", action="store_true", help="print both queries' plans")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not set(engines) <= {"sqlite", "postgres"} or args.runs < 1:
        parser.error("--engines takes sqlite and/or postgres; --runs at least 1")
    args.naive_runs = max(1, min(args.naive_runs, args.runs))
    logging.disable(logging.INFO)  # the app's access log and httpx's request lines
    return asyncio.run(_main(args, engines))


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


async def _main(args: argparse.Namespace, engines: list[str]) -> int:
    try:
        return await _run(args, engines)
    finally:
        shutil.rmtree(_VAR, ignore_errors=True)


async def _run(args: argparse.Namespace, engines: list[str]) -> int:
    began = time.perf_counter()
    print(f"load average at start {_load()}, {os.cpu_count()} CPUs")
    now = time.time()
    data = make_reports(args.reports, args.seed, now)
    recent = data.created >= (now - 180 * 86400) * 1e6
    print(
        f"data: {data.size:,} reports ({data.public.mean():.0%} public, {data.hidden.mean():.1%} "
        f"hidden, {recent.mean():.0%} in the last 180 days, {(data.commune == 0).mean():.0%} in "
        f"Rennes) generated in {time.perf_counter() - began:.1f} s; map cap {MAP_CAP}",
        flush=True,
    )
    out = Results()
    for name in engines:
        await bench_engine(name, args, data, out)
    print_tables(out, args.runs, args.naive_runs)
    print(f"\nload average at end {_load()}; total {time.perf_counter() - began:.0f} s")
    return 0 if out.ok else 1


if __name__ == "__main__":
    sys.exit(main())
