"""Human references of demandes: 2026-000123, unique, in order within a year."""

from __future__ import annotations

from backend.demandes.tables import ReferenceCounter


async def next_reference(year: int) -> str:
    """The next reference of the year (call inside the demande's transaction).

    One upsert statement, atomic on both engines (PostgreSQL row lock, SQLite write lock): two
    concurrent demandes never get the same number, and the unique column guards anyway.
    """
    rows = await ReferenceCounter.raw(
        "INSERT INTO reference_counter (counter_key, value) VALUES ({}, 1) "
        "ON CONFLICT (counter_key) DO UPDATE SET value = reference_counter.value + 1 "
        "RETURNING value",
        str(year),
    )
    return f"{year}-{rows[0]['value']:06d}"
