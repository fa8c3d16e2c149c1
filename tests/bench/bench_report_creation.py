"""Benchmark: filing reports with two 12 MP phone photos through the real HTTP server.

Run from the project root:

    .venv/bin/python -m tests.bench.bench_report_creation [--reports 200] [--clients 20]
        [--cap-seconds 120] [--engines sqlite,postgres]

Measured and printed (issue), never turned into a timed test: throughput (reports/s) and
latency p50/p99 of ``POST /api/v1/reports`` (multipart, two photos of ~4 MB) with 20 concurrent
clients, on SQLite and PostgreSQL.

For each engine the benchmark creates its own database (a temporary SQLite file; a fresh
PostgreSQL database ``relais_bench_<random>`` on 127.0.0.1:5432, dropped at the end), creates
the tables, seeds a commune, its voirie service and a public "Nid-de-poule" category through the
services, then starts the app as ``relais serve`` does — ``uvicorn backend.app:create_app
--factory``, one process, on a free loopback port, with RELAIS_DATABASE_URL and RELAIS_VAR_DIR
(photos land in a temporary var/) — and a loopback BAN geocoder (tests.peers.ban) so that the
reverse geocoding of every report stays on the machine.

Each client registers a device (``POST /api/v1/devices``, untimed), then files reports one
after the other — fields, a GPS position in Rennes, an Idempotency-Key, two photos (the first
with EXIF GPS and orientation 6, as a phone writes them) — until the run has filed ``--reports``
or ``--cap-seconds`` have passed. A first phase with one client gives the latency of a report
alone. The server's CPU time (from /proc) is read around each phase: the photo pipeline runs
in a thread pool with one thread per core, so on 2 cores the server is CPU-bound and throughput
≈ cores / CPU-seconds per report. The client (this process) shares the same cores: its CPU time
is printed too.

Checked afterwards: every answer is 201 with two photos, the database holds exactly the
demandes and photo rows answered, and every display and thumbnail key exists on disk.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
# This process's own settings (secret key): a temporary var/, never the project's.
os.environ["RELAIS_VAR_DIR"] = os.path.join(tempfile.gettempdir(), f"relais-bench-rc-{os.getpid()}")

import asyncpg
import httpx
from piccolo.table import create_db_tables

from backend import database
from backend.demandes.categories import create_category
from backend.demandes.tables import Demande, Photo
from backend.organisation import service as organisation
from tests.media.factories import encode, gps_exif, photo_like
from tests.peers.ban import BanPeer

PG_BASE = os.environ.get("RELAIS_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432")
ROOT = Path(__file__).resolve().parents[2]
RENNES = (48.1113, -1.6800)
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Photos and form


def phone_jpeg(seed: int, *, gps: tuple[float, float] | None) -> bytes:
    """A 4000×3000 photo-like JPEG at phone quality (q92, 4:2:0, grain), EXIF like a phone's."""
    image = photo_like(4000, 3000, seed=seed, noise=4.0)
    exif = gps_exif(*gps, orientation=6) if gps is not None else gps_exif(orientation=1)
    return encode(image, "JPEG", quality=92, exif=exif)


@dataclass(frozen=True)
class Seed:
    commune_id: uuid.UUID
    category_id: uuid.UUID


async def seed(url: str) -> Seed:
    """Tables, then a commune with its voirie service and a public category (the services)."""
    engine = database.engine_from_url(url)
    await database.start(engine)
    database.bind_engine(engine)
    try:
        await create_db_tables(*database.all_tables(), if_not_exists=True)
        await database.create_extra_indexes()
        commune = await organisation.create_commune("Rennes", "35238", phone="02 23 62 10 10")
        voirie = await organisation.create_service(
            commune["id"], None, {"name": "Voirie", "phone": "02 23 62 10 20"}
        )
        category = await create_category(
            commune["id"],
            {
                "name": "Nid-de-poule",
                "service_id": voirie["id"],
                "needs_location": True,
                "public": True,
                "sla_days": 5,
            },
        )
        return Seed(commune["id"], category["id"])
    finally:
        await database.stop(engine)


