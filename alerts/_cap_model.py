"""The input of the CAP 1.2 writer: plain frozen dataclasses and the Relais → CAP level mapping.

The alert domain converts its rows into these; `alerts.cap` checks and renders them. Nothing is
validated at construction: every rule lives in one place, the builder, so that `cap_xml` and
`validate_message` can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal, get_args

__all__ = [
    "CAP_CATEGORIES",
    "CAP_CERTAINTIES",
    "CAP_RESPONSE_TYPES",
    "CAP_SEVERITY",
    "CAP_STATUSES",
    "CAP_URGENCY",
    "DEFAULT_CERTAINTY",
    "LEVELS",
    "MAX_EVENT_LENGTH",
    "MSG_TYPES",
    "CapArea",
    "CapCategory",
    "CapCertainty",
    "CapError",
    "CapInfo",
    "CapMessage",
    "CapReference",
    "CapResponseType",
    "CapSeverity",
    "CapStatus",
    "CapUrgency",
    "Level",
    "MsgType",
]

Level = Literal["information", "avertissement", "danger", "urgence_extreme"]
"""The alert levels staff pick in the French UI, mildest first."""

CapSeverity = Literal["Extreme", "Severe", "Moderate", "Minor", "Unknown"]
CapUrgency = Literal["Immediate", "Expected", "Future", "Past", "Unknown"]
CapCertainty = Literal["Observed", "Likely", "Possible", "Unlikely", "Unknown"]
CapStatus = Literal["Actual", "Exercise", "System", "Test", "Draft"]
MsgType = Literal["Alert", "Update", "Cancel"]  # Ack and Error are not something Relais sends
CapCategory = Literal[
    "Geo", "Met", "Safety", "Security", "Rescue", "Fire", "Health", "Env", "Transport", "Infra",
    "CBRNE", "Other",
]  # fmt: skip
CapResponseType = Literal[
    "Shelter", "Evacuate", "Prepare", "Execute", "Avoid", "Monitor", "Assess", "AllClear", "None",
]  # fmt: skip

LEVELS: Final[tuple[Level, ...]] = ("information", "avertissement", "danger", "urgence_extreme")
CAP_CATEGORIES: Final = frozenset[str](get_args(CapCategory))
CAP_RESPONSE_TYPES: Final = frozenset[str](get_args(CapResponseType))
CAP_STATUSES: Final = frozenset[str](get_args(CapStatus))
CAP_CERTAINTIES: Final = frozenset[str](get_args(CapCertainty))
MSG_TYPES: Final = frozenset[str](get_args(MsgType))

# Level → CAP. Severity follows the EU-Alert ladder one to one. Urgency says when to act: the two
# upper levels mean "act now"; a warning is about something expected soon; information is about
# the future (works, planned cuts). Certainty defaults to Observed for the upper levels (staff
# raise them for what is happening) and Likely below; CapInfo.certainty overrides it.
CAP_SEVERITY: Final = MappingProxyType[Level, CapSeverity](
    {
        "information": "Minor",
        "avertissement": "Moderate",
        "danger": "Severe",
        "urgence_extreme": "Extreme",
    }
)
CAP_URGENCY: Final = MappingProxyType[Level, CapUrgency](
    {
        "information": "Future",
        "avertissement": "Expected",
        "danger": "Immediate",
        "urgence_extreme": "Immediate",
    }
)
DEFAULT_CERTAINTY: Final = MappingProxyType[Level, CapCertainty](
    {
        "information": "Likely",
        "avertissement": "Likely",
        "danger": "Observed",
        "urgence_extreme": "Observed",
    }
)

# Google Public Alerts: "make the length less than 35 characters".
MAX_EVENT_LENGTH: Final = 34


class CapError(ValueError):
    """The message breaks a CAP 1.2 or Google Public Alerts rule; the text says which."""


@dataclass(frozen=True)
class CapReference:
    """An earlier CAP message, rendered as the triple ``sender,identifier,sent``."""

    sender: str
    identifier: str
    sent: datetime


@dataclass(frozen=True)
class CapArea:
    """Where an info applies.

    ``polygons`` are rings of (lat, lon) points (CAP order, not GeoJSON's); an open ring is
    closed on output. ``circles`` are (lat, lon, radius_km). ``geocodes`` are (valueName, value)
    pairs such as ("INSEE", "35238"). At least one of the three is required.
    """

    description: str
    polygons: tuple[tuple[tuple[float, float], ...], ...] = ()
    circles: tuple[tuple[float, float, float], ...] = ()
    geocodes: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, kw_only=True)
class CapInfo:
    """One language's version of the alert (CAP ``<info>``).

    ``severity`` is the Relais level; CAP severity, urgency and certainty are derived from it
    (see CAP_SEVERITY, CAP_URGENCY, DEFAULT_CERTAINTY); ``certainty`` overrides the default.
    """

    language: str
    category: CapCategory
    event: str
    severity: Level
    headline: str
    description: str
    expires: datetime
    areas: tuple[CapArea, ...]
    instruction: str | None = None
    web: str | None = None
    contact: str | None = None
    effective: datetime | None = None
    response_type: CapResponseType | None = None
    certainty: CapCertainty | None = None
    sender_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class CapMessage:
    """One CAP ``<alert>`` document. An Update or Cancel is a new message whose ``references``
    name the earlier ones (see `references_for`)."""

    identifier: str
    sender: str
    sent: datetime
    status: CapStatus
    msg_type: MsgType
    infos: tuple[CapInfo, ...]
    references: tuple[CapReference, ...] = ()
    scope: Literal["Public"] = "Public"
    note: str | None = None
