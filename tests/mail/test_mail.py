"""E-mail to residents: queued in the event's transaction, delivered over real SMTP (an aiosmtpd
server on loopback), retried on 4xx and outages, failed on 5xx, never sent twice."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage as MimeMessage
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import Any, cast

import pytest

from backend.database import transaction
from backend.mail import queue_email
from backend.mail.sender import mail_job, send_due_emails
from backend.mail.tables import EmailMessage
from backend.settings import Settings
from tests.peers.smtp import SmtpServer

MAIRIE = "Mairie de Bréal <ne-pas-repondre@breal-demo.fr>"
RESIDENT = "camille.lefevre@exemple.fr"
SUBJECT = "Accusé de réception de votre demande n° 2026-000123 — « Éclairage public »"
BODY = (
    "Bonjour Camille Lefèvre,\n\n"
    "Votre demande « Lampadaire éteint rue de l'Église » a été reçue le 3 mars 2026 par le\n"
    "service Voirie (2 place de la Mairie, 35310 Bréal-sous-Montfort, 02 99 60 00 00).\n"
    "Sans réponse dans un délai de deux mois, elle vaut décision implicite.\n\n"
    "— La mairie"
)
ICS = (
    "BEGIN:VCALENDAR\r\n"
    "VERSION:2.0\r\n"
    "PRODID:-//Relais//Rendez-vous//FR\r\n"
    "METHOD:REQUEST\r\n"
    "BEGIN:VEVENT\r\n"
    "UID:rdv-42@breal-demo.fr\r\n"
    "SEQUENCE:0\r\n"
    "DTSTAMP:20260301T090000Z\r\n"
    "DTSTART;TZID=Europe/Paris:20260310T143000\r\n"
    "DTEND;TZID=Europe/Paris:20260310T150000\r\n"
    "SUMMARY:Dépôt de dossier de carte d'identité\r\n"
    "LOCATION:Mairie de Bréal\\, accueil\r\n"
    "END:VEVENT\r\n"
    "END:VCALENDAR\r\n"
)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def mail_settings(settings: Settings, smtp: SmtpServer, tmp_path: Path) -> Settings:
    """Settings sending through the loopback server."""
    return settings.with_(
        smtp_host=smtp.host, smtp_port=smtp.port, mail_from=MAIRIE, var_dir=tmp_path
    )


async def _queue(to: str = RESIDENT, **kwargs: Any) -> int:
    async with transaction():
        return await queue_email(to, kwargs.pop("subject", SUBJECT), BODY, **kwargs)


async def _row(email_id: int) -> dict[str, Any]:
    row = await EmailMessage.select().where(EmailMessage.id == email_id).first()
    assert row is not None
    return row


async def _make_due() -> None:
    """Skip the backoff: every pending e-mail is due now."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    await EmailMessage.update({EmailMessage.next_attempt_at: past}).where(
        EmailMessage.status == "pending"
    )


