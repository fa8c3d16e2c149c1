"""CAP 1.2 output of Relais crisis alerts, and the Atom feed CAP aggregators poll.

Pure: no web framework, no ORM, standard library only. The alert domain turns its rows into
`CapMessage` values; this module checks them against the rules the OASIS XSD does not enforce
(or that Google Public Alerts adds) and writes documents that validate against ``cap12.xsd``.

Level mapping (Relais level → CAP severity / urgency / default certainty)::

    information      → Minor    / Future    / Likely
    avertissement    → Moderate / Expected  / Likely
    danger           → Severe   / Immediate / Observed
    urgence_extreme  → Extreme  / Immediate / Observed

`CapInfo.certainty` overrides the default certainty.

Rules enforced by `cap_xml` (CapError, a ValueError, says which one broke):

- aware datetimes only; written in Europe/Paris with an explicit ``±hh:mm`` offset, to the
  second (the XSD refuses ``Z``);
- identifier and sender: no spaces, commas, ``<`` or ``&`` (CAP §3.2.1), not empty;
- an Alert carries no references; an Update or Cancel carries at least one, none pointing at
  itself or sent after it (duplicates are dropped, order kept);
- only ``scope`` Public; ``msg_type`` Alert, Update or Cancel;
- at least one info, one info per language (tags compared case-insensitively);
- per info: known level, category, certainty and responseType; a language tag; event of at
  most 34 characters (Google: "less than 35"); non-empty headline and description; expires
  after sent and after effective; an absolute http(s) ``web``; at least one area;
- per area: a description and at least one polygon, circle or geocode; points within
  lat ±90 / lon ±180, written with 6 decimals; polygons closed automatically, with at least
  3 distinct points and a non-zero area (so ≥ 4 pairs); circle radius > 0 km.

Text is written as given except that line endings become LF and characters XML 1.0 cannot carry
(NUL and other C0 controls, U+FFFE/U+FFFF) are dropped: an alert must not fail on a stray
control character pasted from a word processor. Blank optional texts are omitted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from ._cap_build import CAP_NS, build_alert, reference_triple
from ._cap_model import (
    CAP_SEVERITY,
    CAP_URGENCY,
    DEFAULT_CERTAINTY,
    LEVELS,
    MAX_EVENT_LENGTH,
    CapArea,
    CapCategory,
    CapCertainty,
    CapError,
    CapInfo,
    CapMessage,
    CapReference,
    CapResponseType,
    CapStatus,
    Level,
    MsgType,
)
from ._cap_xml import serialize
from .atom import AtomEntry, AtomLink, atom_feed

__all__ = [
    "CAP_MIME_TYPE",
    "CAP_NS",
    "CAP_SEVERITY",
    "CAP_URGENCY",
    "DEFAULT_CERTAINTY",
    "LEVELS",
    "MAX_EVENT_LENGTH",
    "CapArea",
    "CapCategory",
    "CapCertainty",
    "CapError",
    "CapInfo",
    "CapMessage",
    "CapReference",
    "CapResponseType",
    "CapStatus",
    "Level",
    "MsgType",
    "cap_feed_atom",
    "cap_xml",
    "references_for",
    "validate_message",
]

CAP_MIME_TYPE = "application/cap+xml"


def cap_xml(message: CapMessage) -> bytes:
    """Render ``message`` as a CAP 1.2 ``<alert>`` document (UTF-8, with XML declaration).

    Elements follow the XSD sequence order. Raises CapError when a rule in this module's
    docstring is broken; nothing is written in that case.
    """
    return serialize(build_alert(message))


def validate_message(message: CapMessage) -> None:
    """Raise CapError if `cap_xml` would refuse ``message`` (check before storing an alert)."""
    build_alert(message)


def references_for(previous: CapMessage) -> tuple[CapReference, ...]:
    """The references an Update or Cancel of ``previous`` must carry.

    ``previous``'s own references followed by ``previous`` itself, so every message names the
    whole chain back to the original Alert. Deduplicated on the written triple (two datetimes in
    the same second are the same reference), first occurrence kept.
    """
    own = CapReference(previous.sender, previous.identifier, previous.sent)
    unique: dict[str, CapReference] = {}
    for reference in (*previous.references, own):
        unique.setdefault(reference_triple(reference), reference)
    return tuple(unique.values())


def cap_feed_atom(
    messages: Sequence[CapMessage],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    alert_url: Callable[[CapMessage], str],
    updated: datetime,
    author: str | None = None,
) -> bytes:
    """The Atom feed of the active alerts, as CAP aggregators (Google Public Alerts) read it.

    One entry per message, newest first: ``id`` is ``alert_url(message)`` (the absolute URL
    where its CAP document is served, stable for the message), ``link rel="alternate"
    type="application/cap+xml"`` points there, ``title`` is the first info's headline,
    ``summary`` its description, ``updated`` and ``published`` the message's ``sent``, and
    ``xml:lang`` its language; the first info's ``web`` page, if any, is a ``rel="related"``
    link. ``author`` (the feed's, required by RFC 4287) defaults to ``title``.

    Choosing which messages are active (latest of each chain, not expired) is the caller's job.
    Every message is checked as `cap_xml` would (CapError), so the feed never announces a CAP
    document that cannot be served.
    """
    for message in messages:
        validate_message(message)
    entries = []
    # Newest first, by instant (UTC: same-zone datetimes would compare by wall clock).
    for message in sorted(messages, key=lambda m: m.sent.astimezone(UTC), reverse=True):
        first = message.infos[0]
        url = alert_url(message)
        links = [AtomLink(href=url, type=CAP_MIME_TYPE)]
        if first.web and first.web.strip():
            links.append(AtomLink(href=first.web, rel="related", type="text/html"))
        entries.append(
            AtomEntry(
                id=url,
                title=first.headline,
                updated=message.sent,
                published=message.sent,
                links=tuple(links),
                summary=first.description,
                language=first.language,
            )
        )
    return atom_feed(
        entries,
        feed_id=feed_id,
        title=title,
        self_url=self_url,
        updated=updated,
        author=author if author is not None else title,
    )
