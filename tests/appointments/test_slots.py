"""Slot computation, without a database: holidays, durations, opening rules, closures, the
booking window, busy times, the two clock changes, the ANTS time strings, and property tests of
the invariants the booking table relies on (a slot never overlaps another one of its counter
unless their wall-clock times do, and its 5-minute units overlap exactly when slots do)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend.appointments.holidays import easter_sunday, french_public_holidays
from backend.appointments.slots import (
    PARIS,
    REASONS,
    Closure,
    OpeningRule,
    Policy,
    Slot,
    ants_appointment_date,
    ants_datetime,
    bookable_days,
    bookable_window,
    candidate_slots,
    duration_minutes,
    free_slots,
    units,
)

A = UUID("00000000-0000-4000-8000-00000000000a")
B = UUID("00000000-0000-4000-8000-00000000000b")
SINCE = date(2020, 1, 1)
WEEKDAYS = range(5)
MIQUELON = ZoneInfo("America/Miquelon")
MARTINIQUE = ZoneInfo("America/Martinique")
REUNION = ZoneInfo("Indian/Reunion")


def hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def weekly(
    counter: UUID,
    weekdays: Sequence[int],
    start: str,
    end: str,
    valid_from: date = SINCE,
    valid_to: date | None = None,
) -> list[OpeningRule]:
    return [
        OpeningRule(counter, weekday, hm(start), hm(end), valid_from, valid_to)
        for weekday in weekdays
    ]


def at(zone: ZoneInfo, y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=zone)


def walls(slots: Sequence[Slot], zone: ZoneInfo = PARIS) -> list[str]:
    """The slots' local starts as the agent reads them."""
    return [s.start.astimezone(zone).strftime("%Y-%m-%d %H:%M") for s in slots]


def day_of(slots: Sequence[Slot], day: date, zone: ZoneInfo = PARIS) -> list[Slot]:
    return [s for s in slots if s.start.astimezone(zone).date() == day]


# --- Public holidays ------------------------------------------------------------------------


def test_public_holidays_of_2026() -> None:
    assert french_public_holidays(2026) == {
        date(2026, 1, 1): "Jour de l'an",
        date(2026, 4, 6): "Lundi de Pâques",
        date(2026, 5, 1): "Fête du Travail",
        date(2026, 5, 8): "Victoire 1945",
        date(2026, 5, 14): "Ascension",
        date(2026, 5, 25): "Lundi de Pentecôte",
        date(2026, 7, 14): "Fête nationale",
        date(2026, 8, 15): "Assomption",
        date(2026, 11, 1): "Toussaint",
        date(2026, 11, 11): "Armistice 1918",
        date(2026, 12, 25): "Noël",
    }


def test_public_holidays_of_2027_move_with_easter() -> None:
    days = french_public_holidays(2027)
    assert len(days) == 11
    assert days[date(2027, 3, 29)] == "Lundi de Pâques"
    assert days[date(2027, 5, 6)] == "Ascension"
    assert days[date(2027, 5, 17)] == "Lundi de Pentecôte"
    assert list(days) == sorted(days)


def test_alsace_moselle_adds_good_friday_and_st_stephen() -> None:
    days = french_public_holidays(2026, alsace_moselle=True)
    assert len(days) == 13
    assert days[date(2026, 4, 3)] == "Vendredi saint"
    assert days[date(2026, 12, 26)] == "Saint-Étienne"
    assert date(2026, 4, 3) not in french_public_holidays(2026)


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (1943, date(1943, 4, 25)),  # latest possible
        (2024, date(2024, 3, 31)),
        (2025, date(2025, 4, 20)),
        (2026, date(2026, 4, 5)),
        (2027, date(2027, 3, 28)),
        (2038, date(2038, 4, 25)),
        (2285, date(2285, 3, 22)),  # earliest possible
    ],
)
def test_easter_sunday(year: int, easter: date) -> None:
    assert easter_sunday(year) == easter


# --- Durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "persons", "minutes"),
    [
        ("CNI", 1, 15),
        ("PASSPORT", 1, 30),  # 20, rounded up to the 15-minute step
        ("CNI-PASSPORT", 1, 30),  # 25
        ("CNI", 2, 30),  # 25
        ("CNI", 4, 45),
        ("PASSPORT", 3, 45),  # 40
        ("CNI-PASSPORT", 4, 60),  # 55
    ],
)
def test_duration_grows_with_persons_and_is_rounded_up_to_the_step(
    reason: str, persons: int, minutes: int
) -> None:
    assert duration_minutes(reason, persons, Policy()) == minutes


def test_duration_is_exact_with_a_five_minute_step() -> None:
    policy = Policy(step_minutes=5)
    assert duration_minutes("PASSPORT", 1, policy) == 20
    assert duration_minutes("CNI-PASSPORT", 2, policy) == 35


