"""Busy times from the booking table: per counter, the merged intervals of the bookings that
hold a seat, in whole seconds since the epoch (private to ``schedule``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import accumulate, compress, islice
from operator import gt, le
from typing import Any, Final
from uuid import UUID

from backend import database
from backend.appointments.tables import SEATED, Booking, BookingDay, Counter

ACTIVE: Final = ("held", "confirmed", "checked_in", "no_show", "blocked")

#: Longer than any booking: appointments last 22 h at most (240 min + 9 × 120 min with the
#: staff API's limits), staff blocks 10 h.
LONGEST_BOOKING: Final = timedelta(days=2)

#: A counter's merged busy intervals: (starts, ends), both increasing, in epoch seconds.
Merged = tuple[list[int], list[int]]

assert set(ACTIVE) == {*SEATED, "held"}


async def busy_of_counters(
    site_ids: list[Any], start: datetime, end: datetime, now: datetime
) -> dict[UUID, Merged]:
    """Per counter of these sites, the merged busy intervals between ``start`` and ``end``."""
    return {
        counter: merge(starts, ends)
        for counter, (starts, ends) in (await _busy_seconds(site_ids, start, end, now)).items()
    }


async def _busy_seconds(
    site_ids: list[Any], start: datetime, end: datetime, now: datetime
) -> dict[UUID, tuple[list[int], list[int]]]:
    """Per counter of these sites, the (start, end) of every booking holding a seat between
    ``start`` and ``end`` (and maybe a few more before: harmless, they are busy too), in
    whole seconds since the epoch (starts rounded down, ends up: slots are on whole minutes,
    so a slot overlaps the rounded interval exactly when it overlaps the true one). Unordered.

    Two parts: the bookings that hold their seat for good from booking_day, merged into
    islands (one row per counter and day, kept by triggers: 20 sites over 3 months are
    ~4,800 short rows rather than ~50,000 bookings), and the live holds from booking (a
    partial index), in one statement (on SQLite each query opens its own connection). An
    expired hold frees its seat by itself (its units are reclaimed later).
    """
    first_day = (start - LONGEST_BOOKING).astimezone(UTC).date().isoformat()
    last_day = end.astimezone(UTC).date().isoformat()
    postgres = database.is_postgres()
    marks = ", ".join("{}" for _ in site_ids)
    counters = f'SELECT id FROM "{Counter._meta.tablename}" WHERE site IN ({marks})'
    # The counters as an array on PostgreSQL (an init plan): its planner then reads the
    # index by counter (with a subquery, it scanned the whole table).
    of_counters = f"counter = ANY(ARRAY({counters}))" if postgres else f"counter IN ({counters})"
    counter_text = "counter" if postgres else "counter || ''"  # no converter per row
    join = "string_agg({}, ',')" if postgres else "group_concat({})"
    if postgres:
        # date_part (double precision) rather than extract (numeric since PostgreSQL 14): a
        # third of the time. A double holds epoch microseconds exactly enough for floor/ceil.
        seconds = (
            "string_agg(floor(date_part('epoch', starts_at))::bigint::text, ',') AS s, "
            "string_agg(ceil(date_part('epoch', ends_at))::bigint::text, ',') AS e"
        )
    else:
        # SQLite stores str(datetime) in UTC ("2026-12-03 08:15:00+00:00", with ".ffffff"
        # only when there are microseconds): unixepoch() truncates them, so an end with a
        # fraction gets one more second. Expressions, not columns: no Python converter.
        seconds = (
            "group_concat(unixepoch(starts_at)) AS s, "
            "group_concat(unixepoch(ends_at) + (instr(ends_at, '.') > 0)) AS e"
        )
    rows = await Booking.raw(
        f"SELECT {counter_text} AS c, {join.format('starts')} AS s, {join.format('ends')} AS e "
        f'FROM "{BookingDay._meta.tablename}" '
        f"WHERE {of_counters} AND day >= {{}} AND day <= {{}} GROUP BY counter "
        f"UNION ALL SELECT {counter_text} AS c, {seconds} "
        f"FROM \"{Booking._meta.tablename}\" WHERE {of_counters} AND status = 'held' "
        "AND starts_at < {} AND starts_at > {} AND ends_at > {} "
        "AND (hold_expires_at IS NULL OR hold_expires_at > {}) GROUP BY counter",
        *site_ids,
        first_day,
        last_day,
        *site_ids,
        end,
        start - LONGEST_BOOKING,
        start,
        now,
    )
    result: dict[UUID, tuple[list[int], list[int]]] = {}
    for row in rows:
        counter = UUID(str(row["c"]))
        starts, ends = result.setdefault(counter, ([], []))
        starts += map(int, row["s"].split(","))
        ends += map(int, row["e"].split(","))
    return result


def merge(starts: list[int], ends: list[int]) -> Merged:
    """Intervals in seconds, sorted and merged (touching ones too): (starts, ends), both
    increasing, as ``slots.free_slots`` merges them.

    In C loops rather than one Python step per booking (a fully booked site's half year is
    ~6,000 bookings): sorted by start (as the index hands them over, else sorted here), an
    interval opens a new merged one exactly when it starts after every earlier one ended.
    """
    if len(starts) != len(ends):
        raise ValueError("as many busy starts as ends are needed")
    if any(map(le, ends, starts)):
        raise ValueError("empty busy interval")
    if not starts:
        return [], []
    if not all(map(le, starts, islice(starts, 1, None))):
        pairs = sorted(zip(starts, ends, strict=True))
        starts, ends = [begin for begin, _ in pairs], [end for _, end in pairs]
    reach = list(accumulate(ends, max))  # reach[k]: the latest end among intervals 0..k
    opening = list(compress(range(1, len(starts)), map(gt, islice(starts, 1, None), reach)))
    return (
        [starts[0], *(starts[k] for k in opening)],
        [*(reach[k - 1] for k in opening), reach[-1]],
    )
