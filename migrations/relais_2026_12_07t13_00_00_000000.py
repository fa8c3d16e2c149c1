from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T13:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "Covering index of appointment busy times: booking (site, starts_at, …)"

# Self-contained on purpose (a migration must not change when the code does); the same
# statement is in backend.appointments.tables.EXTRA_INDEXES, which the test set-up runs.
STATEMENT = (
    "CREATE INDEX IF NOT EXISTS booking_site_time "
    "ON booking (site, starts_at, ends_at, counter, status, hold_expires_at)"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create_index():
        await engine_finder().run_ddl(STATEMENT)

    async def drop_index():
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_site_time")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
