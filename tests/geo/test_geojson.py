"""GeoJSON out (point features) and in (named zones with per-feature problems)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from geo import (
    BoundingBox,
    GeoError,
    GeoPoint,
    feature_collection,
    parse_named_zones,
    point_feature,
    point_from_geojson,
)


def square_feature(properties: dict[str, Any], lon: float = 2.05, **extra: Any) -> dict[str, Any]:
    ring = [[lon, 47.845], [lon + 0.01, 47.845], [lon + 0.01, 47.855], [lon, 47.855], [lon, 47.845]]
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": properties,
        **extra,
    }


def test_point_feature_is_lon_lat_with_properties_and_id() -> None:
    feature = point_feature(GeoPoint(47.85, 2.06), {"statut": "ouvert"}, feature_id="2026-000123")
    assert feature == {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [2.06, 47.85]},
        "properties": {"statut": "ouvert"},
        "id": "2026-000123",
    }


def test_feature_collection_with_bbox() -> None:
    features = [point_feature(GeoPoint(47.85, 2.06)), point_feature(GeoPoint(47.86, 2.07))]
    collection = feature_collection(features, bbox=BoundingBox(47.85, 2.06, 47.86, 2.07))
    assert collection["type"] == "FeatureCollection"
    assert len(collection["features"]) == 2
    assert collection["bbox"] == [2.06, 47.85, 2.07, 47.86]
    json.dumps(collection)  # serialisable as is


def test_point_from_geojson_reads_geometry_or_feature() -> None:
    point = GeoPoint(47.85, 2.06)
    assert point_from_geojson(point.to_geojson()) == point
    assert point_from_geojson(point_feature(point)) == point
    with pytest.raises(GeoError, match="Point"):
        point_from_geojson({"type": "LineString", "coordinates": []})


def test_zones_are_named_and_coded_from_the_usual_properties() -> None:
    collection = {
        "type": "FeatureCollection",
        "features": [
            square_feature({"nom": "Centre-bourg", "code": "Q1"}),
            square_feature({"NAME": "Les Prés", "INSEE": 45999}, lon=2.07),
            square_feature({"libelle": "Le Moulin"}, lon=2.09, id="m-3"),
            square_feature({"Nom": "Sans code"}, lon=2.11),
        ],
    }
    result = parse_named_zones(json.dumps(collection))
    assert result.ok
    assert [(z.name, z.code) for z in result.zones] == [
        ("Centre-bourg", "Q1"),
        ("Les Prés", "45999"),
        ("Le Moulin", "m-3"),
        ("Sans code", None),
    ]
    assert result.zones[0].area.contains(47.85, 2.055)
    assert result.zones[1].properties == {"NAME": "Les Prés", "INSEE": 45999}


def test_broken_features_are_reported_and_the_rest_kept() -> None:
    bow_tie = {
        "type": "Feature",
        "properties": {"nom": "Le Nœud"},
        "geometry": {
            "type": "Polygon",
            "coordinates": [
                [[2.05, 47.8], [2.06, 47.81], [2.06, 47.8], [2.05, 47.81], [2.05, 47.8]]
            ],
        },
    }
    collection = {
        "type": "FeatureCollection",
        "features": [
            square_feature({"nom": "Bon"}),
            bow_tie,
            square_feature({"code": "X"}, lon=2.07),
            "pas un objet",
            square_feature({"nom": "Doublon", "code": "Q1"}, lon=2.09),
            square_feature({"nom": "Original", "code": "Q1"}, lon=2.11),
            {"type": "Feature", "properties": {"nom": "Vide"}, "geometry": None},
        ],
    }
    result = parse_named_zones(collection)
    assert [z.name for z in result.zones] == ["Bon", "Doublon"]
    assert not result.ok
    problems = {p.index: p for p in result.problems}
    assert sorted(problems) == [2, 3, 4, 6, 7]
    assert problems[2].name == "Le Nœud" and "se recoupe" in problems[2].message
    assert "pas de nom" in problems[3].message
    assert "pas une entité" in problems[4].message
    assert "déjà celui de l'entité 5" in problems[6].message
    assert "pas de géométrie" in problems[7].message
    assert str(problems[2]).startswith("entité 2 (Le Nœud) : ")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{oops", "JSON valide"),
        ({"type": "Feature"}, "FeatureCollection"),
        ({"type": "FeatureCollection", "features": {}}, "liste"),
    ],
)
def test_a_file_that_is_not_a_feature_collection_fails_as_a_whole(data: Any, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        parse_named_zones(data)
