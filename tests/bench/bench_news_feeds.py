"""Benchmark: the news feed and the agenda over HTTP, served by uvicorn, loaded by wrk.

Run from the project root:

    .venv/bin/python -m tests.bench.bench_news_feeds [--items 10000] [--duration 15]
        [--workers 1,2] [--engines postgres,sqlite] [--indexes project,candidate]
        [--connections 50] [--threads 2] [--warmup 3] [--access-log] [--hold SECONDS]
        [--no-varied]

Needs wrk (``apt-get install -y wrk``) and PostgreSQL on 127.0.0.1:5432 (user postgres,
trust; ``RELAIS_BENCH_PG_URL`` to change). About 12 minutes with the defaults.

Target (issue), measured and printed here, never turned into a timed test: with 10,000
published items, the feed and the agenda answer ≥ 1,000 requests/s with p99 ≤ 50 ms at 50
concurrent connections on PostgreSQL (2 cores), and a 304 (`If-None-Match` = current ETag)
costs at least 3× less than the full answer, measured in the same run.

What it does:

- a fresh database (PostgreSQL ``relais_bench_<random>`` or a SQLite file), every table and the
  extra indexes; one commune with ``--items`` published items (60 % news, 40 % events over five
  years past and one ahead, 1–2 topics each, a few pinned, images and zones on some,
  translations on some), bulk-loaded; plus noise that must never show: drafts, scheduled and
  archived items (one of them pinned) and a second commune's items;
- ``--indexes``: first with the schema's own indexes (``project``, which now include the feed
  and agenda indexes of ``backend.news.tables.EXTRA_INDEXES``), then with ``CANDIDATE_INDEXES``
  added (``candidate``: room for the next index to try; today the same two, so a no-op);
- the API in its own process: ``uvicorn … --factory`` with uvloop and httptools, log level
  WARNING (``quiet_app``: as ``relais serve`` with RELAIS_LOG_LEVEL=WARNING; ``--access-log``:
  at INFO, its default, with one access-log line per request),
  ``--workers`` 1 then 2 (each worker opens its own pool);
- a correctness guard through that server before any load: the feed walked page by page with
  its cursor equals the expected order (pinned first, then newest first, no unpublished item,
  no other commune), a topic filter, the agenda's default window, and both ETags answer 304;
- wrk (``--threads`` threads, ``--connections`` connections, ``--duration`` s, latency
  distribution) on: feed first page, feed with ``If-None-Match``, agenda default window,
  agenda with ``If-None-Match``, then (unless ``--no-varied``) a random one of thousands of
  distinct feed pages and agenda windows per request, more than a process keeps rendered
  answers for (the cost of a full answer that has to be rendered); for each: requests/s,
  p50/p99, bytes per answer, CPU ms per request of the API processes, of PostgreSQL's
  backends for this database and of wrk, the requests/s those CPU costs would allow on idle
  cores ("ceiling": the machine may be shared, so the load average is printed too), and the
  304-vs-full ratios;
- ``--hold`` pauses before wrk with the server up (for curl or ``py-spy`` by hand).

The database is dropped and the server stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
# The server processes import `quiet_app` from this module: no temporary folder for them.
_MAIN = __name__ == "__main__"
_TMP = Path(tempfile.mkdtemp(prefix="relais-bench-news-") if _MAIN else tempfile.gettempdir())
if _MAIN:
    os.environ.setdefault("RELAIS_VAR_DIR", str(_TMP / "var"))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
from piccolo.table import create_db_tables  # noqa: E402

from backend import database  # noqa: E402
from geo import cell_of_lat_lon  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PG_BASE = os.environ.get("RELAIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
TOPICS = ["travaux", "culture", "sport", "environnement", "vie-locale", "jeunesse", "seniors"]
PLACES = ["Place de la Mairie", "Salle des fêtes", "Parc du Thabor", "Médiathèque", "Gymnase"]
BODY = (
    "La commune vous informe : **{title}**. Retrouvez le programme complet, les horaires et "
    "les modalités d'accès sur le site de la mairie. Le stationnement sera réglementé aux abords "
    "du site ; pensez au covoiturage et aux transports en commun. Les personnes à mobilité "
    "réduite peuvent contacter l'accueil pour un accompagnement. "
)
TARGET_RPS, TARGET_P99_MS, TARGET_RATIO = 1000.0, 50.0, 3.0
MIN_ANSWERS = 20  # below this, a run's latency percentiles and ratios mean nothing


# --- seed -------------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What was loaded, to compute the expected answers (correctness guard)."""

    commune_id: uuid.UUID
    now: datetime
    # (id, kind, state, commune, pinned, published_at, starts_at, ends_at, topics)
    items: list[tuple[Any, ...]] = field(default_factory=list)


