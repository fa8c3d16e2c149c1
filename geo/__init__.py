"""Pure geography for Relais: points, H3 cells, target areas, GeoJSON and geocoding.

No web framework and no ORM here. Stored points carry ``cell_of(point)`` (a BIGINT);
an area's ``cover().ranges`` select candidate rows with ``BETWEEN``, and
``area.contains_stored(lat, lon, cell)`` keeps exactly those inside.
"""

from geo._geometry import MAX_AREA_KM2
from geo.areas import (
    MAX_RADIUS_M,
    MIN_RADIUS_M,
    Area,
    CircleArea,
    PolygonArea,
    area_from_geojson,
    circle,
)
from geo.cells import (
    STORAGE_RESOLUTION,
    CellRange,
    Coverage,
    cell_of,
    cell_of_lat_lon,
    descendant_range,
    merge_ranges,
)
from geo.errors import GeoError
from geo.geocoding import (
    BanGeocoder,
    GeocodedAddress,
    Geocoder,
    GeocodingUnavailable,
    NominatimGeocoder,
    make_geocoder,
)
from geo.geojson import (
    NamedZone,
    ZoneImport,
    ZoneProblem,
    feature_collection,
    parse_named_zones,
    point_feature,
    point_from_geojson,
)
from geo.points import (
    FRANCE_REGIONS,
    BoundingBox,
    GeoPoint,
    france_region,
    haversine_m,
    in_metropolitan_or_overseas_france,
    require_in_france,
)

__all__ = [
    "FRANCE_REGIONS",
    "MAX_AREA_KM2",
    "MAX_RADIUS_M",
    "MIN_RADIUS_M",
    "STORAGE_RESOLUTION",
    "Area",
    "BanGeocoder",
    "BoundingBox",
    "CellRange",
    "CircleArea",
    "Coverage",
    "GeoError",
    "GeoPoint",
    "GeocodedAddress",
    "Geocoder",
    "GeocodingUnavailable",
    "NamedZone",
    "NominatimGeocoder",
    "PolygonArea",
    "ZoneImport",
    "ZoneProblem",
    "area_from_geojson",
    "cell_of",
    "cell_of_lat_lon",
    "circle",
    "descendant_range",
    "feature_collection",
    "france_region",
    "haversine_m",
    "in_metropolitan_or_overseas_france",
    "make_geocoder",
    "merge_ranges",
    "parse_named_zones",
    "point_feature",
    "point_from_geojson",
    "require_in_france",
]
