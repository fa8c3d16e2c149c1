from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-12-07T20:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "Covering index of appointment busy times by counter: booking (counter, starts_at, …) "
    "replaces booking (site, starts_at, …)"
)

# Self-contained on purpose (a migration must not change when the code does); the same
# statement is in backend.appointments.tables.EXTRA_INDEXES, which the test set-up runs.
CREATE_NEW = (
    "CREATE INDEX IF NOT EXISTS booking_counter_time "
    "ON booking (counter, starts_at, ends_at, status, hold_expires_at)"
)
CREATE_OLD = (
    "CREATE INDEX IF NOT EXISTS booking_site_time "
    "ON booking (site, starts_at, ends_at, counter, status, hold_expires_at)"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def replace_index():
        await engine_finder().run_ddl(CREATE_NEW)
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_site_time")

    async def restore_index():
        await engine_finder().run_ddl(CREATE_OLD)
        await engine_finder().run_ddl("DROP INDEX IF EXISTS booking_counter_time")

    manager.add_raw(replace_index)
    manager.add_raw_backwards(restore_index)
    return manager
