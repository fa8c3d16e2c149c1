"""The delivery worker: claim due outbox rows, push them, record each outcome.

- Claims are exclusive: on PostgreSQL `FOR UPDATE SKIP LOCKED` lets several workers share the
  outbox without sending a row twice; a claimed row carries a lease, so the rows of a worker
  that died are taken over once the lease runs out (nothing lost).
- One batch at a time, its outcomes committed as soon as it is pushed: a worker killed
  mid-fanout pushes at most that one batch again. The database round trips between two
  batches are few and cheap, so the transports seldom wait: a claim reads the due rows in
  index order with the devices' push credentials, and the outcomes of a batch take a few
  statements whatever its size. Rows stay driver tuples (no Piccolo objects or dicts); on
  SQLite the worker writes on a connection of its own (`alerts._delivery_sqlite`). The SQL
  itself, for both engines, is in `alerts._delivery_sql`.
- Retries back off exponentially with jitter; a 429 pauses the whole transport for its
  Retry-After; a credential is deleted only when the push service says it is gone.
- Urgent messages go first (priority), quiet hours and caps were applied when writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from piccolo.engine.sqlite import SQLiteEngine

from alerts._delivery_sql import (
    Row,
    chunks,
    claim_on_sqlite,
    claim_sql,
    dialect,
    execute_on_sqlite,
    id_list,
)
from alerts._delivery_sqlite import SqliteSession
from alerts.tables import Message
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
from backend.database import current_engine, is_postgres, transaction

log = logging.getLogger("relais.delivery")

BACKOFF_BASE = 5.0
BACKOFF_CAP = 3600.0
_IN_CHUNK = 500  # rows per statement where each row brings its own values


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


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed delivery ready to push: the message, its target and the credential used
    (`device` as the database gives it: a UUID on PostgreSQL, its text on SQLite)."""

    id: int
    device: Any
    attempts: int
    push: PushMessage
    target: Target
    credential: str


_Done = tuple[_Job, SendResult]
_Immediate = tuple[int, str, str]  # (delivery id, final status, reason): decided without pushing


