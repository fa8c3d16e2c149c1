"""A real SMTP server on loopback (aiosmtpd, in a background thread), for tests and benchmarks.

The e-mail worker really talks SMTP to it: greeting, EHLO, optional AUTH, MAIL, RCPT, DATA.
Accepted messages are parsed with the ``email`` package (``policy.default``), so a test reads
them as a mail client would::

    with SmtpServer() as smtp:
        settings = settings.with_(smtp_host=smtp.host, smtp_port=smtp.port)
        smtp.fail_temporarily(first=1)          # 451 for the first message
        smtp.reject("inconnu@exemple.fr")       # 550 at RCPT for this recipient
        smtp.down(); smtp.up()                  # connection refused, then back on the same port
        [message] = await smtp.wait_for(1)      # email.message.EmailMessage

As a process (benchmarks): ``python -m tests.peers.smtp --port 0`` prints ``READY host:port``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import email.policy
import threading
import time
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["Delivered", "SmtpServer"]

TEMPORARY_FAILURE = "451 4.3.0 Temporary local problem, try again later"
MAILBOX_UNAVAILABLE = "550 5.1.1 Mailbox unavailable"


@dataclass(frozen=True)
class Delivered:
    """The envelope of one accepted message (the headers may say otherwise: Bcc, lists)."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    login: str | None  # the AUTH user of the session, if any
    data: bytes = field(default=b"", repr=False)  # the message as it came over the wire


class _Controller(Controller):
    """A Controller that may bind port 0: the port is read back from the bound socket before
    aiosmtpd's readiness check connects to it."""

    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # One SMTP object per connection, each warning about AUTH without TLS: on loopback,
            # for tests, cleartext AUTH is the point.
            warnings.simplefilter("ignore")
            return super().factory()

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        async def bind() -> asyncio.AbstractServer:
            server = await self.loop.create_server(
                self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
            )
            self.port = server.sockets[0].getsockname()[1]
            return server

        return bind()


class _Handler:
    """aiosmtpd hooks, applying the peer's current behaviour."""

    def __init__(self, peer: SmtpServer) -> None:
        self.peer = peer

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.peer._rejections.get(address.lower())
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        peer = self.peer
        with peer._lock:  # decided on arrival: a later message must not take this one's fate
            peer.data_commands += 1
            delay = refusal = None
            if peer._slow_left > 0:
                peer._slow_left -= 1
                delay = peer._slow_seconds
            if peer._temporary_left > 0:
                peer._temporary_left -= 1
                refusal = peer._temporary_reply
        if delay:
            await asyncio.sleep(delay)
        if refusal is not None:
            return refusal
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        # SMTP's CRLF line ends become "\n", as a mail client stores them: the parsed body then
        # reads exactly as written.
        local = data.replace(b"\r\n", b"\n")
        message = cast(EmailMessage, email.message_from_bytes(local, policy=email.policy.default))
        login = session.auth_data
        user = login.login.decode() if isinstance(login, LoginPassword) else None
        with peer._lock:
            peer.messages.append(message)
            peer.envelopes.append(
                Delivered(envelope.mail_from or "", tuple(envelope.rcpt_tos), user, data)
            )
        return "250 2.0.0 OK: queued"


class SmtpServer:
    """An SMTP server on 127.0.0.1 with an ephemeral port and switchable behaviours.

    ``credentials=(user, password)`` requires AUTH (PLAIN or LOGIN, cleartext on loopback).
    """

    def __init__(self, host: str = "127.0.0.1", *, credentials: tuple[str, str] | None = None):
        self.host = host
        self.port = 0
        self.credentials = credentials
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Delivered] = []
        self.data_commands = 0  # DATA commands seen, accepted or not
        self._lock = threading.Lock()
        self._temporary_left = 0
        self._temporary_reply = TEMPORARY_FAILURE
        self._slow_left = 0
        self._slow_seconds = 0.0
        self._rejections: dict[str, str] = {}
        self._controller: _Controller | None = None

    # -- life cycle ---------------------------------------------------------------------------
    def start(self) -> SmtpServer:
        """Listen (on the previous port after ``down()``, else on a free one)."""
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=False
            )
        controller = _Controller(
            _Handler(self), hostname=self.host, port=self.port, ready_timeout=5.0, **kwargs
        )
        controller.start()
        self.port = controller.port
        self._controller = controller
        return self

    def stop(self) -> None:
        """Stop listening and drop open sessions."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def is_up(self) -> bool:
        """Whether the server is listening."""
        return self._controller is not None

    # -- behaviours ---------------------------------------------------------------------------
    def accept(self) -> None:
        """Accept everything again (clears temporary failures, slowness and rejections)."""
        with self._lock:
            self._temporary_left = 0
            self._slow_left = 0
            self._rejections.clear()

    def fail_temporarily(self, first: int = 1, reply: str = TEMPORARY_FAILURE) -> None:
        """Answer DATA of the next ``first`` messages with a 4xx reply (451 by default)."""
        with self._lock:
            self._temporary_left = first
            self._temporary_reply = reply

    def reject(self, recipient: str, reply: str = MAILBOX_UNAVAILABLE) -> None:
        """Refuse ``recipient`` at RCPT with a 5xx reply (550 by default), every time."""
        with self._lock:
            self._rejections[recipient.lower()] = reply

    def slow(self, seconds: float, first: int = 1) -> None:
        """Wait ``seconds`` before answering DATA of the next ``first`` messages (the message is
        still accepted afterwards, as a real server would, even if the client gave up)."""
        with self._lock:
            self._slow_left = first
            self._slow_seconds = seconds

    def down(self) -> None:
        """Stop listening: clients get "connection refused" until ``up()``."""
        self.stop()

    def up(self) -> None:
        """Listen again, on the same port."""
        self.start()

    def reset(self) -> None:
        """Forget received messages and counters (behaviours stay)."""
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self.data_commands = 0

    # -- observing ----------------------------------------------------------------------------
    async def wait_for(self, n: int, within: float = 10.0) -> list[EmailMessage]:
        """Wait (without blocking the caller's loop) until ``n`` messages were accepted;
        ``TimeoutError`` after ``within`` seconds."""
        deadline = time.monotonic() + within
        while len(self.messages) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)}/{n} messages after {within}s")
            await asyncio.sleep(0.005)
        return list(self.messages)

    async def wait_for_data(self, n: int = 1, within: float = 10.0) -> None:
        """Wait until ``n`` DATA commands arrived (accepted, refused or still being answered)."""
        deadline = time.monotonic() + within
        while self.data_commands < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.data_commands}/{n} DATA commands after {within}s")
            await asyncio.sleep(0.005)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.credentials is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.credentials
        )
        # handled=False: aiosmtpd then sends the 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=ok, auth_data=auth_data)


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted: ``--port N`` (0: any free port)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    server = SmtpServer()
    server.port = args.port
    with server:
        print(f"READY {server.host}:{server.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
