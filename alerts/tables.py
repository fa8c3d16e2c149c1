"""Everything that reaches a phone: devices and their push credential, the places and zones they
follow, crisis alerts, and the notification outbox (which doubles as the in-app inbox).

Links to the accounts and organisation domains are lazy references, so that `alerts` does not
import them.
"""

import uuid
from typing import Any

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


def int_id_of(device_id: object) -> int:
    """A device's id as an integer: its first 63 bits (`device.int_id`, unique)."""
    value = device_id if isinstance(device_id, uuid.UUID) else uuid.UUID(str(device_id))
    return value.int >> 65


def _given(name: str, data: dict[Any, Any] | None, kwargs: dict[str, Any]) -> Any:
    """The value a row's constructor got for column `name`, or `...`."""
    for column, value in (data or {}).items():
        if column._meta.name == name:
            return value
    return kwargs.get(name, ...)


class Device(Table):
    """An installation of the app: it can receive alerts and news with no account.

    Only the SHA-256 of the device token is stored. A device has at most one push credential:
    an FCM registration token (Android/iOS) or a Web Push subscription (PWA).
    """

    id = UUID(primary_key=True)
    token_hash = Varchar(length=64, unique=True)
    platform = Varchar(length=10)
    account: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Account", module_path="backend.accounts.tables"),
        null=True,
        on_delete=OnDelete.set_null,
    )
    locale = Varchar(length=10, default="fr")
    app_version = Varchar(length=40, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    last_seen_at = Timestamptz(default=TimestamptzNow())
    # Push credential: "fcm" (token) or "webpush" (endpoint + keys); null when none.
    push_kind = Varchar(length=10, null=True, default=None)
    push_token = Text(null=True, default=None)
    push_p256dh = Varchar(length=200, null=True, default=None)
    push_auth = Varchar(length=100, null=True, default=None)
    push_updated_at = Timestamptz(null=True, default=None)
    # Quiet hours in Europe/Paris wall-clock time ("22:00" to "07:00"); urgent alerts ignore them.
    quiet_start = Varchar(length=5, null=True, default=None)
    quiet_end = Varchar(length=5, null=True, default=None)
    # `int_id_of(id)`, copied onto the device's places: a preview counts tens of thousands of
    # devices by these integers, several times faster than by UUIDs. Unique, so that the count
    # stays exact (a new device whose first 63 bits are taken gets another id).
    int_id = BigInt(default=None, unique=True)

    def __init__(
        self,
        _data: dict[Any, Any] | None = None,
        _ignore_missing: bool = False,
        _exists_in_db: bool = False,
        **kwargs: Any,
    ) -> None:
        if _given("int_id", _data, kwargs) is ...:
            if (device_id := _given("id", _data, kwargs)) is ...:
                device_id = kwargs["id"] = uuid.uuid4()
            kwargs["int_id"] = int_id_of(device_id)
        super().__init__(_data, _ignore_missing, _exists_in_db, **kwargs)


class Place(Table):
    """A point a device follows ("home", "work", ...), or its live position (latest only).

    `cell` is the H3 cell at geo.STORAGE_RESOLUTION: areas select candidates by cell ranges.
    """

    id = UUID(primary_key=True)
    device = ForeignKey(Device, null=False, on_delete=OnDelete.cascade, index=True)
    kind = Varchar(length=10, default="place")  # "place" or "live"
    label = Varchar(length=60)
    lat = DoublePrecision()
    lon = DoublePrecision()
    cell = BigInt(index=True)
    address = Text(default="")
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    # The device's `int_id` (set from `device`): counting devices needs no lookup.
    device_int_id = BigInt(default=None)

    def __init__(
        self,
        _data: dict[Any, Any] | None = None,
        _ignore_missing: bool = False,
        _exists_in_db: bool = False,
        **kwargs: Any,
    ) -> None:
        device = _given("device", _data, kwargs)
        if _given("device_int_id", _data, kwargs) is ... and device not in (..., None):
            kwargs["device_int_id"] = int_id_of(getattr(device, "id", device))
        super().__init__(_data, _ignore_missing, _exists_in_db, **kwargs)


class Zone(Table):
    """A named area: a quartier, a commune, a risk zone drawn by staff."""

    id = UUID(primary_key=True)
    commune: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Commune", module_path="backend.organisation.tables"),
        null=True,
        on_delete=OnDelete.cascade,
    )
    name = Varchar(length=150)
    code = Varchar(length=60)
    kind = Varchar(length=30, default="quartier")
    geometry = JSON()
    min_lat = DoublePrecision()
    min_lon = DoublePrecision()
    max_lat = DoublePrecision()
    max_lon = DoublePrecision()
    area_km2 = DoublePrecision()
    # "<commune id>:<code>": unique per commune, portably (one unique column).
    zone_key = Varchar(length=120, unique=True)
    created_at = Timestamptz(default=TimestamptzNow())