@pytest.mark.parametrize("reason", ["RETRAIT", "cni", "", "PASSEPORT"])
def test_unknown_reason_is_refused_in_french(reason: str) -> None:
    with pytest.raises(ValueError, match="Motif de rendez-vous inconnu") as refused:
        duration_minutes(reason, 1, Policy())
    # The service maps a message with "personne" to the persons field: not this one.
    assert "personne" not in str(refused.value)


@pytest.mark.parametrize("persons", [0, -1, 5, 40, True])
def test_persons_outside_one_to_max_are_refused_in_french(persons: int) -> None:
    with pytest.raises(ValueError, match="personne"):
        duration_minutes("CNI", persons, Policy())


def test_a_site_may_lower_the_group_size() -> None:
    assert duration_minutes("CNI", 2, Policy(max_persons=2)) == 30
    with pytest.raises(ValueError, match="de 1 à 2 personnes"):
        duration_minutes("CNI", 3, Policy(max_persons=2))
    with pytest.raises(ValueError, match="une seule personne"):
        duration_minutes("CNI", 2, Policy(max_persons=1))


def test_policy_is_read_only_and_checked() -> None:
    minutes = {"CNI": 10, "PASSPORT": 20, "CNI-PASSPORT": 30}
    policy = Policy(base_minutes=minutes)
    minutes["CNI"] = 99
    assert duration_minutes("CNI", 1, policy) == 15  # 10 rounded up; the caller's dict is copied
    assert hash(policy) == hash(Policy(base_minutes=minutes))  # hashable, usable as a cache key
    for bad in ({"step_minutes": 7}, {"step_minutes": 0}, {"base_minutes": {"CNI": 0}}):
        with pytest.raises(ValueError):
            Policy(**bad)  # type: ignore[arg-type]


def test_opening_rules_and_closures_are_checked() -> None:
    with pytest.raises(ValueError, match="pas de 5 minutes"):
        OpeningRule(A, 0, time(8, 47), time(12), SINCE)
    with pytest.raises(ValueError, match="fermeture"):
        OpeningRule(A, 0, time(12), time(9), SINCE)
    with pytest.raises(ValueError, match="jour de la semaine"):
        OpeningRule(A, 7, time(9), time(12), SINCE)
    with pytest.raises(ValueError, match="validité"):
        OpeningRule(A, 0, time(9), time(12), date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="fermeture"):
        Closure(date(2026, 2, 1), date(2026, 1, 1))


# --- A normal week --------------------------------------------------------------------------

JAN_MONDAY = date(2026, 1, 12)
JAN_SUNDAY = date(2026, 1, 18)


def test_a_normal_week_offers_every_quarter_hour_of_opening() -> None:
    rules = weekly(A, WEEKDAYS, "09:00", "12:00") + weekly(A, [1], "13:30", "17:00")
    slots = candidate_slots(rules, [], JAN_MONDAY, JAN_SUNDAY, 15, Policy())
    assert len(slots) == 5 * 12 + 14
    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert slots[0] == Slot(
        datetime(2026, 1, 12, 8, 0, tzinfo=UTC), datetime(2026, 1, 12, 8, 15, tzinfo=UTC), A
    )
    assert all(s.start.tzinfo is UTC and s.end.tzinfo is UTC for s in slots)
    tuesday = walls(day_of(slots, date(2026, 1, 13)))
    assert tuesday[:2] == ["2026-01-13 09:00", "2026-01-13 09:15"]
    assert tuesday[11:14] == ["2026-01-13 11:45", "2026-01-13 13:30", "2026-01-13 13:45"]
    assert tuesday[-1] == "2026-01-13 16:45"
    assert not day_of(slots, date(2026, 1, 17)) and not day_of(slots, JAN_SUNDAY)


def test_a_longer_appointment_must_end_by_closing_time() -> None:
    slots = candidate_slots(
        weekly(A, [0], "09:00", "12:00"), [], JAN_MONDAY, JAN_MONDAY, 45, Policy()
    )
    assert walls(slots)[-1] == "2026-01-12 11:15"
    assert slots[-1].end == at(PARIS, 2026, 1, 12, 12)
    assert len(slots) == 10  # 09:00 … 11:15, overlapping alternatives: booking one hides the others


def test_slots_start_on_the_step_grid_from_the_opening_time() -> None:
    slots = candidate_slots(
        weekly(A, [0], "09:10", "10:30"), [], JAN_MONDAY, JAN_MONDAY, 20, Policy(step_minutes=20)
    )
    assert [w[-5:] for w in walls(slots)] == ["09:10", "09:30", "09:50", "10:10"]


