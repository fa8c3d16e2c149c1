"""booking_day, the per counter and day summary the busy times are read from, stays exactly the
merged intervals of the bookings that hold a seat for good, whatever writes the booking table:
inserts, status changes, moves across days and counters, deletes, bulk loads, concurrent
transactions."""

from __future__ import annotations

import asyncio
import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from litestar import Litestar

from backend import database
from backend.appointments.tables import SEATED, Booking, BookingDay
from tests.appointments.factories import make_site
from tests.factories import Client

STATUSES = ("held", "confirmed", "cancelled", "expired", "checked_in", "no_show", "blocked")
MIDNIGHT = datetime(2027, 3, 1, tzinfo=UTC)


async def expected_days() -> dict[tuple[UUID, str], list[tuple[int, int]]]:
    """booking_day recomputed from the bookings, in Python."""
    out: dict[tuple[UUID, str], list[tuple[int, int]]] = defaultdict(list)
    rows = await Booking.select(
        Booking.counter, Booking.starts_at, Booking.ends_at, Booking.status
    ).where(Booking.status.is_in(list(SEATED)))
    for row in rows:
        start, end = row["starts_at"].astimezone(UTC), row["ends_at"].astimezone(UTC)
        key = (UUID(str(row["counter"])), start.date().isoformat())
        out[key].append((math.floor(start.timestamp()), math.ceil(end.timestamp())))
    return {key: islands(pairs) for key, pairs in out.items()}


def islands(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The intervals merged, touching ones too."""
    merged: list[list[int]] = []
    for begin, end in sorted(pairs):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return [(begin, end) for begin, end in merged]


async def stored_days() -> dict[tuple[UUID, str], list[tuple[int, int]]]:
    out = {}
    for row in await BookingDay.select():
        starts = [int(x) for x in row["starts"].split(",")]
        ends = [int(x) for x in row["ends"].split(",")]
        key = (UUID(str(row["counter"])), row["day"])
        assert key not in out, f"two rows for {key}"
        out[key] = sorted(zip(starts, ends, strict=True))
    return out


def booking_row(
    site: UUID, counter: UUID, start: datetime, minutes: int, status: str
) -> dict[str, Any]:
    return {
        "id": uuid4(),
        "site": site,
        "counter": counter,
        "starts_at": start,
        "ends_at": start + timedelta(minutes=minutes),
        "reason": "CNI",
        "status": status,
        "hold_expires_at": start if status == "held" else None,
    }


async def test_booking_days_follow_inserts_updates_moves_and_deletes(
    client: Client, app: Litestar
) -> None:
    setup = await make_site(client, app, counters=2)
    site, counters = UUID(setup.site_id), [UUID(c) for c in setup.counters]
    rng = random.Random(5)

    def some_start() -> datetime:
        # Around UTC midnights, with a fraction of a second now and then.
        start = MIDNIGHT + timedelta(days=rng.randint(0, 2), minutes=rng.randint(-60, 60) * 5)
        return start + timedelta(microseconds=rng.choice([0, 0, 0, 250_000]))

    ids: list[UUID] = []
    for _ in range(40):
        row = booking_row(
            site, rng.choice(counters), some_start(), rng.choice([5, 15, 30]), rng.choice(STATUSES)
        )
        await Booking.insert(Booking(**row))
        ids.append(row["id"])
    assert await stored_days() == await expected_days()
    for step in range(60):
        target = rng.choice(ids)
        action = rng.randrange(5)
        if action == 0:
            await Booking.update({Booking.status: rng.choice(STATUSES)}).where(Booking.id == target)
        elif action == 1:
            start = some_start()
            await Booking.update(
                {Booking.starts_at: start, Booking.ends_at: start + timedelta(minutes=15)}
            ).where(Booking.id == target)
        elif action == 2:
            await Booking.update({Booking.counter: rng.choice(counters)}).where(
                Booking.id == target
            )
        elif action == 3:
            await Booking.update({Booking.name: f"Nom {step}"}).where(Booking.id == target)
        else:
            await Booking.delete().where(Booking.id == target)
            ids.remove(target)
        assert await stored_days() == await expected_days()
    async with database.transaction():  # as the bench and data imports load them
        await database.bulk_insert(
            Booking,
            ["id", "site", "counter", "starts_at", "ends_at", "reason", "status"],
            [
                (
                    uuid4(),
                    site,
                    counters[0],
                    MIDNIGHT + timedelta(minutes=15 * k),
                    MIDNIGHT + timedelta(minutes=15 * k + 15),
                    "CNI",
                    "confirmed",
                )
                for k in range(8)
            ],
        )
    assert await stored_days() == await expected_days()
    await Booking.delete().where(Booking.counter == counters[0])
    assert await stored_days() == await expected_days()


async def test_booking_days_stay_exact_under_concurrent_transactions(
    client: Client, app: Litestar
) -> None:
    setup = await make_site(client, app)
    site, counter = UUID(setup.site_id), UUID(setup.counters[0])

    async def book(k: int) -> None:
        async with database.transaction():
            row = booking_row(site, counter, MIDNIGHT + timedelta(minutes=15 * k), 15, "held")
            await Booking.insert(Booking(**row))
            await asyncio.sleep(0.01 * (k % 3))
            await Booking.update({Booking.status: "confirmed"}).where(Booking.id == row["id"])

    await asyncio.gather(*(book(k) for k in range(20)))
    assert await stored_days() == await expected_days()
    days = await stored_days()
    # Twenty quarters in a row: one island.
    assert days[counter, MIDNIGHT.date().isoformat()] == [
        (int(MIDNIGHT.timestamp()), int(MIDNIGHT.timestamp()) + 20 * 15 * 60)
    ]
