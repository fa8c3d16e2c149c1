"""The days of a schedule and the slots each offers, as offsets from local midnight.

Private to ``slots`` (which builds Slot objects from them) and ``_freetimes`` (which works in
whole seconds since the epoch). A range of days is walked once: holidays, closures and rule
validity pick each day's openings, and a day's slots come from a template shared by every day
with the same openings (see ``DayTemplate``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Final
from uuid import UUID
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from backend.appointments.slots import Closure, OpeningRule, Policy

_MINUTE: Final = timedelta(minutes=1)
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DayTemplate:
    """The slots a set of rules offers on one day, as offsets from local midnight.

    ``offsets`` are the distinct start and end times of the day; ``entries`` index into it
    (start, end, counter), deduplicated and in Slot order. One day then costs one datetime per
    distinct time, shared by every slot that starts or ends then (3 counters, 1 datetime).

    ``seconds`` are the same entries as (start, end, counter number) in seconds from midnight,
    the counter being ``counters[number]``; ``blocks`` are, per counter, the spans its slots
    cover end to end (counter number, first start, last end): a busy interval covering a block
    takes every slot in it, so a fully booked day is known from a few blocks, not its slots.
    """

    offsets: tuple[timedelta, ...]
    entries: tuple[tuple[int, int, UUID], ...]
    seconds: tuple[tuple[int, int, int], ...]
    counters: tuple[UUID, ...]
    blocks: tuple[tuple[int, int, int], ...]
    first_start: int
    last_start: int


def day_template(rules: Iterable[OpeningRule], duration: int, step: int) -> DayTemplate:
    """The template of the day's rules for slots of ``duration`` minutes every ``step``."""
    openings = tuple((rule.counter_id, rule.start, rule.end) for rule in rules)
    return _template_of(openings, duration, step)


@lru_cache(maxsize=1024)
def _template_of(
    openings: tuple[tuple[UUID, time, time], ...], duration: int, step: int
) -> DayTemplate:
    """The template of a day's openings (counter, start, end); kept, since searches made a
    few days at a time meet the same days again, and requests the same openings."""
    starts: set[tuple[int, UUID]] = set()
    for counter_id, opening, closing in openings:
        first = opening.hour * 60 + opening.minute
        last = closing.hour * 60 + closing.minute - duration
        starts.update((minute, counter_id) for minute in range(first, last + 1, step))
    # Slot order is (start, end, counter); with one duration that is (start, counter.int).
    ordered = sorted(starts, key=lambda entry: (entry[0], entry[1].int))
    minutes = sorted({m for m, _ in ordered} | {m + duration for m, _ in ordered})
    index = {minute: i for i, minute in enumerate(minutes)}
    counters = tuple(sorted({counter for _, counter in ordered}, key=lambda c: c.int))
    number = {counter: i for i, counter in enumerate(counters)}
    blocks: list[tuple[int, int, int]] = []
    for counter in counters:
        spans: list[list[int]] = []
        for minute in sorted(m for m, c in ordered if c == counter):
            if spans and minute <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], minute + duration)
            else:
                spans.append([minute, minute + duration])
        blocks += [(number[counter], 60 * a, 60 * b) for a, b in spans]
    return DayTemplate(
        offsets=tuple(timedelta(minutes=m) for m in minutes),
        entries=tuple((index[m], index[m + duration], counter) for m, counter in ordered),
        seconds=tuple((60 * m, 60 * (m + duration), number[c]) for m, c in ordered),
        counters=counters,
        blocks=tuple(blocks),
        first_start=60 * ordered[0][0] if ordered else 0,
        last_start=60 * ordered[-1][0] if ordered else 0,
    )


def _closed_days(
    closures: Sequence[Closure], first_day: date, last_day: date
) -> tuple[set[date], dict[UUID, set[date]]]:
    """Closed dates within the range: of the whole site, and per counter."""
    site: set[date] = set()
    counters: dict[UUID, set[date]] = {}
    for closure in closures:
        if closure.counter_id is None:
            target = site
        else:
            target = counters.setdefault(closure.counter_id, set())
        day, end = max(closure.start, first_day), min(closure.end, last_day)
        while day <= end:
            target.add(day)
            day += _DAY
    return site, counters


def open_days(
    rules: Sequence[OpeningRule],
    closures: Sequence[Closure],
    first_day: date,
    last_day: date,
    duration: int,
    policy: Policy,
    holidays: Callable[[int], Mapping[date, str]],
) -> Iterator[tuple[date, datetime, datetime, DayTemplate]]:
    """(day, its local midnight, the next one, its template) for each day of the range with
    slots, in order: neither a holiday nor a closure of the site, and some rule valid that day
    and weekday whose counter is not closed."""
    tz, step = policy.timezone, policy.step_minutes
    site_closed, counter_closed = _closed_days(closures, first_day, last_day)
    # Per weekday: (rule number, rule, its counter's closed days); numbers key the templates.
    by_weekday: list[list[tuple[int, OpeningRule, set[date] | None]]] = [[] for _ in range(7)]
    for number, rule in enumerate(rules):
        by_weekday[rule.weekday].append((number, rule, counter_closed.get(rule.counter_id)))
    holidays_of: dict[int, Mapping[date, str]] = {}
    templates: dict[tuple[int, ...], DayTemplate] = {}
    day = first_day
    next_midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    while day <= last_day:
        today, midnight, day = day, next_midnight, day + _DAY
        next_midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        if today in site_closed:
            continue
        if today.year not in holidays_of:
            holidays_of[today.year] = holidays(today.year)
        if today in holidays_of[today.year]:
            continue
        active = tuple(
            number
            for number, rule, closed in by_weekday[today.weekday()]
            if rule.valid_from <= today
            and (rule.valid_to is None or today <= rule.valid_to)
            and (closed is None or today not in closed)
        )
        if not active:
            continue
        template = templates.get(active)
        if template is None:
            chosen = [rules[number] for number in active]
            template = templates[active] = day_template(chosen, duration, step)
        yield today, midnight, next_midnight, template


def wall_to_utc(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of a naive wall-clock time: first occurrence if repeated, None in a gap."""
    instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    # A gap time does not survive the round trip (zoneinfo maps it with the offset before).
    return instant if instant.astimezone(tz).replace(tzinfo=None) == wall else None


def changeover_day(
    midnight: datetime, template: DayTemplate, length: timedelta
) -> list[tuple[datetime, UUID]]:
    """The slots (UTC start, counter) of a day with a clock change, in order, through zoneinfo.

    A start in the spring-forward gap is dropped; so is a slot whose last minute, read back on
    the wall clock, lands later than the rule says: its interval ran into the gap, and in real
    time it would overlap the slots after it. Ambiguous starts take their first occurrence.
    """
    tz = midnight.tzinfo
    assert isinstance(tz, ZoneInfo)
    wall_midnight = midnight.replace(tzinfo=None)
    out: list[tuple[datetime, UUID]] = []
    for start, _end, counter in template.entries:
        wall = wall_midnight + template.offsets[start]
        instant = wall_to_utc(wall, tz)
        if instant is None:
            continue
        last_minute = (instant + length - _MINUTE).astimezone(tz).replace(tzinfo=None)
        if last_minute > wall + length - _MINUTE:
            continue
        out.append((instant, counter))
    return out
