"""From the tables to free slots: a site's policy, rules, closures and bookings, per day range."""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend import database
from backend.appointments import slots
from backend.appointments.tables import Booking, Closure, OpeningRule, Site
from backend.exceptions import FieldError, InvalidInput, NotFound

ACTIVE = ("held", "confirmed", "checked_in", "no_show", "blocked")


def _hhmm(value: str) -> time:
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def policy_of(site: dict[str, Any]) -> slots.Policy:
    """The booking policy of a site."""
    return slots.Policy(
        step_minutes=site["step_minutes"],
        base_minutes={
            "CNI": site["base_cni_minutes"],
            "PASSPORT": site["base_passport_minutes"],
            "CNI-PASSPORT": site["base_both_minutes"],
        },
        per_extra_person_minutes=site["per_extra_person_minutes"],
        min_notice=timedelta(minutes=site["min_notice_minutes"]),
        horizon_days=site["horizon_days"],
        release_time=_hhmm(site["release_time"]),
        max_persons=site["max_persons"],
        timezone=ZoneInfo(site["timezone"]),
    )


async def get_site(site_id: UUID) -> dict[str, Any]:
    """An active site, or NotFound."""
    row = await Site.select().where((Site.id == site_id) & (Site.active == True)).first()  # noqa: E712
    if row is None:
        raise NotFound("Ce lieu de rendez-vous est introuvable.")
    return row


def duration(site: dict[str, Any], reason: str, persons: int) -> int:
    """Minutes of an appointment, or InvalidInput naming the field."""
    try:
        return slots.duration_minutes(reason, persons, policy_of(site))
    except ValueError as exc:
        field = "persons" if "personne" in str(exc) else "reason"
        raise InvalidInput(str(exc), errors=[FieldError(field, str(exc))]) from exc


@dataclass
class SiteSchedule:
    """Everything needed to compute a site's slots over a range, loaded in a few queries.

    ``busy`` holds each counter's taken intervals (as loaded: sorted and merged); ``loaded``
    is the day range they were loaded for (``None``: every day), outside which no slot is
    offered, since the bookings there are unknown.
    """

    site: dict[str, Any]
    rules: list[slots.OpeningRule]
    closures: list[slots.Closure]
    busy: dict[UUID, list[tuple[datetime, datetime]]]
    loaded: tuple[date, date] | None = None
    # ``busy`` as (starts, ends) per counter, ready for bisection (see ``_merge``).
    _merged: dict[UUID, tuple[list[datetime], list[datetime]]] | None = field(
        default=None, repr=False, compare=False
    )


def _bookable_range(
    site: dict[str, Any], first_day: date, last_day: date, now: datetime
) -> tuple[date, date]:
    """The days of the range that can hold a bookable slot at ``now`` (first > last: none).

    A 3-month request to a site releasing 60 days ahead has a third of unreleased days, and
    yesterday is never bookable: neither is worth loading or computing.
    """
    opens, closes = slots.bookable_days(now, policy_of(site))
    return max(first_day, opens), min(last_day, closes)


async def load_schedules(
    sites: list[dict[str, Any]],
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    busy_until: date | None = None,
) -> list[SiteSchedule]:
    """Rules, closures and busy times of several sites (one query per table, not per site,
    run together).

    Busy times are loaded for the days of the range that are bookable at ``now`` (plus one
    day of margin at the end, should a release time pass before ``free_slots`` is called),
    up to ``busy_until`` if given: ``load_busy`` loads the next days when needed. Pass the
    same ``now`` to ``free_slots``.
    """
    if not sites:
        return []
    site_ids = [s["id"] for s in sites]
    ranges = _busy_ranges(sites, first_day, last_day if busy_until is None else busy_until, now)
    rules_rows, closure_rows, busy = await _together(
        OpeningRule.select(
            OpeningRule.counter.site.as_alias("site"),
            OpeningRule.counter,
            OpeningRule.weekday,
            OpeningRule.start_time,
            OpeningRule.end_time,
            OpeningRule.valid_from,
            OpeningRule.valid_to,
        ).where(
            OpeningRule.counter.site.is_in(site_ids) & (OpeningRule.counter.active == True)  # noqa: E712
        ),
        Closure.select(
            Closure.site, Closure.counter, Closure.start_date, Closure.end_date, Closure.reason
        ).where(
            Closure.site.is_in(site_ids)
            & (Closure.end_date >= first_day)
            & (Closure.start_date <= last_day)
        ),
        _busy(sites, ranges, now),
    )
    rules: dict[Any, list[slots.OpeningRule]] = defaultdict(list)
    for r in rules_rows:
        rules[r["site"]].append(
            slots.OpeningRule(
                counter_id=r["counter"],
                weekday=r["weekday"],
                start=_hhmm(r["start_time"]),
                end=_hhmm(r["end_time"]),
                valid_from=r["valid_from"],
                valid_to=r["valid_to"],
            )
        )
    closures: dict[Any, list[slots.Closure]] = defaultdict(list)
    for c in closure_rows:
        closures[c["site"]].append(
            slots.Closure(c["start_date"], c["end_date"], c["counter"], c["reason"])
        )
    return [
        _with_busy(
            SiteSchedule(site, rules[site["id"]], closures[site["id"]], {}),
            busy.get(site["id"], {}),
            ranges[site["id"]],
        )
        for site in sites
    ]


