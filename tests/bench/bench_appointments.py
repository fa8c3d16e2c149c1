"""Benchmark: passport and ID-card appointments on SQLite and PostgreSQL — the ANTS hub's
``availableTimeSlots``, the app's nearest-slot search, and a rush of concurrent holds.

Run from the project root:

    .venv/bin/python -m tests.bench.bench_appointments [--runs 21] [--engines sqlite,postgres]
        [--scenarios ants,nearest,holds] [--history-days 30] [--seed 7]

Targets (issue), measured and printed here, never turned into timed tests:

1. ``GET /api/ants/availableTimeSlots`` for 20 meeting points over 3 months ≤ 300 ms median;
2. ``GET /api/v1/appointments/nearest`` ≤ 50 ms median with 50 sites and 6 months of bookings;
3. 500 concurrent ``POST /api/v1/appointments/holds`` on 10 seats (50 attempts per seat, each
   from its own device): exactly 10 succeed and 490 get a clear 409; p50/p99 and total time.

Every request goes through HTTP to the real application, in process: httpx's ASGI transport on
the bench's event loop with the app's lifespan running (``tests.http.http_client``), so the
figures include routing, validation, the handler and JSON encoding, but no socket. Settings
raise the rate limits out of the way and set the hub token.

The data, for each scenario its own fresh database (a temporary SQLite file; a PostgreSQL
database ``relais_bench_<random>`` on 127.0.0.1:5432, user postgres, dropped at the end):

- sites, counters, opening rules and closures are created through the staff API, as a commune's
  admin would: 2 or 3 counters per site, Monday to Saturday 09:00–12:00 and 14:00–17:30, a
  one-day closure of every site, a three-day closure of every fourth site, a week of leave of one
  counter on every third site (public holidays are computed by the code);
- bookings are bulk-loaded (COPY / executemany), consistent with the schedule and with the
  unique 5-minute units: each 15-minute grid slot of each counter is taken with the scenario's
  probability (100 % on the "full" sites), a third of adjacent taken pairs merged into one
  30-minute booking (passport, both documents, or a two-person ID card); one ``BookingUnit`` row
  per 5 minutes of every booking that holds its seat. Statuses: 96.5 % confirmed, 2 % staff
  blocks, 1 % live holds (expiring in 6 h, so not during the run), 0.5 % expired holds (their
  units still there: free for the search, reclaimed by the next hold; none on the full
  sites); plus 8 % more
  cancelled bookings without units, and ``--history-days`` of past appointments (checked in,
  no-show) before today. Tables are ANALYZEd after the load.

Scenario ``ants``: 20 sites, horizon 90 days (the whole 3-month window is released), ~60 % of
slots taken. Measured, interleaved run by run: the endpoint over 3 months; the same over one
month (the cap a peer applied when its 3-month requests timed out); and a naive baseline in
process (no HTTP): per site, one query per table (every column), the slots of the whole
window, then the same JSON. The endpoint's answer must equal the baseline's.

Scenario ``nearest``: 50 sites over Ille-et-Vilaine, horizon 180 days, ~70 % taken; the three
sites nearest to the search point (Rennes) are fully booked over the whole horizon, and two
more elsewhere, so the search must go past them. Measured: the endpoint (CNI, 1 person, limit
5), and a brute-force baseline in process: every site, per-site queries, the whole horizon,
sorted by distance. The two answers must be equal.

Scenario ``holds``: on the nearest-search data, the 10 first free CNI slots of one site (each
on a named counter), 50 attempts for each from 500 registered devices, all sent at once and
shuffled; ``--hold-rounds`` rounds on fresh slots and fresh devices. Checked: 10 × 201 on 10
distinct seats, 490 × 409, and in the database exactly 10 live holds with 3 units each.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="relais-bench-appointments-"))
os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
os.environ.setdefault("RELAIS_VAR_DIR", str(_TMP / "var"))
os.environ.setdefault("RELAIS_ARGON2_MEMORY_KIB", "1024")  # fast staff log-in; same algorithm
os.environ.setdefault("RELAIS_DATABASE_URL", f"sqlite:///{_TMP / 'conf.sqlite3'}")

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from litestar import Litestar  # noqa: E402
from piccolo.engine.base import Engine  # noqa: E402
from piccolo.table import create_db_tables  # noqa: E402

from backend import database  # noqa: E402
from backend.appointments import slots  # noqa: E402
from backend.appointments.booking import units_of  # noqa: E402
from backend.appointments.schedule import policy_of  # noqa: E402
from backend.appointments.tables import (  # noqa: E402
    Booking,
    BookingUnit,
    Closure,
    Counter,
    OpeningRule,
    Site,
)
from backend.settings import load_settings  # noqa: E402
from geo import haversine_m  # noqa: E402
from tests.factories import bearer, log_in, make_commune  # noqa: E402
from tests.http import http_client  # noqa: E402

ANTS_TARGET_MS = 300.0
NEAREST_TARGET_MS = 50.0
PG_BASE = os.environ.get("RELAIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
HUB_TOKEN = "hub-token-du-banc"
PUBLIC_URL = "https://relais.example.fr"
ACTIVE = ("held", "confirmed", "checked_in", "no_show", "blocked")

BBOX = (47.65, -2.25, 48.70, -1.05)  # Ille-et-Vilaine: min_lat, min_lon, max_lat, max_lon
RENNES = (48.1115, -1.6800)
HOURS = (("09:00", "12:00"), ("14:00", "17:30"))
WEEKDAYS = (0, 1, 2, 3, 4, 5)


# --------------------------------------------------------------------------------------------
# Databases and the app


@asynccontextmanager
async def bench_database(engine_name: str, pg_base: str) -> AsyncIterator[tuple[str, Engine]]:
    """A fresh database with every table, bound to the tables; yields (url, engine)."""
    name = ""
    if engine_name == "sqlite":
        url = f"sqlite:///{_TMP / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
    else:
        name = f"relais_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(f"{pg_base}/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = f"{pg_base}/{name}"
    engine = database.engine_from_url(url)
    try:
        await database.start(engine)
        database.bind_engine(engine)
        await create_db_tables(*database.all_tables(), if_not_exists=True)
        await database.create_extra_indexes()
        yield url, engine
    finally:
        await database.stop(engine)
        if name:
            admin = await asyncpg.connect(f"{pg_base}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        elif url.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm"):
                Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)  # noqa: ASYNC240


@asynccontextmanager
async def app_client(
    url: str, engine: Engine, tag: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Litestar]]:
    """The application on this engine, behind an in-process HTTP client."""
    from backend.app import create_app

    settings = load_settings().with_(
        database_url=url,
        var_dir=_TMP / "var" / tag,
        public_url=PUBLIC_URL,
        ants_hub_token=HUB_TOKEN,
        ants_url="http://127.0.0.1:9/api",  # never called: holds do not talk to the ANTS
        rate_slots_per_ip=(10**6, 60),
        rate_booking_per_ip=(10**6, 60),
        rate_auth_per_ip=(10**6, 60),
        rate_auth_per_account=(10**6, 60),
    )
    app = create_app(settings, engine=engine)
    async with http_client(app) as client:
        yield client, app


# --------------------------------------------------------------------------------------------
# Sites through the staff API


@dataclass
class SiteSpec:
    name: str
    lat: float
    lon: float
    counters: int
    full: bool = False


@dataclass
class SiteRef:
    spec: SiteSpec
    id: uuid.UUID
    counters: list[uuid.UUID]


def site_specs(count: int, rng: random.Random, full_near: int, full_far: int) -> list[SiteSpec]:
    """Sites over the département; the ``full_near`` nearest to Rennes within 3 km and fully
    booked, every other site at least 5 km away; ``full_far`` more full sites elsewhere."""
    specs: list[SiteSpec] = []
    for i in range(full_near):
        bearing = rng.uniform(0, 360)
        km = 1.0 + i  # 1, 2, 3 km
        lat = RENNES[0] + km / 111.2 * _cos_deg(bearing)
        lon = RENNES[1] + km / (111.2 * 0.668) * _sin_deg(bearing)
        specs.append(SiteSpec(f"Mairie de quartier {i + 1}", lat, lon, rng.choice((2, 3)), True))
    while len(specs) < count:
        lat = rng.uniform(BBOX[0], BBOX[2])
        lon = rng.uniform(BBOX[1], BBOX[3])
        if haversine_m(RENNES[0], RENNES[1], lat, lon) < 5000:
            continue
        n = len(specs)
        specs.append(SiteSpec(f"Mairie annexe {n + 1}", lat, lon, rng.choice((2, 3))))
    for spec in rng.sample(specs[full_near:], full_far):
        spec.full = True
    return specs


def _cos_deg(x: float) -> float:
    return math.cos(math.radians(x))


def _sin_deg(x: float) -> float:
    return math.sin(math.radians(x))


async def create_sites(
    client: httpx.AsyncClient,
    app: Litestar,
    specs: list[SiteSpec],
    horizon: int,
    today: date,
    rng: random.Random,
) -> list[SiteRef]:
    """Every site, counter, opening rule and closure, through the staff API."""
    commune = await make_commune(app)
    admin = bearer(await log_in(client, commune.admin["email"]))

    async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await client.post(f"/staff/v1/appointments{path}", json=body, headers=admin)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    refs: list[SiteRef] = []
    for number, spec in enumerate(specs):
        site = await post(
            "/sites",
            {
                "name": spec.name,
                "lat": spec.lat,
                "lon": spec.lon,
                "address": f"{number + 1} place de la Mairie",
                "zipCode": "35000",
                "city": "Ille-et-Vilaine",
                "horizonDays": horizon,
            },
        )
        site_id = site["id"]
        counters = []
        for n in range(spec.counters):
            counter = await post(f"/sites/{site_id}/counters", {"name": f"Guichet {n + 1}"})
            counters.append(counter["id"])
            for weekday in WEEKDAYS:
                for start, end in HOURS:
                    await post(
                        f"/counters/{counter['id']}/rules",
                        {"weekday": weekday, "start": start, "end": end, "validFrom": "2026-01-01"},
                    )

        def day(lo: int, hi: int) -> date:
            return today + timedelta(days=rng.randint(lo, hi))

        one = day(3, horizon - 1)
        await post(f"/sites/{site_id}/closures", {"start": str(one), "end": str(one)})
        if number % 4 == 0:
            first = day(10, horizon - 5)
            await post(
                f"/sites/{site_id}/closures",
                {"start": str(first), "end": str(first + timedelta(days=2)), "reason": "Travaux"},
            )
        if number % 3 == 0:
            first = day(5, horizon - 8)
            await post(
                f"/sites/{site_id}/closures",
                {
                    "start": str(first),
                    "end": str(first + timedelta(days=6)),
                    "counterId": rng.choice(counters),
                    "reason": "Congés",
                },
            )
        refs.append(SiteRef(spec, uuid.UUID(site_id), [uuid.UUID(c) for c in counters]))
    return refs


# --------------------------------------------------------------------------------------------
# Bookings, bulk-loaded


BOOKING_COLUMNS = [
    "id",
    "site",
    "counter",
    "starts_at",
    "ends_at",
    "reason",
    "persons",
    "status",
    "hold_expires_at",
    "device",
    "name",
    "email",
    "phone",
    "ants_ids",
    "source",
    "sequence",
    "reminded_48h",
    "reminded_2h",
    "created_at",
    "confirmed_at",
    "cancelled_at",
]


@dataclass
class Seeded:
    bookings: int = 0
    units: int = 0
    grid_slots: int = 0  # bookable 15-minute grid slots (inside the window), every site
    busy_slots: int = 0  # of which taken by a booking that holds its seat
    per_site_fill: dict[uuid.UUID, float] = field(default_factory=dict)

    @property
    def fill(self) -> float:
        return self.busy_slots / self.grid_slots if self.grid_slots else 0.0


async def site_inputs(
    site_ids: list[uuid.UUID],
) -> tuple[dict[uuid.UUID, dict[str, Any]], dict[uuid.UUID, list[slots.OpeningRule]], Any]:
    """Site rows, their rules and their closures straight from the tables."""
    rows = await Site.select().where(Site.id.is_in(site_ids))
    by_id = {r["id"]: r for r in rows}
    counters = await Counter.select(Counter.id, Counter.site).where(
        Counter.site.is_in(site_ids) & (Counter.active == True)  # noqa: E712
    )
    site_of = {c["id"]: c["site"] for c in counters}
    rules: dict[uuid.UUID, list[slots.OpeningRule]] = defaultdict(list)
    for r in await OpeningRule.select().where(OpeningRule.counter.is_in(list(site_of))):
        rules[site_of[r["counter"]]].append(_rule(r))
    closures: dict[uuid.UUID, list[slots.Closure]] = defaultdict(list)
    for c in await Closure.select().where(Closure.site.is_in(site_ids)):
        closures[c["site"]].append(
            slots.Closure(c["start_date"], c["end_date"], c["counter"], c["reason"])
        )
    return by_id, rules, closures


def _hhmm(value: str) -> Any:
    hours, _, minutes = value.partition(":")
    return datetime.min.replace(hour=int(hours), minute=int(minutes)).time()


def _rule(r: dict[str, Any]) -> slots.OpeningRule:
    return slots.OpeningRule(
        counter_id=r["counter"],
        weekday=r["weekday"],
        start=_hhmm(r["start_time"]),
        end=_hhmm(r["end_time"]),
        valid_from=r["valid_from"],
        valid_to=r["valid_to"],
    )


async def seed_bookings(
    sites: list[SiteRef],
    fill: float,
    history_days: int,
    now: datetime,
    rng: random.Random,
    engine_name: str,
) -> Seeded:
    """Bookings and their units for every site, from ``history_days`` ago to the horizon."""
    by_id, rules, closures = await site_inputs([s.id for s in sites])
    seeded = Seeded()
    bookings: list[tuple[Any, ...]] = []
    units: list[tuple[Any, ...]] = []
    live_hold = now + timedelta(hours=6)
    dead_hold = now - timedelta(hours=1)
    created = now - timedelta(days=history_days + 30)

    def uid() -> uuid.UUID:
        return uuid.UUID(int=rng.getrandbits(128), version=4)

    for ref in sites:
        site = by_id[ref.id]
        policy = policy_of(site)
        opens, closes = slots.bookable_window(now, policy)
        last_day = slots.bookable_days(now, policy)[1]
        first_day = now.date() - timedelta(days=history_days)
        grid = slots.candidate_slots(
            rules[ref.id], closures[ref.id], first_day, last_day, 15, policy
        )
        per_counter: dict[uuid.UUID, list[slots.Slot]] = defaultdict(list)
        for slot in grid:
            per_counter[slot.counter_id].append(slot)
        site_fill = 1.0 if ref.spec.full else fill
        site_grid = site_busy = 0
        for counter, cands in per_counter.items():
            taken = [rng.random() < site_fill for _ in cands]
            i = 0
            while i < len(cands):
                slot = cands[i]
                in_window = opens <= slot.start < closes
                if not taken[i]:
                    site_grid += in_window
                    if in_window and rng.random() < 0.08:  # a cancelled booking, no units
                        bookings.append(
                            _booking_row(
                                uid(),
                                ref.id,
                                counter,
                                slot.start,
                                slot.end,
                                "CNI",
                                1,
                                "cancelled",
                                None,
                                created,
                                now,
                                rng,
                            )
                        )
                    i += 1
                    continue
                span = 1
                if (
                    i + 1 < len(cands)
                    and taken[i + 1]
                    and cands[i + 1].start == slot.end
                    and rng.random() < 0.33
                ):
                    span = 2
                end = cands[i + span - 1].end
                if span == 1:
                    reason, persons = "CNI", 1
                else:
                    reason, persons = rng.choice((("PASSPORT", 1), ("CNI-PASSPORT", 1), ("CNI", 2)))
                if slot.start < now:
                    status = "no_show" if rng.random() < 0.08 else "checked_in"
                    hold = None
                else:
                    draw = rng.random()
                    status, hold = "confirmed", None
                    if draw < 0.02:
                        status = "blocked"
                    elif draw < 0.03:
                        status, hold = "held", live_hold
                    elif draw < 0.035 and not ref.spec.full:  # a full site stays full
                        status, hold = "held", dead_hold
                booking_id = uid()
                bookings.append(
                    _booking_row(
                        booking_id,
                        ref.id,
                        counter,
                        slot.start,
                        end,
                        reason,
                        persons,
                        status,
                        hold,
                        created,
                        now,
                        rng,
                    )
                )
                for key in units_of(counter, slot.start, end):
                    units.append((booking_id, key))
                busy = hold is not dead_hold
                for k in range(span):
                    if opens <= cands[i + k].start < closes:
                        site_grid += 1
                        site_busy += busy
                i += span
        seeded.grid_slots += site_grid
        seeded.busy_slots += site_busy
        seeded.per_site_fill[ref.id] = site_busy / site_grid if site_grid else 0.0

    rng.shuffle(bookings)  # insertion order unrelated to time, as in real life
    async with database.transaction():
        for start in range(0, len(bookings), 5000):
            await database.bulk_insert(Booking, BOOKING_COLUMNS, bookings[start : start + 5000])
        for start in range(0, len(units), 10000):
            await database.bulk_insert(
                BookingUnit, ["booking", "unit_key"], units[start : start + 10000]
            )
    await database.current_engine().run_ddl("ANALYZE")
    seeded.bookings, seeded.units = len(bookings), len(units)
    return seeded


def _booking_row(
    booking_id: uuid.UUID,
    site: uuid.UUID,
    counter: uuid.UUID,
    start: datetime,
    end: datetime,
    reason: str,
    persons: int,
    status: str,
    hold: datetime | None,
    created: datetime,
    now: datetime,
    rng: random.Random,
) -> tuple[Any, ...]:
    staff = status == "blocked"
    return (
        booking_id,
        site,
        counter,
        start,
        end,
        "BLOCK" if staff else reason,
        persons,
        status,
        hold,
        None if staff else uuid.UUID(int=rng.getrandbits(128), version=4),
        "" if staff or status == "held" else "Camille Martin",
        "" if staff or status == "held" else f"resident{rng.randrange(10**6)}@exemple.fr",
        "",
        "[]",
        "staff" if staff else "app",
        0,
        False,
        False,
        created,
        None if status in ("held", "blocked") else created,
        now if status == "cancelled" else None,
    )


# --------------------------------------------------------------------------------------------
# Naive baselines (independent of backend.appointments.schedule): per site, one query per table


async def naive_slots(
    site_ids: list[uuid.UUID],
    reason: str,
    persons: int,
    first_day: date,
    last_day: date,
    now: datetime,
) -> list[tuple[dict[str, Any], list[slots.Slot]]]:
    """Free slots of these sites, with one query per table for them all (every column), the
    slots of the whole range, then minus busy times; in the order given."""
    rows = await Site.select().where(Site.id.is_in(site_ids))
    by_id = {r["id"]: r for r in rows}
    counters = await Counter.select().where(
        Counter.site.is_in(site_ids) & (Counter.active == True)  # noqa: E712
    )
    site_of = {c["id"]: c["site"] for c in counters}
    rules: dict[uuid.UUID, list[slots.OpeningRule]] = defaultdict(list)
    if site_of:
        for r in await OpeningRule.select().where(OpeningRule.counter.is_in(list(site_of))):
            rules[site_of[r["counter"]]].append(_rule(r))
    closures: dict[uuid.UUID, list[slots.Closure]] = defaultdict(list)
    for c in await Closure.select().where(
        Closure.site.is_in(site_ids)
        & (Closure.end_date >= first_day)
        & (Closure.start_date <= last_day)
    ):
        closures[c["site"]].append(
            slots.Closure(c["start_date"], c["end_date"], c["counter"], c["reason"])
        )
    start = datetime.combine(first_day - timedelta(days=1), datetime.min.time(), UTC)
    end = datetime.combine(last_day + timedelta(days=2), datetime.min.time(), UTC)
    busy: dict[uuid.UUID, dict[uuid.UUID, list[tuple[datetime, datetime]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for b in await Booking.select().where(
        Booking.site.is_in(site_ids)
        & Booking.status.is_in(list(ACTIVE))
        & (Booking.starts_at < end)
        & (Booking.ends_at > start)
    ):
        if (
            b["status"] == "held"
            and b["hold_expires_at"] is not None
            and b["hold_expires_at"] <= now
        ):
            continue
        busy[b["site"]][b["counter"]].append((b["starts_at"], b["ends_at"]))
    out: list[tuple[dict[str, Any], list[slots.Slot]]] = []
    for site_id in site_ids:
        site = by_id[site_id]
        policy = policy_of(site)
        if persons > site["max_persons"]:
            out.append((site, []))
            continue
        minutes = slots.duration_minutes(reason, persons, policy)
        candidates = slots.candidate_slots(
            rules[site_id], closures[site_id], first_day, last_day, minutes, policy
        )
        out.append((site, slots.free_slots(candidates, busy[site_id], now, policy)))
    return out


async def naive_available(
    ids: list[uuid.UUID], first: date, last: date, reason: str, persons: int
) -> dict[str, list[dict[str, str]]]:
    """``availableTimeSlots`` the naive way: site after site (one query per table and site),
    the whole window."""
    now = datetime.now(UTC)
    answer: dict[str, list[dict[str, str]]] = {}
    for site_id in ids:
        [(site, free)] = await naive_slots([site_id], reason, persons, first, last, now)
        answer[str(site_id)] = [
            {
                "datetime": slots.ants_datetime(s.start, slots.PARIS),
                "callback_url": (
                    f"{PUBLIC_URL}/rendez-vous?site={site['id']}"
                    f"&start={s.start.isoformat()}&reason={reason}&persons={persons}"
                ),
            }
            for s in free
        ]
    return answer


async def naive_nearest(
    site_ids: list[uuid.UUID], lat: float, lon: float, reason: str, persons: int, limit: int
) -> list[dict[str, Any]]:
    """The nearest sites with their 3 next free slots, by brute force: every site, the whole
    horizon (the endpoint's day range: today to today + horizon + 1, UTC dates)."""
    now = datetime.now(UTC)
    horizon = max(r["horizon_days"] for r in await Site.select(Site.horizon_days))
    last = now.date() + timedelta(days=horizon + 1)
    found = []
    for site, free in await naive_slots(site_ids, reason, persons, now.date(), last, now):
        if free:
            distance = haversine_m(lat, lon, site["lat"], site["lon"])
            found.append((distance, str(site["id"]), [s.start for s in free[:3]]))
    found.sort(key=lambda f: f[0])
    return [{"site": s, "starts": starts} for _, s, starts in found[:limit]]


# --------------------------------------------------------------------------------------------
# Timing


@dataclass
class Timing:
    samples: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # this process's CPU time (every thread)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.samples, n=10, method="inclusive")[-1]

    @property
    def low(self) -> float:
        return min(self.samples)


async def interleaved(
    variants: dict[str, Callable[[], Awaitable[Any]]],
    runs: int,
    runs_of: dict[str, int] | None = None,
    warmup: int = 2,
) -> tuple[dict[str, Timing], dict[str, Any]]:
    """Each variant ``runs`` times (or ``runs_of[name]``), one of each per round, after
    ``warmup`` untimed rounds; the timings in ms and each variant's last result."""
    runs_of = runs_of or {}
    timings = {name: Timing() for name in variants}
    results: dict[str, Any] = {}
    rounds = warmup + max([runs, *runs_of.values()])
    for round_number in range(rounds):
        for name, action in variants.items():
            timed = round_number >= warmup
            if timed and len(timings[name].samples) >= runs_of.get(name, runs):
                continue
            if not timed and round_number > 0 and name in runs_of:
                continue  # slow baselines: a single warm-up round
            started, cpu = time.perf_counter(), time.process_time()
            results[name] = await action()
            elapsed = (time.perf_counter() - started) * 1000
            if timed:
                timings[name].samples.append(elapsed)
                timings[name].cpu.append((time.process_time() - cpu) * 1000)
    return timings, results


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Line:
    engine: str
    case: str
    timing: Timing
    note: str = ""
    target: float | None = None


def print_line(line: Line) -> None:
    verdict = ""
    if line.target is not None:
        verdict = "MET" if line.timing.median <= line.target else "MISSED"
        verdict = f"≤{line.target:.0f} {verdict}"
    cpu = f"{statistics.median(line.timing.cpu):8.1f}" if line.timing.cpu else f"{'':8}"
    print(
        f"  {line.engine:<8} {line.case:<46} {line.timing.median:8.1f} {line.timing.p90:8.1f} "
        f"{line.timing.low:8.1f} {cpu} {len(line.timing.samples):>3}  {verdict:<12} {line.note}",
        flush=True,
    )


def print_header(title: str) -> None:
    print(f"\n{title}  (load average {_load()})")
    print(
        f"  {'engine':<8} {'case':<46} {'median':>8} {'p90':>8} {'min':>8} {'cpu':>8} "
        f"{'n':>3}  {'target':<12} note"
    )


# --------------------------------------------------------------------------------------------
# Scenario 1: availableTimeSlots


async def scenario_ants(engine_name: str, args: argparse.Namespace) -> list[Line]:
    rng = random.Random(args.seed)
    lines: list[Line] = []
    async with (
        bench_database(engine_name, args.pg) as (url, engine),
        app_client(url, engine, f"ants-{engine_name}") as (client, app),
    ):
        now = datetime.now(UTC)
        today = now.date()
        started = time.perf_counter()
        specs = site_specs(20, rng, 0, 0)
        sites = await create_sites(client, app, specs, 90, today, rng)
        api_s = time.perf_counter() - started
        started = time.perf_counter()
        seeded = await seed_bookings(sites, 0.60, args.history_days, now, rng, engine_name)
        print(
            f"  [{engine_name}] ants data: 20 sites, {sum(len(s.counters) for s in sites)} "
            f"counters (staff API {api_s:.1f} s); {seeded.bookings} bookings, {seeded.units} "
            f"units loaded in {time.perf_counter() - started:.1f} s; bookable CNI slots "
            f"{seeded.busy_slots}/{seeded.grid_slots} taken = {seeded.fill:.1%}",
            flush=True,
        )
        ids = [s.id for s in sites]
        first = today
        last3 = today + timedelta(days=90)
        last1 = today + timedelta(days=30)
        headers = {"X-HUB-RDV-AUTH-TOKEN": HUB_TOKEN}

        def query(last: date) -> list[tuple[str, str | int | float | bool | None]]:
            return [
                *(("meeting_point_ids", str(i)) for i in ids),
                ("start_date", first.isoformat()),
                ("end_date", last.isoformat()),
                ("reason", "CNI"),
                ("documents_number", "1"),
            ]

        async def http(last: date) -> tuple[dict[str, Any], int]:
            response = await client.get(
                "/api/ants/availableTimeSlots", params=query(last), headers=headers
            )
            assert response.status_code == 200, response.text
            return response.json(), len(response.content)

        timings, results = await interleaved(
            {
                "http3": lambda: http(last3),
                "http1": lambda: http(last1),
                "naive3": lambda: naive_available(ids, first, last3, "CNI", 1),
            },
            args.runs,
            {"naive3": args.naive_runs},
        )
        answer, size = results["http3"]
        naive = results["naive3"]
        same, detail = compare_ants(answer, naive, now)
        count = sum(len(v) for v in answer.values())
        note = f"{count} slots, {size / 1e6:.1f} MB; {'equal to baseline' if same else detail}"
        lines.append(
            Line(
                engine_name,
                "availableTimeSlots 20 sites × 3 months (HTTP)",
                timings["http3"],
                note,
                ANTS_TARGET_MS,
            )
        )
        answer1, size1 = results["http1"]
        lines.append(
            Line(
                engine_name,
                "  same, 1 month (a peer's cap) (HTTP)",
                timings["http1"],
                f"{sum(len(v) for v in answer1.values())} slots, {size1 / 1e6:.1f} MB",
            )
        )
        if timings["naive3"].samples:
            ratio = timings["naive3"].median / timings["http3"].median
            lines.append(
                Line(
                    engine_name,
                    "  naive: per site, whole window (in process)",
                    timings["naive3"],
                    f"×{ratio:.1f} the endpoint",
                )
            )
    return lines


def compare_ants(answer: dict[str, Any], naive: dict[str, Any], now: datetime) -> tuple[bool, str]:
    """Equal answers, leaving out the few slots that crossed the notice boundary between the
    two calls (the first 10 minutes past ``now`` + notice)."""
    edge = slots.ants_datetime(now + timedelta(minutes=130), slots.PARIS)
    if set(answer) != set(naive):
        return False, "MISMATCH: sites differ"
    diff = 0
    for key in answer:
        a = [s for s in answer[key] if s["datetime"] > edge]
        b = [s for s in naive[key] if s["datetime"] > edge]
        if a != b:
            diff += 1
    return diff == 0, f"MISMATCH on {diff} sites" if diff else ""


# --------------------------------------------------------------------------------------------
# Scenario 2 (and 3 on its data): nearest free slots, then concurrent holds


async def scenario_nearest(engine_name: str, args: argparse.Namespace) -> list[Line]:
    rng = random.Random(args.seed + 1)
    lines: list[Line] = []
    scenarios = set(args.scenarios.split(","))
    async with (
        bench_database(engine_name, args.pg) as (url, engine),
        app_client(url, engine, f"nearest-{engine_name}") as (client, app),
    ):
        now = datetime.now(UTC)
        today = now.date()
        started = time.perf_counter()
        specs = site_specs(50, rng, 3, 2)
        sites = await create_sites(client, app, specs, 180, today, rng)
        api_s = time.perf_counter() - started
        started = time.perf_counter()
        seeded = await seed_bookings(sites, 0.70, args.history_days, now, rng, engine_name)
        full = [s for s in sites if s.spec.full]
        print(
            f"  [{engine_name}] nearest data: 50 sites, "
            f"{sum(len(s.counters) for s in sites)} counters (staff API {api_s:.1f} s); "
            f"{seeded.bookings} bookings, {seeded.units} units loaded in "
            f"{time.perf_counter() - started:.1f} s; bookable CNI slots "
            f"{seeded.busy_slots}/{seeded.grid_slots} taken = {seeded.fill:.1%}; "
            f"{len(full)} sites full "
            f"({', '.join(f'{seeded.per_site_fill[s.id]:.0%}' for s in full)})",
            flush=True,
        )
        if "nearest" in scenarios:
            lines += await measure_nearest(engine_name, client, sites, args)
        if "holds" in scenarios:
            lines += await measure_holds(engine_name, client, sites, args, rng)
    return lines


async def measure_nearest(
    engine_name: str, client: httpx.AsyncClient, sites: list[SiteRef], args: argparse.Namespace
) -> list[Line]:
    lines: list[Line] = []
    ids = [s.id for s in sites]
    cases = [
        ("nearest CNI, 1 person, limit 5 (HTTP)", "CNI", 1, 5, NEAREST_TARGET_MS),
        ("  nearest CNI-PASSPORT, 3 persons, limit 20", "CNI-PASSPORT", 3, 20, None),
    ]
    for title, reason, persons, limit, target in cases:

        async def http(reason: str = reason, persons: int = persons, limit: int = limit) -> Any:
            response = await client.get(
                "/api/v1/appointments/nearest",
                params={
                    "reason": reason,
                    "lat": RENNES[0],
                    "lon": RENNES[1],
                    "persons": persons,
                    "limit": limit,
                },
            )
            assert response.status_code == 200, response.text
            return response.json()

        async def brute(reason: str = reason, persons: int = persons, limit: int = limit) -> Any:
            return await naive_nearest(ids, RENNES[0], RENNES[1], reason, persons, limit)

        timings, results = await interleaved(
            {"http": http, "naive": brute}, args.runs, {"naive": args.naive_runs}
        )
        got = [
            {"site": n["site"]["id"], "starts": [s["start"] for s in n["nextSlots"]]}
            for n in results["http"]
        ]
        expected = [
            {"site": n["site"], "starts": [_iso(s) for s in n["starts"]]} for n in results["naive"]
        ]
        same = [g["site"] for g in got] == [e["site"] for e in expected] and all(
            _same_starts(g["starts"], e["starts"]) for g, e in zip(got, expected, strict=True)
        )
        # Nearer sites passed over because they had no free slot (the full ones).
        returned = {g["site"] for g in got}
        ranked = sorted(sites, key=lambda s: haversine_m(*RENNES, s.spec.lat, s.spec.lon))
        farthest = max((i for i, s in enumerate(ranked) if str(s.id) in returned), default=-1)
        skipped = sum(1 for s in ranked[:farthest] if str(s.id) not in returned)
        lines.append(
            Line(
                engine_name,
                title,
                timings["http"],
                f"{len(got)} sites ({skipped} nearer full ones passed over); "
                f"{'equal to brute force' if same else 'MISMATCH with brute force'}",
                target,
            )
        )
        if timings["naive"].samples:
            ratio = timings["naive"].median / timings["http"].median
            lines.append(
                Line(
                    engine_name,
                    "    brute force: every site, whole horizon",
                    timings["naive"],
                    f"×{ratio:.1f} the endpoint",
                )
            )
    return lines


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def _same_starts(got: list[str], expected: list[str]) -> bool:
    return [datetime.fromisoformat(g.replace("Z", "+00:00")) for g in got] == [
        datetime.fromisoformat(e) for e in expected
    ]


async def measure_holds(
    engine_name: str,
    client: httpx.AsyncClient,
    sites: list[SiteRef],
    args: argparse.Namespace,
    rng: random.Random,
) -> list[Line]:
    lines: list[Line] = []
    site = next(s for s in sites if not s.spec.full)
    latencies: list[float] = []
    totals: list[float] = []
    problems: list[str] = []
    per_attempt = 50
    for round_number in range(args.hold_rounds):
        response = await client.get(
            "/api/v1/appointments/slots", params={"siteId": str(site.id), "reason": "CNI"}
        )
        assert response.status_code == 200, response.text
        seats = response.json()[:10]
        assert len(seats) == 10, seats
        devices: list[dict[str, str]] = []
        for _ in range(per_attempt * len(seats)):
            registered = await client.post(
                "/api/v1/devices", json={"platform": "android", "locale": "fr"}
            )
            assert registered.status_code == 201, registered.text
            devices.append({"X-Device-Token": registered.json()["deviceToken"]})
        attempts = [(devices[k], seats[k % len(seats)]) for k in range(len(devices))]
        rng.shuffle(attempts)

        async def attempt(headers: dict[str, str], seat: dict[str, Any]) -> tuple[int, float, Any]:
            started = time.perf_counter()
            response = await client.post(
                "/api/v1/appointments/holds",
                json={
                    "siteId": str(site.id),
                    "start": seat["start"],
                    "reason": "CNI",
                    "counterId": seat["counterId"],
                },
                headers=headers,
            )
            elapsed = (time.perf_counter() - started) * 1000
            return response.status_code, elapsed, response.json()

        started = time.perf_counter()
        outcomes = await asyncio.gather(*(attempt(h, s) for h, s in attempts))
        totals.append((time.perf_counter() - started) * 1000)
        latencies += [o[1] for o in outcomes]
        codes: dict[int, int] = defaultdict(int)
        for code, _, _ in outcomes:
            codes[code] += 1
        won = [body for code, _, body in outcomes if code == 201]
        seats_won = {(b["counterId"], b["start"]) for b in won}
        refusals = [body for code, _, body in outcomes if code == 409]
        clear = all("réservé" in str(b) or "disponible" in str(b) for b in refusals)
        held = await Booking.select(Booking.id).where(
            Booking.id.is_in([uuid.UUID(b["id"]) for b in won] or [uuid.uuid4()])
            & (Booking.status == "held")
        )
        unit_count = await BookingUnit.count().where(
            BookingUnit.booking.is_in([r["id"] for r in held] or [uuid.uuid4()])
        )
        ok = (
            codes.get(201) == 10
            and codes.get(409) == 490
            and len(seats_won) == 10
            and len(held) == 10
            and unit_count == 30
            and clear
        )
        if not ok:
            problems.append(
                f"round {round_number}: {dict(codes)}, {len(seats_won)} seats, {len(held)} held, "
                f"{unit_count} units, clear 409s: {clear}"
            )
        print(
            f"  [{engine_name}] holds round {round_number + 1}: {dict(sorted(codes.items()))} in "
            f"{totals[-1]:.0f} ms, {len(seats_won)} distinct seats, {unit_count} units "
            f"{'OK' if ok else 'WRONG'} (load {_load()})",
            flush=True,
        )
    timing = Timing(latencies)
    p99 = statistics.quantiles(latencies, n=100, method="inclusive")[98]
    verdict = "10 won, 490 × 409 every round" if not problems else "; ".join(problems)
    lines.append(
        Line(
            engine_name,
            f"500 concurrent holds on 10 seats ×{args.hold_rounds} (HTTP)",
            timing,
            f"p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, total "
            f"{statistics.median(totals):.0f} ms (median of {len(totals)}); {verdict}",
        )
    )
    return lines


# --------------------------------------------------------------------------------------------
# Main


async def run(args: argparse.Namespace) -> int:
    scenarios = set(args.scenarios.split(","))
    all_lines: list[Line] = []
    for engine_name in args.engines.split(","):
        print(f"\n== {engine_name} (load average {_load()})", flush=True)
        if "ants" in scenarios:
            lines = await scenario_ants(engine_name, args)
            for line in lines:
                print_line(line)
            all_lines += lines
        if scenarios & {"nearest", "holds"}:
            lines = await scenario_nearest(engine_name, args)
            for line in lines:
                print_line(line)
            all_lines += lines
    print_header("Appointments (ms; HTTP = in-process ASGI client to the app)")
    for line in all_lines:
        print_line(line)
    missed = [line for line in all_lines if line.target and line.timing.median > line.target]
    wrong = [
        line
        for line in all_lines
        if "MISMATCH" in line.note or "WRONG" in line.note or "round " in line.note
    ]
    print(f"\n  targets missed: {len(missed)}; correctness problems: {len(wrong)}")
    return 1 if wrong else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--scenarios", default="ants,nearest,holds")
    parser.add_argument("--runs", type=int, default=21, help="timed runs per figure (≥ 15)")
    parser.add_argument(
        "--naive-runs",
        type=int,
        default=15,
        help="timed runs of the baselines (0: run once, to check)",
    )
    parser.add_argument("--hold-rounds", type=int, default=3)
    parser.add_argument("--history-days", type=int, default=30, help="past bookings loaded")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default=PG_BASE, help="PostgreSQL server URL (no database)")
    args = parser.parse_args(argv)
    # One access-log line per request would be most of the output (and of the time): keep
    # warnings and errors only.
    for name in ("relais.access", "httpx"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