async def count_rows(url: str) -> tuple[int, int, list[str]]:
    """(demandes, photos, every stored media key) in the database."""
    engine = database.engine_from_url(url)
    await database.start(engine)
    database.bind_engine(engine)
    try:
        demandes = await Demande.count()
        photos = await Photo.select(Photo.display_key, Photo.thumb_key)
        keys = [p["display_key"] for p in photos] + [p["thumb_key"] for p in photos]
        return demandes, len(photos), keys
    finally:
        await database.stop(engine)


# --------------------------------------------------------------------------------------------
# The server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of every core together, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return float(sum(values) - idle), float(sum(values))


class Server:
    """The API served as ``relais serve`` serves it, in a subprocess."""

    def __init__(self, url: str, var_dir: Path, geocoder_url: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "PICCOLO_CONF": "backend.piccolo_conf",
            "RELAIS_DATABASE_URL": url,
            "RELAIS_VAR_DIR": str(var_dir),
            "RELAIS_PUBLIC_URL": self.base_url,
            "RELAIS_GEOCODER_URL": geocoder_url,
            # INFO: the access log ("POST /api/v1/reports 201 123.4ms") gives "srv p50".
            "RELAIS_LOG_LEVEL": "INFO",
        }
        self.log = var_dir / "server.log"
        var_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("wb")
        # What `relais serve` runs after its migrate step (the bench built the schema itself):
        # our logging set-up, then uvicorn with the app factory and no uvicorn access log.
        serve = (
            "import uvicorn; from backend.request_context import configure_logging; "
            "configure_logging('INFO'); "
            f"uvicorn.run('backend.app:create_app', factory=True, host='127.0.0.1', "
            f"port={self.port}, access_log=False, log_config=None)"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", serve],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.log.read_text()[-3000:]}")
                try:
                    if (await client.get("/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError(f"server not ready after {within:.0f} s")

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid)

    def durations(self, start_line: int) -> tuple[list[float], int]:
        """Server-side durations (s) of POST /api/v1/reports in the log from ``start_line``,
        and the next line number (the app's access log: "POST /api/v1/reports 201 123.4ms")."""
        self._log_file.flush()
        lines = self.log.read_text(errors="replace").splitlines()
        found = []
        for line in lines[start_line:]:
            if "POST /api/v1/reports " in line and line.endswith("ms"):
                found.append(float(line.rsplit(" ", 1)[1].removesuffix("ms")) / 1000)
        return found, len(lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()


# --------------------------------------------------------------------------------------------
# The clients


@dataclass
class Phase:
    name: str
    clients: int
    latencies: list[float] = field(default_factory=list)  # seconds, of 201 answers
    server_side: list[float] = field(default_factory=list)  # seconds, from the access log
    failures: list[str] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    machine_busy: float = 0.0  # share of all cores busy (every process) during the phase
    capped: bool = False

    @property
    def done(self) -> int:
        return len(self.latencies)

    def percentile(self, q: float, values: list[float] | None = None) -> float:
        ordered = sorted(self.latencies if values is None else values)
        if not ordered:
            return float("nan")
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]


async def register_device(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/devices", json={"platform": "android", "locale": "fr"})
    response.raise_for_status()
    return {"X-Device-Token": response.json()["deviceToken"]}


def report_parts(
    seeded: Seed, photos: tuple[bytes, bytes], number: int
) -> list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]]:
    lat = RENNES[0] + ((number * 37) % 200 - 100) * 0.0003
    lon = RENNES[1] + ((number * 53) % 200 - 100) * 0.0004
    fields = {
        "communeId": str(seeded.commune_id),
        "categoryId": str(seeded.category_id),
        "description": f"Nid-de-poule profond devant le {number % 90 + 1}, dangereux à vélo.",
        "lat": f"{lat:.6f}",
        "lon": f"{lon:.6f}",
        "locationSource": "gps",
    }
    parts: list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]] = [
        (name, (None, value)) for name, value in fields.items()
    ]
    parts += [
        ("photos", (f"IMG_{number:04d}_{i}.jpg", data, "image/jpeg"))
        for i, data in enumerate(photos)
    ]
    return parts


