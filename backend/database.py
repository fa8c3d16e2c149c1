"""The database engine: chosen from one URL, bound to every table, and its transactions.

SQLite (embedded default) and PostgreSQL (production) behave the same for the code above this
module; the differences that matter (write locks, pools) are handled here once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlparse
from weakref import WeakKeyDictionary

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.table import Table

_current: Engine | None = None


def engine_from_url(url: str) -> Engine:
    """Build a Piccolo engine from `sqlite:///path` or `postgresql://user@host:port/db`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells them.
        path = unquote(url.removeprefix("sqlite:///"))
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # timeout: writers wait for the lock instead of failing at once under concurrency.
        return SQLiteEngine(path=path, timeout=30)
    if parsed.scheme in {"postgres", "postgresql"}:
        config: dict[str, Any] = {
            "host": parsed.hostname or "127.0.0.1",
            "port": parsed.port or 5432,
            "user": unquote(parsed.username or "postgres"),
            "database": parsed.path.lstrip("/") or "relais",
        }
        if parsed.password:
            config["password"] = unquote(parsed.password)
        return PostgresEngine(config=config)
    raise ValueError(f"Unsupported database URL scheme: {parsed.scheme!r}")


def is_postgres(engine: Engine | None = None) -> bool:
    """True when the bound engine is PostgreSQL."""
    return isinstance(engine or current_engine(), PostgresEngine)


def all_tables() -> list[type[Table]]:
    """Every table of the single Piccolo app."""
    from backend.piccolo_app import APP_CONFIG

    return list(APP_CONFIG.table_classes)


def bind_engine(engine: Engine) -> None:
    """Point every table at `engine` (tests switch between SQLite and PostgreSQL)."""
    global _current
    _current = engine
    for table in all_tables():
        table._meta.db = engine


def current_engine() -> Engine:
    """The engine every table uses now."""
    if _current is None:
        from backend.piccolo_conf import DB

        bind_engine(DB)
    assert _current is not None
    return _current


@asynccontextmanager
async def transaction() -> AsyncIterator[None]:
    """A write transaction; nested calls join the outer one.

    On SQLite the transaction takes the write lock up front (IMMEDIATE): a deferred transaction
    that reads then writes can fail with "database is locked" instead of waiting its turn. The
    outermost one also queues on ``sqlite_write_turn`` first.
    """
    engine = current_engine()
    if not isinstance(engine, SQLiteEngine):
        async with engine.transaction():
            yield
    elif engine.current_transaction.get() is not None:
        async with engine.transaction():  # joins the outer transaction
            yield
    else:
        immediate = TransactionType.immediate
        async with sqlite_write_turn(), engine.transaction(transaction_type=immediate):
            yield


def in_transaction() -> bool:
    """Whether this task runs inside a transaction: its one connection then runs one query at
    a time, so queries meant to overlap must run one after the other."""
    return current_engine().current_transaction.get() is not None


#: One SQLite writer per event loop: see ``sqlite_write_turn``.
_WRITE_LOCKS: WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = WeakKeyDictionary()


@asynccontextmanager
async def sqlite_write_turn() -> AsyncIterator[None]:
    """Let one SQLite write transaction at a time run in this process: every `transaction()`
    queues here, and so does code writing on a connection of its own (the delivery worker,
    `alerts._delivery_sqlite`).

    SQLite has one writer at a time. Without this, a rush (hundreds of bookings or uploads at
    once) leaves every other transaction polling the file lock in its own thread, sleeping up
    to 100 ms between tries, and past the busy timeout they fail with "database is locked"
    (HTTP 500). Queued here, each waits its turn on the event loop. Other processes (a worker)
    still meet the busy timeout; the database's constraints still decide every race.
    """
    loop = asyncio.get_running_loop()
    lock = _WRITE_LOCKS.get(loop)
    if lock is None:
        lock = _WRITE_LOCKS[loop] = asyncio.Lock()
    async with lock:
        yield


#: How much of the SQLite file a connection may read through mmap instead of read() calls.
SQLITE_MMAP_BYTES: Final = 1 << 30


