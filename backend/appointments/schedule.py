"""From the tables to free slots: a site's policy, rules, closures and bookings, per day range."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from backend import database
from backend.appointments import slots
from backend.appointments._busy import ACTIVE, Merged, busy_of_counters
from backend.appointments._freetimes import free_times as _free_times
from backend.appointments.tables import Closure, OpeningRule, Site
from backend.exceptions import FieldError, InvalidInput, NotFound

__all__ = [
    "ACTIVE",
    "SiteSchedule",
    "duration",
    "free_slots",
    "free_times",
    "get_site",
    "load_busy",
    "load_schedules",
    "policy_of",
]


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

    ``busy`` holds each counter's taken intervals, sorted and merged, in whole seconds since
    the epoch (starts, ends: both increasing); ``loaded`` is the day range they were loaded for
    (``None``: every day), outside which no slot is offered, since the bookings there are
    unknown.
    """

    site: dict[str, Any]
    rules: list[slots.OpeningRule]
    closures: list[slots.Closure]
    busy: dict[UUID, Merged]
    loaded: tuple[date, date] | None = None


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
            busy,
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
            busy,
            ranges[schedule.site["id"]],
        )
        for schedule in schedules
    ]


async def _together(*queries: Awaitable[Any]) -> list[Any]:
    """Run the queries at once (each on its own connection), or one after the other inside
    a transaction, whose single connection runs one query at a time."""
    if database.in_transaction():
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
    schedule: SiteSchedule, busy: dict[UUID, Merged], loaded: tuple[date, date]
) -> SiteSchedule:
    """The schedule with its counters' busy times (of ``busy``, which has other sites' too)."""
    counters = {rule.counter_id for rule in schedule.rules}
    schedule.busy = {counter: busy[counter] for counter in counters if counter in busy}
    schedule.loaded = loaded
    return schedule


async def _busy(
    sites: list[dict[str, Any]], ranges: dict[Any, tuple[date, date]], now: datetime
) -> dict[UUID, Merged]:
    """Per counter, the merged busy intervals over the sites' ranges (one query)."""
    loading = [s["id"] for s in sites if ranges[s["id"]][0] <= ranges[s["id"]][1]]
    if not loading:
        return {}
    first = min(ranges[i][0] for i in loading)
    last = max(ranges[i][1] for i in loading)
    start = datetime.combine(first - _DAY, time(0)).replace(tzinfo=now.tzinfo)
    end = datetime.combine(last + 2 * _DAY, time(0)).replace(tzinfo=now.tzinfo)
    return await busy_of_counters(loading, start, end, now)


_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def free_times(
    schedule: SiteSchedule,
    reason: str,
    persons: int,
    first_day: date,
    last_day: date,
    now: datetime,
    *,
    limit: int | None = None,
) -> list[tuple[int, int, UUID]]:
    """Free slots of one site for this reason and party size, inside the bookable window, as
    (start, end, counter) with times in whole seconds since the epoch.

    The same as ``slots.free_slots`` over ``slots.candidate_slots`` of the range, in their
    order; only the bookable days are computed (those of ``load_schedules``' range too).
    With ``limit``, the first ``limit`` of them: the days are walked in order, and the walk
    stops as soon as enough are found (a fully booked day costs a few comparisons).
    """
    policy = policy_of(schedule.site)
    minutes = duration(schedule.site, reason, persons)
    first, last = _bookable_range(schedule.site, first_day, last_day, now)
    if schedule.loaded is not None:
        first, last = max(first, schedule.loaded[0]), min(last, schedule.loaded[1])
    if first > last:
        return []
    opens, closes = slots.bookable_window(now, policy)
    return _free_times(
        schedule.rules,
        schedule.closures,
        first,
        last,
        minutes,
        policy,
        schedule.busy,
        _ceil_seconds(opens),
        _ceil_seconds(closes),
        slots.french_public_holidays,
        limit=limit,
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
    """``free_times`` as Slots."""
    instants: dict[int, datetime] = {}

    def instant(seconds: int) -> datetime:
        value = instants.get(seconds)
        if value is None:
            value = instants[seconds] = _EPOCH + _SECOND * seconds
        return value

    return [
        slots.Slot(instant(start), instant(end), counter)
        for start, end, counter in free_times(
            schedule, reason, persons, first_day, last_day, now, limit=limit
        )
    ]


def _ceil_seconds(value: datetime) -> int:
    """Whole seconds since the epoch, rounded up: a slot (on whole seconds) starts at or after
    ``value`` exactly when it starts at or after this, and before it when before this."""
    whole, rest = divmod(value - _EPOCH, _SECOND)
    return int(whole) + (rest > timedelta(0))
