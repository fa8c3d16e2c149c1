"""The e-mail worker: claim due outbox rows, send them over SMTP, record each outcome.

- Claims are exclusive, as for push deliveries (`alerts.delivery`): on PostgreSQL
  `FOR UPDATE SKIP LOCKED` lets several workers share the outbox; on SQLite the claim's
  IMMEDIATE transaction serialises them. A claimed row is ``sending`` with a lease: its
  ``next_attempt_at`` holds the lease's end, so the rows of a worker that died are claimed
  again once it runs out (a crash loses nothing; at worst one e-mail goes out twice).
- Outcomes follow SMTP's reply classes: 2xx sent; 4xx, a dropped connection or a timeout are
  retried with jittered exponential backoff, up to ``max_attempts``; 5xx is final (``failed``,
  with the server's reply as ``last_error``). An unreachable relay (connection refused, TLS or
  login failure) is the installation's problem, not the message's: the batch waits without
  spending its attempts, and leaves as soon as the relay is back.
- Without ``smtp_host`` (development, demo) each message is written as an ``.eml`` file under
  ``var_dir/outbox`` and marked sent: a demo never needs an SMTP server.

aiosmtplib rather than smtplib in a thread: the worker is an asyncio process (APScheduler's
AsyncIOScheduler), aiosmtplib speaks SMTP on that loop with a timeout on every command, keeps
one connection for a whole batch, and raises typed errors carrying the reply code, which is
exactly what the retry decision needs. smtplib would need a thread per batch and the same
error mapping, with cancellation that cannot interrupt a blocked socket.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from email.message import Message
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import aiosmtplib

from alerts.delivery import backoff_seconds
from backend.database import is_postgres, transaction
from backend.mail.tables import EmailMessage
from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs import Job

__all__ = ["OutgoingEmail", "build_message", "mail_job", "send_due_emails"]

log = logging.getLogger("relais.mail")

MAX_ATTEMPTS = 10
# 30 s, 1 min, 2 min … capped at an hour: ten attempts span about three hours, long enough for
# greylisting and a relay's restart; the relay itself then queues for days.
BACKOFF_BASE = 30.0
# Long enough for a batch on a slow relay; a batch stops sending at half the lease (below).
LEASE_SECONDS = 300.0
# How soon to try again when the relay cannot be reached at all (jittered, attempts kept).
RELAY_RETRY_SECONDS = 30.0
SMTP_TIMEOUT = 30.0
BATCH = 50
JOB_SECONDS = 5
JOB_MAX_BATCHES = 20  # per tick: a busy outbox drains batch after batch, a tick stays short

_POLICY = SMTP_POLICY  # CRLF line ends, RFC 2047 encoded headers: what goes on the wire
_FILE_POLICY = SMTP_POLICY.clone(linesep="\n")  # .eml files: local line ends, as clients save


@dataclass(frozen=True)
class OutgoingEmail:
    """One claimed outbox row, as the sender needs it."""

    id: int
    to_address: str
    subject: str
    body_text: str
    attachment_name: str
    attachment_type: str
    attachment: str
    attempts: int
    created_at: datetime
    lease_end: datetime  # also the claim's fencing token (see `_still_ours`)


class _RelayUnavailable(Exception):
    """The SMTP relay cannot be used at all (the batch waits, attempts are not spent)."""


# -- claiming and recording ----------------------------------------------------------------


async def _claim(now: datetime, batch: int, lease_seconds: float) -> list[OutgoingEmail]:
    """Take up to ``batch`` due rows: pending and due, or sending with an expired lease."""
    lock = " FOR UPDATE SKIP LOCKED" if is_postgres() else ""
    sql = (
        "UPDATE email_message SET status = 'sending', next_attempt_at = {}, "
        "attempts = attempts + 1 "
        "WHERE id IN (SELECT id FROM email_message WHERE "
        "((status = 'pending' AND next_attempt_at <= {}) "
        "OR (status = 'sending' AND next_attempt_at < {})) "
        "ORDER BY next_attempt_at, id LIMIT {}" + lock + ") "
        "RETURNING id, to_address, subject, body_text, attachment_name, attachment_type, "
        "attachment, attempts, created_at"
    )
    lease_end = now + timedelta(seconds=lease_seconds)
    async with transaction():
        rows = await EmailMessage.raw(sql, lease_end, now, now, batch)
    claimed = [
        OutgoingEmail(
            id=int(r["id"]),
            to_address=r["to_address"],
            subject=r["subject"],
            body_text=r["body_text"],
            attachment_name=r["attachment_name"] or "",
            attachment_type=r["attachment_type"] or "",
            attachment=r["attachment"] or "",
            attempts=int(r["attempts"]),
            created_at=_as_datetime(r["created_at"]),
            lease_end=lease_end,
        )
        for r in rows
    ]
    claimed.sort(key=lambda e: e.id)  # RETURNING order is unspecified; send oldest first
    return claimed


def _still_ours(mails: Sequence[OutgoingEmail]) -> Any:
    # Only while our claim holds: once a lease ran out another worker may have claimed the row,
    # which moved its lease end; the exact lease end we wrote is the claim's fencing token.
    return (
        EmailMessage.id.is_in([m.id for m in mails])
        & (EmailMessage.status == "sending")
        & (EmailMessage.next_attempt_at == mails[0].lease_end)
    )


async def _update(mail: OutgoingEmail, values: dict[Any, Any]) -> None:
    async with transaction():
        await EmailMessage.update(values).where(_still_ours([mail]))


async def _mark_sent(mail: OutgoingEmail) -> None:
    now = datetime.now(UTC)
    await _update(
        mail,
        {EmailMessage.status: "sent", EmailMessage.sent_at: now, EmailMessage.last_error: ""},
    )


async def _mark_failed(mail: OutgoingEmail, reason: str) -> None:
    log.warning("e-mail #%d failed for good: %s", mail.id, reason)
    await _update(mail, {EmailMessage.status: "failed", EmailMessage.last_error: reason[:200]})


async def _retry_later(
    mail: OutgoingEmail, reason: str, *, max_attempts: int, backoff_base: float
) -> None:
    """A temporary failure of this message: back off, or give up after ``max_attempts``."""
    if mail.attempts >= max_attempts:
        await _mark_failed(mail, f"abandon après {mail.attempts} tentatives : {reason}")
        return
    wait = backoff_seconds(mail.attempts, backoff_base)
    log.info("e-mail #%d deferred %.0f s: %s", mail.id, wait, reason)
    await _update(
        mail,
        {
            EmailMessage.status: "pending",
            EmailMessage.next_attempt_at: datetime.now(UTC) + timedelta(seconds=wait),
            EmailMessage.last_error: reason[:200],
        },
    )


async def _release(emails: Sequence[OutgoingEmail], reason: str, delay: float) -> None:
    """Hand rows back untried (relay unreachable, batch out of time): attempts not spent."""
    if not emails:
        return
    when = datetime.now(UTC) + timedelta(seconds=random.uniform(delay / 2, delay) if delay else 0)
    async with transaction():
        await EmailMessage.update(
            {
                EmailMessage.status: "pending",
                EmailMessage.attempts: EmailMessage.attempts - 1,
                EmailMessage.next_attempt_at: when,
                EmailMessage.last_error: reason[:200],
            }
        ).where(_still_ours(emails))


# -- composing -------------------------------------------------------------------------------


def build_message(settings: Settings, mail: OutgoingEmail, now: datetime) -> MimeMessage:
    """The MIME message of an outbox row: headers, UTF-8 text body, optional attachment.

    Non-ASCII headers (French subjects, a "Mairie de Bréal" sender) are RFC 2047 encoded by the
    ``email`` package; text parts are quoted-printable, so the message is 7-bit clean for any
    relay. The Message-ID is derived from the row, so a retried e-mail keeps its identity.
    """
    message = MimeMessage(policy=_POLICY)
    message["From"] = settings.mail_from
    message["To"] = mail.to_address
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(now.astimezone(ZoneInfo(settings.timezone)))
    message["Message-ID"] = _message_id(settings, mail)
    # RFC 3834: vacation responders and mailing lists do not answer automated mail.
    message["Auto-Submitted"] = "auto-generated"
    message["Content-Language"] = "fr"
    message.set_content(mail.body_text, subtype="plain", charset="utf-8", cte="quoted-printable")
    if mail.attachment_name:
        _attach(message, mail)
    return message


def _attach(message: MimeMessage, mail: OutgoingEmail) -> None:
    parsed = Message()
    parsed["Content-Type"] = mail.attachment_type or "application/octet-stream"
    maintype, subtype = parsed.get_content_maintype(), parsed.get_content_subtype()
    params = {k.lower(): v for k, v in (parsed.get_params() or [])[1:] if k.lower() != "charset"}
    if (maintype, subtype) == ("text", "calendar") and "method" not in params:
        # Calendar clients show Accept/Decline only when the part says what the iCalendar
        # object does (RFC 6047): take it from the object's METHOD property.
        for line in mail.attachment.splitlines():
            if line.upper().startswith("METHOD:"):
                params["method"] = line.split(":", 1)[1].strip().upper()
                break
    if maintype == "text":
        message.add_attachment(
            mail.attachment,
            subtype=subtype,
            charset="utf-8",
            cte="quoted-printable",
            filename=mail.attachment_name,
            params=params,
        )
    else:
        message.add_attachment(
            mail.attachment.encode("utf-8"),
            maintype=maintype,
            subtype=subtype,
            filename=mail.attachment_name,
            params=params,
        )


def _message_id(settings: Settings, mail: OutgoingEmail) -> str:
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "relais.invalid"
    seed = f"{mail.id}|{mail.created_at.isoformat()}|{mail.to_address}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:16]
    return f"<relais.{mail.id}.{digest}@{domain}>"


# -- sending ---------------------------------------------------------------------------------


async def send_due_emails(
    settings: Settings,
    batch: int = BATCH,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    lease_seconds: float = LEASE_SECONDS,
    backoff_base: float = BACKOFF_BASE,
    command_timeout: float = SMTP_TIMEOUT,
) -> int:
    """Claim up to ``batch`` due e-mails, send them, record each outcome; returns how many
    rows were claimed (0: nothing was due).

    Sent through ``settings.smtp_host`` when set, else written as ``.eml`` files under
    ``settings.var_dir / "outbox"``. Safe to run from several workers at once.
    """
    claimed = await _claim(datetime.now(UTC), batch, lease_seconds)
    if not claimed:
        return 0
    if settings.smtp_host:
        await _send_smtp(
            settings,
            claimed,
            max_attempts=max_attempts,
            lease_seconds=lease_seconds,
            backoff_base=backoff_base,
            command_timeout=command_timeout,
        )
    else:
        await _write_files(settings, claimed, max_attempts=max_attempts, backoff_base=backoff_base)
    return len(claimed)


async def _connect(settings: Settings, command_timeout: float) -> aiosmtplib.SMTP:
    implicit_tls = settings.smtp_port == 465 and not settings.smtp_starttls
    client = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_user or None,
        password=settings.smtp_password or None,
        use_tls=implicit_tls,  # port 465: TLS from the first byte (RFC 8314)
        # STARTTLS when asked, and never opportunistically: a relay with a certificate we
        # cannot verify would otherwise fail every message, not just the insecure ones.
        start_tls=settings.smtp_starttls,
        timeout=command_timeout,
    )
    try:
        await client.connect()  # greeting, EHLO, STARTTLS and AUTH when configured
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _RelayUnavailable(_reason(exc)) from exc
    return client


async def _send_smtp(
    settings: Settings,
    claimed: Sequence[OutgoingEmail],
    *,
    max_attempts: int,
    lease_seconds: float,
    backoff_base: float,
    command_timeout: float,
) -> None:
    try:
        client = await _connect(settings, command_timeout)
    except _RelayUnavailable as exc:
        log.warning(
            "SMTP relay %s:%d unavailable (%s): %d e-mail(s) wait for it",
            settings.smtp_host,
            settings.smtp_port,
            exc,
            len(claimed),
        )
        await _release(claimed, f"serveur SMTP injoignable : {exc}", RELAY_RETRY_SECONDS)
        return
    # Stop well before the lease ends: past it another worker may claim (and send) these rows.
    stop_at = time.monotonic() + lease_seconds / 2
    try:
        for index, mail in enumerate(claimed):
            if not client.is_connected or time.monotonic() > stop_at:
                # The connection dropped or time ran out: the rest goes out at the next tick.
                await _release(claimed[index:], "envoi interrompu, nouvel essai", 0)
                break
            await _send_one(client, settings, mail, max_attempts, backoff_base)
    except BaseException:
        # Cancelled (worker shutting down) or a database error: drop the line without a QUIT,
        # which would wait behind a reply still pending. Unrecorded rows keep their lease.
        client.close()
        raise
    await _close(client)


async def _send_one(
    client: aiosmtplib.SMTP,
    settings: Settings,
    mail: OutgoingEmail,
    max_attempts: int,
    backoff_base: float,
) -> None:
    try:
        message = build_message(settings, mail, datetime.now(UTC))
    except (ValueError, TypeError, LookupError) as exc:  # a row no header can carry
        await _mark_failed(mail, f"message invalide : {exc}")
        return
    try:
        await client.send_message(message)
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refused = exc.recipients[0]
        await _outcome(mail, refused.code, refused.message, max_attempts, backoff_base)
    except aiosmtplib.SMTPResponseException as exc:  # MAIL FROM or DATA refused
        await _outcome(mail, exc.code, exc.message, max_attempts, backoff_base)
    except aiosmtplib.SMTPNotSupported as exc:  # e.g. a non-ASCII address without SMTPUTF8
        await _mark_failed(mail, _reason(exc))
    except (aiosmtplib.SMTPException, OSError) as exc:  # disconnected, timed out
        # The server may have accepted the message just before the line dropped: a retry can
        # duplicate it, which beats losing an acknowledgment the law requires.
        await _retry_later(mail, _reason(exc), max_attempts=max_attempts, backoff_base=backoff_base)
    else:
        await _mark_sent(mail)
        log.info("e-mail #%d sent to %s", mail.id, mail.to_address)


async def _outcome(
    mail: OutgoingEmail, code: int, text: str, max_attempts: int, backoff_base: float
) -> None:
    reason = f"{code} {' '.join(text.split())}"
    if 500 <= code < 600:  # permanent (RFC 5321 §4.2.1): retrying cannot help
        await _mark_failed(mail, reason)
    else:
        await _retry_later(mail, reason, max_attempts=max_attempts, backoff_base=backoff_base)


async def _close(client: aiosmtplib.SMTP) -> None:
    if client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError):
            client.close()


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


# -- file backend ----------------------------------------------------------------------------


async def _write_files(
    settings: Settings,
    claimed: Sequence[OutgoingEmail],
    *,
    max_attempts: int,
    backoff_base: float,
) -> None:
    folder = settings.var_dir / "outbox"
    for mail in claimed:
        now = datetime.now(UTC)
        try:
            data = build_message(settings, mail, now).as_bytes(policy=_FILE_POLICY)
        except (ValueError, TypeError, LookupError) as exc:
            await _mark_failed(mail, f"message invalide : {exc}")
            continue
        path = folder / f"{now:%Y%m%dT%H%M%S}-{mail.id}.eml"
        try:
            await asyncio.to_thread(_write_atomically, path, data)
        except OSError as exc:
            await _retry_later(
                mail, _reason(exc), max_attempts=max_attempts, backoff_base=backoff_base
            )
            continue
        await _mark_sent(mail)
        log.info(
            "e-mail #%d to %s written to %s (no SMTP host set)", mail.id, mail.to_address, path
        )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".eml.part")  # a reader never sees half a message
    partial.write_bytes(data)
    partial.replace(path)


# -- the worker's job ------------------------------------------------------------------------


async def _send_emails_job(settings: Settings) -> int:
    total = 0
    for _ in range(JOB_MAX_BATCHES):
        handled = await send_due_emails(settings, BATCH)
        total += handled
        if handled < BATCH:
            break
    return total


def mail_job() -> Job:
    """The worker's "send-emails" job: every 5 s, send what is due (several batches if busy)."""
    from backend.jobs import Job  # here: backend.jobs imports this module to register the job

    return Job("send-emails", JOB_SECONDS, _send_emails_job)


def _as_datetime(value: Any) -> datetime:
    # SQLite hands back RETURNING columns without their declared type: ISO text, not datetime.
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