async def load_busy(
    schedules: list[SiteSchedule], first_day: date, last_day: date, now: datetime
) -> list[SiteSchedule]:
    """The same schedules with the busy times of another day range (rules and closures kept:
    load them over the whole range first, with ``busy_until``)."""
    sites = [schedule.site for schedule in schedules]
    ranges = _busy_ranges(sites, first_day, last_day, now)
    busy = await _busy(sites, ranges, now)
    return [
        _with_busy(
            SiteSchedule(schedule.site, schedule.rules, schedule.closures, {}),
            busy.get(schedule.site["id"], {}),
            ranges[schedule.site["id"]],
        )
        for schedule in schedules
    ]


async def _together(*queries: Awaitable[Any]) -> list[Any]:
    """Run the queries at once (each on its own connection), or one after the other inside
    a transaction, whose single connection runs one query at a time."""
    if database.current_engine().current_transaction.get() is not None:
        return [await query for query in queries]
    return list(await asyncio.gather(*queries))


def _busy_ranges(
    sites: list[dict[str, Any]], first_day: date, last_day: date, now: datetime
) -> dict[Any, tuple[date, date]]:
    """Per site, the days whose bookings are worth loading: the bookable ones (first > last:
    none), with one day of margin at the end."""
    ranges = {}
    for site in sites:
        opens, closes = slots.bookable_days(now, policy_of(site))
        ranges[site["id"]] = (max(first_day, opens), min(last_day, closes + _DAY))
    return ranges


def _with_busy(
    schedule: SiteSchedule,
    merged: dict[UUID, tuple[list[datetime], list[datetime]]],
    loaded: tuple[date, date],
) -> SiteSchedule:
    schedule.busy = {c: list(zip(s, e, strict=True)) for c, (s, e) in merged.items()}
    schedule.loaded = loaded
    schedule._merged = merged
    return schedule


async def _busy(
    sites: list[dict[str, Any]], ranges: dict[Any, tuple[date, date]], now: datetime
) -> dict[Any, dict[UUID, tuple[list[datetime], list[datetime]]]]:
    """Per site and counter, the merged busy intervals over the sites' ranges (one query)."""
    loading = [s["id"] for s in sites if ranges[s["id"]][0] <= ranges[s["id"]][1]]
    if not loading:
        return {}
    first = min(ranges[i][0] for i in loading)
    last = max(ranges[i][1] for i in loading)
    start = datetime.combine(first - _DAY, time(0)).replace(tzinfo=now.tzinfo)
    end = datetime.combine(last + 2 * _DAY, time(0)).replace(tzinfo=now.tzinfo)
    out: dict[Any, dict[UUID, tuple[list[datetime], list[datetime]]]] = defaultdict(dict)
    for (site, counter), seconds in (await _busy_seconds(loading, start, end, now)).items():
        out[site][counter] = _merge(*seconds)
    return out


_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

#: Longer than any booking: appointments last 22 h at most (240 min + 9 × 120 min with the
#: staff API's limits), staff blocks 10 h.
LONGEST_BOOKING = timedelta(days=2)

# Bookings that hold their seat whatever the time; a hold does only until it expires.
_SEATED = tuple(s for s in ACTIVE if s != "held")