def _item_rows(
    n: int, commune_id: uuid.UUID, other_id: uuid.UUID, now: datetime
) -> tuple[
    list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]
]:
    """NewsItem rows (COPY order of ITEM_COLUMNS), their topics, images and zone indices."""
    rng = random.Random(42)
    items: list[tuple[Any, ...]] = []
    topics: list[tuple[Any, ...]] = []
    images: list[tuple[Any, ...]] = []
    zones: list[tuple[Any, ...]] = []
    five_years = 5 * 365 * 86400
    noise = max(20, n // 20)  # unpublished / other commune: must never show
    pinned_news = {7, 1234 % max(n, 1), 4321 % max(n, 1)}
    for i in range(n + 2 * noise):
        item_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        commune, state, pinned = commune_id, "published", False
        if i >= n:  # noise
            state = ["draft", "scheduled", "archived"][i % 3] if i < n + noise else "published"
            commune = commune_id if i < n + noise else other_id
            pinned = i % 7 == 0
        kind = "event" if rng.random() < 0.4 else "news"
        if i in pinned_news:
            kind, pinned = "news", True
        starts = ends = None
        all_day, place, lat, lon, cell = False, "", None, None, None
        if kind == "news":
            published = now - timedelta(seconds=rng.uniform(60, five_years))
        else:
            starts = now + timedelta(seconds=rng.uniform(-five_years, 365 * 86400))
            starts = starts.replace(minute=rng.choice([0, 30]), second=0, microsecond=0)
            published = min(  # 1–8 weeks ahead; events far ahead: within the last 2 months
                starts - timedelta(days=rng.uniform(7, 60)),
                now - timedelta(seconds=rng.uniform(60, 60 * 86400)),
            )
            if rng.random() < 0.5:
                ends = starts + timedelta(hours=rng.choice([2, 3, 5, 30, 54, 78]))
            all_day = rng.random() < 0.15
            place = rng.choice(PLACES)
            lat, lon = 48.11 + rng.uniform(-0.04, 0.04), -1.68 + rng.uniform(-0.06, 0.06)
            cell = cell_of_lat_lon(lat, lon)
        published = published.replace(microsecond=rng.randrange(1_000_000))
        published_at = published if state in {"published", "archived"} else None
        updated = published + timedelta(seconds=rng.uniform(0, 3600))
        chosen = sorted(rng.sample(TOPICS, rng.choice([1, 1, 2])))
        title = f"{'Événement' if kind == 'event' else 'Actualité'} n°{i} — {chosen[0]}"
        summary = f"Résumé de la publication {i} : ce qu'il faut savoir, en deux phrases. " * 2
        body_md = BODY.format(title=title) * 2
        body_html = "<p>" + body_md.replace("**", "") + "</p>"
        translations = (
            {
                "en": {
                    "title": f"Item {i}",
                    "summary": "In English.",
                    "body_markdown": "Text.",
                    "body_html": "<p>Text.</p>",
                }
            }
            if rng.random() < 0.2
            else {}
        )
        items.append(
            (
                *(item_id, commune, kind, state, title[:200], summary[:500], body_md, body_html),
                *(json.dumps(translations), json.dumps(chosen), pinned, False),
                *(None, None, published_at, None, None, 0, 0, 0),
                *(starts, ends, all_day, place, "", lat, lon, cell),
                *("Mairie", "", True, "", "", "scheduled", None, published, updated),
            )
        )
        topics.extend((item_id, t) for t in chosen)
        for position in range(rng.choice([0, 0, 0, 1, 1, 2])):
            keys = []
            for size in ("display", "thumb"):
                sha = hashlib.sha256(f"{item_id}-{position}-{size}".encode()).hexdigest()
                keys.append(f"{sha[:2]}/{sha[2:4]}/{sha}.jpg")
            images.append((item_id, position, *keys, 1600, 1200, "Photo"))
        if rng.random() < 0.1:
            zones.append((item_id, rng.randrange(2)))
    return items, topics, images, zones


ITEM_COLUMNS = [
    "id", "commune", "kind", "state", "title", "summary", "body_markdown", "body_html",
    "translations", "topics", "pinned", "push", "publish_at", "unpublish_at", "published_at",
    "pushed_at", "message", "targeted", "views", "sequence", "starts_at", "ends_at", "all_day",
    "place_name", "address", "lat", "lon", "cell", "organiser", "price", "free", "accessibility",
    "registration_url", "event_status", "created_by", "created_at", "updated_at",
]  # fmt: skip


async def seed(n: int) -> Seeded:
    """One commune (and a neighbour), two zones, N published items and the noise, in bulk."""
    from alerts.tables import Zone
    from backend.news.tables import NewsImage, NewsItem, NewsTopic, NewsZone
    from backend.organisation.tables import Commune

    now = datetime.now(UTC)
    commune_id, other_id = uuid.uuid4(), uuid.uuid4()
    items, topics, images, zone_refs = _item_rows(n, commune_id, other_id, now)
    zone_ids = [uuid.uuid4(), uuid.uuid4()]
    square = {"type": "Polygon", "coordinates": [[[-1.7, 48.1], [-1.66, 48.1], [-1.66, 48.12],
                                                  [-1.7, 48.12], [-1.7, 48.1]]]}  # fmt: skip
    async with database.transaction():
        for cid, name, insee in ((commune_id, "Benchville", "99998"), (other_id, "Autre", "99997")):
            await Commune.insert(Commune(id=cid, name=name, insee_code=insee, slug=name.lower()))
        for k, zone_id in enumerate(zone_ids):
            await Zone.insert(
                Zone(
                    id=zone_id,
                    commune=commune_id,
                    name=f"Quartier {k}",
                    code=f"q{k}",
                    geometry=square,
                    min_lat=48.1,
                    min_lon=-1.7,
                    max_lat=48.12,
                    max_lon=-1.66,
                    area_km2=6.6,
                    zone_key=f"{commune_id}:q{k}",
                )
            )
        for start in range(0, len(items), 2000):
            await database.bulk_insert(NewsItem, ITEM_COLUMNS, items[start : start + 2000])
        await database.bulk_insert(NewsTopic, ["item", "topic"], topics)
        await database.bulk_insert(
            NewsImage,
            ["item", "position", "display_key", "thumb_key", "width", "height", "alt"],
            images,
        )
        await database.bulk_insert(
            NewsZone, ["item", "zone"], [(item, zone_ids[k]) for item, k in zone_refs]
        )
    await database.current_engine().run_ddl("ANALYZE")
    seeded = Seeded(commune_id, now)
    kept = ["id", "kind", "state", "commune", "pinned", "published_at", "starts_at", "ends_at"]
    where = [ITEM_COLUMNS.index(c) for c in kept]
    topics_at = ITEM_COLUMNS.index("topics")
    for row in items:
        seeded.items.append((*(row[i] for i in where), json.loads(row[topics_at])))
    return seeded


# --- expected answers (correctness guard) ----------------------------------------------------


def expected_feed(s: Seeded, topic: str | None = None) -> tuple[list[str], list[str]]:
    """(pinned ids newest first, the other published news newest first then id descending)."""
    rows = [
        r
        for r in s.items
        if r[1] == "news" and r[2] == "published" and r[3] == s.commune_id
        and (topic is None or topic in r[8])
    ]  # fmt: skip
    pinned = sorted((r for r in rows if r[4]), key=lambda r: r[5], reverse=True)
    rest = sorted((r for r in rows if not r[4]), key=lambda r: (r[5], r[0]), reverse=True)
    return [str(r[0]) for r in pinned], [str(r[0]) for r in rest]


def expected_agenda(s: Seeded, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Published events of the commune overlapping [start, end], soonest first, 200 at most."""
    rows = [
        (r[6], str(r[0]))
        for r in s.items
        if r[1] == "event" and r[2] == "published" and r[3] == s.commune_id
        and r[6] <= end and (r[7] or r[6]) >= start
    ]  # fmt: skip
    return sorted(rows)


def check_answers(base: str, s: Seeded) -> dict[str, Any]:
    """Walk the feed and read the agenda through the server; raise on any difference."""
    cid = str(s.commune_id)
    facts: dict[str, Any] = {}
    with httpx.Client(base_url=base, timeout=30) as http:
        for topic in (None, "culture"):
            pinned, rest = expected_feed(s, topic)
            params: dict[str, str] = {"communeId": cid, "limit": "50"}
            if topic:
                params["topics"] = topic
            got: list[str] = []
            first = True
            while True:
                page = http.get("/api/v1/news", params=params)
                assert page.status_code == 200, page.text
                body = page.json()
                ids = [i["id"] for i in body["items"]]
                if first:
                    assert ids[: len(pinned)] == pinned, "pinned items first, newest first"
                    ids = ids[len(pinned) :]
                    first = False
                assert not any(i["pinned"] for i in body["items"][-len(ids) :] if ids)
                got += ids
                if not body["nextCursor"]:
                    break
                params["cursor"] = body["nextCursor"]
            assert got == rest, f"feed (topic={topic}) differs from the expected order"
            facts[f"feed_{topic or 'all'}"] = len(pinned) + len(got)
        head = http.get("/api/v1/news", params={"communeId": cid})
        assert len(head.json()["items"]) == len(expected_feed(s)[0]) + 20
        etag = head.headers["etag"]
        again = http.get("/api/v1/news", params={"communeId": cid}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.headers["etag"] == etag
        agenda = http.get("/api/v1/events", params={"communeId": cid})
        assert agenda.status_code == 200, agenda.text
        start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        want = expected_agenda(s, start, start + timedelta(days=92))
        got_events = [(datetime.fromisoformat(e["startsAt"]), e["id"]) for e in agenda.json()]
        assert [t for t, _ in got_events] == [t for t, _ in want][:200], "agenda order"
        assert {i for _, i in got_events} <= {i for _, i in want}, "agenda leaks"
        if len(want) <= 200:
            assert sorted(got_events) == want, "agenda differs"
        facts["agenda"] = len(got_events)
        facts["agenda_window"] = len(want)
        tag = agenda.headers["etag"]
        again = http.get(
            "/api/v1/events", params={"communeId": cid}, headers={"If-None-Match": tag}
        )
        assert again.status_code == 304
        topic_agenda = http.get("/api/v1/events", params={"communeId": cid, "topics": "sport"})
        allowed = {str(r[0]) for r in s.items if "sport" in r[8]}
        assert all(e["id"] in allowed for e in topic_agenda.json()), "agenda topic filter"
        facts["feed_bytes"] = len(head.content)
        facts["agenda_bytes"] = len(agenda.content)
    return facts


# --- the server -------------------------------------------------------------------------------


def quiet_app() -> Any:
    """The app as `relais serve` runs it with RELAIS_LOG_LEVEL=WARNING (uvicorn factory)."""
    from backend.app import create_app
    from backend.request_context import configure_logging

    configure_logging("WARNING")
    return create_app()


def logged_app() -> Any:
    """The app as `relais serve` runs it by default: INFO, one access-log line per request."""
    from backend.app import create_app
    from backend.request_context import configure_logging

    configure_logging("INFO")
    return create_app()


def free_port() -> int:
    """A free TCP port on the loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ApiServer:
    """``uvicorn backend.app:create_app --factory`` in its own process group."""

    def __init__(self, url: str, workers: int, var_dir: Path, log: Path, factory: str) -> None:
        self.url, self.workers, self.var_dir, self.log = url, workers, var_dir, log
        self.factory = factory
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ApiServer:
        env = {
            **os.environ,
            "RELAIS_DATABASE_URL": self.url,
            "RELAIS_VAR_DIR": str(self.var_dir),
            "RELAIS_SECRET_KEY": "bench-" + uuid.uuid4().hex,
            "RELAIS_LOG_LEVEL": "WARNING",
            "PICCOLO_CONF": "backend.piccolo_conf",
        }
        command = [sys.executable, "-m", "uvicorn", self.factory, "--factory"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers), "--loop", "uvloop", "--http", "httptools"]
        command += ["--log-level", "warning", "--no-access-log"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        ok = 0
        while ok < 5:  # several answers in a row: every worker is up (most likely)
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start:\n{self.log.read_text()[-3000:]}")
            try:
                ok = ok + 1 if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200 else 0
            except httpx.HTTPError:
                ok = 0
            time.sleep(0.2)
        return self

    def pids(self) -> list[int]:
        """The uvicorn process and its workers."""
        if self.process is None:
            return []
        out = [self.process.pid]
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{self.process.pid}/task").iterdir():
                out += [int(p) for p in (task / "children").read_text().split()]
        return out

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# --- measuring --------------------------------------------------------------------------------


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


def postgres_backends(db_name: str) -> list[int]:
    """PostgreSQL backend processes connected to this database (read from /proc)."""
    if not db_name:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if f" {db_name} " in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
    return found


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_SIZES = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


@dataclass
class WrkResult:
    """One wrk run."""

    name: str
    rps: float
    p50: float
    p99: float
    requests: int
    bytes_per_request: float
    errors: str
    server_cpu_ms: float  # per request, API processes
    pg_cpu_ms: float  # per request, PostgreSQL backends of the bench database
    wrk_cpu_ms: float  # per request, the load generator
    load: str

    @property
    def ceiling(self) -> float:
        """Requests/s if the cores did nothing else (API + PostgreSQL + wrk CPU per request)."""
        return (
            (os.cpu_count() or 1) * 1000 / (self.server_cpu_ms + self.pg_cpu_ms + self.wrk_cpu_ms)
        )


def run_wrk(
    name: str, url: str, args: argparse.Namespace, headers: dict[str, str], server: ApiServer,
    db_name: str, duration: float, paths: list[str] | None = None,
) -> WrkResult:  # fmt: skip
    """wrk against one URL (or, with `paths`, a random one of these paths per request); CPU
    of the server and of PostgreSQL sampled around it."""
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{duration:g}s", "--latency", "--timeout", "5s"]
    if paths:
        script = _TMP / f"paths-{uuid.uuid4().hex[:8]}.lua"
        quoted = ",\n".join(json.dumps(p) for p in paths)  # JSON strings are Lua strings here
        script.write_text(
            f"local paths = {{\n{quoted}\n}}\n"
            "request = function()\n"
            "  return wrk.format('GET', paths[math.random(#paths)])\n"
            "end\n"
        )
        command += ["-s", str(script)]
    for key, value in headers.items():
        command += ["-H", f"{key}: {value}"]
    pids, pg = server.pids(), postgres_backends(db_name)
    before, pg_before = _cpu_ticks(pids), _cpu_ticks(pg)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [*command, url], capture_output=True, text=True, timeout=duration + 60, check=True
    ).stdout
    ticks = os.sysconf("SC_CLK_TCK")
    server_cpu = (_cpu_ticks(pids) - before) / ticks * 1000
    pg_cpu = (_cpu_ticks(pg) - pg_before) / ticks * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    wrk_cpu = (after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) * 1000
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    total = re.search(r"(\d+) requests in [\d.]+\w+, ([\d.]+)(\w+) read", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (total and rps and "50" in latency and "99" in latency):
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(total.group(1))
    size = float(total.group(2)) * _SIZES[total.group(3)]
    errors = []
    if bad := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors.append(f"{bad.group(1)} non-2xx/3xx")
    if sock := re.search(r"Socket errors: (.*)", out):
        errors.append(sock.group(1))
    per = 1 / requests if requests else math.nan
    return WrkResult(
        name, float(rps.group(1)), _ms(latency["50"]), _ms(latency["99"]), requests,
        size * per, "; ".join(errors), server_cpu * per, pg_cpu * per, wrk_cpu * per, load,
    )  # fmt: skip


def varied_paths(base: str, cid: str) -> tuple[list[str], list[str]]:
    """Many distinct questions, far more than a server process keeps rendered answers for:
    feed pages (every cursor of the feed × page sizes 1–50) and agenda windows (`from` moved
    hour by hour over 200 days). Each request picks one at random: what a full answer costs
    when it has to be rendered (mostly cache misses), beside the repeated first page."""
    cursors = [""]
    with httpx.Client(base_url=base, timeout=30) as http:
        while True:
            params = {"communeId": cid, "limit": "50"}
            if cursors[-1]:
                params["cursor"] = cursors[-1]
            page = http.get("/api/v1/news", params=params).json()
            if not page["nextCursor"]:
                break
            cursors.append(page["nextCursor"])
    feed = [
        f"/api/v1/news?communeId={cid}&limit={n}"
        + (f"&cursor={urllib.parse.quote(c, safe='')}" if c else "")
        for c in cursors
        for n in range(1, 51)
    ]
    day = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    agenda = []
    for hours in range(0, 200 * 24):
        start = day + timedelta(hours=hours)
        window = f"from={urllib.parse.quote(start.isoformat(), safe='')}"
        agenda.append(f"/api/v1/events?communeId={cid}&{window}")
    return feed, agenda


@dataclass
class Config:
    """One engine × worker count, its runs."""

    engine: str
    indexes: str
    workers: int
    runs: list[WrkResult] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


def measure(
    engine: str, indexes: str, url: str, db_name: str, seeded: Seeded, workers: int,
    args: argparse.Namespace,
) -> Config:  # fmt: skip
    """Start the server, check its answers, then load it with wrk."""
    config = Config(engine, indexes, workers)
    tag = f"[{engine}, {indexes} indexes, {workers} worker(s)]"
    var_dir = _TMP / f"var-{engine}-{indexes}-{workers}"
    log = _TMP / f"uvicorn-{engine}-{indexes}-{workers}.log"
    print(f"{tag} starting uvicorn (log: {log})", flush=True)
    factory = f"tests.bench.bench_news_feeds:{'logged_app' if args.access_log else 'quiet_app'}"
    with ApiServer(url, workers, var_dir, log, factory) as server:
        try:
            config.facts = check_answers(server.base, seeded)
        except Exception:
            print(f"server log:\n{log.read_text(errors='replace')[-4000:]}", flush=True)
            raise
        cid = str(seeded.commune_id)
        feed = f"{server.base}/api/v1/news?communeId={cid}"
        agenda = f"{server.base}/api/v1/events?communeId={cid}"
        etags = {u: httpx.get(u, timeout=30).headers["etag"] for u in (feed, agenda)}
        if args.hold:  # for poking at the server by hand (curl, py-spy)
            print(f"holding {args.hold:g} s: {feed} {agenda} {etags} pids {server.pids()}")
            time.sleep(args.hold)
        for u in (feed, agenda):  # warm every worker's pool and code paths
            run_wrk("warm-up", u, args, {}, server, db_name, args.warmup)
        plan: list[tuple[str, str, dict[str, str], list[str] | None]] = [
            ("feed", feed, {}, None),
            ("feed 304", feed, {"If-None-Match": etags[feed]}, None),
            ("agenda", agenda, {}, None),
            ("agenda 304", agenda, {"If-None-Match": etags[agenda]}, None),
        ]
        if args.varied:
            feed_paths, agenda_paths = varied_paths(server.base, cid)
            plan += [
                ("feed var.", feed, {}, feed_paths),
                ("agenda var.", agenda, {}, agenda_paths),
            ]
        for name, u, headers, paths in plan:
            print(f"{tag} wrk {name} …", flush=True)
            config.runs.append(
                run_wrk(name, u, args, headers, server, db_name, args.duration, paths)
            )
        for u in (feed, agenda):  # the validators did not move during the runs
            assert httpx.get(u, timeout=30).headers["etag"] == etags[u], "ETag changed"
    return config


# --- databases --------------------------------------------------------------------------------

# Candidate indexes (recommended in the report; not in the project's schema): the feed's first
# page and cursor pages as one index range each, and the agenda's window by the end of the
# events (an event without an end lasts its start), which `reading.agenda` compares.
CANDIDATE_INDEXES = [
    "CREATE INDEX IF NOT EXISTS news_item_feed "
    "ON news_item (commune, kind, state, pinned, published_at, id)",
    "CREATE INDEX IF NOT EXISTS news_item_agenda "
    "ON news_item (commune, kind, state, (COALESCE(ends_at, starts_at)))",
]


async def create_candidate_indexes(url: str) -> None:
    """The candidate indexes, then fresh statistics."""
    engine = database.engine_from_url(url)
    await database.start(engine)
    try:
        for ddl in CANDIDATE_INDEXES:
            await engine.run_ddl(ddl)
        await engine.run_ddl("ANALYZE")
    finally:
        await database.stop(engine)


@contextlib.contextmanager
def bench_database(engine: str) -> Iterator[tuple[str, str]]:
    """A fresh database (url, PostgreSQL name); dropped at the end whatever happens."""
    if engine == "sqlite":
        path = _TMP / f"bench-{uuid.uuid4().hex[:8]}.sqlite3"
        try:
            yield f"sqlite:///{path}", ""
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"relais_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(f"{PG_BASE}/postgres")
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_BASE}/{name}", name
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"dropped database {name}", flush=True)