async def run_phase(
    server: Server,
    seeded: Seed,
    photos: tuple[bytes, bytes],
    name: str,
    clients: int,
    reports: int,
    cap_seconds: float,
    idempotency_key: bool,
) -> Phase:
    phase = Phase(name, clients)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    timeout = httpx.Timeout(cap_seconds + 30, connect=10)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=timeout) as http:
        devices = [await register_device(http) for _ in range(clients)]
        issued = 0
        started = time.perf_counter()
        deadline = started + cap_seconds

        async def worker(headers: dict[str, str]) -> None:
            nonlocal issued
            while issued < reports and time.perf_counter() < deadline:
                issued += 1
                number = issued
                parts = report_parts(seeded, photos, number)
                begin = time.perf_counter()
                try:
                    response = await http.post(
                        "/api/v1/reports",
                        files=parts,
                        headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
                        if idempotency_key
                        else headers,
                    )
                except httpx.HTTPError as exc:
                    phase.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                elapsed = time.perf_counter() - begin
                if response.status_code == 201:
                    phase.latencies.append(elapsed)
                    phase.answers.append(response.json())
                else:
                    phase.failures.append(f"{response.status_code}: {response.text[:200]}")

        _, log_line = server.durations(0)
        cpu0, client0, (busy0, total0) = server.cpu(), time.process_time(), machine_cpu()
        await asyncio.gather(*(worker(h) for h in devices))
        phase.wall = time.perf_counter() - started
        phase.server_cpu = server.cpu() - cpu0
        phase.client_cpu = time.process_time() - client0
        busy1, total1 = machine_cpu()
        phase.machine_busy = (busy1 - busy0) / max(1.0, total1 - total0)
        phase.server_side, _ = server.durations(log_line)
        phase.capped = issued < reports
    return phase


# --------------------------------------------------------------------------------------------
# Main


@dataclass
class EngineResult:
    engine: str
    phases: list[Phase]
    ok: bool
    checks: str


