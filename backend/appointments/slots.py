"""Appointment slots for ID cards and passports: the pure computation, no database, no web.

A counter's schedule is a set of weekly opening rules in local wall-clock time, minus public
holidays and exceptional closures. Slots start every ``step_minutes`` from each rule's opening
time and last the appointment's duration. Everything returned is in aware UTC; local time is
only read at the edges (the rules in, the ANTS strings out).

Time zones, the classic source of bugs (Cal.com has fixed DST bugs for years; the ANTS hub
shifted slots by an hour after 31 March 2024):

- a wall-clock start that does not exist (the spring-forward gap) is skipped, and so is a slot
  whose wall-clock interval runs into the gap: in real time it would overlap the slots after the
  gap;
- an ambiguous wall-clock start (the repeated autumn hour) is taken at its first occurrence
  (``fold=0``), so the repeated hour is offered once, never twice;
- a slot's end is its start plus the duration in real time.

Hence two slots of one counter overlap in real time only if their wall-clock intervals do (so
never when ``duration <= step`` and the counter's rules of the day do not overlap), and the
database's unique 5-minute units (see :func:`units`) are exactly "no overlap".

Speed: the slots of a set of rules are laid out once per weekday as offsets from midnight
(``_days``); a day costs two UTC-offset look-ups and one datetime per distinct time, and on the
~363 days a year without a clock change a slot is one object holding shared datetimes. Only
the change days go through zoneinfo per slot. The endpoints compute free slots from the same
day walk in whole seconds, without a Slot per candidate (``_freetimes``, held equal to
:func:`free_slots` over :func:`candidate_slots` by a property test). Clip the requested range
with :func:`bookable_days` first.
"""

from __future__ import annotations

import gc
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Final, Literal, get_args
from uuid import UUID
from zoneinfo import ZoneInfo

from backend.appointments._days import changeover_day, open_days, wall_to_utc
from backend.appointments.holidays import french_public_holidays

__all__ = [
    "PARIS",
    "REASONS",
    "UNIT_MINUTES",
    "Closure",
    "OpeningRule",
    "Policy",
    "Reason",
    "Slot",
    "ants_appointment_date",
    "ants_datetime",
    "bookable_days",
    "bookable_window",
    "candidate_slots",
    "duration_minutes",
    "free_slots",
    "french_public_holidays",
    "units",
]

PARIS: Final = ZoneInfo("Europe/Paris")

#: ANTS reason codes (the hub's ``reason`` parameter).
Reason = Literal["CNI", "PASSPORT", "CNI-PASSPORT"]
REASONS: Final[tuple[Reason, ...]] = get_args(Reason)

#: Granularity of the booking table (one unique row per counter and unit). Opening times, steps
#: and durations are multiples of it, so that units overlap exactly when bookings do.
UNIT_MINUTES: Final = 5

