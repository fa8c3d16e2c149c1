"""XML plumbing shared by the CAP writer and the Atom feed: text, timestamps, serialisation."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

PARIS: Final = ZoneInfo("Europe/Paris")

# Characters XML 1.0 cannot carry at all (not even as &#x..;): C0 controls other than tab/LF/CR,
# lone surrogates, U+FFFE/U+FFFF. ElementTree would write them and produce a broken document.
_NOT_XML_CHAR: Final = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Word and some editors use VT/FF as soft line breaks; keep the break rather than glue words.
_LINE_BREAKS: Final = re.compile("\r\n|[\r\x0b\x0c]")

_DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def xml_text(value: str) -> str:
    """Return ``value`` as XML can carry it.

    Line endings become ``\\n`` (an XML parser would turn a raw CR into LF anyway, so this is
    what every reader sees); characters XML 1.0 forbids are dropped. Escaping of ``& < >`` is
    ElementTree's job at serialisation.
    """
    return _NOT_XML_CHAR.sub("", _LINE_BREAKS.sub("\n", value))


def timestamp(moment: datetime) -> str:
    """RFC 3339 in Europe/Paris civil time with an explicit offset, to the second.

    ``2026-11-22T08:15:00+01:00`` in winter, ``+02:00`` in summer; never ``Z`` (the CAP XSD
    refuses it) and never microseconds. Raises ValueError for a naive datetime: guessing its
    zone could shift an alert by an hour or two.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: a time zone is required")
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    """Append a child element (with text, already cleaned by the caller) and return it."""
    child = ET.SubElement(parent, tag, attrib)
    if text is not None:
        child.text = text
    return child


def serialize(root: ET.Element) -> bytes:
    """UTF-8 document with an XML declaration, indented for the people who read feeds."""
    ET.indent(root, space="  ")
    return _DECLARATION + ET.tostring(root, encoding="unicode").encode("utf-8") + b"\n"