def test_two_rules_offering_the_same_time_give_one_slot() -> None:
    rules = weekly(A, [0], "09:00", "10:00") + weekly(A, [0], "09:30", "11:00")
    slots = candidate_slots(rules, [], JAN_MONDAY, JAN_MONDAY, 15, Policy())
    assert len(slots) == len(set(slots)) == 8  # 09:00 … 10:45


def test_rules_apply_only_between_their_validity_dates() -> None:
    rules = [
        *weekly(A, WEEKDAYS, "09:00", "10:00", date(2026, 1, 14), date(2026, 1, 15)),
        *weekly(A, WEEKDAYS, "14:00", "15:00", date(2026, 1, 16)),  # the new timetable
    ]
    slots = candidate_slots(rules, [], JAN_MONDAY, JAN_SUNDAY, 15, Policy())
    days = sorted({w[:10] for w in walls(slots)})
    assert days == ["2026-01-14", "2026-01-15", "2026-01-16"]
    assert walls(day_of(slots, date(2026, 1, 16)))[0] == "2026-01-16 14:00"
    assert walls(day_of(slots, date(2026, 1, 15)))[-1] == "2026-01-15 09:45"


def test_a_site_closure_closes_every_counter_and_a_counter_closure_only_its_own() -> None:
    rules = weekly(A, WEEKDAYS, "09:00", "10:00") + weekly(B, WEEKDAYS, "09:00", "10:00")
    closures = [
        Closure(date(2026, 1, 13), date(2026, 1, 13), None, "Inventaire"),
        Closure(date(2026, 1, 14), date(2026, 1, 15), B, "Agent en formation"),
        Closure(date(2025, 12, 1), date(2026, 1, 12), A, "Kit biométrique en panne"),
        Closure(date(2027, 1, 1), date(2027, 1, 31)),  # outside the range
    ]
    slots = candidate_slots(rules, closures, JAN_MONDAY, JAN_SUNDAY, 15, Policy())
    counters_by_day = {
        day: {s.counter_id for s in day_of(slots, date(2026, 1, day))} for day in range(12, 17)
    }
    assert counters_by_day == {12: {B}, 13: set(), 14: {A}, 15: {A}, 16: {A, B}}


def test_no_slot_on_a_public_holiday() -> None:
    rules = weekly(A, WEEKDAYS, "09:00", "10:00")
    slots = candidate_slots(rules, [], date(2026, 5, 11), date(2026, 5, 15), 15, Policy())
    assert sorted({w[:10] for w in walls(slots)}) == [
        "2026-05-11",
        "2026-05-12",
        "2026-05-13",
        "2026-05-15",  # Thursday 14 May 2026 is Ascension
    ]


def test_holidays_are_pluggable_for_alsace_moselle_and_overseas() -> None:
    rules = weekly(A, WEEKDAYS, "09:00", "10:00")
    good_friday = date(2026, 4, 3)
    assert candidate_slots(rules, [], good_friday, good_friday, 15, Policy())
    alsace = functools.partial(french_public_holidays, alsace_moselle=True)
    assert not candidate_slots(rules, [], good_friday, good_friday, 15, Policy(), holidays=alsace)
    ascension = date(2026, 5, 14)
    assert candidate_slots(rules, [], ascension, ascension, 15, Policy(), holidays=lambda _: {})


def test_an_overseas_site_counts_in_its_own_zone() -> None:
    rules = weekly(A, WEEKDAYS, "08:00", "09:00")
    # Martinique (UTC−4) and La Réunion (UTC+4) do not change their clocks in March.
    for zone, utc_hour in ((MARTINIQUE, 12), (REUNION, 4)):
        policy = Policy(timezone=zone)
        slots = candidate_slots(rules, [], date(2026, 3, 27), date(2026, 3, 30), 15, policy)
        firsts = [s for s in slots if s.start.astimezone(zone).time() == time(8)]
        assert [(s.start.day, s.start.hour) for s in firsts] == [(27, utc_hour), (30, utc_hour)]
        assert ants_datetime(firsts[1].start, zone) == "2026-03-30T08:00Z"


def test_an_empty_range_has_no_slot_and_a_duration_must_be_positive() -> None:
    rules = weekly(A, WEEKDAYS, "09:00", "10:00")
    assert candidate_slots(rules, [], JAN_SUNDAY, JAN_MONDAY, 15, Policy()) == []
    with pytest.raises(ValueError):
        candidate_slots(rules, [], JAN_MONDAY, JAN_SUNDAY, 0, Policy())


# --- Booking window and busy times ----------------------------------------------------------

EVERY_DAY = weekly(A, range(7), "09:00", "12:00")


def days_with_free_slots(now: datetime, policy: Policy, first: date, last: date) -> set[date]:
    candidates = candidate_slots(EVERY_DAY, [], first, last, 15, policy)
    return {
        s.start.astimezone(policy.timezone).date() for s in free_slots(candidates, {}, now, policy)
    }


