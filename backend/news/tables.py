"""News and events published by communications staff."""

from piccolo.columns import (
    JSON,
    UUID,
    BigInt,
    Boolean,
    DoublePrecision,
    ForeignKey,
    Integer,
    OnDelete,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table

from backend.organisation.tables import Commune


class NewsItem(Table):
    """A news article or an event (kind), from draft to archive."""

    id = UUID(primary_key=True)
    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=10, default="news")  # news, event
    state = Varchar(length=10, default="draft", index=True)  # draft scheduled published archived
    title = Varchar(length=200)
    summary = Varchar(length=500, default="")
    body_markdown = Text(default="")
    body_html = Text(default="")
    translations = JSON(default={})  # {"en": {"title", "summary", "body_markdown", "body_html"}}
    topics = JSON(default=[])
    pinned = Boolean(default=False)
    push = Boolean(default=False)  # broadcast a notification when published
    publish_at = Timestamptz(null=True, default=None, index=True)
    unpublish_at = Timestamptz(null=True, default=None, index=True)
    published_at = Timestamptz(null=True, default=None, index=True)
    pushed_at = Timestamptz(null=True, default=None)
    message = BigInt(null=True, default=None)
    targeted = Integer(default=0)
    views = Integer(default=0)
    sequence = Integer(default=0)  # iCalendar SEQUENCE: grows with every published change
    # Events
    starts_at = Timestamptz(null=True, default=None, index=True)
    ends_at = Timestamptz(null=True, default=None)
    all_day = Boolean(default=False)
    place_name = Varchar(length=200, default="")
    address = Text(default="")
    lat = DoublePrecision(null=True, default=None)
    lon = DoublePrecision(null=True, default=None)
    cell = BigInt(null=True, default=None)
    organiser = Varchar(length=200, default="")
    price = Varchar(length=100, default="")
    free = Boolean(default=True)
    accessibility = Text(default="")
    registration_url = Varchar(length=500, default="")
    event_status = Varchar(length=10, default="scheduled")  # scheduled, cancelled, postponed
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow(), index=True)


class NewsZone(Table):
    """A zone an item targets (none: the whole commune)."""

    item = ForeignKey(NewsItem, null=False, on_delete=OnDelete.cascade, index=True)
    zone: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Zone", module_path="alerts.tables"),
        null=False,
        on_delete=OnDelete.cascade,
        index=True,
    )


class NewsImage(Table):
    """An image of an item, through the media pipeline (metadata stripped)."""

    item = ForeignKey(NewsItem, null=False, on_delete=OnDelete.cascade, index=True)
    position = Integer(default=0)
    display_key = Varchar(length=120, index=True)
    thumb_key = Varchar(length=120, index=True)
    width = Integer()
    height = Integer()
    alt = Varchar(length=300, default="")


class NewsTopic(Table):
    """A topic of an item (the feed filters and broadcasts by topic)."""

    item = ForeignKey(NewsItem, null=False, on_delete=OnDelete.cascade, index=True)
    topic = Varchar(length=40, index=True)


class NewsRevision(Table):
    """How many times a commune's news (or events) changed: the feeds' validator.

    Every write that a feed could show bumps it in the writer's transaction, so it grows in
    commit order (the row lock queues concurrent writers), unlike timestamps taken before
    commit; rendered answers and ETags are keyed by it.
    """

    revision_key = Varchar(length=60, unique=True)  # "<commune id>:<kind>"
    commune = ForeignKey(Commune, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=10)  # news, event
    revision = BigInt(default=0)


# Indexes Piccolo cannot declare (several columns): created by migrations and by the test
# set-up alike, through `backend.database.create_extra_indexes`. The migration
# relais_2026_12_07t12_00_01_000000 holds the same statements.
EXTRA_INDEXES: list[str] = [
    # The feed: its first page and each cursor page are one index range, read in order.
    "CREATE INDEX IF NOT EXISTS news_item_feed "
    "ON news_item (commune, kind, state, pinned, published_at, id)",
    # The agenda's window starts where events end (an event without an end lasts its start).
    "CREATE INDEX IF NOT EXISTS news_item_agenda "
    "ON news_item (commune, kind, state, (COALESCE(ends_at, starts_at)))",
]
