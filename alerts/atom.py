"""Atom 1.0 (RFC 4287) feed writer, standard library only.

Generic on purpose: the CAP feed (`alerts.cap.cap_feed_atom`) maps alerts onto `AtomEntry`; news
can do the same with its articles. Text is written as ``type="text"``, so no HTML ever needs
escaping twice.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from ._cap_xml import serialize, sub, timestamp, xml_text

__all__ = ["ATOM_NS", "AtomEntry", "AtomLink", "atom_feed"]

ATOM_NS: Final = "http://www.w3.org/2005/Atom"
_XML_LANG: Final = "{http://www.w3.org/XML/1998/namespace}lang"


@dataclass(frozen=True, kw_only=True)
class AtomLink:
    """``<link>``; ``rel`` defaults to "alternate" as in RFC 4287 §4.2.7.2."""

    href: str
    rel: str = "alternate"
    type: str | None = None
    hreflang: str | None = None


@dataclass(frozen=True, kw_only=True)
class AtomEntry:
    """One ``<entry>``. ``id`` must be an absolute IRI that never changes for this entry."""

    id: str
    title: str
    updated: datetime
    links: tuple[AtomLink, ...]
    published: datetime | None = None
    summary: str | None = None
    language: str | None = None


def atom_feed(
    entries: Sequence[AtomEntry],
    *,
    feed_id: str,
    title: str,
    self_url: str,
    updated: datetime,
    author: str,
    language: str | None = None,
) -> bytes:
    """Render an Atom 1.0 feed document (UTF-8 bytes with XML declaration).

    Always written: feed ``id``, ``title``, ``updated``, ``author/name`` (so entries need none)
    and ``link rel="self"``; per entry ``id``, ``title``, ``updated`` and its links, plus
    ``published`` and ``summary`` when given. Datetimes must be aware and are written in
    Europe/Paris with their offset. Raises ValueError when the result would not be valid Atom:
    a relative id, an entry without ``rel="alternate"`` link (we write no ``content``), two
    alternates with the same type and hreflang, an empty title or author, a naive datetime.
    """
    feed = ET.Element("feed", xmlns=ATOM_NS)
    if language is not None:
        feed.set(_XML_LANG, language)
    sub(feed, "id", _iri(feed_id, "feed id"))
    sub(feed, "title", _text(title, "feed title"), type="text")
    sub(feed, "updated", timestamp(updated))
    sub(sub(feed, "author"), "name", _text(author, "feed author"))
    sub(feed, "link", rel="self", type="application/atom+xml", href=_iri(self_url, "self link"))
    for entry in entries:
        _entry(feed, entry)
    return serialize(feed)


def _entry(feed: ET.Element, entry: AtomEntry) -> None:
    alternates = [(link.type, link.hreflang) for link in entry.links if link.rel == "alternate"]
    if not alternates:
        raise ValueError(f"entry {entry.id}: a link rel='alternate' is required (no content)")
    if len(set(alternates)) != len(alternates):
        raise ValueError(f"entry {entry.id}: two alternate links with the same type and hreflang")
    element = sub(feed, "entry")
    if entry.language is not None:
        element.set(_XML_LANG, entry.language)
    sub(element, "id", _iri(entry.id, "entry id"))
    sub(element, "title", _text(entry.title, "entry title"), type="text")
    sub(element, "updated", timestamp(entry.updated))
    if entry.published is not None:
        sub(element, "published", timestamp(entry.published))
    for link in entry.links:
        attrib = {"rel": link.rel, "href": _iri(link.href, "link href")}
        if link.type is not None:
            attrib["type"] = link.type
        if link.hreflang is not None:
            attrib["hreflang"] = link.hreflang
        sub(element, "link", **attrib)
    if entry.summary is not None and (summary := xml_text(entry.summary)).strip():
        sub(element, "summary", summary, type="text")


def _iri(value: str, field: str) -> str:
    # RFC 4287 §4.2.6: ids are absolute IRIs; relative links would resolve against whatever
    # base the aggregator guesses, so require absolute ones everywhere.
    if not urlsplit(value).scheme or any(char.isspace() for char in value):
        raise ValueError(f"{field} {value!r}: an absolute IRI is required")
    return value


def _text(value: str, field: str) -> str:
    text = xml_text(value)
    if not text.strip():
        raise ValueError(f"{field} is empty")
    return text
