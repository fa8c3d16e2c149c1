"""Local metric projection and spherical measures for lon/lat shapely geometries.

"Is this cell within 300 m of the area" and a perimeter need metres, and we have
no PROJ. A local equirectangular projection around the geometry's centre is an
affine map of lon/lat (so shapely's straight lon/lat edges stay straight), exact
north-south and off east-west by cos(lat0)/cos(lat); ``min_scale`` reports the
worst such factor so callers can turn "within d metres" into a safe test.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

from geo.points import EARTH_RADIUS_M

#: Radius of the sphere with the WGS84 ellipsoid's surface area, for areas.
AUTHALIC_RADIUS_M = 6_371_007.2
_M_PER_DEG = EARTH_RADIUS_M * math.pi / 180.0


class LocalProjection:
    """Equirectangular projection centred on a geometry: lon/lat degrees <-> metres."""

    def __init__(self, geometry: BaseGeometry, margin_m: float = 0.0) -> None:
        """Centre the projection on ``geometry``; ``min_scale`` holds for every point
        within ``margin_m`` of its bounds."""
        min_lon, min_lat, max_lon, max_lat = geometry.bounds
        self.lat0 = (min_lat + max_lat) / 2.0
        self.lon0 = (min_lon + max_lon) / 2.0
        self._kx = _M_PER_DEG * math.cos(math.radians(self.lat0))
        # True east-west metres per projected metre shrink from lat0 toward the pole.
        worst_lat = min(89.0, max(abs(min_lat), abs(max_lat)) + margin_m / _M_PER_DEG)
        self.min_scale = min(
            1.0, math.cos(math.radians(worst_lat)) / math.cos(math.radians(self.lat0))
        )

    def _forward(self, coords: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        out = np.empty_like(coords)
        out[:, 0] = (coords[:, 0] - self.lon0) * self._kx
        out[:, 1] = (coords[:, 1] - self.lat0) * _M_PER_DEG
        return out

    def to_metres(self, geometry: BaseGeometry) -> BaseGeometry:
        """The geometry in projected metres."""
        return shapely.transform(geometry, self._forward)

    def project_xy(
        self, lons: npt.NDArray[np.float64], lats: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Arrays of lon/lat degrees as projected x/y metres."""
        return (lons - self.lon0) * self._kx, (lats - self.lat0) * _M_PER_DEG

    def length_m(self, geometry: BaseGeometry) -> float:
        """Approximate length (perimeter for polygons) in metres."""
        return float(shapely.length(self.to_metres(geometry)))


def _ring_area_m2(coords: npt.NDArray[np.float64]) -> float:
    """Area of a closed lon/lat ring on the authalic sphere (signed, m²).

    The line-integral formula used by d3 and turf (Chamberlain & Duquette, 2007).
    """
    lon = np.radians(coords[:, 0])
    lat = np.radians(coords[:, 1])
    total = np.sum((lon[1:] - lon[:-1]) * (2.0 + np.sin(lat[:-1]) + np.sin(lat[1:])))
    return float(total) * AUTHALIC_RADIUS_M**2 / 2.0


def spherical_area_km2(geometry: BaseGeometry) -> float:
    """Area of a lon/lat Polygon or MultiPolygon in km², holes removed."""
    total = 0.0
    for polygon in getattr(geometry, "geoms", [geometry]):
        total += abs(_ring_area_m2(np.asarray(polygon.exterior.coords)))
        for hole in polygon.interiors:
            total -= abs(_ring_area_m2(np.asarray(hole.coords)))
    return total / 1e6
