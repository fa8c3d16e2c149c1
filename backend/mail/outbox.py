"""Queue an e-mail in the caller's transaction; the worker (`backend.mail.sender`) sends it.

Residents receive these e-mails: the SVE acknowledgments of registration and of receipt of a
demande (CRPA L112-8, R112-5), its status changes, appointment confirmations with an iCalendar
invitation. Writing the row in the same transaction as the event means the e-mail exists if and
only if the event does: a rolled-back demande sends nothing, a committed one is never silently
dropped, and no SMTP server is ever waited for while a request holds a transaction.
"""

from __future__ import annotations

from backend.database import transaction
from backend.mail.tables import EmailMessage

__all__ = ["queue_email"]

# Column lengths of `EmailMessage`: PostgreSQL enforces them, SQLite does not, so check here.
_MAX_ADDRESS = 254
_MAX_SUBJECT = 250
_MAX_ATTACHMENT_NAME = 100
_MAX_ATTACHMENT_TYPE = 100


async def queue_email(
    to: str,
    subject: str,
    body: str,
    *,
    attachment: tuple[str, str, str] | None = None,
) -> int:
    """Queue one plain-text e-mail to a resident and return its outbox id.

    Call it inside the transaction of the event it announces (the registration of a demande,
    a status change, a booked appointment): `database.transaction()` nests, so the row commits
    or rolls back with that event. The worker sends it within seconds, retrying while the
    SMTP relay is unavailable.

    ``attachment`` is ``(file name, MIME type, text content)``, for instance
    ``("rendez-vous.ics", "text/calendar; method=REQUEST", ics_text)``.

    The address is checked only minimally (non-empty, one "@" with text on both sides, no
    whitespace): whether a mailbox exists is the receiving server's answer, recorded as the
    message's ``last_error``. Raises ``ValueError`` for a malformed address or attachment.
    The subject is folded onto one line (a header cannot hold a line break) and shortened to
    its column's length.
    """
    address = _checked_address(to)
    name, mime_type, content = _checked_attachment(attachment)
    async with transaction():
        rows = await EmailMessage.insert(
            EmailMessage(
                to_address=address,
                subject=_one_line(subject, _MAX_SUBJECT),
                body_text=body,
                attachment_name=name,
                attachment_type=mime_type,
                attachment=content,
            )
        ).returning(EmailMessage.id)
    return int(rows[0]["id"])


def _checked_address(to: str) -> str:
    address = to.strip()
    local, at, domain = address.rpartition("@")
    if not address or not at or not local or not domain:
        raise ValueError(f"adresse e-mail invalide : {to!r}")
    # Whitespace (CR/LF above all) would let an address inject headers or split the envelope.
    if any(c.isspace() for c in address) or len(address) > _MAX_ADDRESS:
        raise ValueError(f"adresse e-mail invalide : {to!r}")
    return address


def _checked_attachment(attachment: tuple[str, str, str] | None) -> tuple[str, str, str]:
    if attachment is None:
        return "", "", ""
    name, mime_type, content = attachment
    name, mime_type = name.strip(), mime_type.strip()
    maintype, slash, subtype = mime_type.partition(";")[0].strip().partition("/")
    if not name or len(name) > _MAX_ATTACHMENT_NAME or any(c in name for c in "\r\n/\\"):
        raise ValueError(f"nom de pièce jointe invalide : {name!r}")
    if not (maintype and slash and subtype) or len(mime_type) > _MAX_ATTACHMENT_TYPE:
        raise ValueError(f"type MIME de pièce jointe invalide : {mime_type!r}")
    if any(c in mime_type for c in "\r\n"):
        raise ValueError(f"type MIME de pièce jointe invalide : {mime_type!r}")
    return name, mime_type, content


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
