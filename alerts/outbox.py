"""`notify(...)`: the one way every domain reaches phones.

It writes a message and one delivery row per device in the caller's transaction (the outbox):
if the caller's transaction rolls back, nothing is sent; once it commits, the worker delivers,
even across crashes. Every delivery row is also the device's in-app inbox entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from alerts.tables import Delivery, Device, Message
from alerts.targeting import (
    DeviceSelection,
    Recipient,
    device_recipient,
    recipients_of_selection,
)
from backend.database import bulk_insert, current_engine, is_postgres, transaction

PARIS = ZoneInfo("Europe/Paris")
_LANGUAGE = re.compile(r"[a-z]{2,3}")

# Levels of urgency, from the resident's point of view. The two top ones ignore quiet hours and
# the daily cap, go first, and ring with high priority.
LEVELS = ("information", "avertissement", "danger", "urgence_extreme")
URGENT = frozenset({"danger", "urgence_extreme"})
PRIORITY = {"urgence_extreme": 0, "danger": 1, "avertissement": 3, "information": 5}
URGENCY = {"urgence_extreme": "high", "danger": "high", "avertissement": "normal"}


@dataclass(frozen=True)
class Notification:
    """What to say, once, whoever receives it."""

    kind: str
    subject: str
    title: str
    body: str
    level: str = "information"
    data: dict[str, str] = field(default_factory=dict)
    collapse_key: str | None = None
    ttl_seconds: int = 24 * 3600
    expires_at: datetime | None = None
    # About the resident's own business (their demande, their appointment): never held back by
    # the daily cap meant for broadcasts, though quiet hours still apply below urgent levels.
    personal: bool = False


@dataclass(frozen=True)
class NotifyResult:
    """What notify() wrote."""

    message_id: int
    targeted: int
    pushes: int
    deferred: int
    capped: int


def _parse_hhmm(value: str | None) -> time | None:
    if not value:
        return None
    hours, _, minutes = value.partition(":")
    return time(int(hours), int(minutes))


def quiet_until(now: datetime, start: str | None, end: str | None) -> datetime | None:
    """When the device's quiet hours end, if `now` falls inside them (Europe/Paris wall clock)."""
    begin, finish = _parse_hhmm(start), _parse_hhmm(end)
    if begin is None or finish is None or begin == finish:
        return None
    local = now.astimezone(PARIS)
    clock = local.time()
    inside = begin <= clock < finish if begin < finish else (clock >= begin or clock < finish)
    if not inside:
        return None
    day = local.date() if clock < finish else local.date() + timedelta(days=1)
    # Built from the wall clock, so a quiet night across a DST change still ends at 07:00.
    return datetime.combine(day, finish, tzinfo=PARIS).astimezone(UTC)


def start_of_day(now: datetime) -> datetime:
    """Midnight of `now`'s civil day in Europe/Paris, as UTC."""
    local = now.astimezone(PARIS)
    return datetime.combine(local.date(), time(0), tzinfo=PARIS).astimezone(UTC)


async def _pushes_today(device_ids: list[UUID], now: datetime) -> dict[UUID, int]:
    """Pushes counted toward the daily cap since midnight (Paris), per device: one query, the
    ids as one array parameter (500-id chunks cost a round trip and a plan each: 200 for 100k)."""
    if not device_ids:
        return {}
    ids: object = device_ids
    match = "= ANY({}::uuid[])"
    if not is_postgres():
        ids = json.dumps([str(d) for d in device_ids])
        match = "IN (SELECT value FROM json_each({}))"
    rows = await Delivery.raw(
        "SELECT device, COUNT(*) AS n FROM delivery WHERE counts_toward_cap = {} "
        f"AND created_at >= {{}} AND device {match} GROUP BY device",
        True,
        start_of_day(now),
        ids,
    )
    return {r["device"]: r["n"] for r in rows}


