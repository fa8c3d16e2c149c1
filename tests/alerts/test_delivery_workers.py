"""The outbox under stress: two workers never send a message twice; a worker that dies
mid-fanout loses nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

from alerts.delivery import DeliveryWorker
from alerts.outbox import Notification, notify
from alerts.tables import Delivery, Device
from alerts.targeting import Recipient
from backend.database import transaction
from tests.peers.webpush_service import WebPushService

FANOUT = 300


async def _fanout(peer: WebPushService, n: int) -> list[str]:
    """n devices with a Web Push subscription each, and one urgent message to all of them."""
    subscriptions = [peer.create_subscription() for _ in range(n)]
    devices = [
        Device(
            id=uuid.uuid4(),
            token_hash=uuid.uuid4().hex + uuid.uuid4().hex,
            platform="web",
            push_kind="webpush",
            push_token=s.endpoint,
            push_p256dh=s.p256dh,
            push_auth=s.auth,
        )
        for s in subscriptions
    ]
    await Device.insert(*devices)
    async with transaction():
        await notify(
            Notification(
                kind="alert",
                subject="alert:test",
                title="Alerte",
                body="Abritez-vous",
                level="urgence_extreme",
            ),
            [Recipient(d.id, "webpush") for d in devices],
        )
    return [s.id for s in subscriptions]


async def test_two_workers_share_the_outbox_without_sending_twice(
    db: str, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    ids = await _fanout(webpush_peer, FANOUT)
    other = DeliveryWorker(worker.transports, batch_size=50, lease_seconds=30)
    worker.batch_size = 50
    await asyncio.gather(worker.drain(), other.drain())
    received = Counter(r.subscription_id for r in await webpush_peer.wait_for(FANOUT))
    assert set(received) == set(ids)
    assert max(received.values()) == 1
    assert await Delivery.count().where(Delivery.status == "sent") == FANOUT


async def test_a_worker_dying_mid_fanout_loses_nothing(
    db: str, worker: DeliveryWorker, webpush_peer: WebPushService
) -> None:
    from datetime import UTC, datetime, timedelta

    ids = await _fanout(webpush_peer, FANOUT)
    doomed = DeliveryWorker(worker.transports, batch_size=120, lease_seconds=600)
    # It claims a batch and dies before sending anything: the rows stay leased, not lost.
    claimed = await doomed.claim(datetime.now(UTC))
    assert len(claimed) == 120
    await worker.drain()  # a fresh worker delivers everything not leased ...
    assert len(webpush_peer.records()) == FANOUT - 120
    # ... and, once the dead worker's lease has run out, the rest (time travel: the lease ends).
    await Delivery.update({Delivery.lease_until: datetime.now(UTC) - timedelta(seconds=1)}).where(
        Delivery.status == "sending"
    )
    await worker.drain()
    received = Counter(r.subscription_id for r in await webpush_peer.wait_for(FANOUT))
    assert set(received) == set(ids)
    assert max(received.values()) == 1
    assert {r["status"] for r in await Delivery.select(Delivery.status)} == {"sent"}
