"""Stored answers of POSTs sent with an `Idempotency-Key`."""

from piccolo.columns import JSONB, Bytea, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class IdempotencyRecord(Table):
    """The first answer to (caller, key): replayed when the same request comes again."""

    scope = Varchar(length=80)
    key = Varchar(length=255)
    request_hash = Varchar(length=64)
    status_code = Integer()
    response_headers = JSONB(default=[])
    response_body = Bytea(default=b"")
    created_at = Timestamptz(default=TimestamptzNow(), index=True)

    # SHA-256 of (scope, key): one answer per caller and key, enforced by the database.
    scope_key = Varchar(length=64, unique=True)
