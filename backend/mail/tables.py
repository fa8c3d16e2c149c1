"""The e-mail outbox: messages written in the transaction of the event, sent by the worker."""

from piccolo.columns import BigSerial, SmallInt, Text, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table


class EmailMessage(Table):
    """One e-mail to send (SVE acknowledgments, status changes, reminders to services)."""

    id = BigSerial(primary_key=True)
    to_address = Varchar(length=254)
    subject = Varchar(length=250)
    body_text = Text()
    # Optional attachment (an iCalendar invitation, for instance): name, MIME type, content.
    attachment_name = Varchar(length=100, default="")
    attachment_type = Varchar(length=100, default="")
    attachment = Text(default="")
    # pending, sending, sent, failed; while a row is "sending", next_attempt_at is the end of
    # the lease of the worker sending it.
    status = Varchar(length=10, default="pending", index=True)
    attempts = SmallInt(default=0)
    next_attempt_at = Timestamptz(default=TimestamptzNow(), index=True)
    last_error = Varchar(length=200, default="")
    created_at = Timestamptz(default=TimestamptzNow())
    sent_at = Timestamptz(null=True, default=None)