async def bench_engine(
    name: str, args: argparse.Namespace, photos: tuple[bytes, bytes], geocoder: BanPeer
) -> EngineResult:
    folder = Path(tempfile.mkdtemp(prefix="relais-bench-reports-"))
    db_name = ""
    if name == "sqlite":
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
    else:
        db_name = f"relais_bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(f"{PG_BASE}/postgres")
        await admin.execute(f'CREATE DATABASE "{db_name}"')
        await admin.close()
        url = f"{PG_BASE}/{db_name}"
    print(f"\n[{name}]  load average {_load()}", flush=True)
    server: Server | None = None
    try:
        seeded = await seed(url)
        server = Server(url, folder / "var", geocoder.base_url)
        await server.wait_ready()
        phases = []
        plan = [
            ("1 client", 1, args.single, True),
            (f"{args.clients} clients", args.clients, args.reports, True),
        ]
        if args.compare_no_key:
            plan.append((f"{args.clients}, no key", args.clients, args.reports, False))
        for phase_name, clients, reports, with_key in plan:
            phase = await run_phase(
                server, seeded, photos, phase_name, clients, reports, args.cap_seconds, with_key
            )
            phases.append(phase)
            print(
                f"  {phase_name:<11} {phase.done} reports in {phase.wall:.1f} s "
                f"({phase.done / phase.wall:.2f}/s), p50 {phase.percentile(0.5) * 1000:.0f} ms, "
                f"p99 {phase.percentile(0.99) * 1000:.0f} ms, {len(phase.failures)} failures"
                f"{' (capped)' if phase.capped else ''}; server CPU {phase.server_cpu:.1f} s, "
                f"load average {_load()}",
                flush=True,
            )
            for failure in sorted(set(phase.failures))[:3]:
                print(f"    failure ×{phase.failures.count(failure)}: {failure[:150]}")
            if phase.failures:
                print(f"    (tracebacks in the server log: {server.log}, kept with --keep)")
        server.stop()
        demandes, photo_rows, keys = await count_rows(url)
        answered = sum(p.done for p in phases)
        media = folder / "var" / "media"
        missing = [k for k in set(keys) if not (media / k).is_file()]
        two_photos = all(len(a["photos"]) == 2 for p in phases for a in p.answers)
        ok = (
            demandes == answered
            and photo_rows == 2 * answered
            and not missing
            and two_photos
            and not any(p.failures for p in phases)
        )
        checks = (
            f"{demandes} demandes and {photo_rows} photo rows for {answered} answers, "
            f"{len(set(keys))} distinct media files (content-addressed: the same two photos "
            f"every time), {len(missing)} missing"
        )
        print(f"  check: {checks} {'OK' if ok else 'FAILED'}")
        return EngineResult(name, phases, ok, checks)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"  (kept {folder} {db_name})")
        else:
            shutil.rmtree(folder, ignore_errors=True)
            if db_name:
                admin = await asyncpg.connect(f"{PG_BASE}/postgres")
                await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
                await admin.close()


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def print_table(results: list[EngineResult], photo_mb: float, cores: int) -> None:
    print(
        f"\nPOST /api/v1/reports, 2 photos ({photo_mb:.1f} MB together), one uvicorn process, "
        f"{cores} cores shared with the clients"
    )
    header = (
        f"{'engine':<9}{'phase':<15}{'ok':>5}{'fail':>5}{'wall s':>7}{'rep/s':>6}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'srv p50':>8}{'CPU s/rep':>10}{'srv CPU':>8}{'machine':>8}"
        f"{'client s':>9}  check"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        for p in result.phases:
            attempts = p.done + len(p.failures)
            per_report = p.server_cpu / attempts if attempts else float("nan")
            usage = p.server_cpu / p.wall / cores * 100 if p.wall else float("nan")
            server_p50 = p.percentile(0.5, p.server_side) * 1000
            print(
                f"{result.engine:<9}{p.name:<15}{p.done:>5}{len(p.failures):>5}{p.wall:>7.1f}"
                f"{p.done / p.wall:>6.2f}{p.percentile(0.5) * 1000:>8.0f}"
                f"{p.percentile(0.99) * 1000:>8.0f}{server_p50:>8.0f}{per_report:>10.3f}"
                f"{usage:>7.0f}%{p.machine_busy * 100:>7.0f}%{p.client_cpu:>9.1f}  "
                f"{'ok' if result.ok else 'FAIL'}{' capped' if p.capped else ''}"
            )
    print(
        "p50/p99: client-side latency of the 201 answers; srv p50: the server's own access log "
        "(all answers). CPU s/rep: server CPU per request. srv CPU: server CPU / wall / cores. "
        "machine: share of all cores busy (every process: server, clients, PostgreSQL, and "
        f"whatever else runs). CPU-bound ceiling ≈ {cores} cores / (CPU s per report)."
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=200, help="reports of the concurrent run")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--single", type=int, default=10, help="reports of the 1-client run")
    parser.add_argument("--cap-seconds", type=float, default=120.0, help="per phase")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument(
        "--compare-no-key",
        action="store_true",
        help="add a concurrent run without Idempotency-Key (no key reserved or answer stored)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the databases and var/")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if not set(engines) <= {"sqlite", "postgres"} or args.clients < 1 or args.reports < 1:
        parser.error("--engines takes sqlite and/or postgres; --clients, --reports at least 1")
    return asyncio.run(_main(args, engines))


async def _main(args: argparse.Namespace, engines: list[str]) -> int:
    try:
        return await _run(args, engines)
    finally:
        shutil.rmtree(os.environ["RELAIS_VAR_DIR"], ignore_errors=True)


async def _run(args: argparse.Namespace, engines: list[str]) -> int:
    began = time.perf_counter()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"load average at start {_load()}, {cores} cores")
    started = time.perf_counter()
    photos = (phone_jpeg(1, gps=RENNES), phone_jpeg(2, gps=None))
    photo_mb = sum(len(p) for p in photos) / 1e6
    print(
        f"photos: 2 × 4000×3000 JPEG q92 ({', '.join(f'{len(p) / 1e6:.1f} MB' for p in photos)})"
        f", generated in {time.perf_counter() - started:.1f} s"
    )
    results = []
    with BanPeer() as geocoder:
        for name in engines:
            results.append(await bench_engine(name, args, photos, geocoder))
    print_table(results, photo_mb, cores or 1)
    print(f"\nload average at end {_load()}; total {time.perf_counter() - began:.0f} s")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
