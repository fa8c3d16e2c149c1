from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T23:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "One demande per Idempotency-Key: unique index demande_idempotency_key"

# Self-contained on purpose (a migration must not change when the code does); the same
# statement is in backend.demandes.tables.EXTRA_INDEXES, which the test set-up runs. A unique
# index rather than a UNIQUE column: SQLite cannot add a UNIQUE column to an existing table.
STATEMENT = "CREATE UNIQUE INDEX IF NOT EXISTS demande_idempotency_key ON demande (idempotency_key)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create_index():
        await engine_finder().run_ddl(STATEMENT)

    async def drop_index():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS demande_idempotency_key")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
