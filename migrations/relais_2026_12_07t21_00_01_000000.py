from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import BigInt
from piccolo.columns.indexes import IndexMethod
from piccolo.engine import engine_finder

ID = "2026-12-07T21:00:01:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "Integer device ids for previews: device.int_id (unique) and place.device_int_id, "
    "in the targeting index place_targeting (replaces place_cell_device)"
)

# Self-contained on purpose (a migration must not change when the code does). int_id is the
# first 63 bits of the device's UUID (alerts.tables.int_id_of): the first 16 hex digits,
# shifted right by one bit.
PG_INT_ID = "(('x' || substr(replace(id::text, '-', ''), 1, 16))::bit(64) >> 1)::bigint"
# SQLite reads no hexadecimal: the first 15 digits times 8, plus the 16th digit's top 3 bits
# (every term fits a signed 64-bit integer).
_DIGIT = "(instr('0123456789abcdef', substr(h, {}, 1)) - 1)"
SQLITE_INT_ID = (
    "(SELECT ("
    + " + ".join(f"{_DIGIT.format(i)} * {16 ** (15 - i)}" for i in range(1, 16))
    + f") * 8 + ({_DIGIT.format(16)} >> 1) FROM (SELECT replace(lower(device.id), '-', '') AS h))"
)
PLACE_TARGETING = (
    "CREATE INDEX IF NOT EXISTS place_targeting ON place (cell, device, lat, lon, device_int_id)"
)
COLUMN = {
    "default": None,
    "null": False,
    "primary_key": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}


class _RawOnly(MigrationManager):
    """Records the new columns for Piccolo's schema snapshot, but leaves the work to the raw
    steps: existing rows need their values before the columns can be NOT NULL and unique."""

    async def _run_add_columns(self, backwards: bool = False) -> None:
        return None


async def forwards():
    manager = _RawOnly(migration_id=ID, app_name="relais", description=DESCRIPTION)
    manager.add_column(
        table_class_name="Device",
        tablename="device",
        column_name="int_id",
        db_column_name="int_id",
        column_class_name="BigInt",
        column_class=BigInt,
        params={**COLUMN, "unique": True},
        schema=None,
    )
    manager.add_column(
        table_class_name="Place",
        tablename="place",
        column_name="device_int_id",
        db_column_name="device_int_id",
        column_class_name="BigInt",
        column_class=BigInt,
        params={**COLUMN, "unique": False},
        schema=None,
    )

    async def add():
        engine = engine_finder()
        if engine.engine_type == "sqlite":
            # (SQLite adds a NOT NULL column only with a default; the values follow at once.)
            await engine.run_ddl("ALTER TABLE device ADD COLUMN int_id INTEGER NOT NULL DEFAULT 0")
            await engine.run_ddl(f"UPDATE device SET int_id = {SQLITE_INT_ID}")
            await engine.run_ddl("CREATE UNIQUE INDEX device_int_id_key ON device (int_id)")
            await engine.run_ddl(
                "ALTER TABLE place ADD COLUMN device_int_id INTEGER NOT NULL DEFAULT 0"
            )
            await engine.run_ddl(
                "UPDATE place SET device_int_id = "
                "(SELECT int_id FROM device WHERE device.id = place.device)"
            )
        else:
            await engine.run_ddl("ALTER TABLE device ADD COLUMN int_id BIGINT")
            await engine.run_ddl(f"UPDATE device SET int_id = {PG_INT_ID}")
            await engine.run_ddl("ALTER TABLE device ALTER COLUMN int_id SET NOT NULL")
            await engine.run_ddl(
                "ALTER TABLE device ADD CONSTRAINT device_int_id_key UNIQUE (int_id)"
            )
            await engine.run_ddl("ALTER TABLE place ADD COLUMN device_int_id BIGINT")
            await engine.run_ddl(
                "UPDATE place SET device_int_id = d.int_id FROM device d WHERE d.id = place.device"
            )
            await engine.run_ddl("ALTER TABLE place ALTER COLUMN device_int_id SET NOT NULL")
        await engine.run_ddl("DROP INDEX IF EXISTS place_cell_device")
        await engine.run_ddl(PLACE_TARGETING)

    async def remove():
        engine = engine_finder()
        await engine.run_ddl(
            "CREATE INDEX IF NOT EXISTS place_cell_device ON place (cell, device, lat, lon)"
        )
        await engine.run_ddl("DROP INDEX IF EXISTS place_targeting")
        if engine.engine_type == "sqlite":
            await engine.run_ddl("DROP INDEX IF EXISTS device_int_id_key")
        await engine.run_ddl("ALTER TABLE place DROP COLUMN device_int_id")
        await engine.run_ddl("ALTER TABLE device DROP COLUMN int_id")

    manager.add_raw(add)
    manager.add_raw_backwards(remove)
    return manager
