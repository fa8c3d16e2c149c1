"""Open311 GeoReport v2 documents in XML and JSON (the spec's "Spark convention").

One tree of plain Python values is rendered both ways:

- XML: a declaration, no namespace, every list item wrapped in its singular tag
  (``services/service``, ``service_requests/request``, ``errors/error``...), ``None`` as an
  empty element, booleans as ``true``/``false``;
- JSON: collections (services, requests, the POST and token answers, errors) are bare arrays,
  even for one item; discovery and a service definition are objects.

No web framework here: the controller wraps the bytes in a response.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any, Literal

import msgspec

Format = Literal["xml", "json"]
FORMATS: tuple[Format, ...] = ("xml", "json")

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
MEDIA_TYPES: dict[Format, str] = {"xml": XML_MEDIA_TYPE, "json": JSON_MEDIA_TYPE}

# The tag of one item inside each list element (XML); JSON uses a plain array instead.
ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
}

# Written by hand: ElementTree's own declaration uses single quotes, and the spec's examples
# (and some hand-rolled client parsers) expect the usual double-quoted form.
_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all, even escaped (C0 controls but tab, LF, CR; surrogates;
# U+FFFE/U+FFFF). A resident's description may contain them; left in, the document breaks.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    return xml_safe(str(value))


def _append(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    _fill(element, tag, value)


def _fill(element: ET.Element, tag: str, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _append(element, key, child)
    elif isinstance(value, list | tuple):
        item_tag = ITEM_TAGS.get(tag, "item")
        for child in value:
            _append(element, item_tag, child)
    else:
        element.text = _text(value)


def to_xml(root: str, body: dict[str, Any] | list[Any]) -> bytes:
    """The XML document `<root>…</root>` of `body`, with its declaration."""
    element = ET.Element(root)
    _fill(element, root, body)
    return _DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")


def to_json(body: dict[str, Any] | list[Any]) -> bytes:
    """The JSON document of `body` (UTF-8, non-ASCII kept as is)."""
    return msgspec.json.encode(body)


def render(fmt: Format, root: str, body: dict[str, Any] | list[Any]) -> tuple[bytes, str]:
    """The document in the asked format and its media type."""
    if fmt == "json":
        return to_json(body), JSON_MEDIA_TYPE
    return to_xml(root, body), XML_MEDIA_TYPE


def errors_body(errors: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """The spec's error list: `[{code, description}]` (one entry per problem)."""
    return [{"code": code, "description": description} for code, description in errors]


def split_format(name: str) -> tuple[str, Format] | None:
    """`"pothole.json"` → `("pothole", "json")`; None without a known format suffix."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or suffix not in FORMATS:
        return None
    fmt: Format = "json" if suffix == "json" else "xml"
    return stem, fmt


def format_of_path(path: str) -> Format:
    """The format a request path asks for; XML (the mandatory one) when it is unclear."""
    return "json" if path.rstrip("/").endswith(".json") else "xml"
