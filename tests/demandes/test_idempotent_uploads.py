"""Report uploads with `Idempotency-Key` under concurrency: no upload fails for want of the
database, a retry of a slow upload waits for it and replays its answer, and a retry whose
first answer was lost in a crash files nothing twice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from litestar import Litestar

from alerts.tables import Message
from backend.demandes.tables import Demande, Photo, TimelineEntry
from backend.idempotency.middleware import ABANDONED_AFTER, PENDING
from backend.idempotency.tables import IdempotencyRecord
from media import processing
from tests.alerts.factories import device
from tests.demandes.factories import file_report, jpeg, make_categories, report_fields
from tests.factories import Client, make_commune


@contextmanager
def photo_pool_busy() -> Iterator[None]:
    """Keep every thread of the photo pool busy: uploads wait inside their handler (after the
    key is reserved, before anything of theirs is written) until the block ends."""
    pool = processing._media_executor()
    go = threading.Event()
    started = threading.Semaphore(0)

    def occupy() -> None:
        started.release()
        go.wait(30)  # bounded: a failing test never leaves the pool stuck

    busy = [pool.submit(occupy) for _ in range(pool._max_workers)]
    try:
        for _ in busy:
            assert started.acquire(timeout=10), "the photo pool did not start its threads"
        yield
    finally:
        go.set()
        for future in busy:
            future.result()


async def _pending_keys_reach(count: int) -> None:
    """Wait (bounded) until `count` keys are reserved, as another connection sees them."""
    for _ in range(500):
        pending = await IdempotencyRecord.count().where(IdempotencyRecord.status_code == PENDING)
        if pending >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} reserved key(s) never became visible")


async def test_concurrent_uploads_with_their_own_keys_all_succeed(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    fields = report_fields(commune, categories.pothole)
    responses = await asyncio.gather(
        *(
            file_report(
                client,
                fields,
                [jpeg(seed=2 * i), jpeg(seed=2 * i + 1)],
                **phone,
                **{"Idempotency-Key": f"upload-{i}"},
            )
            for i in range(6)
        )
    )
    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    assert len({r.json()["reference"] for r in responses}) == 6
    assert not any("idempotent-replayed" in r.headers for r in responses)
    assert await Demande.count() == 6
    assert await Photo.count() == 12
    assert await IdempotencyRecord.count().where(IdempotencyRecord.status_code == 201) == 6


async def test_a_slow_upload_blocks_no_other_writer_and_its_retry_replays_it(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    fields = report_fields(commune, categories.pothole)
    photos = [jpeg(seed=41), jpeg(seed=42)]
    key = {"Idempotency-Key": "slow-4g-upload"}
    with photo_pool_busy():
        first = asyncio.create_task(file_report(client, fields, photos, **phone, **key))
        await _pending_keys_reach(1)
        retry = asyncio.create_task(file_report(client, fields, photos, **phone, **key))

        # Same key, another report: refused at once, even while the first one runs.
        other = await file_report(
            client, {**fields, "description": "Autre chose"}, [], **phone, **key
        )
        assert other.status_code == 422
        assert other.json()["code"] == "idempotency-key-reused"
        # Other writers, keyed too, are not queued behind the upload's photo work.
        others = await asyncio.gather(
            client.post(
                "/api/v1/devices", json={"platform": "ios"}, headers={"Idempotency-Key": "a"}
            ),
            client.post(
                "/api/v1/devices", json={"platform": "web"}, headers={"Idempotency-Key": "b"}
            ),
        )
        assert [r.status_code for r in others] == [201, 201]
        assert not first.done() and not retry.done()
    answers = [await first, await retry]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert "idempotent-replayed" not in answers[0].headers
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].json() == answers[0].json()
    assert await Demande.count() == 1
    assert await Photo.count() == 2
    assert await IdempotencyRecord.count().where(IdempotencyRecord.status_code == PENDING) == 0


async def test_a_retry_after_a_crash_lost_the_first_answer_files_nothing_twice(
    client: Client, app: Litestar
) -> None:
    commune = await make_commune(app)
    categories = await make_categories(commune)
    phone = await device(client)
    fields = report_fields(commune, categories.pothole)
    photos = [jpeg(seed=51), jpeg(seed=52)]
    key = {"Idempotency-Key": "lost-answer"}
    first = await file_report(client, fields, photos, **phone, **key)
    assert first.status_code == 201, first.text
    pushes, timeline = await Message.count(), await TimelineEntry.count()
    # What a process killed after filing the report, before storing its answer, leaves
    # behind, as the retry sees it once the reservation is taken for abandoned.
    await IdempotencyRecord.update(
        {
            IdempotencyRecord.status_code: PENDING,
            IdempotencyRecord.response_body: b"",
            IdempotencyRecord.created_at: datetime.now(UTC) - ABANDONED_AFTER - timedelta(1),
        }
    ).where(IdempotencyRecord.key == "lost-answer")

    retry = await file_report(client, fields, photos, **phone, **key)

    assert retry.status_code == 201, retry.text
    assert retry.json()["id"] == first.json()["id"]
    assert retry.json()["reference"] == first.json()["reference"]
    assert await Demande.count() == 1
    assert await Photo.count() == 2
    # No second acknowledgment, push or timeline entry either.
    assert (await Message.count(), await TimelineEntry.count()) == (pushes, timeline)
    # And from then on, the key replays that answer as usual.
    again = await file_report(client, fields, photos, **phone, **key)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
