"""The feeds' validator: a revision per commune and kind, bumped by every change shown."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from uuid import UUID

from piccolo.engine.postgres import PostgresEngine

from backend.news.tables import NewsRevision

if TYPE_CHECKING:
    from backend.news.reading import FeedFilter


async def bump(commune_id: Any, kind: str) -> None:
    """Count one change of the commune's news or events; call it inside the writer's
    transaction, last (the row stays locked until commit: concurrent writers queue there).
    """
    await NewsRevision.raw(
        "INSERT INTO news_revision (revision_key, commune, kind, revision) VALUES ({}, {}, {}, 1) "
        "ON CONFLICT (revision_key) DO UPDATE SET revision = news_revision.revision + 1",
        f"{commune_id}:{kind}",
        commune_id if isinstance(commune_id, UUID) else UUID(str(commune_id)),
        kind,
    )


async def version(filters: FeedFilter, kind: str) -> str:
    """A strong validator of a feed: changes with any publication, edit or archive.

    Every change an answer could show (edit, image, publication, status, archive, scheduled
    publication or unpublication by the job) bumps the commune's revision in its transaction,
    so the revision moves in commit order and is read with one primary-key lookup: an
    unchanged feed (304) costs far less than rendering it, and a rendered answer kept under
    this version is never served after a change. Without a commune: the sum over communes.
    """
    if filters.commune_id is not None:
        sql, arg = (
            "SELECT revision FROM news_revision WHERE revision_key = $1",
            f"{filters.commune_id}:{kind}",
        )
    else:
        sql, arg = "SELECT SUM(revision) FROM news_revision WHERE kind = $1", kind
    engine = NewsRevision._meta.db
    if (
        isinstance(engine, PostgresEngine)
        and engine.pool is not None
        and engine.current_transaction.get() is None
    ):
        # Straight to the pool: Piccolo's query building costs more than this lookup.
        revision = await engine.pool.fetchval(sql, arg)
    else:
        rows = await NewsRevision.raw(sql.replace("$1", "{}"), arg)
        revision = next(iter(rows[0].values())) if rows else None
    key = f"{kind}|{filters}|{revision or 0}"
    return hashlib.sha256(key.encode()).hexdigest()[:24]
