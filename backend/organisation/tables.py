"""Communes and their services (voirie, état civil, ...), the unit staff are scoped to."""

from piccolo.columns import UUID, Boolean, ForeignKey, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class Commune(Table):
    """A commune (or an intercommunalité) using Relais."""

    id = UUID(primary_key=True)
    name = Varchar(length=150)
    insee_code = Varchar(length=5, unique=True)
    slug = Varchar(length=80, unique=True)
    address = Text(default="")
    phone = Varchar(length=30, default="")
    email = Varchar(length=254, default="")
    created_at = Timestamptz(default=TimestamptzNow())


class Service(Table):
    """A service of the commune that handles demandes and appointments."""

    id = UUID(primary_key=True)
    commune = ForeignKey(Commune, null=False)
    name = Varchar(length=150)
    slug = Varchar(length=80)
    address = Text(default="")
    phone = Varchar(length=30, default="")
    email = Varchar(length=254, default="")
    active = Boolean(default=True)
    created_at = Timestamptz(default=TimestamptzNow())

    # "<commune id>:<slug>": a portable two-column unique constraint (SQLite cannot add a
    # composite UNIQUE constraint through Piccolo, PostgreSQL can; one unique column works on both).
    commune_slug = Varchar(length=120, unique=True)