_MINUTE: Final = timedelta(minutes=1)
_DAY: Final = timedelta(days=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _on_unit(value: time) -> bool:
    return (
        value.tzinfo is None
        and not (value.second or value.microsecond)
        and not (value.minute % UNIT_MINUTES)
    )


@dataclass(frozen=True, slots=True)
class OpeningRule:
    """A weekly opening of one counter, in local wall-clock time, between two dates (inclusive)."""

    counter_id: UUID
    weekday: int  # 0 = Monday, as date.weekday()
    start: time
    end: time
    valid_from: date
    valid_to: date | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError("Le jour de la semaine doit être compris entre 0 (lundi) et 6.")
        if not (_on_unit(self.start) and _on_unit(self.end)):
            raise ValueError(
                f"Les horaires d'ouverture se règlent par pas de {UNIT_MINUTES} minutes "
                "(par exemple 08:45, pas 08:47)."
            )
        if self.start >= self.end:
            raise ValueError("L'heure de fermeture doit suivre l'heure d'ouverture.")
        if self.valid_to is not None and self.valid_to < self.valid_from:
            raise ValueError("La fin de validité doit suivre son début.")

    def valid_on(self, day: date) -> bool:
        """Whether the rule applies on ``day`` (its weekday aside)."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Closure:
    """An exceptional closure, dates inclusive, of the whole site (no counter) or of a counter."""

    start: date
    end: date
    counter_id: UUID | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("La fin de la fermeture doit suivre son début.")


def _default_base_minutes() -> Mapping[str, int]:
    return {"CNI": 15, "PASSPORT": 20, "CNI-PASSPORT": 25}


@dataclass(frozen=True)
class Policy:
    """How a site offers its slots.

    ``horizon_days`` and ``release_time`` make a rolling release: day D becomes bookable at
    ``release_time`` local on D − ``horizon_days``, so fresh slots appear at a known office hour
    for everyone, not at midnight for bots.
    """

    step_minutes: int = 15
    base_minutes: Mapping[str, int] = field(default_factory=_default_base_minutes, hash=False)
    per_extra_person_minutes: int = 10
    min_notice: timedelta = timedelta(hours=2)
    horizon_days: int = 60
    release_time: time = time(8, 0)
    max_persons: int = 4
    timezone: ZoneInfo = PARIS

    def __post_init__(self) -> None:
        if self.step_minutes <= 0 or self.step_minutes % UNIT_MINUTES:
            raise ValueError(
                f"Le pas des créneaux doit être un multiple de {UNIT_MINUTES} minutes."
            )
        if not self.base_minutes or any(m <= 0 for m in self.base_minutes.values()):
            raise ValueError("Chaque motif doit avoir une durée positive.")
        if self.per_extra_person_minutes < 0 or self.max_persons < 1:
            raise ValueError("Durée par personne supplémentaire ou nombre de personnes invalide.")
        if self.horizon_days < 0 or self.min_notice < timedelta(0):
            raise ValueError("Le délai de prévenance et l'horizon ne peuvent être négatifs.")
        # A read-only copy: a Policy is shared between requests and must not change under them.
        object.__setattr__(self, "base_minutes", MappingProxyType(dict(self.base_minutes)))


def duration_minutes(reason: str, persons: int, policy: Policy) -> int:
    """Minutes of an appointment: the reason's base plus a share per extra person.

    Rounded up to a multiple of ``policy.step_minutes``: slots start on the step grid, so the
    remainder could never be booked by anyone anyway; rounding makes the booked interval equal
    the time it withholds (the agent's calendar shows the truth, and keeps that slack).

    Raises ValueError with a message for the resident: unknown reason, or a number of persons
    outside 1..max_persons (the message then contains "personne").
    """
    base = policy.base_minutes.get(reason)
    if base is None:
        known = ", ".join(policy.base_minutes)
        raise ValueError(
            f"Motif de rendez-vous inconnu : « {reason} ». Motifs possibles : {known}."
        )
    if isinstance(persons, bool) or not isinstance(persons, int):
        raise ValueError("Le nombre de personnes doit être un nombre entier.")
    if not 1 <= persons <= policy.max_persons:
        if policy.max_persons == 1:
            raise ValueError("Un rendez-vous concerne une seule personne.")
        raise ValueError(
            f"Un rendez-vous concerne de 1 à {policy.max_persons} personnes : pour un groupe "
            "plus nombreux, prenez plusieurs rendez-vous."
        )
    raw = base + policy.per_extra_person_minutes * (persons - 1)
    step = policy.step_minutes
    return -(-raw // step) * step


@dataclass(frozen=True, order=True, slots=True)
class Slot:
    """One possible appointment of one counter: aware UTC datetimes, half-open [start, end).

    Built from datetimes in any zone, it stores them in UTC. Why: Python compares two datetimes
    of the same zone on the wall clock, ignoring ``fold``, so 02:00 CET (second occurrence) is
    not "after" 02:00 CEST. In UTC, order and equality are real time, and Slot ordering too.
    """

    start: datetime
    end: datetime
    counter_id: UUID

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")
        start, end = self.start.astimezone(UTC), self.end.astimezone(UTC)
        if end <= start:  # compared in UTC, see above
            raise ValueError(f"a slot ends after it starts: {self.start!r} – {self.end!r}")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


# A frozen dataclass's __init__ goes through object.__setattr__ and __post_init__ checks;
# candidate_slots builds ~100 000 slots per API call from instants it already knows to be UTC,
# so it fills the slots' descriptors directly (≈4× faster). The instances are ordinary Slots.
_new_slot: Final = object.__new__
_set_start: Final[Callable[[Slot, datetime], None]] = vars(Slot)["start"].__set__
_set_end: Final[Callable[[Slot, datetime], None]] = vars(Slot)["end"].__set__
_set_counter: Final[Callable[[Slot, UUID], None]] = vars(Slot)["counter_id"].__set__


def _make_slot(start: datetime, end: datetime, counter_id: UUID) -> Slot:
    slot: Slot = _new_slot(Slot)
    _set_start(slot, start)
    _set_end(slot, end)
    _set_counter(slot, counter_id)
    return slot


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {value!r}")


def _wall_to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """Like _wall_to_utc, but a time in a gap means the first wall-clock minute after it."""
    while (instant := wall_to_utc(wall, tz)) is None:
        wall += _MINUTE
    return instant


def candidate_slots(
    rules: Sequence[OpeningRule],
    closures: Sequence[Closure],
    first_day: date,
    last_day: date,
    duration: int,
    policy: Policy,
    *,
    holidays: Callable[[int], Mapping[date, str]] = french_public_holidays,
) -> list[Slot]:
    """Every slot one site's schedule offers from ``first_day`` to ``last_day``, before bookings.

    Days are local dates in ``policy.timezone``. On each day that is neither a holiday nor a
    closure of the site, each rule valid that day and weekday, whose counter is not closed,
    offers starts every ``policy.step_minutes`` from its opening time while start + duration
    stays within its closing time (wall clock). ``closures`` are the site's: those without a
    counter close every counter. ``holidays`` maps a year to its holidays (Alsace-Moselle:
    ``functools.partial(french_public_holidays, alsace_moselle=True)``). An empty range gives
    no slot.

    DST: see the module docstring (gap starts skipped, ambiguous starts at fold=0). Slots are
    unique and sorted (start, end, counter_id), by construction rather than by sorting.
    """
    if duration <= 0:
        raise ValueError(f"duration must be positive, got {duration}")
    if last_day < first_day:
        return []
    with _collector_paused():
        return _candidate_slots(rules, closures, first_day, last_day, duration, policy, holidays)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a burst of slots is allocated.

    Why: ~100 000 new Slots trigger collections that walk the whole heap (a third of the time,
    measured). Slots refer to no container, so they cannot form cycles: a pause misses nothing.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _candidate_slots(
    rules: Sequence[OpeningRule],
    closures: Sequence[Closure],
    first_day: date,
    last_day: date,
    duration: int,
    policy: Policy,
    holidays: Callable[[int], Mapping[date, str]],
) -> list[Slot]:
    length = timedelta(minutes=duration)
    out: list[Slot] = []
    append, new_slot, set_start, set_end, set_counter = (
        out.append,
        _new_slot,
        _set_start,
        _set_end,
        _set_counter,
    )
    days = open_days(rules, closures, first_day, last_day, duration, policy, holidays)
    for _day, midnight, next_midnight, template in days:
        offset = midnight.utcoffset()
        if offset is not None and offset == next_midnight.utcoffset():
            # No clock change today: local wall time = UTC + one offset, so a slot is two
            # lookups in the day's instants, and no zoneinfo call.
            base = midnight.replace(tzinfo=UTC) - offset
            instants = [base + delta for delta in template.offsets]
            for start, end, counter in template.entries:
                slot = new_slot(Slot)
                set_start(slot, instants[start])
                set_end(slot, instants[end])
                set_counter(slot, counter)
                append(slot)
            continue
        # A clock change today (twice a year in France): per slot, through zoneinfo.
        for instant, counter in changeover_day(midnight, template, length):
            append(_make_slot(instant, instant + length, counter))
    return out


def bookable_window(now: datetime, policy: Policy) -> tuple[datetime, datetime]:
    """The half-open UTC interval where a slot may start, as seen at ``now``.

    From ``now + min_notice`` to the end of the last released day: day D is released at
    ``release_time`` local on D − ``horizon_days``. A release time that falls in a DST gap
    releases at the end of the gap; in the repeated hour, at its first occurrence.
    """
    _require_aware(now, "now")
    tz = policy.timezone
    today = now.astimezone(tz).date()
    released_today = _wall_to_instant(datetime.combine(today, policy.release_time), tz)
    ahead = policy.horizon_days if now >= released_today else policy.horizon_days - 1
    last_day = today + timedelta(days=ahead)
    closes = _wall_to_instant(datetime.combine(last_day + _DAY, time(0)), tz)
    return now.astimezone(UTC) + policy.min_notice, closes


def bookable_days(now: datetime, policy: Policy) -> tuple[date, date]:
    """The first and last local dates that may hold a bookable slot (none if first > last).

    Clip a request's date range with it before ``candidate_slots``: with the default 60-day
    horizon, two thirds of a 3-month ANTS request is not released yet.
    """
    opens, closes = bookable_window(now, policy)
    tz = policy.timezone
    return opens.astimezone(tz).date(), (closes - _MINUTE).astimezone(tz).date()


def _merged(
    intervals: Iterable[tuple[datetime, datetime]],
) -> tuple[list[datetime], list[datetime]]:
    """Busy intervals in UTC, sorted and merged: (starts, ends), both increasing."""
    starts: list[datetime] = []
    ends: list[datetime] = []
    for begin, end in sorted((b.astimezone(UTC), e.astimezone(UTC)) for b, e in intervals):
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(begin)
            ends.append(end)
    return starts, ends


def free_slots(
    candidates: Sequence[Slot],
    busy: Mapping[UUID, Sequence[tuple[datetime, datetime]]],
    now: datetime,
    policy: Policy,
) -> list[Slot]:
    """The candidates that start inside the bookable window and overlap no busy interval.

    ``busy`` maps a counter to its taken intervals (aware datetimes, half-open [start, end));
    a slot is only compared with its own counter's. The candidates' order is kept.
    """
    opens, closes = bookable_window(now, policy)
    taken: dict[UUID, tuple[list[datetime], list[datetime]]] = {}
    for counter, intervals in busy.items():
        for begin, end in intervals:
            _require_aware(begin, "busy start")
            _require_aware(end, "busy end")
            if end <= begin:
                raise ValueError(f"empty busy interval {begin!r} – {end!r}")
        if intervals:
            taken[counter] = _merged(intervals)
    out: list[Slot] = []
    for slot in candidates:
        if not opens <= slot.start < closes:
            continue
        counter_busy = taken.get(slot.counter_id)
        if counter_busy is not None:
            starts, ends = counter_busy
            # The first busy interval ending after the slot starts is the only one to check.
            i = bisect_right(ends, slot.start)
            if i < len(ends) and starts[i] < slot.end:
                continue
        out.append(slot)
    return out


def units(slot: Slot, unit_minutes: int = UNIT_MINUTES) -> list[datetime]:
    """The starts (aware UTC) of the units of time a slot occupies, aligned on UTC unit bounds.

    The booking table holds one unique row per (counter, unit): two bookings of a counter can
    both be stored exactly when they share no unit. For slots on the unit grid (every slot
    ``candidate_slots`` makes) that is exactly "they do not overlap"; a slot off the grid takes
    every unit it touches, so an overlap is still always refused.
    """
    if unit_minutes <= 0:
        raise ValueError(f"unit_minutes must be positive, got {unit_minutes}")
    unit = timedelta(minutes=unit_minutes)
    first = (slot.start - _EPOCH) // unit
    after = -((_EPOCH - slot.end) // unit)  # ceiling division
    return [_EPOCH + unit * k for k in range(first, after)]


def ants_datetime(value: datetime, tz: ZoneInfo = PARIS) -> str:
    """A slot time for the ANTS hub: local WALL-CLOCK time followed by a literal ``Z``.

    The hub's quirk (rdv-service-public does the same): 10:00 in Paris is "…T10:00Z" in winter
    and in summer, although it is not UTC. Both occurrences of a repeated autumn time read alike.
    """
    _require_aware(value, "value")
    return value.astimezone(tz).strftime("%Y-%m-%dT%H:%MZ")


def ants_appointment_date(value: datetime, tz: ZoneInfo = PARIS) -> str:
    """An ``appointment_date`` for the ANTS coordination API: local ``YYYY-MM-DD HH:MM:SS``."""
    _require_aware(value, "value")
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
