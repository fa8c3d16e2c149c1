"""`relais worker` as a real process: killed mid-fanout, restarted (twice over on PostgreSQL),
every message still arrives."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter

from piccolo.engine.base import Engine

from alerts.tables import Delivery
from backend.settings import Settings
from tests.alerts.test_delivery_workers import _fanout
from tests.peers.webpush_service import WebPushService

FANOUT = 600
BATCH = 50


def _start(settings: Settings, url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RELAIS_DATABASE_URL": url,
        "RELAIS_VAR_DIR": str(settings.var_dir),
        "RELAIS_VAPID_PRIVATE_KEY": settings.vapid_private_key,
        "RELAIS_DELIVERY_BATCH": str(BATCH),
        "RELAIS_DELIVERY_LEASE_SECONDS": "2",
        "RELAIS_DELIVERY_POLL_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from backend.cli import main; main(['worker'])"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_killing_the_worker_mid_fanout_loses_nothing(
    db: str,
    engines: dict[str, tuple[str, Engine]],
    push_settings: Settings,
    webpush_peer: WebPushService,
) -> None:
    url = engines[db][0]
    ids = await _fanout(webpush_peer, FANOUT)
    webpush_peer.set_latency(0.02)  # a real round trip, so the fanout takes a while
    try:
        first = _start(push_settings, url)
        for _ in range(600):
            if len(webpush_peer.records()) >= 2 * BATCH:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        delivered_before_kill = len(webpush_peer.records())
        assert 0 < delivered_before_kill < FANOUT

        # On PostgreSQL two workers resume side by side; SQLite runs one worker.
        resumed = [_start(push_settings, url) for _ in range(2 if db == "postgres" else 1)]
        try:
            await webpush_peer.wait_for(FANOUT, within=60)
            for _ in range(200):
                if await Delivery.count().where(Delivery.status != "sent") == 0:
                    break
                await asyncio.sleep(0.05)
            # Every push, read once all rows are recorded as sent: the first FANOUT pushes to
            # arrive may hold a re-sent batch before the last rows (delivery is at least once).
            received = Counter(r.subscription_id for r in webpush_peer.received)
        finally:
            for process in resumed:
                process.send_signal(signal.SIGTERM)
            for process in resumed:
                assert process.wait(timeout=20) == 0
    finally:
        webpush_peer.set_latency(0.0)
    assert set(received) == set(ids)  # nothing lost
    # At most the one batch in flight at the kill (pushed, not yet recorded) goes out again;
    # the resumed workers never send the same row twice.
    duplicates = sum(n - 1 for n in received.values())
    assert duplicates <= BATCH
    assert await Delivery.count().where(Delivery.status != "sent") == 0
