"""From the tables to free slots: a site's policy, rules, closures and bookings, per day range."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

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
    """Everything needed to compute a site's slots over a range, loaded in a few queries."""

    site: dict[str, Any]
    rules: list[slots.OpeningRule]
    closures: list[slots.Closure]
    busy: dict[UUID, list[tuple[datetime, datetime]]]


async def load_schedules(
    sites: list[dict[str, Any]], first_day: date, last_day: date, now: datetime
) -> list[SiteSchedule]:
    """Rules, closures and busy times of several sites (one query per table, not per site)."""
    if not sites:
        return []
    site_ids = [s["id"] for s in sites]
    counters = await Counter.select(Counter.id, Counter.site).where(
        Counter.site.is_in(site_ids) & (Counter.active == True)  # noqa: E712
    )
    site_of = {c["id"]: c["site"] for c in counters}
    rules: dict[Any, list[slots.OpeningRule]] = defaultdict(list)
    if site_of:
        for r in await OpeningRule.select().where(OpeningRule.counter.is_in(list(site_of))):
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
    for c in await Closure.select().where(
        Closure.site.is_in(site_ids)
        & (Closure.end_date >= first_day)
        & (Closure.start_date <= last_day)
    ):
        closures[c["site"]].append(
            slots.Closure(c["start_date"], c["end_date"], c["counter"], c["reason"])
        )
    busy: dict[Any, dict[UUID, list[tuple[datetime, datetime]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    start = datetime.combine(first_day - timedelta(days=1), time(0)).replace(tzinfo=now.tzinfo)
    end = datetime.combine(last_day + timedelta(days=2), time(0)).replace(tzinfo=now.tzinfo)
    rows = await Booking.select(
        Booking.site,
        Booking.counter,
        Booking.starts_at,
        Booking.ends_at,
        Booking.status,
        Booking.hold_expires_at,
    ).where(
        Booking.site.is_in(site_ids)
        & Booking.status.is_in(list(ACTIVE))
        & (Booking.starts_at < end)
        & (Booking.ends_at > start)
    )
    for b in rows:
        if (
            b["status"] == "held"
            and b["hold_expires_at"] is not None
            and b["hold_expires_at"] <= now
        ):
            continue  # an expired hold frees its slot by itself
        busy[b["site"]][b["counter"]].append((b["starts_at"], b["ends_at"]))
    return [
        SiteSchedule(site, rules[site["id"]], closures[site["id"]], dict(busy[site["id"]]))
        for site in sites
    ]


def free_slots(
    schedule: SiteSchedule,
    reason: str,
    persons: int,
    first_day: date,
    last_day: date,
    now: datetime,
) -> list[slots.Slot]:
    """Free slots of one site for this reason and party size, inside the bookable window."""
    policy = policy_of(schedule.site)
    minutes = duration(schedule.site, reason, persons)
    candidates = slots.candidate_slots(
        schedule.rules, schedule.closures, first_day, last_day, minutes, policy
    )
    return slots.free_slots(candidates, schedule.busy, now, policy)
