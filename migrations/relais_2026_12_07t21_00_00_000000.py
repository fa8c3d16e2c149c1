from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, BigInt, ForeignKey
from piccolo.engine import engine_finder

ID = "2026-12-07T21:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "Outbox writes: delivery.device without a foreign key, no single-column delivery indexes "
    "(covered by delivery_inbox and delivery_message_status), covering index device_recipient"
)

# Self-contained on purpose (a migration must not change when the code does): the tables as
# they are after this migration, and the indexes of alerts.tables.EXTRA_INDEXES they keep.
SQLITE_DELIVERY = (
    'CREATE TABLE "delivery_rebuilt" ("id" INTEGER PRIMARY KEY NOT NULL, '
    '"message" INTEGER NOT NULL DEFAULT 0, "device" UUID NOT NULL DEFAULT null, '
    "\"transport\" VARCHAR(10) NOT NULL DEFAULT '', "
    "\"status\" VARCHAR(10) NOT NULL DEFAULT 'pending', "
    '"priority" INTEGER NOT NULL DEFAULT 5, "attempts" INTEGER NOT NULL DEFAULT 0, '
    '"next_attempt_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
    '"lease_until" TIMESTAMPTZ DEFAULT null, '
    "\"last_error\" VARCHAR(200) NOT NULL DEFAULT '', "
    '"sent_at" TIMESTAMPTZ DEFAULT null, "read_at" TIMESTAMPTZ DEFAULT null, '
    '"created_at" TIMESTAMPTZ NOT NULL DEFAULT current_timestamp, '
    '"counts_toward_cap" BOOLEAN NOT NULL DEFAULT false)'
)
COLUMNS = (
    "id, message, device, transport, status, priority, attempts, next_attempt_at, lease_until, "
    "last_error, sent_at, read_at, created_at, counts_toward_cap"
)
DELIVERY_INDEXES = [
    "CREATE INDEX IF NOT EXISTS delivery_claim ON delivery (status, priority, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS delivery_inbox ON delivery (device, id)",
    "CREATE INDEX IF NOT EXISTS delivery_message_status ON delivery (message, status)",
]
DEVICE_RECIPIENT = (
    "CREATE INDEX IF NOT EXISTS device_recipient "
    "ON device (id, push_kind, locale, quiet_start, quiet_end)"
)
# PostgreSQL named the inline REFERENCES constraint itself: look it up.
PG_DROP_FOREIGN_KEYS = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN SELECT conname FROM pg_constraint
        WHERE conrelid = 'delivery'::regclass AND contype = 'f'
    LOOP
        EXECUTE format('ALTER TABLE delivery DROP CONSTRAINT %I', name);
    END LOOP;
END $$
"""


class _RawOnly(MigrationManager):
    """Records the column changes for Piccolo's schema snapshot, but leaves the work to the raw
    steps: Piccolo would ALTER COLUMN, which SQLite cannot, and would keep the constraint."""

    async def _run_alter_columns(self, backwards: bool = False) -> None:
        return None


async def forwards():
    manager = _RawOnly(migration_id=ID, app_name="relais", description=DESCRIPTION)
    manager.alter_column(
        table_class_name="Delivery",
        tablename="delivery",
        column_name="message",
        db_column_name="message",
        params={"index": False},
        old_params={"index": True},
        column_class=BigInt,
        old_column_class=BigInt,
        schema=None,
    )
    manager.alter_column(
        table_class_name="Delivery",
        tablename="delivery",
        column_name="device",
        db_column_name="device",
        params={"default": None, "index": False},
        old_params={"default": None, "index": True},
        column_class=UUID,
        old_column_class=ForeignKey,
        schema=None,
    )

    async def change():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            # SQLite drops a foreign key only by rebuilding the table (its single-column
            # indexes go with the old one). Nothing references delivery.
            await engine.run_ddl(SQLITE_DELIVERY)
            await engine.run_ddl(
                f"INSERT INTO delivery_rebuilt ({COLUMNS}) SELECT {COLUMNS} FROM delivery"
            )
            await engine.run_ddl("DROP TABLE delivery")
            await engine.run_ddl("ALTER TABLE delivery_rebuilt RENAME TO delivery")
            for statement in DELIVERY_INDEXES:
                await engine.run_ddl(statement)
        else:
            await engine.run_ddl(PG_DROP_FOREIGN_KEYS)
            await engine.run_ddl("DROP INDEX IF EXISTS delivery_device")
            await engine.run_ddl("DROP INDEX IF EXISTS delivery_message")
        await engine.run_ddl(DEVICE_RECIPIENT)

    async def undo():
        engine = engine_finder()
        await engine.run_ddl("DROP INDEX IF EXISTS device_recipient")
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS delivery_device ON delivery (device)")
        await engine.run_ddl("CREATE INDEX IF NOT EXISTS delivery_message ON delivery (message)")
        if engine.engine_type != "sqlite":  # (SQLite keeps the rebuilt table without the key)
            await engine.run_ddl("DELETE FROM delivery WHERE device NOT IN (SELECT id FROM device)")
            await engine.run_ddl(
                "ALTER TABLE delivery ADD FOREIGN KEY (device) REFERENCES device (id) "
                "ON DELETE CASCADE ON UPDATE CASCADE"
            )

    manager.add_raw(change)
    manager.add_raw_backwards(undo)
    return manager
