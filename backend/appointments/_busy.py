"""Busy times from the booking table: per counter, the merged intervals of the bookings that
hold a seat, in whole seconds since the epoch (private to ``schedule``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import accumulate, compress, islice
from operator import gt, le
from typing import Any, Final
from uuid import UUID

from backend import database
from backend.appointments.tables import Booking, Counter

ACTIVE: Final = ("held", "confirmed", "checked_in", "no_show", "blocked")

#: Longer than any booking: appointments last 22 h at most (240 min + 9 × 120 min with the
#: staff API's limits), staff blocks 10 h.
LONGEST_BOOKING: Final = timedelta(days=2)

#: A counter's merged busy intervals: (starts, ends), both increasing, in epoch seconds.
Merged = tuple[list[int], list[int]]

# Bookings that hold their seat whatever the time; a hold does only until it expires.
_SEATED: Final = tuple(s for s in ACTIVE if s != "held")


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
    ``start`` and ``end``, in whole seconds since the epoch (starts rounded down, ends up:
    slots are on whole minutes, so a slot overlaps the rounded interval exactly when it
    overlaps the true one). Unordered.

    Why seconds, aggregated per counter: the bookings of 20 sites over 3 months are ~50,000
    rows; one row per counter with two arrays of integers (PostgreSQL) or two strings of
    digits (SQLite) spares a Python object, a timestamp parse and a dict per booking. Grouped
    by the counter alone, which each engine reads in its order or hashes (by site and counter,
    PostgreSQL sorted 50,000 rows on disk). An expired hold frees its seat by itself (its
    units are reclaimed later). The lower bound on starts_at changes no answer (no booking
    lasts that long) but bounds the index range read.
    """
    marks = ", ".join("{}" for _ in site_ids)
    seated = ", ".join(f"'{s}'" for s in _SEATED)
    when = (
        "starts_at < {} AND starts_at > {} AND ends_at > {} "
        f"AND (status IN ({seated}) OR (status = 'held' "
        "AND (hold_expires_at IS NULL OR hold_expires_at > {})))"
    )
    table = Booking._meta.tablename
    args = (end, start - LONGEST_BOOKING, start, now)
    result: dict[UUID, tuple[list[int], list[int]]] = {}
    if database.is_postgres():
        # date_part (double precision) rather than extract (numeric since PostgreSQL 14):
        # a third of the query's time. A double holds epoch microseconds exactly enough for
        # floor and ceil. The counters as an array (an init plan): the planner then reads
        # the index by counter and time (by site, or with a counter subquery, it read more).
        rows = await Booking.raw(
            "SELECT counter AS c, "
            "array_agg(floor(date_part('epoch', starts_at))::bigint) AS s, "
            "array_agg(ceil(date_part('epoch', ends_at))::bigint) AS e "
            f'FROM "{table}" WHERE counter = ANY(ARRAY('
            f'SELECT id FROM "{Counter._meta.tablename}" WHERE site IN ({marks}))) '
            f"AND {when} GROUP BY counter",
            *site_ids,
            *args,
        )
        for row in rows:
            result[UUID(str(row["c"]))] = (list(row["s"]), list(row["e"]))
        return result
    # SQLite stores str(datetime) in UTC ("2026-12-03 08:15:00+00:00", with ".ffffff" only
    # when there are microseconds): unixepoch() truncates them, so an end with a fraction
    # gets one more second. Expressions, not columns: no Python converter runs per row. By
    # counter through the index booking_counter_time: rows come in counter order, so the
    # grouping needs no temporary B-tree (bench_appointments, 20 sites: 70 → 25 ms).
    rows = await Booking.raw(
        "SELECT counter || '' AS c, group_concat(unixepoch(starts_at)) AS s, "
        "group_concat(unixepoch(ends_at) + (instr(ends_at, '.') > 0)) AS e "
        f'FROM "{table}" WHERE counter IN '
        f'(SELECT id FROM "{Counter._meta.tablename}" WHERE site IN ({marks})) '
        f"AND {when} GROUP BY counter",
        *site_ids,
        *args,
    )
    for row in rows:
        result[UUID(row["c"])] = (
            list(map(int, row["s"].split(","))),
            list(map(int, row["e"].split(","))),
        )
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
