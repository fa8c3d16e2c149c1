"""Accounts (citizens and staff), staff assignments to services, refresh tokens."""

from piccolo.columns import (
    UUID,
    Boolean,
    ForeignKey,
    OnDelete,
    Timestamptz,
    Varchar,
)
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from backend.organisation.tables import Commune, Service


class Account(Table):
    """A person who signs in: a citizen, or staff with a role.

    `email` is stored case-folded, so the unique index makes duplicates case-insensitive on both
    engines without a functional index.
    """

    id = UUID(primary_key=True)
    email = Varchar(length=254, unique=True)
    password_hash = Varchar(length=200, secret=True)
    display_name = Varchar(length=100, default="")
    phone = Varchar(length=30, default="")
    locale = Varchar(length=10, default="fr")
    role = Varchar(length=20, default="citizen", index=True)
    commune = ForeignKey(Commune, null=True, on_delete=OnDelete.set_null)
    is_active = Boolean(default=True)
    # Staff allowed to send crisis alerts (admins always are).
    can_send_alerts = Boolean(default=False)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())
    last_login_at = Timestamptz(null=True, default=None)


class StaffAssignment(Table):
    """A staff member works for a service of the commune."""

    account = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    service = ForeignKey(Service, null=False, on_delete=OnDelete.cascade)

    # "<account id>:<service id>": unique pair, portable (see Service.commune_slug).
    assignment_key = Varchar(length=80, unique=True)


class RefreshToken(Table):
    """One refresh token of a login family; only its SHA-256 is stored.

    Rotation marks the used token and issues the next one in the same family; presenting a used
    token again means it leaked, so the whole family is revoked.
    """

    id = UUID(primary_key=True)
    account = ForeignKey(Account, null=False, on_delete=OnDelete.cascade)
    family = UUID(index=True)
    token_hash = Varchar(length=64, unique=True)
    expires_at = Timestamptz()
    used_at = Timestamptz(null=True, default=None)
    revoked_at = Timestamptz(null=True, default=None)
    created_at = Timestamptz(default=TimestamptzNow())
