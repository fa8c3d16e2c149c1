"""Passport and ID-card appointments: sites, counters, schedules, bookings.

No seat is ever booked twice: a booking holds one row per 5-minute unit of its counter's time,
and each (counter, unit) is a unique column — the database refuses the overlap, on both engines
and with any number of API processes.
"""

from piccolo.columns import (
    JSON,
    UUID,
    BigSerial,
    Boolean,
    Date,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    SmallInt,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.organisation.tables import Commune


class Site(Table):
    """A place where residents lodge their ID-card and passport files (an ANTS meeting point)."""

    id = UUID(primary_key=True)
    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=150)
    address = Varchar(length=300, default="")
    zip_code = Varchar(length=10, default="")
    city = Varchar(length=100, default="")
    lat = DoublePrecision()
    lon = DoublePrecision()
    phone = Varchar(length=30, default="")
    email = Varchar(length=254, default="")
    website = Varchar(length=300, default="")
    timezone = Varchar(length=40, default="Europe/Paris")
    active = Boolean(default=True)
    # Booking policy
    step_minutes = SmallInt(default=15)
    base_cni_minutes = SmallInt(default=15)
    base_passport_minutes = SmallInt(default=20)
    base_both_minutes = SmallInt(default=25)
    per_extra_person_minutes = SmallInt(default=10)
    max_persons = SmallInt(default=4)
    min_notice_minutes = Integer(default=120)
    horizon_days = SmallInt(default=60)
    release_time = Varchar(length=5, default="08:00")
    hold_minutes = SmallInt(default=10)


class Counter(Table):
    """A station of a site (one agent, one biometric kit)."""

    id = UUID(primary_key=True)
    site = ForeignKey(Site, null=False, on_delete=OnDelete.cascade, index=True)
    name = Varchar(length=100)
    active = Boolean(default=True)


class OpeningRule(Table):
    """A weekly opening of a counter (wall-clock times), valid between two dates."""

    counter = ForeignKey(Counter, null=False, on_delete=OnDelete.cascade, index=True)
    weekday = SmallInt()  # 0 = Monday
    start_time = Varchar(length=5)
    end_time = Varchar(length=5)
    valid_from = Date()
    valid_to = Date(null=True, default=None)


class Closure(Table):
    """An exceptional closure of a site, or of one counter (holidays are computed)."""

    site = ForeignKey(Site, null=False, on_delete=OnDelete.cascade, index=True)
    counter = ForeignKey(Counter, null=True, on_delete=OnDelete.cascade)
    start_date = Date()
    end_date = Date()
    reason = Varchar(length=200, default="")


class Booking(Table):
    """An appointment: held while the form is filled, then confirmed (or cancelled, expired)."""

    id = UUID(primary_key=True)
    site = ForeignKey(Site, null=False, on_delete=OnDelete.cascade, index=True)
    counter = ForeignKey(Counter, null=False, on_delete=OnDelete.cascade, index=True)
    starts_at = Timestamptz(index=True)
    ends_at = Timestamptz()
    reason = Varchar(length=15)
    persons = SmallInt(default=1)
    # held, confirmed, cancelled, expired, checked_in, no_show, blocked
    status = Varchar(length=12, index=True)
    hold_expires_at = Timestamptz(null=True, default=None)
    account = ForeignKey(Account, null=True, on_delete=OnDelete.set_null, index=True)
    device = UUID(null=True, default=None, index=True)
    name = Varchar(length=150, default="")
    email = Varchar(length=254, default="", index=True)
    phone = Varchar(length=30, default="")
    ants_ids = JSON(default=[])
    cancel_token_hash = Varchar(length=64, null=True, default=None, unique=True)
    source = Varchar(length=10, default="app")  # app, staff
    sequence = Integer(default=0)
    reminded_48h = Boolean(default=False)
    reminded_2h = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    confirmed_at = Timestamptz(null=True, default=None)
    cancelled_at = Timestamptz(null=True, default=None)


class BookingUnit(Table):
    """One 5-minute unit of a counter's time taken by a booking: `unit_key` is unique."""

    booking = ForeignKey(Booking, null=False, on_delete=OnDelete.cascade, index=True)
    unit_key = Varchar(length=80, unique=True)  # "<counter id>:<unit start, UTC ISO>"


class BookingAnts(Table):
    """A pre-request number on a booking; `active_key` (unique) holds it while the booking lives,
    so a number has at most one active appointment in Relais."""

    booking = ForeignKey(Booking, null=False, on_delete=OnDelete.cascade, index=True)
    application_id = Varchar(length=10, index=True)
    active_key = Varchar(length=10, null=True, default=None, unique=True)


