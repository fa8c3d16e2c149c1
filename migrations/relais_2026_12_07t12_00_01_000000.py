from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T12:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "News indexes: feed pages, agenda window"

# Self-contained on purpose (a migration must not change when the code does); the same
# statements are backend.news.tables.EXTRA_INDEXES, which the test set-up runs.
STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS news_item_feed "
    "ON news_item (commune, kind, state, pinned, published_at, id)",
    "CREATE INDEX IF NOT EXISTS news_item_agenda "
    "ON news_item (commune, kind, state, (COALESCE(ends_at, starts_at)))",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in ("news_item_feed", "news_item_agenda"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
