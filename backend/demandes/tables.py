"""The tracking core: categories with routing, demandes (reports are demandes with a place and
photos), their timeline, photos and followers."""

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    BigSerial,
    Boolean,
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
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from backend.accounts.tables import Account
from backend.organisation.tables import Commune, Service


class Category(Table):
    """A kind of demande ("Voirie › Nid-de-poule"): a tree, with its default service and SLA."""

    id = UUID(primary_key=True)
    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade)
    parent: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Category", module_path=__name__), null=True
    )
    name = Varchar(length=120)
    slug = Varchar(length=80)
    description = Text(default="")
    service = ForeignKey(Service, null=False, on_delete=OnDelete.restrict)
    sla_days = SmallInt(default=7)
    needs_location = Boolean(default=False)
    public = Boolean(default=False)  # reports shown on the public map
    allows_anonymous = Boolean(default=False)
    duplicate_radius_m = Integer(default=250)
    position = SmallInt(default=0)
    active = Boolean(default=True)
    # "<commune id>:<slug>": unique per commune, portably.
    commune_slug = Varchar(length=120, unique=True)
    updated_at = Timestamptz(default=TimestamptzNow())


class RoutingRule(Table):
    """Category + zone → service: a demande placed inside the zone goes to that service."""

    category = ForeignKey(Category, null=False, on_delete=OnDelete.cascade, index=True)
    zone: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Zone", module_path="alerts.tables"),
        null=False,
        on_delete=OnDelete.cascade,
    )
    service = ForeignKey(Service, null=False, on_delete=OnDelete.cascade)
    priority = SmallInt(default=0)


class ReferenceCounter(Table):
    """The last human reference number given per commune and year (2026-000123)."""

    counter_key = Varchar(length=60, unique=True)  # "<commune id>:<year>"
    value = Integer(default=0)


class Demande(Table):
    """A request or report, whatever the channel it came by."""

    id = UUID(primary_key=True)
    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade, index=True)
    reference = Varchar(length=20, unique=True)
    channel = Varchar(length=10)  # app, web, email, phone, counter, mail
    category = ForeignKey(Category, null=False, on_delete=OnDelete.restrict, index=True)
    description = Text()
    requester = ForeignKey(Account, null=True, on_delete=OnDelete.set_null, index=True)
    # The app installation that filed it (a device may report without an account).
    device: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Device", module_path="alerts.tables"),
        null=True,
        on_delete=OnDelete.set_null,
    )
    contact_name = Varchar(length=100, default="")
    contact_email = Varchar(length=254, default="")
    contact_phone = Varchar(length=30, default="")
    anonymous = Boolean(default=False)
    lat = DoublePrecision(null=True, default=None)
    lon = DoublePrecision(null=True, default=None)
    cell = BigInt(null=True, default=None, index=True)
    address = Text(default="")
    location_source = Varchar(length=10, default="")  # gps, pin, photo, address
    status = Varchar(length=12, default="received", index=True)
    service = ForeignKey(Service, null=False, on_delete=OnDelete.restrict, index=True)
    agent = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    due_at = Timestamptz(index=True)
    duplicate_of: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Demande", module_path=__name__), null=True
    )
    rejection_reason = Text(default="")
    public = Boolean(default=False)
    hidden = Boolean(default=False)
    reminded_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow(), index=True)
    updated_at = Timestamptz(default=TimestamptzNow())
    resolved_at = Timestamptz(null=True, default=None)
    closed_at = Timestamptz(null=True, default=None)
    # The caller-scoped Idempotency-Key it was filed with (SHA-256 hex), unique (EXTRA_INDEXES):
    # a retry can never file it twice, even after a crash lost the first answer.
    idempotency_key = Varchar(length=64, null=True, default=None)


class TimelineEntry(Table):
    """One event of a demande: status change, public reply, internal note, assignment, photo…"""

    id = BigSerial(primary_key=True)
    demande = ForeignKey(Demande, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=20)
    public = Boolean(default=True)
    status_from = Varchar(length=12, default="")
    status_to = Varchar(length=12, default="")
    text = Text(default="")
    author = ForeignKey(Account, null=True, on_delete=OnDelete.set_null)
    data = JSON(default={})
    created_at = Timestamptz(default=TimestamptzNow())


class Photo(Table):
    """A photo of a demande, stripped of metadata; staff may redact it."""

    id = UUID(primary_key=True)
    demande = ForeignKey(Demande, null=False, on_delete=OnDelete.cascade, index=True)
    position = SmallInt(default=0)
    display_key = Varchar(length=120)
    thumb_key = Varchar(length=120)
    width = Integer()
    height = Integer()
    redacted = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())


class Follower(Table):
    """A resident following a demande ("moi aussi"), by device and/or account."""

    demande = ForeignKey(Demande, null=False, on_delete=OnDelete.cascade, index=True)
    device: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Device", module_path="alerts.tables"),
        null=True,
        on_delete=OnDelete.cascade,
    )
    account = ForeignKey(Account, null=True, on_delete=OnDelete.cascade)
    follow_key = Varchar(length=90, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Open311Key(Table):
    """An API key allowed to file requests through Open311 (only its SHA-256 is kept)."""

    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade)
    name = Varchar(length=100)
    key_hash = Varchar(length=64, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class Open311Token(Table):
    """Token answered to an Open311 POST before the id is known (kept for clients that poll)."""

    token = Varchar(length=64, unique=True)
    demande = ForeignKey(Demande, null=False, on_delete=OnDelete.cascade)
    created_at = Timestamptz(default=TimestamptzNow())


# Indexes Piccolo cannot declare (several columns): created by migrations and by the test
# set-up alike, through `backend.database.create_extra_indexes`.
EXTRA_INDEXES: list[str] = [
    # The public map (reports.public_map, tests/bench/bench_reports_map.py). A box with few
    # demandes reads its cell ranges in this one: the map's filters are checked in the index,
    # and only the rows shown are read from the table.
    "CREATE INDEX IF NOT EXISTS demande_map_cell ON demande "
    "(cell, public, hidden, created_at, lat, lon)",
    # A larger box walks the newest public demandes in this one and checks the box, category
    # and status in the index, stopping at the cap.
    "CREATE INDEX IF NOT EXISTS demande_map ON demande "
    "(public, hidden, created_at, lat, lon, category, status)",
    # The same walk through one category only (the map filtered by category).
    "CREATE INDEX IF NOT EXISTS demande_map_category ON demande "
    "(category, public, hidden, created_at, lat, lon, status)",
    # One demande per Idempotency-Key (NULLs, demandes filed without a key, do not collide).
    "CREATE UNIQUE INDEX IF NOT EXISTS demande_idempotency_key ON demande (idempotency_key)",
]