async def _busy_seconds(
    site_ids: list[Any], start: datetime, end: datetime, now: datetime
) -> dict[tuple[UUID, UUID], tuple[list[int], list[int]]]:
    """Per site and counter, the (start, end) of every booking holding a seat between ``start`` and
    ``end``, in whole seconds since the epoch (starts rounded down, ends up: slots are on
    whole minutes, so a slot overlaps the rounded interval exactly when it overlaps the true
    one). Unordered.

    Why seconds, aggregated per counter: the bookings of 20 sites over 3 months are ~50,000
    rows; one row per counter with two arrays of integers (PostgreSQL) or two strings of
    digits (SQLite) spares a Python object, a timestamp parse and a dict per booking: most of
    the time of ``availableTimeSlots``. An expired hold frees its seat by itself (its units
    are reclaimed later).
    """
    marks = ", ".join("{}" for _ in site_ids)
    seated = ", ".join(f"'{s}'" for s in _SEATED)
    where = (
        f"site IN ({marks}) AND starts_at < {{}} AND ends_at > {{}} "
        f"AND (status IN ({seated}) OR (status = 'held' "
        "AND (hold_expires_at IS NULL OR hold_expires_at > {})))"
    )
    table = Booking._meta.tablename
    result: dict[tuple[UUID, UUID], tuple[list[int], list[int]]] = {}
    if database.is_postgres():
        rows = await Booking.raw(
            "SELECT site AS g, counter AS c, "
            # In start order: the merge's sort then meets sorted input (linear).
            "array_agg(floor(extract(epoch FROM starts_at))::bigint ORDER BY starts_at) AS s, "
            "array_agg(ceil(extract(epoch FROM ends_at))::bigint ORDER BY starts_at) AS e "
            # The lower bound on starts_at changes no answer (no booking lasts that long) but
            # lets PostgreSQL combine the site and starts_at indexes for a short range: the
            # nearest search's first two weeks read 2,500 rows, not all the sites' 40,000.
            f'FROM "{table}" WHERE {where} AND starts_at > {{}} GROUP BY site, counter',
            *site_ids,
            end,
            start,
            now,
            start - LONGEST_BOOKING,
        )
        for row in rows:
            key = (UUID(str(row["g"])), UUID(str(row["c"])))
            result[key] = (list(row["s"]), list(row["e"]))
        return result
    # SQLite stores str(datetime) in UTC ("2026-12-03 08:15:00+00:00", with ".ffffff" only
    # when there are microseconds): unixepoch() truncates them, so an end with a fraction
    # gets one more second. Expressions, not columns: no Python converter runs per row.
    rows = await Booking.raw(
        "SELECT site || '' AS g, counter || '' AS c, group_concat(unixepoch(starts_at)) AS s, "
        "group_concat(unixepoch(ends_at) + (instr(ends_at, '.') > 0)) AS e "
        # By the expressions, not the columns: grouping by a column makes SQLite walk the
        # whole table in that column's index order (seconds) rather than search by site.
        f'FROM "{table}" WHERE {where} GROUP BY g, c',
        *site_ids,
        end,
        start,
        now,
    )
    for row in rows:
        result[UUID(row["g"]), UUID(row["c"])] = (
            list(map(int, row["s"].split(","))),
            list(map(int, row["e"].split(","))),
        )
    return result


def _merge(starts: list[int], ends: list[int]) -> tuple[list[datetime], list[datetime]]:
    """Intervals in seconds, sorted and merged (touching ones too) into aware UTC datetimes:
    (starts, ends), both increasing, as ``slots.free_slots`` merges them."""
    merged_starts: list[int] = []
    merged_ends: list[int] = []
    for begin, end in sorted(zip(starts, ends, strict=True)):
        if end <= begin:
            raise ValueError(f"empty busy interval {begin} – {end}")
        if merged_ends and begin <= merged_ends[-1]:
            if end > merged_ends[-1]:
                merged_ends[-1] = end
        else:
            merged_starts.append(begin)
            merged_ends.append(end)
    return (
        [_EPOCH + _SECOND * value for value in merged_starts],
        [_EPOCH + _SECOND * value for value in merged_ends],
    )


def free_slots(
    schedule: SiteSchedule,
    reason: str,
    persons: int,
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    limit: int | None = None,
) -> list[slots.Slot]:
    """Free slots of one site for this reason and party size, inside the bookable window.

    The same as ``slots.free_slots`` over ``slots.candidate_slots`` of the range, in their
    order; only the bookable days are computed (those of ``load_schedules``' range too).
    With ``limit``, the first ``limit`` of them: days are computed a few at a time, and the
    search stops as soon as enough are found (the next free slots of a site are most often
    in its first days: a few hundred candidates rather than a whole horizon's).
    """
    policy = policy_of(schedule.site)
    minutes = duration(schedule.site, reason, persons)
    first, last = _bookable_range(schedule.site, first_day, last_day, now)
    if schedule.loaded is not None:
        first, last = max(first, schedule.loaded[0]), min(last, schedule.loaded[1])
    if schedule._merged is None:
        schedule._merged = {
            counter: _merge_datetimes(intervals) for counter, intervals in schedule.busy.items()
        }
    merged = schedule._merged
    opens, closes = slots.bookable_window(now, policy)
    found: list[slots.Slot] = []
    for run_first, run_last in _days_to_compute(schedule.rules, merged, first, last, policy):
        for chunk_first, chunk_last in _chunks(run_first, run_last, limit is not None):
            candidates = slots.candidate_slots(
                schedule.rules, schedule.closures, chunk_first, chunk_last, minutes, policy
            )
            found += _free(candidates, merged, opens, closes)
            if limit is not None and len(found) >= limit:
                return found[:limit]
    return found


