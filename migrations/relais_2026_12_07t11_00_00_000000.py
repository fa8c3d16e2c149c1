from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T11:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Public map indexes: demandes by cell and by age with the map's filters"

# Self-contained on purpose (a migration must not change when the code does); the same
# statements are backend.demandes.tables.EXTRA_INDEXES, which the test set-up runs.
STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS demande_map_cell ON demande "
    "(cell, public, hidden, created_at, lat, lon)",
    "CREATE INDEX IF NOT EXISTS demande_map ON demande "
    "(public, hidden, created_at, lat, lon, category, status)",
    "CREATE INDEX IF NOT EXISTS demande_map_category ON demande "
    "(category, public, hidden, created_at, lat, lon, status)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in ("demande_map_cell", "demande_map", "demande_map_category"):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