class ZoneFollow(Table):
    """A device follows a zone (a quartier, the whole commune)."""

    device = ForeignKey(Device, null=False, on_delete=OnDelete.cascade, index=True)
    zone = ForeignKey(Zone, null=False, on_delete=OnDelete.cascade, index=True)
    follow_key = Varchar(length=80, unique=True)


class TopicFollow(Table):
    """A device follows a topic (travaux, culture, ...)."""

    device = ForeignKey(Device, null=False, on_delete=OnDelete.cascade, index=True)
    topic = Varchar(length=40, index=True)
    follow_key = Varchar(length=90, unique=True)


class Alert(Table):
    """One CAP message of a crisis alert: the first Alert, then its Updates and its Cancel.

    The messages of one alert share `chain` (the id of the first one); the newest message of a
    chain is the one residents see.
    """

    id = UUID(primary_key=True)
    chain = UUID(index=True)
    commune: ForeignKey[Table] = ForeignKey(
        LazyTableReference("Commune", module_path="backend.organisation.tables"),
        null=True,
        on_delete=OnDelete.cascade,
    )
    identifier = Varchar(length=150, unique=True)
    msg_type = Varchar(length=10, default="Alert")  # Alert, Update, Cancel
    state = Varchar(length=12, default="draft", index=True)  # draft, sent, superseded
    cap_references = JSON(default=[])  # [[sender, identifier, sent ISO], ...]
    severity = Varchar(length=20)
    category = Varchar(length=20, default="Safety")
    event = Varchar(length=40)
    headline = Varchar(length=140)
    description = Text()
    instruction = Text(default="")
    translations = JSON(default={})
    area = JSON()
    area_description = Varchar(length=200)
    expires_at = Timestamptz()
    sent_at = Timestamptz(null=True, default=None)
    created_by = UUID(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    targeted_devices = Integer(default=0)
    targeted_places = Integer(default=0)
    message = BigInt(null=True, default=None, index=True)


class Message(Table):
    """The content of one notification, written once and delivered to many devices."""

    id = BigSerial(primary_key=True)
    kind = Varchar(length=20)  # alert, news, event, demande, appointment, ...
    subject = Varchar(length=80, index=True)  # what it is about, e.g. "alert:<id>"
    title = Varchar(length=200)
    body = Text()
    data = JSON(default={})
    urgency = Varchar(length=10, default="normal")
    level = Varchar(length=20, default="information")
    collapse_key = Varchar(length=64, null=True, default=None)
    ttl_seconds = Integer(default=86400)
    created_at = Timestamptz(default=TimestamptzNow())
    expires_at = Timestamptz(null=True, default=None)


class Delivery(Table):
    """One message for one device: the outbox row the worker sends, and the inbox entry.

    `transport` is "fcm", "webpush", or "none" (in-app inbox only). The worker claims rows whose
    `status` is "pending" and `next_attempt_at` has come (or whose lease has run out).
    """

    id = BigSerial(primary_key=True)
    # Indexed by delivery_message_status and delivery_inbox below (their first column).
    message = BigInt()
    # The device's id, without a foreign key: on PostgreSQL each row's key check locks its
    # device row (half the time of a 100,000-device send). `devices.forget_device` deletes a
    # device's deliveries with it.
    device = UUID(default=None)
    transport = Varchar(length=10)
    status = Varchar(length=10, default="pending")
    priority = SmallInt(default=5)
    attempts = SmallInt(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow())
    lease_until = Timestamptz(null=True, default=None)
    last_error = Varchar(length=200, default="")
    sent_at = Timestamptz(null=True, default=None)
    read_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
    counts_toward_cap = Boolean(default=False)


# Indexes Piccolo cannot declare (several columns): created by migrations and by the test
# set-up alike, through `backend.database.create_extra_indexes`.
EXTRA_INDEXES = [
    "CREATE INDEX IF NOT EXISTS delivery_claim ON delivery (status, priority, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS delivery_inbox ON delivery (device, id)",
    "CREATE INDEX IF NOT EXISTS delivery_message_status ON delivery (message, status)",
    # Covering index: sending an alert reads what each targeted device needs without the table.
    "CREATE INDEX IF NOT EXISTS device_recipient "
    "ON device (id, push_kind, locale, quiet_start, quiet_end)",
    # Covering index: targeting reads (device, lat, lon, device_int_id) of cell ranges without
    # the table.
    "CREATE INDEX IF NOT EXISTS place_targeting ON place (cell, device, lat, lon, device_int_id)",
]