def test_minimum_notice_hides_the_next_two_hours() -> None:
    now = at(PARIS, 2026, 1, 12, 7, 10)
    opens, _ = bookable_window(now, Policy())
    assert opens == at(PARIS, 2026, 1, 12, 9, 10)
    candidates = candidate_slots(EVERY_DAY, [], JAN_MONDAY, JAN_MONDAY, 15, Policy())
    assert walls(free_slots(candidates, {}, now, Policy()))[0] == "2026-01-12 09:15"
    on_time = free_slots(candidates, {}, at(PARIS, 2026, 1, 12, 7, 0), Policy())
    assert walls(on_time)[0] == "2026-01-12 09:00"  # exactly two hours ahead is allowed


@pytest.mark.parametrize("horizon", [60, 61])
def test_a_day_is_released_horizon_days_before_at_eight_local(horizon: int) -> None:
    policy = Policy(horizon_days=horizon)
    today = date(2026, 1, 12)
    target, after = today + timedelta(days=horizon), today + timedelta(days=horizon + 1)
    before_release = days_with_free_slots(at(PARIS, 2026, 1, 12, 7, 59), policy, target, after)
    at_release = days_with_free_slots(at(PARIS, 2026, 1, 12, 8, 0), policy, target, after)
    assert before_release == set()
    assert at_release == {target}  # the next day comes out tomorrow at 08:00


def test_bookable_days_clip_a_request_to_what_is_released() -> None:
    assert bookable_days(at(PARIS, 2026, 1, 12, 7, 10), Policy()) == (
        date(2026, 1, 12),
        date(2026, 3, 12),
    )
    assert bookable_days(at(PARIS, 2026, 1, 12, 22, 30), Policy()) == (
        date(2026, 1, 13),  # two hours' notice reaches tomorrow
        date(2026, 3, 13),
    )
    first, last = bookable_days(at(PARIS, 2026, 1, 12, 9), Policy(min_notice=timedelta(days=90)))
    assert first > last


def test_the_window_closes_at_local_midnight_across_the_clock_change() -> None:
    # Released on 1 March (winter) up to 30 April (summer): closes at 30 April 24:00 CEST.
    _, closes = bookable_window(at(PARIS, 2026, 3, 1, 8, 0), Policy())
    assert closes == datetime(2026, 4, 30, 22, 0, tzinfo=UTC)
    _, closes = bookable_window(at(PARIS, 2026, 3, 1, 7, 59), Policy())
    assert closes == datetime(2026, 4, 29, 22, 0, tzinfo=UTC)


def test_a_release_time_in_the_spring_gap_releases_when_the_gap_ends() -> None:
    policy = Policy(release_time=time(2, 30), horizon_days=1)
    _, closes = bookable_window(datetime(2026, 3, 29, 0, 59, tzinfo=UTC), policy)  # 01:59 CET
    assert closes.astimezone(PARIS).date() == date(2026, 3, 30)  # 30 March not released yet
    _, closes = bookable_window(datetime(2026, 3, 29, 1, 0, tzinfo=UTC), policy)  # 03:00 CEST
    assert closes.astimezone(PARIS).date() == date(2026, 3, 31)


def test_busy_time_removes_only_the_slots_it_overlaps_on_its_counter() -> None:
    rules = weekly(A, [0], "09:00", "11:00") + weekly(B, [0], "09:00", "11:00")
    now = at(PARIS, 2026, 1, 1, 9)
    busy = {
        A: [(at(PARIS, 2026, 1, 12, 9, 15), at(PARIS, 2026, 1, 12, 9, 45))],  # Paris time
        B: [(datetime(2026, 1, 12, 9, 30, tzinfo=UTC), datetime(2026, 1, 12, 9, 45, tzinfo=UTC))],
    }
    quarter = candidate_slots(rules, [], JAN_MONDAY, JAN_MONDAY, 15, Policy())
    free = free_slots(quarter, busy, now, Policy())
    assert [w[-5:] for w in walls([s for s in free if s.counter_id == A])] == [
        "09:00",  # ends at 09:15 when the busy time starts: half-open, no overlap
        "09:45",
        "10:00",
        "10:15",
        "10:30",
        "10:45",
    ]
    assert len([s for s in free if s.counter_id == B]) == 7  # only 10:30 Paris is taken
    half = candidate_slots(rules, [], JAN_MONDAY, JAN_MONDAY, 30, Policy())
    free = free_slots(half, busy, now, Policy())
    assert [w[-5:] for w in walls([s for s in free if s.counter_id == A])] == [
        "09:45",
        "10:00",
        "10:15",
        "10:30",
    ]


