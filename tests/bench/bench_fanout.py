"""Push fanout through the outbox: first-push latency and sustained delivery-worker throughput.

Run: ``.venv/bin/python -m tests.bench.bench_fanout [--messages N] [--engines sqlite,postgres]``
(``--help`` for the rest: ``--reps``, ``--latency-devices``, ``--transports``, ``--batch``...)

Targets (issue; measured and printed, never asserted):

- **First push ≤ 1 s after "send".** The staff action, ``alerts.crisis.send_alert`` of an alert
  whose area holds ``--latency-devices`` devices (half FCM, half Web Push), and, to tell
  targeting from the outbox, ``notify()`` to the same devices in a transaction (``--send``),
  while ``relais worker`` runs in its own process with the default
  ``RELAIS_DELIVERY_POLL_SECONDS`` (0.25 s). Measured from just before the send call to the
  loopback push service's receipt of the first message (both processes read the same
  ``CLOCK_MONOTONIC``), after one warm-up send. Also printed: when the send committed, the
  first push per transport and when the whole fanout had been received.
- **Worker throughput ≥ 70 % of the bare transport ceiling.** The same transport instances send
  the same prepared messages (built by the worker's own ``_push``) to the same loopback peer
  process with no database (``bench_transports.bare_rate``), against ``DeliveryWorker.drain()``
  over ``--messages`` freshly written outbox rows (claim, send, record). Bare and worker runs
  are interleaved (alternating which goes first) so both see the same machine load; medians of
  ``--reps`` runs, plus the median of the per-repetition ratios.

Each engine gets its own database: a temporary SQLite file, and a fresh PostgreSQL database
``relais_bench_<random>`` on ``--pg`` (default ``postgresql://postgres@127.0.0.1:5432``),
dropped at the end. The peers run in separate processes (``PeerProcess``), as subclasses of the
test peers that timestamp accepted messages.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.bench_transports import ROOT, PeerProcess, bare_rate, bench_encryption
from tests.peers.fcm_service import FcmService
from tests.peers.webpush_service import PeerRequest, Reply, WebPushService, run_peer_process

PG_BASE = "postgresql://postgres@127.0.0.1:5432"
SQUARE = {  # about 1.5 x 2.2 km in Rennes (lon, lat); every latency device has a place inside
    "type": "Polygon",
    "coordinates": [
        [[-1.70, 48.10], [-1.67, 48.10], [-1.67, 48.12], [-1.70, 48.12], [-1.70, 48.10]]
    ],
}
SUBSCRIPTIONS = 500  # Web Push subscriptions at the peer, cycled over the devices
TARGET_LATENCY = 1.0
TARGET_RATIO = 0.70


# --- peers that timestamp what they accept ----------------------------------------------------


class _TimedMixin:
    """First/last acceptance times (``time.monotonic``) and a count, over ``/_peer/timing``."""

    received: list[Any]
    first_at: float | None
    last_at: float | None
    accepted: int

    def _clear_timing(self) -> None:
        self.first_at = self.last_at = None
        self.accepted = 0

    def _mark(self) -> None:
        now = time.monotonic()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.accepted += 1
        # Keep memory flat over long runs: only the count and the times matter here.
        if len(self.received) > 1000:
            self.received.clear()

    def timing(self) -> dict[str, Any]:
        """``{"first": t, "last": t, "count": n}`` since the last reset."""
        return {"first": self.first_at, "last": self.last_at, "count": self.accepted}


class TimedWebPushService(_TimedMixin, WebPushService):
    """The Web Push peer (VAPID check + decryption), timestamping every accepted push."""

    remote_methods = WebPushService.remote_methods | {"timing"}

    def __init__(self, *, decrypt: bool = True) -> None:
        super().__init__(decrypt=decrypt)
        self._clear_timing()

    async def handle(self, request: PeerRequest) -> Reply:
        """As the base peer; a 2xx to a push counts."""
        reply = await super().handle(request)
        if 200 <= reply[0] < 300:
            self._mark()
        return reply

    def reset(self) -> None:
        """Also forget the timing."""
        super().reset()
        self._clear_timing()


class TimedFcmService(_TimedMixin, FcmService):
    """The FCM v1 peer (OAuth2 + JSON validation), timestamping every accepted message."""

    remote_methods = FcmService.remote_methods | {"timing"}

    def __init__(self, project_id: str) -> None:
        super().__init__(project_id=project_id)
        self._clear_timing()

    async def handle(self, request: PeerRequest) -> Reply:
        """As the base peer; a 2xx to ``messages:send`` (not ``/token``) counts."""
        reply = await super().handle(request)
        if 200 <= reply[0] < 300 and request.path != "/token":
            self._mark()
        return reply

    def reset(self) -> None:
        """Also forget the timing."""
        super().reset()
        self._clear_timing()


def _serve_peer(argv: list[str]) -> None:
    kind, rest = argv[0], argv[1:]
    if kind == "webpush":
        run_peer_process(rest, lambda args: TimedWebPushService(decrypt=not args.no_decrypt))
    else:

        def factory(args: argparse.Namespace) -> TimedFcmService:
            peer = TimedFcmService(project_id=args.project)
            peer.service_account_path = args.service_account
            return peer

        run_peer_process(rest, factory)


class TimedPeerProcess(PeerProcess):
    """``PeerProcess`` running one of the timed peers above (``python -m`` this module)."""

    def __init__(self, kind: str, *args: str) -> None:
        super().__init__("webpush_service")
        self.argv = [sys.executable, "-m", "tests.bench.bench_fanout", "--peer", kind]
        self.argv += ["--port", "0", *args]

    def timing(self) -> dict[str, Any]:
        """The peer's acceptance times and count."""
        result: dict[str, Any] = self.call("timing")
        return result


