"""Devices (app installations) and, later, their push credentials and followed places."""

from piccolo.columns import UUID, ForeignKey, OnDelete, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.columns.reference import LazyTableReference
from piccolo.table import Table


class Device(Table):
    """An installation of the app: it can receive alerts and news with no account.

    Only the SHA-256 of the device token is stored. The account link is lazy so that `alerts`
    does not import the accounts domain.
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
