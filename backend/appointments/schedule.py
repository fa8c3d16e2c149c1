"""From the tables to free slots: a site's policy, rules, closures and bookings, per day range."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from operator import attrgetter
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend import database
from backend.appointments import slots
from backend.appointments.tables import Booking, Closure, Counter, OpeningRule, Site
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
    sites: list[dict[str, Any]], first_day: date, last_day: date, now: datetime
) -> list[SiteSchedule]:
    """Rules, closures and busy times of several sites (one query per table, not per site).

    Only the days of the range that are bookable at ``now`` are loaded (plus one day of margin
    at the end, should a release time pass before ``free_slots`` is called); pass the same
    ``now`` to ``free_slots``.
    """
    if not sites:
        return []
    site_ids = [s["id"] for s in sites]
    ranges: dict[Any, tuple[date, date]] = {}
    for site in sites:
        opens, closes = slots.bookable_days(now, policy_of(site))
        ranges[site["id"]] = (max(first_day, opens), min(last_day, closes + _DAY))
    counters = await Counter.select(Counter.id, Counter.site).where(
        Counter.site.is_in(site_ids) & (Counter.active == True)  # noqa: E712
    )
    site_of = {c["id"]: c["site"] for c in counters}
    rules: dict[Any, list[slots.OpeningRule]] = defaultdict(list)
    if site_of:
        for r in await OpeningRule.select(
            OpeningRule.counter,
            OpeningRule.weekday,
            OpeningRule.start_time,
            OpeningRule.end_time,
            OpeningRule.valid_from,
            OpeningRule.valid_to,
        ).where(OpeningRule.counter.is_in(list(site_of))):
            rules[site_of[r["counter"]]].append(
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
    for c in await Closure.select(
        Closure.site, Closure.counter, Closure.start_date, Closure.end_date, Closure.reason
    ).where(
        Closure.site.is_in(site_ids)
        & (Closure.end_date >= first_day)
        & (Closure.start_date <= last_day)
    ):
        closures[c["site"]].append(
            slots.Closure(c["start_date"], c["end_date"], c["counter"], c["reason"])
        )
    merged: dict[UUID, tuple[list[datetime], list[datetime]]] = {}
    open_ranges = [r for r in ranges.values() if r[0] <= r[1]]
    if open_ranges:
        first = min(r[0] for r in open_ranges)
        last = max(r[1] for r in open_ranges)
        start = datetime.combine(first - _DAY, time(0)).replace(tzinfo=now.tzinfo)
        end = datetime.combine(last + 2 * _DAY, time(0)).replace(tzinfo=now.tzinfo)
        loading = [i for i in site_ids if ranges[i][0] <= ranges[i][1]]
        for counter, seconds in (await _busy_seconds(loading, start, end, now)).items():
            merged[counter] = _merge(*seconds)
    busy: dict[Any, dict[UUID, list[tuple[datetime, datetime]]]] = defaultdict(dict)
    merged_of: dict[Any, dict[UUID, tuple[list[datetime], list[datetime]]]] = defaultdict(dict)
    for counter, (starts, ends) in merged.items():
        owner = site_of.get(counter)
        if owner is None:
            continue  # an inactive counter: it offers no slot
        busy[owner][counter] = list(zip(starts, ends, strict=True))
        merged_of[owner][counter] = (starts, ends)
    return [
        SiteSchedule(
            site,
            rules[site["id"]],
            closures[site["id"]],
            busy[site["id"]],
            ranges[site["id"]],
            merged_of[site["id"]],
        )
        for site in sites
    ]


_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)

# Bookings that hold their seat whatever the time; a hold does only until it expires.
_SEATED = tuple(s for s in ACTIVE if s != "held")


async def _busy_seconds(
    site_ids: list[Any], start: datetime, end: datetime, now: datetime
) -> dict[UUID, tuple[list[int], list[int]]]:
    """Per counter, the (start, end) of every booking holding a seat between ``start`` and
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
    result: dict[UUID, tuple[list[int], list[int]]] = {}
    if database.is_postgres():
        rows = await Booking.raw(
            "SELECT counter AS c, "
            "array_agg(floor(extract(epoch FROM starts_at))::bigint) AS s, "
            "array_agg(ceil(extract(epoch FROM ends_at))::bigint) AS e "
            f'FROM "{table}" WHERE {where} GROUP BY counter',
            *site_ids,
            end,
            start,
            now,
        )
        for row in rows:
            result[UUID(str(row["c"]))] = (list(row["s"]), list(row["e"]))
        return result
    # SQLite stores str(datetime) in UTC ("2026-12-03 08:15:00+00:00", with ".ffffff" only
    # when there are microseconds): unixepoch() truncates them, so an end with a fraction
    # gets one more second. Expressions, not columns: no Python converter runs per row.
    rows = await Booking.raw(
        "SELECT counter || '' AS c, group_concat(unixepoch(starts_at)) AS s, "
        "group_concat(unixepoch(ends_at) + (instr(ends_at, '.') > 0)) AS e "
        # By the expression, not the column: grouping by the column makes SQLite walk the
        # whole table in counter-index order (seconds) rather than search the site index.
        f'FROM "{table}" WHERE {where} GROUP BY c',
        *site_ids,
        end,
        start,
        now,
    )
    for row in rows:
        result[UUID(row["c"])] = (
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
) -> list[slots.Slot]:
    """Free slots of one site for this reason and party size, inside the bookable window.

    The same as ``slots.free_slots`` over ``slots.candidate_slots`` of the range, in their
    order; only the bookable days are computed (those of ``load_schedules``' range too).
    """
    policy = policy_of(schedule.site)
    minutes = duration(schedule.site, reason, persons)
    first, last = _bookable_range(schedule.site, first_day, last_day, now)
    if schedule.loaded is not None:
        first, last = max(first, schedule.loaded[0]), min(last, schedule.loaded[1])
    candidates = slots.candidate_slots(
        schedule.rules, schedule.closures, first, last, minutes, policy
    )
    if schedule._merged is None:
        schedule._merged = {
            counter: _merge_datetimes(intervals) for counter, intervals in schedule.busy.items()
        }
    opens, closes = slots.bookable_window(now, policy)
    return _free(candidates, schedule._merged, opens, closes)


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