def _chunks(first: date, last: date, growing: bool) -> Iterator[tuple[date, date]]:
    """[first, last] whole, or (``growing``) as runs of 1, 2, 4… days: each run of days costs
    its day templates once, so a few runs cost little more than one."""
    if not growing:
        yield first, last
        return
    span = 1
    while first <= last:
        end = min(last, first + (span - 1) * _DAY)
        yield first, end
        first, span = end + _DAY, span * 2


def _days_to_compute(
    rules: list[slots.OpeningRule],
    merged: dict[UUID, tuple[list[datetime], list[datetime]]],
    first: date,
    last: date,
    policy: slots.Policy,
) -> list[tuple[date, date]]:
    """The runs of days of [first, last] that may hold a free slot, in order.

    A day is left out when every opening of its weekday lies inside one busy interval of its
    counter: each slot lies within its opening, so none can be free. Fully booked sites then
    cost no slot at all (a third of the nearest search's time otherwise), whatever the
    horizon. Conservative: validity dates, closures and holidays are ignored (they only take
    slots away), and so are days with a clock change.
    """
    if not merged or first > last:
        return [(first, last)] if first <= last else []
    tz = policy.timezone
    by_weekday: list[list[tuple[timedelta, timedelta, UUID]]] = [[] for _ in range(7)]
    for rule in rules:
        by_weekday[rule.weekday].append(
            (
                timedelta(hours=rule.start.hour, minutes=rule.start.minute),
                timedelta(hours=rule.end.hour, minutes=rule.end.minute),
                rule.counter_id,
            )
        )
    runs: list[tuple[date, date]] = []
    run_first: date | None = None
    day = first
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    while day <= last:
        following = day + _DAY
        next_midnight = datetime(following.year, following.month, following.day, tzinfo=tz)
        openings = by_weekday[day.weekday()]
        offset = midnight.utcoffset()
        full = True  # no opening that day: no slot either
        if openings and (offset is None or offset != next_midnight.utcoffset()):
            full = False
        elif openings and offset is not None:
            base = midnight.replace(tzinfo=UTC) - offset
            for start, end, counter in openings:
                busy = merged.get(counter)
                if busy is None:
                    full = False
                    break
                starts, ends = busy
                opening, closing = base + start, base + end
                i = bisect_right(ends, opening)
                if not (i < len(ends) and starts[i] <= opening and ends[i] >= closing):
                    full = False
                    break
        if full:
            if run_first is not None:
                runs.append((run_first, day - _DAY))
                run_first = None
        elif run_first is None:
            run_first = day
        day, midnight = following, next_midnight
    if run_first is not None:
        runs.append((run_first, last))
    # Each run costs its own day templates (a few ms): skipping fewer than SKIP_AT_LEAST days
    # costs more than computing them.
    joined: list[tuple[date, date]] = []
    for run in runs:
        if joined and (run[0] - joined[-1][1]).days <= SKIP_AT_LEAST:
            joined[-1] = (joined[-1][0], run[1])
        else:
            joined.append(run)
    return joined


#: Fewest fully booked days in a row that ``free_slots`` skips (see ``_days_to_compute``).
SKIP_AT_LEAST = 28


def _merge_datetimes(
    intervals: list[tuple[datetime, datetime]],
) -> tuple[list[datetime], list[datetime]]:
    """``_merge`` for intervals given as aware datetimes."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for begin, end in sorted((b.astimezone(UTC), e.astimezone(UTC)) for b, e in intervals):
        if end <= begin:
            raise ValueError(f"empty busy interval {begin!r} – {end!r}")
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(begin)
            ends.append(end)
    return starts, ends


_start_of = attrgetter("start")


def _free(
    candidates: list[slots.Slot],
    merged: dict[UUID, tuple[list[datetime], list[datetime]]],
    opens: datetime,
    closes: datetime,
) -> list[slots.Slot]:
    """The candidates (sorted by start) starting in [opens, closes) and overlapping no merged
    busy interval of their counter."""
    low = bisect_left(candidates, opens, key=_start_of)
    high = bisect_left(candidates, closes, lo=low, key=_start_of)
    # Candidates share a few counter objects: look each up once by identity rather than by
    # UUID hash (a Python-level call per candidate).
    busy_of: dict[int, tuple[list[datetime], list[datetime], int] | None] = {}
    out: list[slots.Slot] = []
    append, find = out.append, bisect_right
    for slot in candidates[low:high]:
        busy = busy_of.get(id(slot.counter_id), _UNKNOWN)
        if busy is _UNKNOWN:
            intervals = merged.get(slot.counter_id)
            busy = None if intervals is None else (*intervals, len(intervals[1]))
            busy_of[id(slot.counter_id)] = busy
        if busy is not None:
            starts, ends, count = busy
            # The first busy interval ending after the slot starts is the only one to check.
            i = find(ends, slot.start)
            if i < count and starts[i] < slot.end:
                continue
        append(slot)
    return out


_UNKNOWN: Any = object()
