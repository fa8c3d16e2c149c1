"""The delivery worker's SQL, for both engines: the claim (due rows in index order, with the
devices' push credentials) and the helpers that run statements on either driver.

Statements are written once with `{}` marks, turned into each driver's placeholders by
`dialect`; rows stay driver tuples.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from typing import Any

# A claimed row: id, message, device, transport, attempts, then (claims for pushing) the
# device's push_kind, push_token, push_p256dh, push_auth; None when the device is gone.
Row = Sequence[Any]
CLAIMED = "id, message, device, transport, attempts"


@functools.cache
def claim_sql(transports: int, postgres: bool, credentials: bool) -> str:
    """The claim for `transports` transport names; arguments: lease end, then those of
    `due_ids`. With `credentials` the rows also carry the device's push credential.

    On SQLite the claim is `claim_on_sqlite`'s two statements instead: this one (arguments
    those of `due_ids`) reads the rows with their credentials as one JSON value.
    """
    due = due_ids(transports, postgres)
    if not postgres:
        return dialect(
            "SELECT json_group_array(json_array(d.id, d.message, d.device, d.transport, "
            "d.attempts + 1, v.push_kind, v.push_token, v.push_p256dh, v.push_auth)) "
            f"FROM ({due}) AS c JOIN delivery d ON d.id = c.id "
            "LEFT JOIN device v ON v.id = d.device",
            postgres,
        )
    sql = (
        "UPDATE delivery SET status = 'sending', lease_until = {}, attempts = attempts + 1 "
        f"WHERE id IN ({due}) RETURNING {CLAIMED}"
    )
    if credentials:
        sql = (
            f"WITH claimed AS ({sql}) SELECT c.*, d.push_kind, d.push_token, d.push_p256dh, "
            "d.push_auth FROM claimed c LEFT JOIN device d ON d.id = c.device"
        )
    return dialect(sql, postgres)


def due_ids(transports: int, postgres: bool) -> str:
    """The ids of up to batch-size due rows, with `{}` marks; arguments: now, the names, the
    batch size, now, the names, the batch size twice."""
    marks = ", ".join("{}" for _ in range(transports))
    lock = " FOR UPDATE SKIP LOCKED" if postgres else ""
    # Two index-ordered scans that stop after batch_size rows each, rather than one OR that
    # the database must collect and sort in full: a claim costs the same whether 1,000 or
    # 100,000 rows wait. Among rows equally urgent and due, those never tried go before
    # those taken over from a dead worker's lease (which it has most likely pushed).
    order = "ORDER BY priority, next_attempt_at"
    fresh = (  # never tried, or retried: due now
        "SELECT id, priority, next_attempt_at, 0 AS retaken FROM delivery "
        f"WHERE status = 'pending' AND next_attempt_at <= {{}} AND transport IN ({marks}) "
        f"{order} LIMIT {{}}{lock}"
    )
    retaken = (  # claimed by a worker whose lease ran out
        "SELECT id, priority, next_attempt_at, 1 AS retaken FROM delivery "
        f"WHERE status = 'sending' AND lease_until < {{}} AND transport IN ({marks}) "
        f"{order} LIMIT {{}}{lock}"
    )
    return (
        f"SELECT id FROM (SELECT * FROM ({fresh}) AS fresh UNION ALL "
        f"SELECT * FROM ({retaken}) AS expired) AS candidates {order}, retaken LIMIT {{}}"
    )


def claim_on_sqlite(sql: str, args: Sequence[Any], connection: sqlite3.Connection) -> list[Row]:
    """The claim on SQLite, in the caller's transaction: read the due rows with their
    credentials (`claim_sql`), then mark them claimed; `args` as for PostgreSQL.

    Each statement hands back one value, not a row per delivery: sqlite3 releases the GIL
    around every row it steps through, and while the event loop is busy pushing each release
    means a thread switch (bench_fanout, FCM: 0.53 -> 0.09 switches and 25 -> 17 µs of this
    thread's CPU per message).
    """
    lease_until, *due = args
    (found,) = connection.execute(sql, due).fetchone()
    rows: list[Row] = json.loads(found)
    if rows:
        connection.execute(
            "UPDATE delivery SET status = 'sending', lease_until = ?, attempts = attempts + 1 "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (lease_until, json.dumps([r[0] for r in rows])),
        )
    return rows


def execute_on_sqlite(
    statements: Sequence[tuple[str, Sequence[Any]]], connection: sqlite3.Connection
) -> None:
    """Run `statements` (with `{}` marks) in order, in the caller's transaction."""
    for sql, args in statements:
        connection.execute(dialect(sql, False), args)


@functools.lru_cache(maxsize=256)
def dialect(sql: str, postgres: bool) -> str:
    """`sql` with its `{}` marks as the driver's placeholders ($1, $2… or ?)."""
    if not postgres:
        return sql.replace("{}", "?")
    parts = sql.split("{}")
    return "".join(f"{part}${n}" for n, part in enumerate(parts[:-1], 1)) + parts[-1]


def id_list(ids: Sequence[int], postgres: bool) -> Any:
    """Delivery ids as one parameter: an array (PostgreSQL) or a JSON list (SQLite)."""
    return list(ids) if postgres else json.dumps(ids)


def chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """`items` in consecutive slices of at most `size`."""
    return [items[start : start + size] for start in range(0, len(items), size)]
