from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-12-07T20:10:01:000000"
VERSION = "1.38.0"
DESCRIPTION = (
    "booking_day kept exact by triggers on booking (filled from the bookings there are); "
    "a partial index of live holds"
)

# Self-contained on purpose (a migration must not change when the code does); the same
# statements are in backend.appointments.tables (EXTRA_INDEXES, summary_ddl, islands), which
# the test set-up runs.
COMMON = [
    "CREATE UNIQUE INDEX IF NOT EXISTS booking_day_key ON booking_day (counter, day)",
    "CREATE INDEX IF NOT EXISTS booking_held "
    "ON booking (counter, starts_at, ends_at, hold_expires_at) WHERE status = 'held'",
    "DELETE FROM booking_day",
]
POSTGRES = [
    *COMMON,
    "\nCREATE OR REPLACE FUNCTION booking_day_refresh() RETURNS trigger LANGUAGE plpgsql AS $$\nDECLARE\n    keys text[] := ARRAY[]::text[];\n    key text;\nBEGIN\n    IF TG_OP <> 'INSERT' AND OLD.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') THEN\n        keys := keys || (OLD.counter::text || ' ' || to_char(OLD.starts_at AT TIME ZONE 'UTC',\n            'YYYY-MM-DD'));\n    END IF;\n    IF TG_OP <> 'DELETE' AND NEW.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') THEN\n        keys := keys || (NEW.counter::text || ' ' || to_char(NEW.starts_at AT TIME ZONE 'UTC',\n            'YYYY-MM-DD'));\n    END IF;\n    -- One writer per counter: a concurrent booking of the counter waits, then reads this\n    -- one (each statement of a function takes a fresh snapshot). A row lock lives in the row,\n    -- not in the shared lock table, so a bulk load of thousands of days cannot exhaust it\n    -- (an advisory lock per day did). Sorted, so two moves in opposite directions cannot\n    -- deadlock.\n    FOR key IN SELECT DISTINCT split_part(k, ' ', 1) FROM unnest(keys) AS k ORDER BY 1 LOOP\n        PERFORM 1 FROM counter WHERE id = key::uuid FOR NO KEY UPDATE;\n    END LOOP;\n    FOR key IN SELECT DISTINCT k FROM unnest(keys) AS k LOOP\n        DELETE FROM booking_day\n        WHERE counter = split_part(key, ' ', 1)::uuid AND day = split_part(key, ' ', 2);\n        INSERT INTO booking_day (counter, day, starts, ends)\n        SELECT split_part(key, ' ', 1)::uuid, split_part(key, ' ', 2), starts, ends\n        FROM (SELECT string_agg(s::text, ',') AS starts, string_agg(e::text, ',') AS ends FROM (SELECT min(s) AS s, max(e) AS e FROM (SELECT s, e, sum(fresh) OVER (ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT s, e, CASE WHEN s <= max(e) OVER (ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT floor(date_part('epoch', starts_at))::bigint AS s, ceil(date_part('epoch', ends_at))::bigint AS e FROM booking WHERE counter = split_part(key, ' ', 1)::uuid AND starts_at >= split_part(key, ' ', 2)::date::timestamp AT TIME ZONE 'UTC' AND starts_at < (split_part(key, ' ', 2)::date + 1)::timestamp AT TIME ZONE 'UTC' AND status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY island) AS merged HAVING count(*) > 0) AS day_islands;\n    END LOOP;\n    RETURN NULL;\nEND $$\n",
    "DROP TRIGGER IF EXISTS booking_day_refresh ON booking",
    "CREATE TRIGGER booking_day_refresh AFTER INSERT OR DELETE OR UPDATE OF status, starts_at, ends_at, counter ON booking FOR EACH ROW EXECUTE FUNCTION booking_day_refresh()",
    "INSERT INTO booking_day (counter, day, starts, ends) SELECT counter, day, string_agg(s::text, ',') AS starts, string_agg(e::text, ',') AS ends FROM (SELECT counter, day, min(s) AS s, max(e) AS e FROM (SELECT counter, day, s, e, sum(fresh) OVER (PARTITION BY counter, day ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT counter, day, s, e, CASE WHEN s <= max(e) OVER (PARTITION BY counter, day ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT counter, to_char(starts_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, floor(date_part('epoch', starts_at))::bigint AS s, ceil(date_part('epoch', ends_at))::bigint AS e FROM booking WHERE status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY counter, day, island) AS merged GROUP BY counter, day",
]
SQLITE = [
    *COMMON,
    "CREATE TRIGGER IF NOT EXISTS booking_day_insert AFTER INSERT ON booking WHEN NEW.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') BEGIN DELETE FROM booking_day WHERE counter = NEW.counter AND day = substr(NEW.starts_at, 1, 10); INSERT INTO booking_day (counter, day, starts, ends) SELECT NEW.counter, substr(NEW.starts_at, 1, 10), starts, ends FROM (SELECT group_concat(s) AS starts, group_concat(e) AS ends FROM (SELECT min(s) AS s, max(e) AS e FROM (SELECT s, e, sum(fresh) OVER (ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT s, e, CASE WHEN s <= max(e) OVER (ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e FROM booking WHERE counter = NEW.counter AND starts_at >= substr(NEW.starts_at, 1, 10) AND starts_at < date(substr(NEW.starts_at, 1, 10), '+1 day') AND status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY island) AS merged HAVING count(*) > 0); END",
    "CREATE TRIGGER IF NOT EXISTS booking_day_delete AFTER DELETE ON booking WHEN OLD.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') BEGIN DELETE FROM booking_day WHERE counter = OLD.counter AND day = substr(OLD.starts_at, 1, 10); INSERT INTO booking_day (counter, day, starts, ends) SELECT OLD.counter, substr(OLD.starts_at, 1, 10), starts, ends FROM (SELECT group_concat(s) AS starts, group_concat(e) AS ends FROM (SELECT min(s) AS s, max(e) AS e FROM (SELECT s, e, sum(fresh) OVER (ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT s, e, CASE WHEN s <= max(e) OVER (ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e FROM booking WHERE counter = OLD.counter AND starts_at >= substr(OLD.starts_at, 1, 10) AND starts_at < date(substr(OLD.starts_at, 1, 10), '+1 day') AND status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY island) AS merged HAVING count(*) > 0); END",
    "CREATE TRIGGER IF NOT EXISTS booking_day_update AFTER UPDATE OF status, starts_at, ends_at, counter ON booking WHEN OLD.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') OR NEW.status IN ('confirmed', 'checked_in', 'no_show', 'blocked') BEGIN DELETE FROM booking_day WHERE counter = OLD.counter AND day = substr(OLD.starts_at, 1, 10); INSERT INTO booking_day (counter, day, starts, ends) SELECT OLD.counter, substr(OLD.starts_at, 1, 10), starts, ends FROM (SELECT group_concat(s) AS starts, group_concat(e) AS ends FROM (SELECT min(s) AS s, max(e) AS e FROM (SELECT s, e, sum(fresh) OVER (ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT s, e, CASE WHEN s <= max(e) OVER (ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e FROM booking WHERE counter = OLD.counter AND starts_at >= substr(OLD.starts_at, 1, 10) AND starts_at < date(substr(OLD.starts_at, 1, 10), '+1 day') AND status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY island) AS merged HAVING count(*) > 0); DELETE FROM booking_day WHERE counter = NEW.counter AND day = substr(NEW.starts_at, 1, 10); INSERT INTO booking_day (counter, day, starts, ends) SELECT NEW.counter, substr(NEW.starts_at, 1, 10), starts, ends FROM (SELECT group_concat(s) AS starts, group_concat(e) AS ends FROM (SELECT min(s) AS s, max(e) AS e FROM (SELECT s, e, sum(fresh) OVER (ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT s, e, CASE WHEN s <= max(e) OVER (ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e FROM booking WHERE counter = NEW.counter AND starts_at >= substr(NEW.starts_at, 1, 10) AND starts_at < date(substr(NEW.starts_at, 1, 10), '+1 day') AND status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY island) AS merged HAVING count(*) > 0); END",
    "INSERT INTO booking_day (counter, day, starts, ends) SELECT counter, day, group_concat(s) AS starts, group_concat(e) AS ends FROM (SELECT counter, day, min(s) AS s, max(e) AS e FROM (SELECT counter, day, s, e, sum(fresh) OVER (PARTITION BY counter, day ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM (SELECT counter, day, s, e, CASE WHEN s <= max(e) OVER (PARTITION BY counter, day ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh FROM (SELECT counter, substr(starts_at, 1, 10) AS day, unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e FROM booking WHERE status IN ('confirmed', 'checked_in', 'no_show', 'blocked')) AS booked) AS marked) AS numbered GROUP BY counter, day, island) AS merged GROUP BY counter, day",
]
UNDO_POSTGRES = [
    "DROP TRIGGER IF EXISTS booking_day_refresh ON booking",
    "DROP FUNCTION IF EXISTS booking_day_refresh()",
    "DROP INDEX IF EXISTS booking_held",
    "DROP INDEX IF EXISTS booking_day_key",
]
UNDO_SQLITE = [
    "DROP TRIGGER IF EXISTS booking_day_insert",
    "DROP TRIGGER IF EXISTS booking_day_delete",
    "DROP TRIGGER IF EXISTS booking_day_update",
    "DROP INDEX IF EXISTS booking_held",
    "DROP INDEX IF EXISTS booking_day_key",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="relais", description=DESCRIPTION)

    async def create():
        engine = engine_finder()
        for statement in POSTGRES if isinstance(engine, PostgresEngine) else SQLITE:
            await engine.run_ddl(statement)

    async def drop():
        engine = engine_finder()
        for statement in UNDO_POSTGRES if isinstance(engine, PostgresEngine) else UNDO_SQLITE:
            await engine.run_ddl(statement)

    manager.add_raw(create)
    manager.add_raw_backwards(drop)
    return manager
