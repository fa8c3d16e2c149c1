"""The delivery worker: claim due outbox rows, push them, record each outcome.

- Claims are exclusive: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers share the
  outbox without sending a row twice; a claimed row carries a lease, so the rows of a worker
  that died are taken over once the lease runs out (nothing lost).
- Retries back off exponentially with jitter; a 429 pauses the whole transport for its
  Retry-After; a credential is deleted only when the push service says it is gone.
- Urgent messages go first (priority), quiet hours and caps were applied when writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from alerts.tables import Delivery, Device, Message
from alerts.transports import (
    FcmTarget,
    Outcome,
    PushMessage,
    SendResult,
    Target,
    Transport,
    Urgency,
    WebPushTarget,
)
from backend.database import is_postgres, transaction

log = logging.getLogger("relais.delivery")

BACKOFF_BASE = 5.0
BACKOFF_CAP = 3600.0


def backoff_seconds(
    attempts: int, base: float = BACKOFF_BASE, rng: random.Random | None = None
) -> float:
    """Exponential backoff with jitter: about 5 s, 10 s, 20 s … capped at an hour."""
    ceiling = min(BACKOFF_CAP, base * 2 ** max(0, attempts - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Claimed:
    """One claimed delivery."""

    id: int
    message: int
    device: UUID
    transport: str
    attempts: int


class DeliveryWorker:
    """Sends the outbox through the configured transports (by name: "fcm", "webpush")."""

    def __init__(
        self,
        transports: Mapping[str, Transport],
        *,
        batch_size: int = 500,
        max_attempts: int = 8,
        lease_seconds: float = 120.0,
        backoff_base: float = BACKOFF_BASE,
    ) -> None:
        self.transports = dict(transports)
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        self.backoff_base = backoff_base
        self.paused_until: dict[str, float] = {}
        self._messages: dict[int, dict[str, Any]] = {}

    def _available(self) -> list[str]:
        now = time.monotonic()
        return [n for n in self.transports if self.paused_until.get(n, 0.0) <= now]

    async def claim(self, now: datetime) -> list[Claimed]:
        """Take up to batch_size due rows (pending, or sending with an expired lease)."""
        names = self._available()
        if not names:
            return []
        marks = ", ".join("{}" for _ in names)
        due = (
            "((status = 'pending' AND next_attempt_at <= {}) "
            "OR (status = 'sending' AND lease_until < {}))"
        )
        lock = " FOR UPDATE SKIP LOCKED" if is_postgres() else ""
        sql = (
            "UPDATE delivery SET status = 'sending', lease_until = {}, attempts = attempts + 1 "
            "WHERE id IN (SELECT id FROM delivery WHERE " + due + f" AND transport IN ({marks}) "
            "ORDER BY priority, next_attempt_at LIMIT {}" + lock + ") "
            "RETURNING id, message, device, transport, attempts"
        )
        async with transaction():
            rows = await Delivery.raw(sql, now + self.lease, now, now, *names, self.batch_size)
        return [
            Claimed(r["id"], r["message"], _uuid(r["device"]), r["transport"], r["attempts"])
            for r in rows
        ]

    async def _load_messages(self, ids: set[int]) -> None:
        missing = [i for i in ids if i not in self._messages]
        if missing:
            rows = await Message.select().where(Message.id.is_in(missing)).output(load_json=True)
            self._messages.update({r["id"]: r for r in rows})
            if len(self._messages) > 10_000:  # a worker runs for weeks: keep the cache small
                self._messages = {k: self._messages[k] for k in ids if k in self._messages}

    async def tick(self) -> int:
        """Claim one batch, send it, record the outcomes; returns how many rows were handled."""
        now = datetime.now(UTC)
        claimed = await self.claim(now)
        if not claimed:
            return 0
        await self._load_messages({c.message for c in claimed})
        devices = {
            _uuid(r["id"]): r
            for r in await Device.select(
                Device.id, Device.push_kind, Device.push_token, Device.push_p256dh, Device.push_auth
            ).where(Device.id.is_in(list({c.device for c in claimed})))
        }
        by_transport: dict[str, list[tuple[PushMessage, Target]]] = {}
        credentials: dict[int, str] = {}
        immediate: list[tuple[int, str, str]] = []  # (id, status, reason) decided without sending
        for c in claimed:
            message = self._messages[c.message]
            device = devices.get(c.device)
            if message["expires_at"] is not None and message["expires_at"] <= now:
                immediate.append((c.id, "expired", "message expiré avant l'envoi"))
                continue
            if device is None or device["push_kind"] != c.transport or not device["push_token"]:
                immediate.append((c.id, "inbox", "plus d'identifiant de notification"))
                continue
            target: Target
            if c.transport == "fcm":
                target = FcmTarget(device["push_token"])
            else:
                target = WebPushTarget(
                    device["push_token"], device["push_p256dh"] or "", device["push_auth"] or ""
                )
            credentials[c.id] = device["push_token"]
            by_transport.setdefault(c.transport, []).append((_push(c.id, message, now), target))
        sends = [self.transports[name].send(batch) for name, batch in by_transport.items()]
        results: list[SendResult] = [r for group in await asyncio.gather(*sends) for r in group]
        await self._record(claimed, results, immediate, credentials)
        return len(claimed)

    async def _record(
        self,
        claimed: Sequence[Claimed],
        results: Sequence[SendResult],
        immediate: Sequence[tuple[int, str, str]],
        credentials: Mapping[int, str],
    ) -> None:
        now = datetime.now(UTC)
        info = {c.id: c for c in claimed}
        sent: list[int] = []
        final: dict[str, list[tuple[int, str]]] = {}
        retry: list[tuple[int, datetime, str, bool]] = []  # (id, when, reason, throttled)
        dead_tokens: list[tuple[UUID, str]] = []
        for result in results:
            c = info[result.delivery_id]
            if result.outcome is Outcome.SENT:
                sent.append(c.id)
            elif result.outcome is Outcome.DEAD:
                final.setdefault("dead", []).append((c.id, result.reason))
                dead_tokens.append((c.device, credentials[c.id]))
            elif result.outcome is Outcome.FAILED:
                final.setdefault("failed", []).append((c.id, result.reason))
            elif result.outcome is Outcome.THROTTLED:
                wait = result.retry_after or 60.0
                self.paused_until[c.transport] = time.monotonic() + wait
                # A throttled attempt is the service's doing, not the message's: not counted.
                retry.append((c.id, now + timedelta(seconds=wait), result.reason, True))
            elif c.attempts >= self.max_attempts:
                final.setdefault("failed", []).append((c.id, f"abandon : {result.reason}"))
            else:
                when = now + timedelta(seconds=backoff_seconds(c.attempts, self.backoff_base))
                retry.append((c.id, when, result.reason, False))
        for delivery_id, status, reason in immediate:
            final.setdefault(status, []).append((delivery_id, reason))
        async with transaction():
            for start in range(0, len(sent), 500):
                await Delivery.update(
                    {Delivery.status: "sent", Delivery.sent_at: now, Delivery.lease_until: None}
                ).where(Delivery.id.is_in(sent[start : start + 500]))
            for status, items in final.items():
                for delivery_id, reason in items:
                    await Delivery.update(
                        {
                            Delivery.status: status,
                            Delivery.last_error: reason[:200],
                            Delivery.lease_until: None,
                        }
                    ).where(Delivery.id == delivery_id)
            for delivery_id, when, reason, throttled in retry:
                values: dict[Any, Any] = {
                    Delivery.status: "pending",
                    Delivery.next_attempt_at: when,
                    Delivery.last_error: reason[:200],
                    Delivery.lease_until: None,
                }
                if throttled:
                    values[Delivery.attempts] = Delivery.attempts - 1
                await Delivery.update(values).where(Delivery.id == delivery_id)
            for device_id, token in dead_tokens:
                # Only the credential that failed: the app may have registered a new one since.
                await Device.update(
                    {
                        Device.push_kind: None,
                        Device.push_token: None,
                        Device.push_p256dh: None,
                        Device.push_auth: None,
                    }
                ).where((Device.id == device_id) & (Device.push_token == token))
        if dead_tokens:
            log.info("pruned %d dead push credential(s)", len(dead_tokens))

    async def drain(self, max_ticks: int = 1000) -> int:
        """Tick until nothing is due now (tests and one-shot runs); returns rows handled."""
        total = 0
        for _ in range(max_ticks):
            handled = await self.tick()
            if handled == 0:
                break
            total += handled
        return total

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.25) -> None:
        """Deliver until `stop` is set; sleeps `poll_seconds` when the outbox is empty."""
        while not stop.is_set():
            try:
                handled = await self.tick()
            except Exception:
                log.exception("delivery tick failed; retrying shortly")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=poll_seconds)


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _push(delivery_id: int, message: dict[str, Any], now: datetime) -> PushMessage:
    ttl = int(message["ttl_seconds"])
    if message["expires_at"] is not None:
        # Past the message's expiry the push service must drop it rather than deliver it late.
        ttl = max(0, min(ttl, int((message["expires_at"] - now).total_seconds())))
    data = {k: str(v) for k, v in (message["data"] or {}).items()}
    data.setdefault("kind", message["kind"])
    data.setdefault("subject", message["subject"])
    return PushMessage(
        delivery_id=delivery_id,
        title=message["title"],
        body=message["body"],
        data=data,
        collapse_key=message["collapse_key"],
        urgency=Urgency(message["urgency"]),
        ttl_seconds=ttl,
    )
