"""E-mail to residents: an outbox written in the event's transaction, sent by the worker.

Domain code calls `queue_email(...)` inside its transaction; `backend.mail.sender` holds the
worker side (`send_due_emails`, `mail_job`) and is imported only by the worker, so the SMTP
client stays out of the API processes.
"""

from backend.mail.outbox import queue_email

__all__ = ["queue_email"]