def test_free_slots_needs_aware_times() -> None:
    candidates = candidate_slots(EVERY_DAY, [], JAN_MONDAY, JAN_MONDAY, 15, Policy())
    with pytest.raises(ValueError):
        free_slots(candidates, {}, datetime(2026, 1, 1, 9), Policy())
    naive_busy = {A: [(datetime(2026, 1, 12, 9), datetime(2026, 1, 12, 10))]}
    with pytest.raises(ValueError):
        free_slots(candidates, naive_busy, at(PARIS, 2026, 1, 1), Policy())


# --- The clock changes: last Sunday of March and of October ---------------------------------

# A counter open 00:00–06:00 on Sundays (it exercises the gap and the repeated hour) and
# 09:00–12:00 the other days.
DST_RULES = weekly(A, [6], "00:00", "06:00") + weekly(A, range(6), "09:00", "12:00")


def nine_oclock(slots: Sequence[Slot], day: date) -> Slot:
    [slot] = [s for s in day_of(slots, day) if s.start.astimezone(PARIS).time() == time(9)]
    return slot


def assert_no_overlap(slots: Sequence[Slot]) -> None:
    starts = [s.start for s in slots]
    assert starts == sorted(set(starts))
    assert all(a.end <= b.start for a, b in itertools.pairwise(slots))


def test_spring_forward_week() -> None:
    slots = candidate_slots(DST_RULES, [], date(2026, 3, 23), date(2026, 4, 4), 15, Policy())
    friday, monday = nine_oclock(slots, date(2026, 3, 27)), nine_oclock(slots, date(2026, 3, 30))
    assert friday.start == datetime(2026, 3, 27, 8, 0, tzinfo=UTC)  # CET, UTC+1
    assert monday.start == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # CEST, UTC+2
    sunday = day_of(slots, date(2026, 3, 29))
    hours = [w[11:] for w in walls(sunday)]
    assert not [h for h in hours if h.startswith("02:")]  # 02:00–02:59 does not exist
    assert hours[7:9] == ["01:45", "03:00"]
    assert len(sunday) == 8 + 12
    assert [s.start.strftime("%H:%M") for s in sunday[7:9]] == ["00:45", "01:00"]  # UTC
    assert_no_overlap(slots)
    assert ants_datetime(friday.start) == "2026-03-27T09:00Z"
    assert ants_datetime(monday.start) == "2026-03-30T09:00Z"
    assert ants_datetime(sunday[8].start) == "2026-03-29T03:00Z"
    assert ants_appointment_date(friday.start) == "2026-03-27 09:00:00"
    assert ants_appointment_date(monday.start) == "2026-03-30 09:00:00"


def test_a_slot_running_into_the_spring_gap_is_not_offered() -> None:
    sunday = date(2026, 3, 29)
    slots = candidate_slots(DST_RULES, [], sunday, sunday, 30, Policy())
    hours = [w[11:] for w in walls(slots)]
    # 01:45–02:15 would last 30 minutes but end at 03:15, over the 03:00 slot.
    assert "01:30" in hours and "01:45" not in hours and "03:00" in hours
    assert all(s.end - s.start == timedelta(minutes=30) for s in slots)
    before, after = slots[hours.index("01:30")], slots[hours.index("03:00")]
    assert before.end == after.start == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_fall_back_week() -> None:
    slots = candidate_slots(DST_RULES, [], date(2026, 10, 19), date(2026, 10, 31), 15, Policy())
    friday, monday = nine_oclock(slots, date(2026, 10, 23)), nine_oclock(slots, date(2026, 10, 26))
    assert friday.start == datetime(2026, 10, 23, 7, 0, tzinfo=UTC)  # CEST
    assert monday.start == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # CET
    sunday = day_of(slots, date(2026, 10, 25))
    hours = [w[11:] for w in walls(sunday)]
    assert len(sunday) == len(set(hours)) == 24  # 02:00–02:45 offered once, not twice
    repeated = [s for s in sunday if s.start.astimezone(PARIS).hour == 2]
    assert [s.start.strftime("%H:%M") for s in repeated] == ["00:00", "00:15", "00:30", "00:45"]
    assert [s.start.astimezone(PARIS).fold for s in repeated] == [0, 0, 0, 0]  # first occurrence
    assert sunday[12].start == datetime(2026, 10, 25, 2, 0, tzinfo=UTC)  # 03:00 CET
    assert_no_overlap(slots)
    assert ants_datetime(friday.start) == "2026-10-23T09:00Z"
    assert ants_datetime(monday.start) == "2026-10-26T09:00Z"
    assert ants_datetime(repeated[0].start) == "2026-10-25T02:00Z"
    assert ants_appointment_date(monday.start) == "2026-10-26 09:00:00"