class AntsSync(Table):
    """Declarations and removals to send to the ANTS coordination API after commit (an outbox)."""

    id = BigSerial(primary_key=True)
    booking = UUID(index=True)
    action = Varchar(length=10)  # declare, delete
    application_id = Varchar(length=10)
    meeting_point = Varchar(length=150)
    meeting_point_id = Varchar(length=40)
    appointment_date = Varchar(length=19)
    management_url = Varchar(length=500, default="")
    status = Varchar(length=10, default="pending", index=True)
    attempts = SmallInt(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    last_error = Varchar(length=200, default="")


class WaitlistEntry(Table):
    """A resident waiting for an earlier slot (offered when one frees up)."""

    id = UUID(primary_key=True)
    site = ForeignKey(Site, null=True, on_delete=OnDelete.cascade)
    reason = Varchar(length=15)
    persons = SmallInt(default=1)
    before = Timestamptz()
    account = ForeignKey(Account, null=True, on_delete=OnDelete.cascade)
    device = UUID(null=True, default=None)
    email = Varchar(length=254, default="")
    active = Boolean(default=True, index=True)
    offered_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())


class BookingDay(Table):
    """The bookings that hold a seat for good (not holds) of one counter and UTC day, merged
    into islands (back-to-back bookings are one), as two comma-separated lists of epoch
    seconds (starts rounded down, ends up).

    Kept exact by database triggers on `booking` (see `summary_ddl`), in the transaction of
    every insert, update and delete, whoever writes (the app, the staff API, jobs, bulk
    loads): the busy-times query reads one short row per counter and day instead of every
    booking (a fully booked half year: 2 numbers a day, not 50). Holds are left out since
    they expire by themselves: they are read from `booking` (a partial index).
    """

    counter = UUID()
    day = Varchar(length=10)  # YYYY-MM-DD, the UTC date of the bookings' starts
    starts = Text()
    ends = Text()


# Statuses of a booking that holds its seat whatever the time ('held' only until it expires).
SEATED = ("confirmed", "checked_in", "no_show", "blocked")
_SEATED_SQL = ", ".join(f"'{status}'" for status in SEATED)

# Indexes Piccolo cannot declare (several columns): created by migrations and by the test
# set-up alike, through `backend.database.create_extra_indexes`.
EXTRA_INDEXES = [
    # Covering index of the busy-times query (schedule's _busy): the bookings of a few
    # counters over a date range, read from the index alone and in counter order, so SQLite
    # groups them per counter without sorting (bench_appointments: 20 sites over 3 months,
    # the query 70 → 25 ms; it replaced booking_site_time, by site first, which needed a
    # temporary B-tree to group).
    "CREATE INDEX IF NOT EXISTS booking_counter_time "
    "ON booking (counter, starts_at, ends_at, status, hold_expires_at)",
    "CREATE UNIQUE INDEX IF NOT EXISTS booking_day_key ON booking_day (counter, day)",
    # Live holds of a few counters over a range, beside booking_day (a small partial index).
    "CREATE INDEX IF NOT EXISTS booking_held "
    "ON booking (counter, starts_at, ends_at, hold_expires_at) WHERE status = 'held'",
]


def islands(intervals: str, postgres: bool, keys: str = "") -> str:
    """A SELECT of (``keys``, starts, ends): the (``keys``, s, e) rows of ``intervals`` merged
    per ``keys`` into islands (touching ones too: one booking right after another is one
    island), each list comma-separated. Gaps and islands: an interval opens an island unless
    it starts before an earlier one ended. A fully booked day is two islands per counter
    (morning, afternoon) instead of ~25 bookings: ten times fewer numbers to read."""
    join = "string_agg({}::text, ',')" if postgres else "group_concat({})"
    over = f"PARTITION BY {keys} ORDER BY s, e" if keys else "ORDER BY s, e"
    lead = f"{keys}, " if keys else ""
    return (
        f"SELECT {lead}{join.format('s')} AS starts, {join.format('e')} AS ends FROM ("
        f"SELECT {lead}min(s) AS s, max(e) AS e FROM ("
        f"SELECT {lead}s, e, sum(fresh) OVER ({over} ROWS UNBOUNDED PRECEDING) AS island FROM ("
        f"SELECT {lead}s, e, CASE WHEN s <= max(e) OVER ({over} "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) THEN 0 ELSE 1 END AS fresh "
        f"FROM ({intervals}) AS booked) AS marked) AS numbered GROUP BY {lead}island) AS merged "
        + (f"GROUP BY {keys}" if keys else "HAVING count(*) > 0")
    )


