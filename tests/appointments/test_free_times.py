"""The free slots the endpoints compute (``schedule.free_slots``, in whole seconds, skipping fully
booked days) are exactly the candidates minus the busy times (``slots.free_slots`` over
``slots.candidate_slots``), across time zones, clock changes, closures and any busy times."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from backend.appointments import _busy, schedule
from backend.appointments.slots import (
    REASONS,
    Closure,
    OpeningRule,
    Policy,
    bookable_window,
    candidate_slots,
    duration_minutes,
    free_slots,
)
from tests.appointments.test_slots import COUNTER, PROPERTY_SETTINGS, UNIT, scenarios

A = UUID("00000000-0000-4000-8000-00000000000a")

# Short bookings, and long ones that cover whole openings (the skipped fully booked days).
SPANS = st.lists(
    st.tuples(st.integers(-288, 16 * 288), st.integers(1, 36) | st.integers(36, 700)),
    max_size=8,
)
BUSY = st.dictionaries(COUNTER, SPANS)
NOW_MINUTES = st.integers(-3 * 24 * 60, 10 * 24 * 60) | st.integers(0, 24 * 60 * 60) | st.just(0)


def site_of(policy: Policy) -> dict[str, object]:
    """A site row with this policy (the scenarios use the default durations and notice)."""
    return {
        "id": A,
        "step_minutes": policy.step_minutes,
        "base_cni_minutes": policy.base_minutes["CNI"],
        "base_passport_minutes": policy.base_minutes["PASSPORT"],
        "base_both_minutes": policy.base_minutes["CNI-PASSPORT"],
        "per_extra_person_minutes": policy.per_extra_person_minutes,
        "min_notice_minutes": int(policy.min_notice.total_seconds()) // 60,
        "horizon_days": policy.horizon_days,
        "release_time": policy.release_time.strftime("%H:%M"),
        "max_persons": policy.max_persons,
        "timezone": policy.timezone.key,
    }


def merged_seconds(
    busy: dict[UUID, list[tuple[datetime, datetime]]],
) -> dict[UUID, tuple[list[int], list[int]]]:
    """Busy times as ``load_schedules`` gives them: merged, in epoch seconds."""
    out = {}
    for counter, intervals in busy.items():
        if intervals:
            out[counter] = _busy.merge(
                [int(b.timestamp()) for b, _ in intervals],
                [int(e.timestamp()) for _, e in intervals],
            )
    return out


@PROPERTY_SETTINGS
@given(scenarios(), st.sampled_from(REASONS), st.integers(1, 4), st.data())
def test_free_slots_of_a_site_are_the_candidates_clear_of_busy_times(
    scenario: tuple[list[OpeningRule], list[Closure], date, date, int, Policy],
    reason: str,
    persons: int,
    data: st.DataObject,
) -> None:
    rules, closures, first_day, last_day, _duration, policy = scenario
    duration = duration_minutes(reason, persons, policy)
    origin = datetime.combine(first_day, time(0), tzinfo=UTC)
    busy = {
        counter: [(origin + UNIT * at, origin + UNIT * (at + units)) for at, units in spans]
        for counter, spans in data.draw(BUSY).items()
    }
    now = origin + timedelta(minutes=data.draw(NOW_MINUTES))
    candidates = candidate_slots(rules, closures, first_day, last_day, duration, policy)
    expected = free_slots(candidates, busy, now, policy)
    opens, closes = bookable_window(now, policy)
    assert all(opens <= s.start < closes for s in expected)

    site = schedule.SiteSchedule(site_of(policy), rules, closures, merged_seconds(busy))
    got = schedule.free_slots(site, reason, persons, first_day, last_day, now)
    assert got == expected

    limit = data.draw(st.integers(1, 30))
    assert (
        schedule.free_slots(site, reason, persons, first_day, last_day, now, limit=limit)
        == (expected[:limit])
    )
    times = schedule.free_times(site, reason, persons, first_day, last_day, now)
    assert times == [(int(s.start.timestamp()), int(s.end.timestamp()), s.counter_id) for s in got]


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(1, 30)), max_size=40))
def test_busy_times_merge_into_sorted_disjoint_intervals(spans: list[tuple[int, int]]) -> None:
    starts, ends = [at for at, _ in spans], [at + length for at, length in spans]
    merged_starts, merged_ends = _busy.merge(starts, ends)
    expected: list[list[int]] = []
    for begin, end in sorted(zip(starts, ends, strict=True)):
        if expected and begin <= expected[-1][1]:
            expected[-1][1] = max(expected[-1][1], end)
        else:
            expected.append([begin, end])
    assert [list(pair) for pair in zip(merged_starts, merged_ends, strict=True)] == expected