async def notify(
    notification: Notification,
    recipients: Iterable[Recipient],
    *,
    daily_cap: int = 3,
    now: datetime | None = None,
) -> NotifyResult:
    """Write the message and its deliveries in the current transaction (joins the caller's).

    Urgent levels (danger, urgence extrême) are pushed at once to everyone. Lower levels wait
    for the end of a device's quiet hours, and past `daily_cap` pushes in the civil day a
    device gets the message in its inbox only (overuse erodes trust).
    """
    now = now or datetime.now(UTC)
    # Each device once, in device order: the rows' foreign-key checks and device indexes then
    # walk their B-trees in order (on SQLite a 100k fan-out's insert takes 2.5x less CPU so).
    by_device = {r.device_id.int: r for r in recipients}
    unique = [by_device[key] for key in sorted(by_device)]
    urgent = notification.level in URGENT
    priority = PRIORITY.get(notification.level, 5)
    capped_kind = not urgent and not notification.personal
    counts = await _pushes_today([r.device_id for r in unique], now) if capped_kind else {}
    rows: list[tuple[Any, ...]] = []
    pushes = deferred = capped = 0
    async with transaction():
        message_id = await _save_message(notification, now)
        for r in unique:
            transport, status, due, counted = r.push_kind or "none", "pending", now, False
            if r.push_kind is None:
                status = "inbox"
            elif not urgent:
                if capped_kind and counts.get(r.device_id, 0) >= daily_cap:
                    transport, status = "none", "capped"
                    capped += 1
                else:
                    counted = capped_kind
                    if r.quiet_start and (later := quiet_until(now, r.quiet_start, r.quiet_end)):
                        due = later
                        deferred += 1
            if status == "pending":
                pushes += 1
            rows.append(
                (message_id, r.device_id, transport, status, priority, 0, due, "", now, counted)
            )
        await bulk_insert(
            Delivery,
            [
                "message",
                "device",
                "transport",
                "status",
                "priority",
                "attempts",
                "next_attempt_at",
                "last_error",
                "created_at",
                "counts_toward_cap",
            ],
            rows,
        )
    return NotifyResult(message_id, len(unique), pushes, deferred, capped)


def language_of(locale: str, available: Iterable[str]) -> str:
    """The language a device reads among `available`: its locale's base, else French."""
    base = locale.split("-")[0].lower()
    return base if base in available else "fr"


async def notify_in_languages(
    by_language: Mapping[str, Notification],
    recipients: Iterable[Recipient],
    *,
    daily_cap: int = 3,
    now: datetime | None = None,
) -> list[NotifyResult]:
    """`notify` each recipient in its language (`by_language`, French the default): one
    message per language that has readers, results in `by_language` order."""
    groups: dict[str, list[Recipient]] = {lang: [] for lang in by_language}
    for r in recipients:
        groups[language_of(r.locale, by_language)].append(r)
    return [
        await notify(by_language[lang], members, daily_cap=daily_cap, now=now)
        for lang, members in groups.items()
        if members
    ]


async def notify_selection(
    by_language: Mapping[str, Notification],
    selection: DeviceSelection,
    *,
    daily_cap: int = 3,
    now: datetime | None = None,
) -> list[NotifyResult]:
    """`notify` each device of `selection` once, in its language (`by_language`, French the
    default), one message per language that has readers; results in `by_language` order.

    Urgent levels (same for every language) are written by one INSERT … SELECT in the
    database: each device takes the push at once, whatever its quiet hours and cap, so no
    per-device decision needs Python. Lower levels read the recipients and go through
    `notify`'s per-device rules (quiet hours, daily cap).
    """
    now = now or datetime.now(UTC)
    levels = {n.level for n in by_language.values()}
    if "fr" not in by_language:
        raise ValueError("by_language needs the French (default) notification")
    if not levels <= URGENT:
        recipients = await recipients_of_selection(selection)
        return await notify_in_languages(by_language, recipients, daily_cap=daily_cap, now=now)
    async with transaction():
        messages = {lang: await _save_message(n, now) for lang, n in by_language.items()}
        counts = await _insert_urgent(messages, by_language, selection, now)
        empty = [m for lang, m in messages.items() if not counts.get(m)]
        if empty:  # languages nobody reads: no message, as with notify()
            await Message.delete().where(Message.id.is_in(empty))
    results = []
    for message_id in messages.values():
        per_status = counts.get(message_id)
        if per_status:
            pushes = per_status.get("pending", 0)
            results.append(NotifyResult(message_id, sum(per_status.values()), pushes, 0, 0))
    return results


async def _save_message(notification: Notification, now: datetime) -> int:
    message = Message(
        kind=notification.kind,
        subject=notification.subject,
        title=notification.title,
        body=notification.body,
        data=notification.data,
        urgency=URGENCY.get(notification.level, "normal"),
        level=notification.level,
        collapse_key=notification.collapse_key,
        ttl_seconds=notification.ttl_seconds,
        created_at=now,
        expires_at=notification.expires_at,
    )
    await message.save()
    return int(message.id)