def _sqlite_refresh(row: str) -> str:
    """Statements recomputing booking_day for the counter and day of `row` (NEW or OLD)."""
    day = f"substr({row}.starts_at, 1, 10)"  # SQLite stores UTC times as text, date first
    booked = (
        "SELECT unixepoch(starts_at) AS s, unixepoch(ends_at) + (instr(ends_at, '.') > 0) AS e "
        f"FROM booking WHERE counter = {row}.counter AND starts_at >= {day} "
        f"AND starts_at < date({day}, '+1 day') AND status IN ({_SEATED_SQL})"
    )
    return (
        f"DELETE FROM booking_day WHERE counter = {row}.counter AND day = {day}; "
        "INSERT INTO booking_day (counter, day, starts, ends) "
        f"SELECT {row}.counter, {day}, starts, ends FROM ({islands(booked, False)});"
    )


_PG_BOOKED = (
    "SELECT floor(date_part('epoch', starts_at))::bigint AS s, "
    "ceil(date_part('epoch', ends_at))::bigint AS e FROM booking "
    "WHERE counter = split_part(key, ' ', 1)::uuid "
    "AND starts_at >= split_part(key, ' ', 2)::date::timestamp AT TIME ZONE 'UTC' "
    "AND starts_at < (split_part(key, ' ', 2)::date + 1)::timestamp AT TIME ZONE 'UTC' "
    f"AND status IN ({_SEATED_SQL})"
)
_PG_REFRESH = f"""
CREATE OR REPLACE FUNCTION booking_day_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    keys text[] := ARRAY[]::text[];
    key text;
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status IN ({_SEATED_SQL}) THEN
        keys := keys || (OLD.counter::text || ' ' || to_char(OLD.starts_at AT TIME ZONE 'UTC',
            'YYYY-MM-DD'));
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status IN ({_SEATED_SQL}) THEN
        keys := keys || (NEW.counter::text || ' ' || to_char(NEW.starts_at AT TIME ZONE 'UTC',
            'YYYY-MM-DD'));
    END IF;
    -- One writer per counter: a concurrent booking of the counter waits, then reads this
    -- one (each statement of a function takes a fresh snapshot). A row lock lives in the row,
    -- not in the shared lock table, so a bulk load of thousands of days cannot exhaust it
    -- (an advisory lock per day did). Sorted, so two moves in opposite directions cannot
    -- deadlock.
    FOR key IN SELECT DISTINCT split_part(k, ' ', 1) FROM unnest(keys) AS k ORDER BY 1 LOOP
        PERFORM 1 FROM counter WHERE id = key::uuid FOR NO KEY UPDATE;
    END LOOP;
    FOR key IN SELECT DISTINCT k FROM unnest(keys) AS k LOOP
        DELETE FROM booking_day
        WHERE counter = split_part(key, ' ', 1)::uuid AND day = split_part(key, ' ', 2);
        INSERT INTO booking_day (counter, day, starts, ends)
        SELECT split_part(key, ' ', 1)::uuid, split_part(key, ' ', 2), starts, ends
        FROM ({islands(_PG_BOOKED, True)}) AS day_islands;
    END LOOP;
    RETURN NULL;
END $$
"""


def summary_ddl(postgres: bool) -> list[str]:
    """The triggers keeping booking_day exact (created by the migration and the test set-up)."""
    if postgres:
        return [
            _PG_REFRESH,
            "DROP TRIGGER IF EXISTS booking_day_refresh ON booking",
            "CREATE TRIGGER booking_day_refresh AFTER INSERT OR DELETE "
            "OR UPDATE OF status, starts_at, ends_at, counter ON booking "
            "FOR EACH ROW EXECUTE FUNCTION booking_day_refresh()",
        ]
    return [
        "CREATE TRIGGER IF NOT EXISTS booking_day_insert AFTER INSERT ON booking "
        f"WHEN NEW.status IN ({_SEATED_SQL}) BEGIN {_sqlite_refresh('NEW')} END",
        "CREATE TRIGGER IF NOT EXISTS booking_day_delete AFTER DELETE ON booking "
        f"WHEN OLD.status IN ({_SEATED_SQL}) BEGIN {_sqlite_refresh('OLD')} END",
        "CREATE TRIGGER IF NOT EXISTS booking_day_update "
        "AFTER UPDATE OF status, starts_at, ends_at, counter ON booking "
        f"WHEN OLD.status IN ({_SEATED_SQL}) OR NEW.status IN ({_SEATED_SQL}) "
        f"BEGIN {_sqlite_refresh('OLD')} {_sqlite_refresh('NEW')} END",
    ]
