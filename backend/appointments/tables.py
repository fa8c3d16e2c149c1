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
]
