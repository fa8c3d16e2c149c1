"""Free slots in whole seconds since the epoch: the fast path of ``schedule.free_slots``.

The same answer as ``slots.free_slots`` over ``slots.candidate_slots`` (a property test holds
them equal), without a datetime or a Slot per candidate: the ANTS hub asks for ~100,000
candidates (20 sites over 3 months), and integers cost a fraction of objects. Busy times are
given per counter as merged intervals (two increasing lists of seconds, see
``_busy.merge``), as the database query returns them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Final
from uuid import UUID

from backend.appointments._days import changeover_day, open_days

if TYPE_CHECKING:
    from backend.appointments.slots import Closure, OpeningRule, Policy

#: A counter's merged busy intervals: (starts, ends), both increasing, in epoch seconds.
Busy = tuple[Sequence[int], Sequence[int]]

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()
_DAY_SECONDS: Final = 86_400


def free_times(
    rules: Sequence[OpeningRule],
    closures: Sequence[Closure],
    first_day: date,
    last_day: date,
    duration: int,
    policy: Policy,
    busy: Mapping[UUID, Busy],
    opens: int,
    closes: int,
    holidays: Callable[[int], Mapping[date, str]],
    *,
    limit: int | None = None,
) -> list[tuple[int, int, UUID]]:
    """(start, end, counter) of the free slots from ``first_day`` to ``last_day``, in Slot
    order: the candidates starting in [opens, closes) that overlap no busy interval of their
    counter; with ``limit``, the first ``limit`` of them (the walk stops there)."""
    length = timedelta(minutes=duration)
    out: list[tuple[int, int, UUID]] = []
    append, find = out.append, bisect_right
    for day, midnight, next_midnight, template in open_days(
        rules, closures, first_day, last_day, duration, policy, holidays
    ):
        offset = midnight.utcoffset()
        if offset is None or offset != next_midnight.utcoffset():
            # A clock change today: the slots through zoneinfo, then the same checks.
            for instant, counter in changeover_day(midnight, template, length):
                start = int(instant.timestamp())
                end = start + 60 * duration
                if opens <= start < closes and _clear(busy.get(counter), start, end):
                    append((start, end, counter))
            if limit is not None and len(out) >= limit:
                return out[:limit]
            continue
        base = (day.toordinal() - _EPOCH_ORDINAL) * _DAY_SECONDS - (
            offset.days * _DAY_SECONDS + offset.seconds
        )
        if base + template.last_start < opens or base + template.first_start >= closes:
            continue  # the whole day lies outside the window
        busies = [busy.get(counter) for counter in template.counters]
        if _all_taken(template.blocks, busies, base):
            continue  # fully booked: the usual day of a popular site, at a few blocks' cost
        clip = base + template.first_start < opens or base + template.last_start >= closes
        counters = template.counters
        for start_offset, end_offset, number in template.seconds:
            start = base + start_offset
            if clip and not opens <= start < closes:
                continue
            intervals = busies[number]
            if intervals is not None:
                starts, ends = intervals
                # The first busy interval ending after the slot starts is the only one to check.
                i = find(ends, start)
                if i < len(ends) and starts[i] < base + end_offset:
                    continue
            append((start, base + end_offset, counters[number]))
        if limit is not None and len(out) >= limit:
            return out[:limit]
    return out


def _clear(intervals: Busy | None, start: int, end: int) -> bool:
    """Whether [start, end) overlaps none of the merged intervals."""
    if intervals is None:
        return True
    starts, ends = intervals
    i = bisect_right(ends, start)
    return not (i < len(ends) and starts[i] < end)


def _all_taken(
    blocks: tuple[tuple[int, int, int], ...], busies: list[Busy | None], base: int
) -> bool:
    """Whether each block of the day lies inside one busy interval of its counter (then every
    slot overlaps it: none is free)."""
    for number, first, last in blocks:
        intervals = busies[number]
        if intervals is None:
            return False
        starts, ends = intervals
        i = bisect_right(ends, base + first)
        if not (i < len(ends) and starts[i] <= base + first and ends[i] >= base + last):
            return False
    return True