def test_fall_back_with_longer_appointments_never_overlaps() -> None:
    sunday = date(2026, 10, 25)
    policy = Policy(step_minutes=30)
    slots = candidate_slots(DST_RULES, [], sunday, sunday, 30, policy)
    assert len(slots) == 12
    assert_no_overlap(slots)
    # 02:30 (first occurrence) lasts 30 real minutes and ends at 02:00, second occurrence.
    last_repeated = slots[5]
    assert walls([last_repeated])[0] == "2026-10-25 02:30"
    assert last_repeated.end.astimezone(PARIS).strftime("%H:%M %Z") == "02:00 CET"


def test_ants_times_are_paris_wall_clock_with_a_z() -> None:
    assert ants_datetime(datetime(2026, 12, 19, 9, 0, tzinfo=UTC)) == "2026-12-19T10:00Z"
    assert ants_datetime(datetime(2026, 6, 19, 8, 0, tzinfo=UTC)) == "2026-06-19T10:00Z"
    assert ants_appointment_date(datetime(2026, 6, 19, 8, 0, tzinfo=UTC)) == "2026-06-19 10:00:00"
    with pytest.raises(ValueError):
        ants_datetime(datetime(2026, 6, 19, 10, 0))
    with pytest.raises(ValueError):
        ants_appointment_date(datetime(2026, 6, 19, 10, 0))


# --- Units of the booking table -------------------------------------------------------------


def test_units_are_the_five_minute_steps_a_slot_covers() -> None:
    slot = Slot(at(PARIS, 2026, 6, 19, 10), at(PARIS, 2026, 6, 19, 10, 30), A)
    assert units(slot) == [datetime(2026, 6, 19, 8, m, tzinfo=UTC) for m in range(0, 30, 5)]
    assert all(u.tzinfo is UTC for u in units(slot))
    off_grid = Slot(
        datetime(2026, 6, 19, 9, 2, tzinfo=UTC), datetime(2026, 6, 19, 9, 13, tzinfo=UTC), A
    )
    assert [u.minute for u in units(off_grid)] == [0, 5, 10]  # every unit it touches
    assert [u.minute for u in units(slot, 15)] == [0, 15]


def test_a_slot_keeps_real_time_whatever_zone_it_is_built_in() -> None:
    # Same zone, same wall clock: Python would call these equal; they are an hour apart.
    first = datetime(2026, 10, 25, 2, 0, tzinfo=PARIS)
    second = datetime(2026, 10, 25, 2, 0, fold=1, tzinfo=PARIS)
    slot = Slot(first, second, A)
    assert slot.start == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    assert slot.end == datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    assert slot.start.tzinfo is UTC and slot.end.tzinfo is UTC
    assert len(units(slot)) == 12
    with pytest.raises(ValueError):
        Slot(second, first, A)
    with pytest.raises(ValueError):
        Slot(datetime(2026, 1, 12, 9), datetime(2026, 1, 12, 10), A)


def test_back_to_back_slots_share_no_unit_and_overlapping_ones_do() -> None:
    slots = candidate_slots(
        weekly(A, [0], "09:00", "10:00"), [], JAN_MONDAY, JAN_MONDAY, 30, Policy()
    )
    at_9, at_915, at_930 = slots[0], slots[1], slots[2]
    assert not set(units(at_9)) & set(units(at_930))
    assert set(units(at_9)) & set(units(at_915))


# --- Properties -----------------------------------------------------------------------------

COUNTERS = (A, B)
ZONES = (PARIS, PARIS, PARIS, MIQUELON, REUNION)
CLOCK_CHANGES = {
    "Europe/Paris": [date(2026, 3, 29), date(2026, 10, 25), date(2027, 3, 28), date(2027, 10, 31)],
    "America/Miquelon": [date(2026, 3, 8), date(2026, 11, 1), date(2027, 3, 14), date(2027, 11, 7)],
}
PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
UNIT = timedelta(minutes=5)


def minutes_of(value: time) -> int:
    return value.hour * 60 + value.minute


