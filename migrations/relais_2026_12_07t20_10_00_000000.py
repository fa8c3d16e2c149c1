from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import UUID, Text, Varchar
from piccolo.columns.defaults.uuid import UUID4
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T20:10:00:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "booking_day: per counter and UTC day, the bookings that hold a seat for good (busy "
    "times read one row per day instead of every booking)"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    manager.add_table(
        class_name="BookingDay",
        tablename="booking_day",
        schema=None,
        columns=None,
    )

    manager.add_column(
        table_class_name="BookingDay",
        tablename="booking_day",
        column_name="counter",
        db_column_name="counter",
        column_class_name="UUID",
        column_class=UUID,
        params={
            "default": UUID4(),
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="BookingDay",
        tablename="booking_day",
        column_name="day",
        db_column_name="day",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 10,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="BookingDay",
        tablename="booking_day",
        column_name="starts",
        db_column_name="starts",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="BookingDay",
        tablename="booking_day",
        column_name="ends",
        db_column_name="ends",
        column_class_name="Text",
        column_class=Text,
        params={
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
