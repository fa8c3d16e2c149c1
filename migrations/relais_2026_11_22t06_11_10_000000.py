from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T06:11:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "Multi-column indexes: delivery outbox (claim, inbox, report), place targeting"

# Self-contained on purpose (a migration must not change when the code does); the same
# statements are alerts.tables.EXTRA_INDEXES, which the test set-up runs.
STATEMENTS = [
    "CREATE INDEX IF NOT EXISTS delivery_claim ON delivery (status, priority, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS delivery_inbox ON delivery (device, id)",
    "CREATE INDEX IF NOT EXISTS delivery_message_status ON delivery (message, status)",
    "CREATE INDEX IF NOT EXISTS place_cell_device ON place (cell, device, lat, lon)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in (
            "delivery_claim",
            "delivery_inbox",
            "delivery_message_status",
            "place_cell_device",
        ):
            await engine.run_ddl(f"DROP INDEX IF EXISTS {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
