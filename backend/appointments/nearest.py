"""The nearest sites with free slots: the app's "where can I go soonest" search."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from backend import database
from backend.appointments.schedule import SiteSchedule, free_slots, load_busy, load_schedules
from backend.appointments.slots import Slot

__all__ = ["FIRST_WINDOW_DAYS", "GROUP", "NEXT_SLOTS", "nearest_free_slots"]

#: Days searched first for a site's next slots; only the sites with fewer than NEXT_SLOTS free
#: slots in them are searched over the rest of the horizon.
FIRST_WINDOW_DAYS = 14
NEXT_SLOTS = 3
#: Sites loaded together, nearest first.
GROUP = 5


async def nearest_free_slots(
    sites: list[dict[str, Any]], reason: str, persons: int, limit: int, now: datetime
) -> list[tuple[dict[str, Any], list[Slot]]]:
    """The first ``limit`` of the sites (given nearest first) that have a free slot, each with
    its next NEXT_SLOTS free slots, over the longest horizon of the sites.

    Sites are searched GROUP at a time. While a group's nearly or fully booked sites are
    searched over their whole horizon (a full site must be proven full, its costliest part),
    the next group is already loading whenever it may be needed: the two waits overlap.
    """
    horizon = max((s["horizon_days"] for s in sites), default=60)
    first, last = now.date(), now.date() + timedelta(days=horizon + 1)
    window_last = min(last, first + timedelta(days=FIRST_WINDOW_DAYS - 1))
    groups = [sites[start : start + GROUP] for start in range(0, len(sites), GROUP)]
    # Inside a transaction, its one connection runs one query at a time: no overlap.
    overlap = not database.in_transaction()

    def load(number: int) -> asyncio.Future[list[SiteSchedule]]:
        return asyncio.ensure_future(
            load_schedules(groups[number], first, last, now, busy_until=window_last)
        )

    found: list[tuple[dict[str, Any], list[Slot]]] = []
    loading = load(0) if groups else None
    try:
        for number in range(len(groups)):
            assert loading is not None
            schedules, loading = await loading, None
            free = {
                schedule.site["id"]: free_slots(
                    schedule, reason, persons, first, window_last, now, limit=NEXT_SLOTS
                )
                for schedule in schedules
            }
            pending = [s for s in schedules if len(free[s.site["id"]]) < NEXT_SLOTS]
            has_next = number + 1 < len(groups)
            complete = sum(1 for slots in free.values() if len(slots) >= NEXT_SLOTS)
            if overlap and has_next and pending and len(found) + complete < limit:
                loading = load(number + 1)
            if pending and window_last < last:
                rest = window_last + timedelta(days=1)
                for schedule in await load_busy(pending, rest, last, now):
                    mine = free[schedule.site["id"]]
                    mine += free_slots(
                        schedule, reason, persons, rest, last, now, limit=NEXT_SLOTS - len(mine)
                    )
            found += [(s.site, free[s.site["id"]]) for s in schedules if free[s.site["id"]]]
            if len(found) >= limit:
                break
            if has_next and loading is None:
                loading = load(number + 1)
    finally:
        if loading is not None:
            # Started in case its group was needed, and it was not (or the search failed):
            # let it end; its answer and its errors do not matter.
            await asyncio.gather(loading, return_exceptions=True)
    return found[:limit]