async def _insert_urgent(
    messages: Mapping[str, int],
    by_language: Mapping[str, Notification],
    selection: DeviceSelection,
    now: datetime,
) -> dict[int, dict[str, int]]:
    """One delivery per selected device, pushed at once (or inbox only without a credential),
    in device order; returns row counts per message and status."""
    engine = current_engine()
    tx = engine.current_transaction.get()
    assert tx is not None  # (inside transaction())
    postgres = is_postgres(engine)
    priority = min(PRIORITY.get(n.level, 5) for n in by_language.values())
    others = [lang for lang in messages if lang != "fr"]
    other_ids = [messages[lang] for lang in others]
    if postgres:
        # $1 French message, $2 priority, $3 now, then the other languages' messages.
        base = "lower(split_part(d.locale, '-', 1))"
        cases = [f"WHEN '{lang}' THEN ${4 + i}::bigint" for i, lang in enumerate(others)]
        default, prio, when = "$1::bigint", "$2::smallint", "$3::timestamptz"
        sub, sub_args = selection.subquery(True, 4 + len(others))
        args: list[Any] = [messages["fr"], priority, now, *other_ids, *sub_args]
    else:
        base = (
            "lower(CASE WHEN instr(d.locale, '-') > 0 "
            "THEN substr(d.locale, 1, instr(d.locale, '-') - 1) ELSE d.locale END)"
        )
        cases = [f"WHEN '{lang}' THEN ?" for lang in others]
        default, prio, when = "?", "?", "?"
        sub, sub_args = selection.subquery(False)
        args = [*other_ids, messages["fr"], priority, now, now, *sub_args]
    if not all(_LANGUAGE.fullmatch(lang) for lang in others):  # written into the SQL below
        raise ValueError(f"language codes must be 2-3 lowercase letters: {others}")
    message = f"CASE {base} {' '.join(cases)} ELSE {default} END" if others else default
    sql = (
        "INSERT INTO delivery (message, device, transport, status, priority, attempts, "
        "next_attempt_at, last_error, created_at, counts_toward_cap) "
        f"SELECT {message}, d.id, COALESCE(d.push_kind, 'none'), "
        "CASE WHEN d.push_kind IS NULL THEN 'inbox' ELSE 'pending' END, "
        f"{prio}, 0, {when}, '', {when}, FALSE "
        f"FROM ({sub}) AS t JOIN device d ON d.id = t.device ORDER BY d.id"
    )
    ids = list(messages.values())
    if postgres:
        # The planner cannot size the ranges' join (it guesses millions of rows) and would
        # merge-join the whole device table; one index lookup per selected device is right.
        # For this statement only: the caller's transaction gets its settings back.
        settings = {
            "enable_mergejoin": "off",
            "enable_hashjoin": "off",
            "work_mem": "64MB",  # de-duplicating 100k ids in memory
            "jit": "off",
        }
        previous = await tx.connection.fetchrow(
            "SELECT " + ", ".join(f"current_setting('{name}')" for name in settings)
        )
        await _set_local(tx.connection, settings)
        await tx.connection.execute(sql, *args)
        await _set_local(tx.connection, dict(zip(settings, previous, strict=True)))
        rows = await tx.connection.fetch(
            "SELECT message, status, COUNT(*) FROM delivery WHERE message = ANY($1::bigint[]) "
            "GROUP BY message, status",
            ids,
        )
    else:
        await tx.connection.execute(sql, args)
        marks = ", ".join("?" for _ in ids)
        async with tx.connection.execute(
            "SELECT message, status, COUNT(*) AS n FROM delivery "
            f"WHERE message IN ({marks}) GROUP BY message, status",
            ids,
        ) as cursor:  # (Piccolo's row factory: dicts)
            rows = [(r["message"], r["status"], r["n"]) for r in await cursor.fetchall()]
    counts: dict[int, dict[str, int]] = {}
    for message_id, status, n in rows:
        counts.setdefault(message_id, {})[status] = n
    return counts


async def _set_local(connection: Any, settings: Mapping[str, str]) -> None:
    """Set PostgreSQL settings for the rest of the transaction, in one round trip."""
    names = list(settings)
    await connection.execute(
        "SELECT "
        + ", ".join(f"set_config(${2 * i + 1}, ${2 * i + 2}, true)" for i in range(len(names))),
        *[v for name in names for v in (name, settings[name])],
    )


async def recipients_of_accounts(account_ids: Iterable[UUID]) -> list[Recipient]:
    """Every device of these accounts (a resident may have a phone and a tablet)."""
    ids = list(dict.fromkeys(account_ids))
    if not ids:
        return []
    rows = await Device.select(
        Device.id, Device.push_kind, Device.quiet_start, Device.quiet_end, Device.locale
    ).where(Device.account.is_in(ids))
    return [device_recipient(r) for r in rows]
