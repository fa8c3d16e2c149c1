"""The delivery worker's own SQLite connection: a claim, or a batch's outcomes, is one
transaction run in one call on the connection's thread.

Through Piccolo each transaction opens a connection and its thread, parses the schema again on
its first statement and takes a thread round trip per statement (plus a PRAGMA each): about
3 ms of CPU, twice per batch, which the pushes of the same process then lack. Here the
connection lives as long as the worker's loop and keeps its prepared statements.

Writes still queue with the process's other SQLite writers (`sqlite_write_turn`), and commit
as durably as theirs (`synchronous = NORMAL` measured no faster here: the commits are few).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from piccolo.engine.sqlite import SQLiteEngine

from backend.database import sqlite_write_turn

_T = TypeVar("_T")


class SqliteSession:
    """One connection to `engine`'s file, used from one thread of its own."""

    def __init__(self, engine: SQLiteEngine) -> None:
        self.engine = engine
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="relais-delivery-sqlite")
        self._connection: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        options = self.engine.connection_kwargs
        # No detect_types: rows come back as the stored values (ids as text), no converters.
        connection = sqlite3.connect(
            self.engine.path,
            timeout=options.get("timeout", 5.0),
            isolation_level=None,
            factory=options.get("factory", sqlite3.Connection),
        )
        connection.execute("PRAGMA foreign_keys = 1")
        return connection

    def _transaction(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            result = work(connection)
        except BaseException:
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            except sqlite3.Error:  # a connection in doubt: the next write opens a fresh one
                self._close()
            raise
        connection.execute("COMMIT")
        return result

    async def write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work(connection)` in one IMMEDIATE transaction, in this process's writer queue."""
        async with sqlite_write_turn():
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._transaction, work)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def aclose(self) -> None:
        """Close the connection and stop its thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)