@dataclass
class _Batch:
    """Claimed rows, as pushes per transport plus the rows settled without pushing."""

    size: int
    jobs: dict[str, list[_Job]] = field(default_factory=dict)
    immediate: list[_Immediate] = field(default_factory=list)


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
        self._sqlite: SqliteSession | None = None

    def _available(self, names: Iterable[str] | None = None) -> list[str]:
        now = time.monotonic()
        return [
            n
            for n in (self.transports if names is None else names)
            if n in self.transports and self.paused_until.get(n, 0.0) <= now
        ]

    @contextlib.asynccontextmanager
    async def _connected(self) -> AsyncIterator[None]:
        """On SQLite, the worker's own connection for the duration (nested uses share it)."""
        engine = current_engine()
        if self._sqlite is not None or not isinstance(engine, SQLiteEngine):
            yield
            return
        session = self._sqlite = SqliteSession(engine)
        try:
            yield
        finally:
            self._sqlite = None
            await session.aclose()

    async def claim(self, now: datetime, transports: Sequence[str] | None = None) -> list[Claimed]:
        """Take up to batch_size due rows (pending, or sending with an expired lease) of the
        given transports (default: every transport not paused)."""
        async with self._connected():
            rows = await self._claim_rows(now, transports, credentials=False)
        return [Claimed(r[0], r[1], _uuid(r[2]), r[3], r[4]) for r in rows]

    async def _claim_rows(
        self, now: datetime, transports: Sequence[str] | None, *, credentials: bool
    ) -> Sequence[Row]:
        """The claim; with `credentials`, rows also carry the device's push credential."""
        names = self._available(transports)
        if not names:
            return []
        postgres = is_postgres()
        sql = claim_sql(len(names), postgres, credentials)
        size = self.batch_size
        args = (now + self.lease, now, *names, size, now, *names, size, size)
        if postgres:
            async with transaction():
                connection = _pg_connection()
                # Statistics lag behind a fanout (a million sent rows, then 10,000 pending in a
                # second): the planner then expects a handful of due rows and would rather fetch
                # and sort them all, on every claim. Keep it on the index order, for this
                # transaction only; without JIT, which that cost estimate would otherwise start.
                await connection.execute(
                    "SELECT set_config('enable_sort', 'off', true), set_config('jit', 'off', true)"
                )
                rows: Sequence[Row] = await connection.fetch(sql, *args)
            return rows
        assert self._sqlite is not None  # (inside _connected())
        return await self._sqlite.write(functools.partial(claim_on_sqlite, sql, args))

    async def _load_messages(self, ids: set[int]) -> None:
        missing = [i for i in ids if i not in self._messages]
        if missing:
            rows = await Message.select().where(Message.id.is_in(missing)).output(load_json=True)
            self._messages.update({r["id"]: r for r in rows})
            if len(self._messages) > 10_000:  # a worker runs for weeks: keep the cache small
                self._messages = {k: self._messages[k] for k in ids if k in self._messages}

    async def _prepare(self, rows: Sequence[Row], now: datetime) -> _Batch:
        """The pushes of claimed rows (with credentials), by transport, and the rows settled
        without pushing."""
        batch = _Batch(len(rows))
        if not rows:
            return batch
        await self._load_messages({r[1] for r in rows})
        # Per message, once: its push (ttl and data computed once), or why rows go unpushed.
        templates: dict[int, PushMessage | tuple[str, str]] = {}
        for delivery_id, message_id, device, transport, attempts, kind, token, p256dh, auth in rows:
            t = templates.get(message_id)
            if t is None:
                t = templates[message_id] = self._template(message_id, now)
            if isinstance(t, tuple):
                batch.immediate.append((delivery_id, *t))
                continue
            if kind != transport or not token:
                batch.immediate.append((delivery_id, "inbox", "plus d'identifiant de notification"))
                continue
            target: Target
            if transport == "fcm":
                target = FcmTarget(token)
            else:
                target = WebPushTarget(token, p256dh or "", auth or "")
            push = PushMessage(
                delivery_id, t.title, t.body, t.data, t.collapse_key, t.urgency, t.ttl_seconds
            )
            job = _Job(delivery_id, device, attempts, push, target, token)
            batch.jobs.setdefault(transport, []).append(job)
        return batch

    def _template(self, message_id: int, now: datetime) -> PushMessage | tuple[str, str]:
        """A message's push, or the (status, reason) of its rows when it cannot go out."""
        message = self._messages.get(message_id)
        if message is None:
            return ("failed", "message introuvable")
        if message["expires_at"] is not None and message["expires_at"] <= now:
            return ("expired", "message expiré avant l'envoi")
        return _push(0, message, now)

    async def _claim_batch(self) -> _Batch:
        now = datetime.now(UTC)
        return await self._prepare(await self._claim_rows(now, None, credentials=True), now)

    async def _send(self, batch: _Batch) -> list[_Done]:
        """Push a batch, every transport at once; a 429 pauses its transport."""
        names = list(batch.jobs)
        groups = await asyncio.gather(
            *(self.transports[n].send([(j.push, j.target) for j in batch.jobs[n]]) for n in names)
        )
        done: list[_Done] = []
        for name, results in zip(names, groups, strict=True):
            by_id = {r.delivery_id: r for r in results}
            for job in batch.jobs[name]:
                result = by_id.get(job.id)
                if result is None:  # a transport answers for every pair; retry if it did not
                    result = SendResult(job.id, Outcome.RETRY, "pas de résultat")
                elif result.outcome is Outcome.THROTTLED:
                    until = time.monotonic() + (result.retry_after or 60.0)
                    self.paused_until[name] = max(self.paused_until.get(name, 0.0), until)
                done.append((job, result))
        return done

    async def tick(self) -> int:
        """Claim one batch, send it, record the outcomes; returns how many rows were handled."""
        async with self._connected():
            batch = await self._claim_batch()
            if batch.size:
                await self._record(await self._send(batch), batch.immediate)
        return batch.size

    async def _pump(self, max_ticks: int, stop: asyncio.Event | None = None) -> int:
        """Deliver batch after batch, claiming the next batch while the current one is pushed.

        The claim (a database round trip and the credentials) then costs the transports no
        idle time; the outcomes of a batch are still recorded before the next batch is pushed,
        so a worker killed mid-fanout pushes at most one batch again. Stops when a claim comes
        back empty, after `max_ticks` batches, or once `stop` is set.
        """
        total = 0
        async with self._connected():
            batch = await self._claim_batch()
            for tick in range(max_ticks):
                if not batch.size:
                    break
                last = tick + 1 >= max_ticks or (stop is not None and stop.is_set())
                claiming = None if last else asyncio.ensure_future(self._claim_batch())
                try:
                    done = await self._send(batch)
                except BaseException:
                    if claiming is not None:
                        claiming.cancel()
                    raise
                failed: BaseException | None = None
                if claiming is not None and self.paused_until:
                    # A 429 met meanwhile: what was claimed for that transport waits too.
                    try:
                        done += self._hold_paused(await claiming)
                    except Exception as exc:  # record what was pushed first, then report
                        failed = exc
                await self._record(done, batch.immediate)
                total += batch.size
                if failed is not None:
                    raise failed
                if claiming is None:
                    break
                batch = await claiming
        return total

    def _hold_paused(self, batch: _Batch) -> list[_Done]:
        """Take a prefetched batch's pushes for paused transports out of it, as throttled
        outcomes (not counted as attempts, due when the pause ends)."""
        now = time.monotonic()
        held: list[_Done] = []
        for name in list(batch.jobs):
            until = self.paused_until.get(name, 0.0)
            if until > now:
                for job in batch.jobs.pop(name):
                    result = SendResult(
                        job.id, Outcome.THROTTLED, "transport en pause (429)", until - now
                    )
                    held.append((job, result))
        return held

    async def _record(self, done: Sequence[_Done], immediate: Sequence[_Immediate]) -> None:
        """Write outcomes in one transaction, in a few statements whatever their number."""
        now = datetime.now(UTC)
        sent: list[int] = []
        final: dict[tuple[str, str], list[int]] = {}  # (status, reason) -> ids
        retry: dict[tuple[str, bool], list[tuple[int, datetime]]] = {}  # (reason, throttled)
        dead_tokens: list[tuple[Any, str]] = []
        for job, result in done:
            outcome = result.outcome
            if outcome is Outcome.SENT:
                sent.append(job.id)
            elif outcome is Outcome.DEAD:
                final.setdefault(("dead", result.reason[:200]), []).append(job.id)
                dead_tokens.append((job.device, job.credential))
            elif outcome is Outcome.FAILED:
                final.setdefault(("failed", result.reason[:200]), []).append(job.id)
            elif outcome is Outcome.THROTTLED:
                # A throttled attempt is the service's doing, not the message's: not counted.
                when = now + timedelta(seconds=result.retry_after or 60.0)
                retry.setdefault((result.reason[:200], True), []).append((job.id, when))
            elif job.attempts >= self.max_attempts:
                final.setdefault(("failed", f"abandon : {result.reason}"[:200]), []).append(job.id)
            else:
                when = now + timedelta(seconds=backoff_seconds(job.attempts, self.backoff_base))
                retry.setdefault((result.reason[:200], False), []).append((job.id, when))
        for delivery_id, status, reason in immediate:
            final.setdefault((status, reason[:200]), []).append(delivery_id)
        postgres = is_postgres()
        # Statements with `{}` marks and their arguments; ids go as one array (PostgreSQL) or
        # one JSON list (SQLite) parameter: one statement and one plan whatever their count.
        ids_in = "id = ANY({}::bigint[])" if postgres else "id IN (SELECT value FROM json_each({}))"
        statements: list[tuple[str, Sequence[Any]]] = []
        if sent:
            statements.append(
                (
                    "UPDATE delivery SET status = 'sent', sent_at = {}, lease_until = NULL "
                    f"WHERE {ids_in}",
                    (now, id_list(sent, postgres)),
                )
            )
        for (status, reason), ids in final.items():
            statements.append(
                (
                    "UPDATE delivery SET status = {}, last_error = {}, lease_until = NULL "
                    f"WHERE {ids_in}",
                    (status, reason, id_list(ids, postgres)),
                )
            )
        cast = "::timestamptz" if postgres else ""
        for (reason, throttled), items in retry.items():
            uncount = ", attempts = attempts - 1" if throttled else ""
            for part in chunks(items, _IN_CHUNK):
                # Each row keeps its own jittered time: one CASE rather than one statement.
                cases = " ".join(f"WHEN {{}} THEN {{}}{cast}" for _ in part)
                statements.append(
                    (
                        "UPDATE delivery SET status = 'pending', last_error = {}, "
                        f"lease_until = NULL, next_attempt_at = CASE id {cases} END{uncount} "
                        f"WHERE {ids_in}",
                        (
                            reason,
                            *[v for item in part for v in item],
                            id_list([delivery_id for delivery_id, _ in part], postgres),
                        ),
                    )
                )
        for pairs in chunks(dead_tokens, _IN_CHUNK):
            # Only the credential that failed: the app may have registered a new one since.
            which = " OR ".join("(id = {} AND push_token = {})" for _ in pairs)
            statements.append(
                (
                    "UPDATE device SET push_kind = NULL, push_token = NULL, push_p256dh = NULL, "
                    f"push_auth = NULL WHERE {which}",
                    [v for pair in pairs for v in pair],
                )
            )
        if postgres:
            async with transaction():
                connection = _pg_connection()
                for sql, args in statements:
                    await connection.execute(dialect(sql, True), *args)
        elif statements:
            assert self._sqlite is not None  # (inside _connected())
            await self._sqlite.write(functools.partial(execute_on_sqlite, statements))
        if dead_tokens:
            log.info("pruned %d dead push credential(s)", len(dead_tokens))

    async def drain(self, max_ticks: int = 1000) -> int:
        """Deliver until nothing is due now (tests and one-shot runs); returns rows handled."""
        return await self._pump(max_ticks)

    async def run(self, stop: asyncio.Event, poll_seconds: float = 0.25) -> None:
        """Deliver until `stop` is set; sleeps `poll_seconds` when the outbox is empty."""
        async with self._connected():  # one SQLite connection for every poll
            while not stop.is_set():
                try:
                    handled = await self._pump(10**9, stop)
                except Exception:
                    log.exception("delivery tick failed; retrying shortly")
                    handled = 0
                if handled == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=poll_seconds)


def _uuid(value: Any) -> UUID:
    return value if isinstance(value, UUID) else UUID(str(value))


def _pg_connection() -> Any:
    """The asyncpg connection of the current transaction."""
    tx = current_engine().current_transaction.get()
    assert tx is not None  # (inside transaction())
    return tx.connection


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
