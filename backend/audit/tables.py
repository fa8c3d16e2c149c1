"""The audit trail: who did what to which record, when."""

from piccolo.columns import JSONB, UUID, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class AuditEntry(Table):
    """One staff action (or a sensitive citizen action) worth answering for later."""

    actor_id = UUID(null=True, default=None, index=True)
    action = Varchar(length=60, index=True)
    target_type = Varchar(length=40)
    target_id = Varchar(length=64, index=True)
    detail = JSONB(default={})
    created_at = Timestamptz(default=TimestamptzNow())