# --- databases ------------------------------------------------------------------------------


@asynccontextmanager
async def bench_database(engine_name: str, tmp: Path, pg_base: str) -> AsyncIterator[str]:
    """A fresh database with every table, bound to the tables; yields its URL."""
    import asyncpg
    from piccolo.table import create_db_tables

    from backend import database

    name = ""
    if engine_name == "sqlite":
        url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}"
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
        yield url
    finally:
        await database.stop(engine)
        if name:
            admin = await asyncpg.connect(f"{pg_base}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


@dataclass
class Fleet:
    """Seeded devices: per transport for throughput runs, and the latency set (with places)."""

    throughput: dict[str, list[tuple[uuid.UUID, str, str, str]]] = field(default_factory=dict)
    latency: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    commune_id: uuid.UUID | None = None


async def seed(messages: int, latency_devices: int, subscriptions: list[dict[str, str]]) -> Fleet:
    """Devices with credentials (bulk, no Piccolo objects), and places for the latency set."""
    from alerts.tables import Device, Place, int_id_of
    from backend.database import bulk_insert, transaction
    from backend.organisation.tables import Commune
    from geo import cell_of_lat_lon

    rng = random.Random(7)
    now = datetime.now(UTC)
    fleet = Fleet()
    rows: list[tuple[Any, ...]] = []
    places: list[tuple[Any, ...]] = []

    def add(kind: str, i: int, with_place: bool) -> tuple[uuid.UUID, str, str, str]:
        device_id = uuid.uuid4()
        if kind == "fcm":
            token, p256dh, auth = f"fcm-token-{device_id.hex}", "", ""
        else:
            sub = subscriptions[i % len(subscriptions)]
            token, p256dh, auth = sub["endpoint"], sub["p256dh"], sub["auth"]
        platform = "android" if kind == "fcm" else "web"
        token_hash = uuid.uuid4().hex + uuid.uuid4().hex
        credential = (kind, token, p256dh or None, auth or None, now)
        int_id = int_id_of(device_id)
        rows.append((device_id, token_hash, platform, "fr", "bench", now, now, *credential, int_id))
        if with_place:
            lat, lon = rng.uniform(48.1005, 48.1195), rng.uniform(-1.6995, -1.6705)
            cell = cell_of_lat_lon(lat, lon)
            places.append(
                (uuid.uuid4(), device_id, "place", "Maison", lat, lon, cell, "", now, now, int_id)
            )
        return device_id, token, p256dh, auth

    for kind in ("fcm", "webpush"):
        fleet.throughput[kind] = [add(kind, i, False) for i in range(messages)]
    for i in range(latency_devices):
        kind = "fcm" if i % 2 == 0 else "webpush"
        fleet.latency.append((add(kind, i, True)[0], kind))
    device_columns = ["id", "token_hash", "platform", "locale", "app_version", "created_at"]
    device_columns += ["last_seen_at", "push_kind", "push_token", "push_p256dh", "push_auth"]
    device_columns += ["push_updated_at", "int_id"]
    place_columns = ["id", "device", "kind", "label", "lat", "lon", "cell", "address"]
    place_columns += ["created_at", "updated_at", "device_int_id"]
    fleet.commune_id = uuid.uuid4()
    async with transaction():
        await Commune.insert(
            Commune(id=fleet.commune_id, name="Benchville", insee_code="99999", slug="benchville")
        )
        for start in range(0, len(rows), 5000):
            await bulk_insert(Device, device_columns, rows[start : start + 5000])
        for start in range(0, len(places), 5000):
            await bulk_insert(Place, place_columns, places[start : start + 5000])
    return fleet


def notification(tag: str) -> Any:
    """An urgent crisis alert (~200 B of JSON), as bench_transports' sample message."""
    from alerts.outbox import Notification

    return Notification(
        kind="alert",
        subject=f"alert:{tag}",
        title="Alerte inondation — Tours",
        body="Crue de la Loire : évacuez les quais et les caves avant 18 h. Suivez les consignes.",
        level="urgence_extreme",
        data={"alertId": tag, "url": f"/alertes/{tag}"},
        collapse_key=f"alert-{tag}"[:24],
        ttl_seconds=6 * 3600,
    )


async def notify_devices(tag: str, devices: list[tuple[uuid.UUID, str]]) -> int:
    """``notify()`` one urgent message to these devices in a transaction; its message id."""
    from alerts.outbox import notify
    from alerts.targeting import Recipient
    from backend.database import transaction

    async with transaction():
        result = await notify(notification(tag), [Recipient(d, kind) for d, kind in devices])
    return result.message_id


async def outstanding(message_ids: list[int]) -> int:
    """Rows of these messages not yet settled (pending or sending)."""
    from alerts.tables import Delivery

    count: int = await Delivery.count().where(
        Delivery.message.is_in(message_ids) & Delivery.status.is_in(["pending", "sending"])
    )
    return count


async def sent_count(message_id: int) -> int:
    """Rows of this message marked sent."""
    from alerts.tables import Delivery

    count: int = await Delivery.count().where(
        (Delivery.message == message_id) & (Delivery.status == "sent")
    )
    return count


# --- first push latency, with `relais worker` in its own process ------------------------------


class WorkerProcess:
    """``relais worker`` (the production entry point) against the bench database and peers."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        code = "from backend.cli import main; main(['worker'])"
        with self.log_path.open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def __aenter__(self) -> WorkerProcess:
        self.process = await asyncio.to_thread(self._spawn)
        deadline = time.monotonic() + 60
        while "worker started" not in self.log_path.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"relais worker did not start:\n{self.log_path.read_text()}")
            await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def staff_send(mode: str, fleet: Fleet, tag: str) -> tuple[float, list[int]]:
    """Prepare (untimed) then perform the send; returns (t0 just before the call, message ids)."""
    if mode == "notify":
        from alerts.outbox import notify
        from alerts.targeting import Recipient
        from backend.database import transaction

        recipients = [Recipient(d, kind) for d, kind in fleet.latency]
        t0 = time.monotonic()
        async with transaction():
            result = await notify(notification(tag), recipients)
        return t0, [result.message_id]

    from alerts.crisis import AlertContent, create_alert, send_alert

    assert fleet.commune_id is not None
    draft = await create_alert(
        fleet.commune_id,
        "99999",
        None,
        AlertContent(
            severity="urgence_extreme",
            event="Inondation",
            headline="Crue de la Vilaine",
            description="La Vilaine déborde : les rez-de-chaussée du quartier sont menacés.",
            instruction="Évacuez les rez-de-chaussée rue des Saules.",
            area={"kind": "polygon", "geometry": SQUARE},
            expires_at=datetime.now(UTC) + timedelta(hours=6),
        ),
    )
    t0 = time.monotonic()
    sent = await send_alert(fleet.commune_id, draft["chain"], None, daily_cap=3)
    if sent["targeted_devices"] != len(fleet.latency):
        raise RuntimeError(f"alert reached {sent['targeted_devices']} of {len(fleet.latency)}")
    return t0, [sent["message"]]


async def first_push_runs(
    modes: list[str],
    fleet: Fleet,
    peers: dict[str, TimedPeerProcess],
    worker_env: dict[str, str],
    log_path: Path,
    reps: int,
) -> dict[str, list[dict[str, float]]]:
    """``reps`` sends per mode (after a warm-up, modes alternating) while ``relais worker``
    runs; times per mode and run."""
    expected = {k: sum(1 for _, kind in fleet.latency if kind == k) for k in peers}
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    schedule = [modes[0]] + [
        m for rep in range(reps) for m in (modes[rep % 2 :] + modes[: rep % 2])
    ]
    async with WorkerProcess(worker_env, log_path):
        for rep, mode in enumerate(schedule):
            for peer in peers.values():
                await asyncio.to_thread(peer.call, "reset")
            gc.collect()
            await asyncio.sleep(random.uniform(0.3, 0.8))  # any phase of the worker's poll
            t0, message_ids = await staff_send(mode, fleet, f"lat{rep}-{uuid.uuid4().hex[:6]}")
            committed = time.monotonic()
            deadline = committed + 300
            timings: dict[str, dict[str, Any]] = {}
            while True:
                timings = {k: await asyncio.to_thread(p.timing) for k, p in peers.items()}
                # Received by the peers, and every outcome recorded by the worker.
                received = all(timings[k]["count"] >= expected[k] for k in peers)
                if received and not await outstanding(message_ids):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fanout incomplete after 300 s: {timings}")
                await asyncio.sleep(0.05)
            over = {k: timings[k]["count"] - expected[k] for k in peers}
            if any(over.values()):
                raise RuntimeError(f"receipts beyond one per device: {over}")
            if rep == 0:
                continue  # warm-up: connections, OAuth2 token, caches
            run = {"commit": committed - t0}
            for kind, t in timings.items():
                run[f"first_{kind}"] = t["first"] - t0
            run["first"] = min(run[f"first_{k}"] for k in peers)
            run["all"] = max(t["last"] for t in timings.values()) - t0
            runs[mode].append(run)
    return runs


# --- sustained throughput: worker vs bare transport ------------------------------------------


async def throughput_runs(
    kind: str,
    fleet: Fleet,
    transports: dict[str, Any],
    peer: TimedPeerProcess,
    messages: int,
    reps: int,
    batch_size: int,
) -> dict[str, list[float]]:
    """Interleaved bare and worker runs over the same ``messages`` devices of one transport."""
    from alerts import delivery
    from alerts.delivery import DeliveryWorker
    from alerts.tables import Message
    from alerts.transports import FcmTarget, PushMessage, Target, WebPushTarget

    devices = fleet.throughput[kind][:messages]
    transport = transports[kind]
    worker = DeliveryWorker({kind: transport}, batch_size=batch_size, lease_seconds=60.0)

    # The prepared batch: exactly what the worker builds for these devices.
    message_id = await notify_devices(f"prep-{kind}", [(d[0], kind) for d in devices])
    row = (await Message.select().where(Message.id == message_id).output(load_json=True))[0]
    now = datetime.now(UTC)
    batch: list[tuple[PushMessage, Target]] = []
    for i, (_, token, p256dh, auth) in enumerate(devices):
        target: Target = FcmTarget(token) if kind == "fcm" else WebPushTarget(token, p256dh, auth)
        batch.append((delivery._push(i, row, now), target))
    # Warm-up of both paths (connections, token); it also sends the prepared message's rows.
    await bare_rate(transport, batch[:500])
    await worker.drain(max_ticks=10**6)

    out: dict[str, list[float]] = {"bare": [], "worker": [], "bare_cpu_us": [], "worker_cpu_us": []}
    for rep in range(reps):
        order = ("bare", "worker") if rep % 2 == 0 else ("worker", "bare")
        for what in order:
            message_id = 0
            if what == "worker":
                tag = f"tp{rep}-{kind}"
                message_id = await notify_devices(tag, [(d[0], kind) for d in devices])
            await asyncio.to_thread(peer.call, "reset")
            gc.collect()
            cpu = time.process_time()
            if what == "bare":
                rate = await bare_rate(transport, batch)
            else:
                started = time.perf_counter()
                handled = await worker.drain(max_ticks=10**6)
                rate = handled / (time.perf_counter() - started)
                if handled != messages or await sent_count(message_id) != messages:
                    raise RuntimeError(f"worker handled {handled} of {messages}")
            cpu_us = (time.process_time() - cpu) / messages * 1e6
            received = (await asyncio.to_thread(peer.timing))["count"]
            if received != messages:
                raise RuntimeError(f"{what}: peer accepted {received} of {messages}")
            out[what].append(rate)
            out[f"{what}_cpu_us"].append(cpu_us)
    return out


# --- main -----------------------------------------------------------------------------------


def _med(values: list[float]) -> float:
    return statistics.median(values)


def _spread(values: list[float], fmt: str = "{:.0f}") -> str:
    return f"{fmt.format(_med(values))} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def run_engine(
    engine_name: str, args: argparse.Namespace, tmp: Path, vapid_pem: str
) -> dict[str, Any]:
    """Both measurements on one engine, with its own database and peers."""
    from alerts.push_setup import build_transports

    result: dict[str, Any] = {"engine": engine_name, "load_start": _load()}
    sa_path = tmp / f"sa-{engine_name}.json"
    with (
        TimedPeerProcess("webpush") as webpush_peer,
        TimedPeerProcess("fcm", "--service-account", str(sa_path)) as fcm_peer,
    ):
        peers = {"fcm": fcm_peer, "webpush": webpush_peer}
        subscriptions = [webpush_peer.call("create_subscription") for _ in range(SUBSCRIPTIONS)]
        async with bench_database(engine_name, tmp, args.pg) as url:
            fleet = await seed(args.messages, args.latency_devices, subscriptions)
            if not args.skip_latency:
                env = {
                    **os.environ,
                    "PYTHONPATH": str(ROOT),
                    "RELAIS_DATABASE_URL": url,
                    "RELAIS_VAR_DIR": str(tmp / f"var-worker-{engine_name}"),
                    "RELAIS_VAPID_PRIVATE_KEY": vapid_pem,
                    "RELAIS_VAPID_SUBJECT": "mailto:bench@relais.example",
                    "RELAIS_FCM_PROJECT_ID": "relais-test",
                    "RELAIS_FCM_CREDENTIALS": str(sa_path),
                    "RELAIS_FCM_ENDPOINT": fcm_peer.base_url,
                    "RELAIS_LOG_LEVEL": "INFO",  # "worker started" tells us it is up
                }
                env.pop("RELAIS_DELIVERY_POLL_SECONDS", None)  # the default, 0.25 s
                log_path = tmp / f"worker-{engine_name}.log"
                result["latency"] = await first_push_runs(
                    args.send, fleet, peers, env, log_path, args.reps
                )
                result["load_after_latency"] = _load()
            if not args.skip_throughput:
                transports = build_transports(
                    var_dir=tmp,
                    vapid_key=vapid_pem,
                    vapid_subject="mailto:bench@relais.example",
                    fcm_project_id="relais-test",
                    fcm_credentials=str(sa_path),
                    fcm_endpoint=fcm_peer.base_url,
                )
                try:
                    for kind in args.transports:
                        result[kind] = await throughput_runs(
                            kind,
                            fleet,
                            transports,
                            peers[kind],
                            args.messages,
                            args.reps,
                            args.batch,
                        )
                finally:
                    for transport in transports.values():
                        await transport.aclose()
    result["load_end"] = _load()
    return result


def report(args: argparse.Namespace, results: list[dict[str, Any]], enc: dict[str, float]) -> None:
    """The summary table."""
    print()
    print(
        f"Relais push fanout — {os.cpu_count()} CPUs, {args.reps} repetitions per figure "
        f"(median [min-max]), worker batch {args.batch}"
    )
    if not args.skip_latency:
        print(
            f"\nFirst push after send to {args.latency_devices} devices (half FCM, half Web "
            f"Push), `relais worker` process polling every 0.25 s; seconds from just before the "
            f"call (target ≤ {TARGET_LATENCY:.1f} s). alert = send_alert() (targeting + notify), "
            f"notify = notify() in a transaction"
        )
        print(
            f"  {'engine':9} {'send':6} {'committed':>18} {'first push':>18} {'first FCM':>18} "
            f"{'first Web Push':>18} {'all received':>18}"
        )
        for r in results:
            for mode, runs in r.get("latency", {}).items():
                cols = [
                    _spread([x[k] for x in runs], "{:.3f}")
                    for k in ("commit", "first", "first_fcm", "first_webpush", "all")
                ]
                print(f"  {r['engine']:9} {mode:6} " + " ".join(f"{c:>18}" for c in cols))
    if not args.skip_throughput:
        print(
            f"\nSustained throughput, {args.messages} messages per run, msg/s; worker = "
            f"DeliveryWorker.drain() (claim, send, record); ratio target ≥ {TARGET_RATIO:.2f}"
        )
        print(
            f"  {'engine':9} {'transport':9} {'bare':>18} {'worker':>18} {'ratio':>6} "
            f"{'paired':>7}  {'CPU µs/msg bare/worker':>22}"
        )
        for r in results:
            for kind in args.transports:
                t = r.get(kind)
                if not t:
                    continue
                ratio = _med(t["worker"]) / _med(t["bare"])
                paired = _med([w / b for w, b in zip(t["worker"], t["bare"], strict=True)])
                flag = "ok" if ratio >= TARGET_RATIO else "LOW"
                cpu = f"{_med(t['bare_cpu_us']):.0f}/{_med(t['worker_cpu_us']):.0f}"
                print(
                    f"  {r['engine']:9} {kind:9} {_spread(t['bare']):>18} "
                    f"{_spread(t['worker']):>18} {ratio:6.2f} {paired:7.2f}  {cpu:>22}  {flag}"
                )
    if enc:
        print(
            f"\nWeb Push encryption only (aes128gcm + cached VAPID header, no HTTP): "
            f"{enc['encrypt+cached_vapid']:.0f} msg/s; with a JWT signed per message: "
            f"{enc['encrypt+fresh_vapid_jwt']:.0f} msg/s"
        )
    print("\nLoad average (1/5/15 min):")
    for r in results:
        print(
            f"  {r['engine']:9} start {r['load_start']}"
            + (f"; after latency {r['load_after_latency']}" if "load_after_latency" in r else "")
            + f"; end {r['load_end']}"
        )


async def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse options, run every engine, print the table and one JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="per throughput run")
    parser.add_argument("--engines", default="sqlite,postgres")
    parser.add_argument("--transports", default="fcm,webpush")
    parser.add_argument("--reps", type=int, default=5, help="repetitions per figure (median)")
    parser.add_argument("--latency-devices", type=int, default=10_000, help="fanout size")
    parser.add_argument(
        "--send", default="alert,notify", help="first-push sends: alert (send_alert), notify"
    )
    parser.add_argument("--batch", type=int, default=500, help="worker batch (RELAIS default)")
    parser.add_argument("--pg", default=PG_BASE, help="PostgreSQL server URL (no database)")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-encryption", action="store_true")
    args = parser.parse_args(argv)
    args.transports = [t for t in args.transports.split(",") if t]
    args.send = [m for m in args.send.split(",") if m in ("alert", "notify")] or ["alert"]
    engines = [e for e in args.engines.split(",") if e]

    from alerts.transports import generate_vapid_key_pair

    out: dict[str, Any] = {"cpus": os.cpu_count(), "args": {**vars(args)}, "engines": []}
    with tempfile.TemporaryDirectory(prefix="relais-bench-fanout-") as tmp_dir:
        tmp = Path(tmp_dir)
        # Nothing of the bench lands in the project's var/ (secret key, default database).
        os.environ["RELAIS_VAR_DIR"] = str(tmp / "var")
        os.environ.setdefault("PICCOLO_CONF", "backend.piccolo_conf")
        vapid_pem = generate_vapid_key_pair().private_pem
        enc: dict[str, float] = {}
        if not args.skip_encryption:
            enc = bench_encryption(args.messages, args.reps)
            out["webpush_encrypt_only"] = enc
        for engine_name in engines:
            result = await run_engine(engine_name, args, tmp, vapid_pem)
            out["engines"].append(result)
            print(f"[{engine_name} done, load {_load()}]", file=sys.stderr, flush=True)
    report(args, out["engines"], enc)
    print(json.dumps(out, default=str))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--peer":
        _serve_peer(sys.argv[2:])
    else:
        asyncio.run(main())