# Strategies built once: hypothesis spends more on building strategies than on drawing.
ANYWHERE = st.dates(date(2026, 1, 1), date(2027, 12, 31))
ANCHORS = {  # two times in three, the range holds a clock change
    key: st.sampled_from(days) | st.sampled_from(days) | ANYWHERE
    for key, days in CLOCK_CHANGES.items()
}
DAYS_BEFORE, DAYS_LONG = st.integers(0, 7), st.integers(0, 14)
RULE_COUNT, CLOSURE_COUNT = st.integers(1, 5), st.integers(0, 3)
# Openings start anywhere, or often at night: on a Sunday they cross the clock changes.
START_UNIT = st.integers(0, 286) | st.integers(0, 40)
OPEN_UNITS = st.integers(1, 120)
VALID_FROM, VALID_DAYS = st.integers(-20, 0) | st.integers(-20, 5), st.none() | st.integers(0, 20)
WEEKDAY = st.none() | st.integers(0, 6)  # None: the anchor's weekday
COUNTER, SITE_OR_COUNTER = st.sampled_from(COUNTERS), st.none() | st.sampled_from(COUNTERS)
CLOSURE_FROM, CLOSURE_DAYS = st.integers(-3, 14), st.integers(0, 4)
STEP = st.sampled_from([5, 10, 15, 20, 30, 45, 60])
REASON, PERSONS = st.sampled_from(REASONS), st.integers(1, 4)


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[list[OpeningRule], list[Closure], date, date, int, Policy]:
    """Random rules and closures over a range that often holds a clock change."""
    zone = draw(st.sampled_from(ZONES))
    anchor = draw(ANCHORS.get(zone.key, ANYWHERE))
    first_day = anchor - timedelta(days=draw(DAYS_BEFORE))
    last_day = first_day + timedelta(days=draw(DAYS_LONG))
    rules = []
    for _ in range(draw(RULE_COUNT)):
        start_unit = draw(START_UNIT)
        end_unit = min(287, start_unit + draw(OPEN_UNITS))
        valid_from = anchor + timedelta(days=draw(VALID_FROM))
        valid_days = draw(VALID_DAYS)
        weekday = draw(WEEKDAY)
        rules.append(
            OpeningRule(
                counter_id=draw(COUNTER),
                weekday=anchor.weekday() if weekday is None else weekday,
                start=time(start_unit // 12, start_unit % 12 * 5),
                end=time(end_unit // 12, end_unit % 12 * 5),
                valid_from=valid_from,
                valid_to=None if valid_days is None else valid_from + timedelta(days=valid_days),
            )
        )
    closures = []
    for _ in range(draw(CLOSURE_COUNT)):
        start = first_day + timedelta(days=draw(CLOSURE_FROM))
        end = start + timedelta(days=draw(CLOSURE_DAYS))
        closures.append(Closure(start, end, draw(SITE_OR_COUNTER)))
    policy = Policy(step_minutes=draw(STEP), timezone=zone)
    duration = duration_minutes(draw(REASON), draw(PERSONS), policy)
    return rules, closures, first_day, last_day, duration, policy


@functools.cache
def first_instant(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """Independent reference: the earliest instant showing ``wall`` on the clock, None if none."""
    instants = [wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1)]
    shown = [i for i in instants if i.astimezone(zone).replace(tzinfo=None) == wall]
    return min(shown) if shown else None


def closed(day: date, counter: UUID, closures: Sequence[Closure]) -> bool:
    return any(c.start <= day <= c.end and c.counter_id in (None, counter) for c in closures)


def reference_slots(
    rules: Sequence[OpeningRule],
    closures: Sequence[Closure],
    first_day: date,
    last_day: date,
    duration: int,
    policy: Policy,
) -> set[Slot]:
    """Brute force through zoneinfo: a slot is kept when every 5 minutes it covers exist."""
    zone, out = policy.timezone, set()
    day = first_day
    while day <= last_day:
        for rule in rules:
            if (
                rule.weekday != day.weekday()
                or not rule.valid_on(day)
                or day in french_public_holidays(day.year)
                or closed(day, rule.counter_id, closures)
            ):
                continue
            for minute in range(
                minutes_of(rule.start), minutes_of(rule.end) - duration + 1, policy.step_minutes
            ):
                wall = datetime.combine(day, time(0)) + timedelta(minutes=minute)
                covered = [first_instant(wall + UNIT * k, zone) for k in range(duration // 5)]
                start = covered[0]
                if start is not None and None not in covered:
                    out.add(Slot(start, start + timedelta(minutes=duration), rule.counter_id))
        day += timedelta(days=1)
    return out


@PROPERTY_SETTINGS
@given(scenarios())
def test_slots_respect_rules_time_zones_holidays_and_closures(
    scenario: tuple[list[OpeningRule], list[Closure], date, date, int, Policy],
) -> None:
    rules, closures, first_day, last_day, duration, policy = scenario
    zone, step, length = policy.timezone, policy.step_minutes, timedelta(minutes=duration)
    slots = candidate_slots(rules, closures, first_day, last_day, duration, policy)

    assert slots == sorted(slots) and len(set(slots)) == len(slots)
    assert set(slots) == reference_slots(rules, closures, first_day, last_day, duration, policy)
    for slot in slots:
        local = slot.start.astimezone(zone)
        day, wall = local.date(), local.replace(tzinfo=None)
        # (2) real duration; aware UTC
        assert slot.end - slot.start == length
        assert slot.start.tzinfo is UTC and slot.end.tzinfo is UTC
        # (5) the wall-clock start exists, and the slot takes its first occurrence
        assert first_instant(wall, zone) == slot.start
        # (4) not on a holiday nor a closure
        assert first_day <= day <= last_day
        assert day not in french_public_holidays(day.year)
        assert not closed(day, slot.counter_id, closures)
        # (1) inside a rule of that counter, day and weekday, (5) on its step grid
        last_minute = (slot.end - timedelta(minutes=1)).astimezone(zone)
        assert last_minute.date() == day
        assert any(
            rule.counter_id == slot.counter_id
            and rule.weekday == day.weekday()
            and rule.valid_on(day)
            and rule.start <= wall.time()
            and wall + length <= datetime.combine(day, rule.end)
            and last_minute.time() < rule.end
            and (minutes_of(wall.time()) - minutes_of(rule.start)) % step == 0
            for rule in rules
        )

    # (3) a counter's slots overlap in real time only where their wall-clock times overlap
    # (so never when duration <= step and one rule per counter and day): no DST double booking.
    one_rule_a_day = all(
        sum(r.counter_id == c and r.weekday == w for r in rules) <= 1
        for c in COUNTERS
        for w in range(7)
    )
    for counter in COUNTERS:
        own = [s for s in slots if s.counter_id == counter]
        for i, first in enumerate(own):
            first_wall = first.start.astimezone(zone).replace(tzinfo=None)
            for second in own[i + 1 :]:
                if second.start >= first.end:
                    break
                second_wall = second.start.astimezone(zone).replace(tzinfo=None)
                assert first_wall < second_wall + length and second_wall < first_wall + length
                assert not (duration <= step and one_rule_a_day)

    # (6) units intersect exactly when slots overlap (neighbours, any counter)
    unit_sets = [set(units(s)) for s in slots]
    for i, slot in enumerate(slots):
        for j in range(i + 1, min(i + 8, len(slots))):
            other = slots[j]
            overlap = slot.start < other.end and other.start < slot.end
            assert overlap == bool(unit_sets[i] & unit_sets[j])


grid_instants = st.integers(0, 2000).map(
    lambda k: datetime(2026, 10, 24, 20, tzinfo=UTC) + UNIT * k
)


@PROPERTY_SETTINGS
@given(
    grid_instants,
    st.integers(1, 24),
    grid_instants,
    st.integers(1, 24),
    st.sampled_from([UTC, PARIS, REUNION, MARTINIQUE]),
)
def test_units_intersect_exactly_when_slots_overlap(
    start_a: datetime, units_a: int, start_b: datetime, units_b: int, zone: ZoneInfo
) -> None:
    # Any zone's clock: the units are read in UTC.
    a = Slot(start_a.astimezone(zone), (start_a + UNIT * units_a).astimezone(zone), A)
    b = Slot(start_b.astimezone(zone), start_b + UNIT * units_b, A)
    overlap = a.start < b.end and b.start < a.end
    assert overlap == bool(set(units(a)) & set(units(b)))
    assert len(units(a)) == units_a


@PROPERTY_SETTINGS
@given(
    st.integers(0, 10**6),
    st.integers(1, 10**5),
    st.integers(0, 10**6),
    st.integers(1, 10**5),
)
def test_units_of_off_grid_slots_still_catch_every_overlap(
    start_a: int, length_a: int, start_b: int, length_b: int
) -> None:
    origin = datetime(2026, 3, 29, tzinfo=UTC)
    a = Slot(origin + timedelta(seconds=start_a), origin + timedelta(seconds=start_a + length_a), A)
    b = Slot(origin + timedelta(seconds=start_b), origin + timedelta(seconds=start_b + length_b), A)
    if a.start < b.end and b.start < a.end:
        assert set(units(a)) & set(units(b))


BUSY = st.dictionaries(
    COUNTER, st.lists(st.tuples(st.integers(-288, 16 * 288), st.integers(1, 36)), max_size=6)
)
NOW_MINUTES = st.integers(-3 * 24 * 60, 10 * 24 * 60)


@PROPERTY_SETTINGS
@given(scenarios(), st.data())
def test_free_slots_are_the_candidates_in_the_window_clear_of_busy_times(
    scenario: tuple[list[OpeningRule], list[Closure], date, date, int, Policy],
    data: st.DataObject,
) -> None:
    rules, closures, first_day, last_day, duration, policy = scenario
    candidates = candidate_slots(rules, closures, first_day, last_day, duration, policy)
    origin = datetime.combine(first_day, time(0), tzinfo=UTC)
    busy = {
        counter: [(origin + UNIT * at, origin + UNIT * (at + units)) for at, units in spans]
        for counter, spans in data.draw(BUSY).items()
    }
    now = origin + timedelta(minutes=data.draw(NOW_MINUTES))
    opens, closes = bookable_window(now, policy)
    free = free_slots(candidates, busy, now, policy)

    def clear(slot: Slot) -> bool:
        return all(not (b < slot.end and slot.start < e) for b, e in busy.get(slot.counter_id, []))

    assert free == [s for s in candidates if opens <= s.start < closes and clear(s)]