async def prepare(url: str, items: int) -> Seeded:
    """Tables, extra indexes and the seed, through this process's own engine."""
    engine = database.engine_from_url(url)
    await database.start(engine)
    database.bind_engine(engine)
    try:
        await create_db_tables(*database.all_tables(), if_not_exists=True)
        await database.create_extra_indexes()
        started = time.perf_counter()
        seeded = await seed(items)
        print(f"seeded {items} items in {time.perf_counter() - started:.1f} s", flush=True)
        return seeded
    finally:
        await database.stop(engine)


# --- report -----------------------------------------------------------------------------------


def _num(value: float, fmt: str) -> str:
    if math.isnan(value):
        return "-"
    return format(value, fmt if abs(value) < 100 else ".0f")


def report(configs: list[Config], args: argparse.Namespace) -> None:
    """The table, the targets and the 304 ratios."""
    print()
    print(
        f"News feed & agenda — {args.items} published items, wrk {args.threads} threads, "
        f"{args.connections} connections, {args.duration:g} s per run, {os.cpu_count()} cores"
    )
    print(
        "CPU ms per request: api = uvicorn processes, pg = PostgreSQL backends, wrk = load "
        "generator;\nceiling = requests/s those CPU costs allow on idle cores (the machine "
        "is shared: see the load average)"
    )
    head = (
        f"{'engine':<9}{'indexes':<10}{'wk':>3} {'endpoint':<11}{'req/s':>7}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'B/answer':>9}{'api':>7}{'pg':>7}{'wrk':>6}{'ceiling':>8}  "
        f"{'load avg':<18}{'target':<7}errors"
    )
    print(head)
    print("-" * len(head))
    for c in configs:
        for r in c.runs:
            target = ""
            if c.engine == "postgres":
                ok = r.rps >= TARGET_RPS and r.p99 <= TARGET_P99_MS
                target = "ok" if ok else "missed"
            print(
                f"{c.engine:<9}{c.indexes:<10}{c.workers:>3} {r.name:<11}{r.rps:>7.0f}"
                f"{r.p50:>8.1f}{r.p99:>8.1f}{_num(r.bytes_per_request, '.0f'):>9}"
                f"{_num(r.server_cpu_ms, '.2f'):>7}{_num(r.pg_cpu_ms, '.2f'):>7}"
                f"{_num(r.wrk_cpu_ms, '.2f'):>6}{_num(r.ceiling, '.0f'):>8}  "
                f"{r.load:<18}{target:<7}{r.errors}"
            )
    print()
    print(
        f"304 vs full, same server, same run (target: ≥ {TARGET_RATIO:g}× cheaper): "
        "requests/s ×, p50 ÷, CPU per request (api + pg) ÷"
    )
    for c in configs:
        by = {r.name: r for r in c.runs}
        pairs = [(n, n) for n in ("feed", "agenda")]
        pairs += [(f"{n} var.", n) for n in ("feed", "agenda") if f"{n} var." in by]
        for name, base in pairs:
            whole, cond = by[name], by[f"{base} 304"]
            label = f"  {c.engine:<9}{c.indexes:<10}{c.workers} wk {name:<12}"
            if min(whole.requests, cond.requests) < MIN_ANSWERS:
                print(f"{label} n/a (fewer than {MIN_ANSWERS} answers within wrk's timeout)")
                continue
            rps = cond.rps / whole.rps
            p50 = whole.p50 / max(cond.p50, 1e-3)
            cpu = (whole.server_cpu_ms + whole.pg_cpu_ms) / max(
                cond.server_cpu_ms + cond.pg_cpu_ms, 1e-6
            )
            verdict = "ok" if min(rps, p50) >= TARGET_RATIO else "missed"
            print(f"{label} req/s ×{rps:<5.1f} p50 ÷{p50:<5.1f} CPU/req ÷{cpu:<5.1f} {verdict}")
    print()
    for c in configs:
        print(f"  checked {c.engine}/{c.indexes}/{c.workers} wk: {c.facts}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every engine × worker count, report; clean up whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts to compare")
    parser.add_argument("--engines", default="postgres,sqlite")
    parser.add_argument(
        "--indexes",
        default="project,candidate",
        help="project: the schema's indexes; candidate: plus CANDIDATE_INDEXES (in this order)",
    )
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--hold", type=float, default=0.0, help="s to pause before wrk")
    parser.add_argument(
        "--no-varied",
        dest="varied",
        action="store_false",
        help="skip the runs over many distinct feed pages and agenda windows (cache misses)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="log at INFO, one access-log line per request (relais serve's default level)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get update && apt-get install -y wrk")

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through every finally: server stopped, database dropped

    signal.signal(signal.SIGTERM, stop)
    print(f"load average at start: {Path('/proc/loadavg').read_text().strip()}", flush=True)
    configs: list[Config] = []
    try:
        for engine in args.engines.split(","):
            with bench_database(engine) as (url, db_name):
                seeded = asyncio.run(prepare(url, args.items))
                for indexes in args.indexes.split(","):
                    if indexes == "candidate":
                        asyncio.run(create_candidate_indexes(url))
                    for workers in (int(w) for w in args.workers.split(",")):
                        configs.append(
                            measure(engine, indexes, url, db_name, seeded, workers, args)
                        )
    finally:
        if configs:
            report(configs, args)
        shutil.rmtree(_TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