class _SQLiteConnection(sqlite3.Connection):
    """A connection with the per-connection pragmas set (Piccolo opens one per query or
    transaction, so a pragma run once at start would only reach a connection it then closes).

    mmap: reading pages in place rather than copying each into the page cache; an alert to 100k
    devices reads 100k device rows at random and is about a third faster so (bench_targeting).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.execute(f"PRAGMA mmap_size = {SQLITE_MMAP_BYTES}")


async def _keep_session(connection: Any) -> None:
    """Pool reset: nothing beyond asyncpg's own rollback of an unfinished transaction.

    Piccolo borrows a connection per query, and asyncpg's default reset (RESET ALL, CLOSE ALL,
    UNLISTEN *, unlock advisory locks) is one more round trip and about as much server work as
    a small query, each time. Nothing here keeps session state: settings are `SET LOCAL`, no
    advisory lock, no LISTEN, no cursor outside a transaction.
    """


async def start(engine: Engine | None = None) -> None:
    """Open the pool (PostgreSQL) or set WAL mode and the connection pragmas (SQLite)."""
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(min_size=1, max_size=20, reset=_keep_session)
    elif isinstance(engine, SQLiteEngine):
        engine.connection_kwargs.setdefault("factory", _SQLiteConnection)
        # WAL lets readers proceed while one writer writes; the setting persists in the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")


async def stop(engine: Engine | None = None) -> None:
    """Close the pool."""
    engine = engine or current_engine()
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()


async def is_reachable() -> bool:
    """Whether a trivial query answers (readiness probe)."""
    try:
        rows = await current_engine().run_ddl("SELECT 1 AS ok")
    except Exception:
        return False
    return bool(rows)


def is_unique_violation(exc: BaseException) -> bool:
    """Whether a database error is a unique-constraint violation, on either engine."""
    import sqlite3

    import asyncpg

    if isinstance(exc, asyncpg.exceptions.UniqueViolationError):
        return True
    return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


def extra_indexes() -> list[str]:
    """Multi-column indexes Piccolo cannot declare, as portable `CREATE INDEX IF NOT EXISTS`."""
    from alerts.tables import EXTRA_INDEXES as ALERTS
    from backend.appointments.tables import EXTRA_INDEXES as APPOINTMENTS
    from backend.demandes.tables import EXTRA_INDEXES as DEMANDES
    from backend.news.tables import EXTRA_INDEXES as NEWS

    return [*ALERTS, *APPOINTMENTS, *DEMANDES, *NEWS]


async def create_extra_indexes() -> None:
    """Create the multi-column indexes, and the triggers keeping summary tables exact
    (migrations and the test set-up call this)."""
    from backend.appointments.tables import summary_ddl

    for ddl in [*extra_indexes(), *summary_ddl(is_postgres())]:
        await current_engine().run_ddl(ddl)


async def bulk_insert(table: type[Table], columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Insert many rows fast, inside the current transaction.

    Piccolo builds one object per row, which costs seconds for a 100,000-device fanout; this goes
    straight to the driver: COPY on PostgreSQL, `executemany` on SQLite.
    """
    if not rows:
        return
    engine = current_engine()
    tx = engine.current_transaction.get()
    if tx is None:
        raise RuntimeError("bulk_insert must run inside database.transaction()")
    name = table._meta.tablename
    if isinstance(engine, PostgresEngine):
        await tx.connection.copy_records_to_table(name, records=rows, columns=columns)
    else:
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        await tx.connection.executemany(
            f'INSERT INTO "{name}" ({cols}) VALUES ({marks})', _adapted_for_sqlite(rows)
        )


def _adapted_for_sqlite(rows: list[tuple[Any, ...]]) -> Sequence[tuple[Any, ...]]:
    """The rows, with each value many rows share adapted once, as sqlite3 would adapt it.

    sqlite3 calls the adapter Piccolo registers for every value of every row: for the
    timestamps all the rows of a fan-out share, that is two `astimezone` and `str` per row,
    a third of the insert time. Columns of distinct values are left to sqlite3.
    """
    columns: list[Sequence[Any]] = [list(map(itemgetter(i), rows)) for i in range(len(rows[0]))]
    changed = False
    for n, column in enumerate(columns):
        kinds = set(map(type, column))
        if not any((kind, sqlite3.PrepareProtocol) in sqlite3.adapters for kind in kinds):
            continue
        ids = list(map(id, column))  # the rows keep every value alive meanwhile
        shared = dict(zip(ids, column, strict=True))
        if len(shared) * 2 > len(column):
            continue
        adapted = {key: _sqlite_adapt(value) for key, value in shared.items()}
        columns[n] = list(map(adapted.__getitem__, ids))
        changed = True
    return list(zip(*columns, strict=True)) if changed else rows


def _sqlite_adapt(value: Any) -> Any:
    adapter = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
    return value if adapter is None else adapter(value)