def _plain_text(message: MimeMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return cast(str, body.get_content())


async def test_queued_email_reaches_the_resident_intact(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()

    assert await send_due_emails(mail_settings) == 1

    [message] = await smtp.wait_for(1)
    assert message["Subject"] == SUBJECT
    assert _plain_text(message).rstrip("\n") == BODY
    assert message["From"].addresses[0].display_name == "Mairie de Bréal"
    assert parseaddr(str(message["From"]))[1] == "ne-pas-repondre@breal-demo.fr"
    assert str(message["To"]) == RESIDENT
    sent_date = parsedate_to_datetime(str(message["Date"]))
    assert abs(sent_date - datetime.now(UTC)) < timedelta(minutes=1)
    assert str(message["Message-ID"]).endswith("@breal-demo.fr>")
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    # The envelope matches the headers, and every byte on the wire is 7-bit: accents travel
    # RFC 2047 encoded in headers and quoted-printable in the body, through any relay.
    [envelope] = smtp.envelopes
    assert envelope.mail_from == "ne-pas-repondre@breal-demo.fr"
    assert envelope.rcpt_tos == (RESIDENT,)
    assert envelope.data.isascii()
    row = await _row(email_id)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, "")
    assert row["sent_at"] is not None


async def test_appointment_invitation_arrives_as_text_calendar(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    await _queue(
        subject="Votre rendez-vous du 10 mars à 14 h 30",
        attachment=("rendez-vous.ics", "text/calendar", ICS),
    )

    await send_due_emails(mail_settings)

    [message] = await smtp.wait_for(1)
    assert message.get_content_type() == "multipart/mixed"
    assert _plain_text(message).rstrip("\n") == BODY
    [invitation] = list(message.iter_attachments())
    assert invitation.get_content_type() == "text/calendar"
    assert invitation.get_param("method") == "REQUEST"  # taken from the object's METHOD
    assert invitation.get_filename() == "rendez-vous.ics"
    assert cast(str, invitation.get_content()).splitlines() == ICS.splitlines()


async def test_temporary_failure_is_retried_and_delivered_once(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()
    smtp.fail_temporarily(first=1)

    await send_due_emails(mail_settings)

    row = await _row(email_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["last_error"].startswith("451 ")
    assert row["next_attempt_at"] > datetime.now(UTC)  # backing off: not sent again at once
    assert await send_due_emails(mail_settings) == 0

    await _make_due()
    assert await send_due_emails(mail_settings) == 1

    await smtp.wait_for(1)
    assert smtp.data_commands == 2
    assert len(smtp.messages) == 1
    row = await _row(email_id)
    assert (row["status"], row["attempts"]) == ("sent", 2)


async def test_mailbox_unavailable_fails_for_good_without_stopping_the_others(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    unknown = await _queue("inconnu@exemple.fr")
    known = await _queue()
    smtp.reject("inconnu@exemple.fr")

    assert await send_due_emails(mail_settings) == 2

    row = await _row(unknown)
    assert row["status"] == "failed"
    assert row["last_error"] == "550 5.1.1 Mailbox unavailable"
    assert (await _row(known))["status"] == "sent"  # same connection, after the refusal
    await _make_due()
    assert await send_due_emails(mail_settings) == 0
    assert [str(m["To"]) for m in smtp.messages] == [RESIDENT]


async def test_repeated_temporary_failures_give_up_after_the_last_attempt(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()
    smtp.fail_temporarily(first=10)

    await send_due_emails(mail_settings, max_attempts=2)
    await _make_due()
    await send_due_emails(mail_settings, max_attempts=2)

    row = await _row(email_id)
    assert row["status"] == "failed"
    assert row["last_error"].startswith("abandon après 2 tentatives : 451 ")
    await _make_due()
    assert await send_due_emails(mail_settings, max_attempts=2) == 0
    assert smtp.messages == []


async def test_mail_waits_while_the_server_is_down_and_leaves_when_it_is_back(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()
    smtp.down()

    for _ in range(3):  # an outage spends no attempt: it is the relay's fault, not the message's
        await _make_due()
        assert await send_due_emails(mail_settings) == 1
    row = await _row(email_id)
    assert (row["status"], row["attempts"]) == ("pending", 0)
    assert "serveur SMTP injoignable" in row["last_error"]

    smtp.up()
    await _make_due()
    await send_due_emails(mail_settings)

    [message] = await smtp.wait_for(1)
    assert message["Subject"] == SUBJECT
    assert (await _row(email_id))["status"] == "sent"


async def test_a_timeout_is_retried(db: str, smtp: SmtpServer, mail_settings: Settings) -> None:
    email_id = await _queue()
    smtp.slow(2.0, first=1)

    await send_due_emails(mail_settings, command_timeout=0.3)

    row = await _row(email_id)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "Timed out" in row["last_error"]
    await _make_due()
    await send_due_emails(mail_settings, command_timeout=0.3)
    await smtp.wait_for(1)
    assert (await _row(email_id))["status"] == "sent"


async def test_a_dead_workers_mail_is_sent_once_its_lease_runs_out(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()
    smtp.slow(5.0, first=1)
    doomed = asyncio.create_task(send_due_emails(mail_settings, lease_seconds=0.5))
    await smtp.wait_for_data(1)  # the worker is in the middle of DATA when it dies
    doomed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await doomed

    assert (await _row(email_id))["status"] == "sending"
    assert await send_due_emails(mail_settings) == 0  # still leased to the dead worker
    await asyncio.sleep(0.6)
    assert await send_due_emails(mail_settings) == 1

    await smtp.wait_for(1)
    assert (await _row(email_id))["status"] == "sent"


async def test_a_worker_past_its_lease_cannot_undo_the_next_workers_delivery(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    email_id = await _queue()
    smtp.slow(1.0, first=2)
    smtp.fail_temporarily(first=1)  # the first worker will hear 451, well after its lease
    late = asyncio.create_task(send_due_emails(mail_settings, lease_seconds=0.3))
    await smtp.wait_for_data(1)
    await asyncio.sleep(0.4)
    # The lease ran out: a second worker takes the e-mail over while the first still waits.
    taker = asyncio.create_task(send_due_emails(mail_settings))
    await smtp.wait_for_data(2)

    await late  # its 451 arrives while the taker is sending: it must not requeue the e-mail
    assert await taker == 1

    assert (await _row(email_id))["status"] == "sent"
    await _make_due()
    assert await send_due_emails(mail_settings) == 0
    assert len(smtp.messages) == 1


async def test_two_workers_never_send_the_same_email_twice(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    async with transaction():
        ids = [await queue_email(f"habitant{i}@exemple.fr", SUBJECT, BODY) for i in range(40)]

    async def worker() -> int:
        claimed = 0
        while handled := await send_due_emails(mail_settings, batch=5):
            claimed += handled
        return claimed

    shares = await asyncio.gather(worker(), worker())

    received = Counter(str(m["To"]) for m in await smtp.wait_for(40))
    assert set(received) == {f"habitant{i}@exemple.fr" for i in range(40)}
    assert max(received.values()) == 1
    assert sum(shares) == 40 and min(shares) > 0  # both really worked, side by side
    statuses = await EmailMessage.select(EmailMessage.status).where(EmailMessage.id.is_in(ids))
    assert {r["status"] for r in statuses} == {"sent"}


async def test_nothing_is_sent_when_the_event_rolls_back(
    db: str, smtp: SmtpServer, mail_settings: Settings
) -> None:
    with pytest.raises(RuntimeError):
        async with transaction():
            await queue_email(RESIDENT, SUBJECT, BODY)
            raise RuntimeError("the demande could not be registered")

    assert await EmailMessage.count() == 0
    assert await send_due_emails(mail_settings) == 0
    assert smtp.messages == []


async def test_relay_requiring_a_login_gets_it(db: str, settings: Settings) -> None:
    with SmtpServer(credentials=("relais", "s3cret")) as relay:
        good = settings.with_(
            smtp_host=relay.host, smtp_port=relay.port, smtp_user="relais", smtp_password="s3cret"
        )
        email_id = await _queue()

        await send_due_emails(good.with_(smtp_password="wrong"))
        row = await _row(email_id)
        assert (row["status"], row["attempts"]) == ("pending", 0)  # waits for a fixed config
        assert "535" in row["last_error"]

        await _make_due()
        await send_due_emails(good)
        await relay.wait_for(1)
        assert relay.envelopes[0].login == "relais"


async def test_without_smtp_host_emails_are_written_as_eml_files(
    db: str, settings: Settings, tmp_path: Path
) -> None:
    demo = settings.with_(smtp_host="", var_dir=tmp_path, mail_from=MAIRIE)
    first = await _queue()
    await _queue(attachment=("rendez-vous.ics", "text/calendar; method=REQUEST", ICS))

    assert await send_due_emails(demo) == 2

    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 2
    assert files[0].name.endswith(f"-{first}.eml")
    message = cast(
        MimeMessage, email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    )
    assert message["Subject"] == SUBJECT
    assert _plain_text(message).rstrip("\n") == BODY
    assert not list((tmp_path / "outbox").glob("*.part"))
    assert {r["status"] for r in await EmailMessage.select(EmailMessage.status)} == {"sent"}


async def test_the_worker_job_sends_every_five_seconds(
    db: str, settings: Settings, tmp_path: Path
) -> None:
    job = mail_job()
    await _queue()

    assert (job.name, job.seconds) == ("send-emails", 5)
    assert await job.run(settings.with_(smtp_host="", var_dir=tmp_path)) == 1
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


@pytest.mark.parametrize(
    "address",
    [
        "",
        "   ",
        "jean.dupont",
        "@exemple.fr",
        "jean@",
        "jean dupont@exemple.fr",
        "a@b.fr\nBcc: x@y",
    ],
)
async def test_malformed_addresses_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        await queue_email(address, SUBJECT, BODY)


async def test_subject_is_folded_onto_one_line(db: str) -> None:
    email_id = await _queue(subject="Votre demande\r\nBcc: tous@exemple.fr " + "é" * 300)

    subject = (await _row(email_id))["subject"]
    assert "\n" not in subject and "\r" not in subject
    assert len(subject) == 250 and subject.endswith("…")
