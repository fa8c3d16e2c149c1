"""Cover an area with H3 cells, coarse to fine, without ever missing a point.

The catch: H3 children are not geometrically nested in their parent. The storage
cells that descend from a coarse cell A spill out of A's hexagon by up to ~15 % of
A's edge length (measured: 0.154 at worst over metropolitan France and the DROM,
coarse resolutions 3 to 9, 4 to 7 levels deep). So a resident may stand inside
the area while the ancestor of their storage cell does not even touch it.

Every test here therefore asks about a cell's *reach*: the disk around its centre
of radius ``reach_m(res)`` = spill + circumradius (+ slack), which holds every
point whose storage cell descends from it. Walking down from a coarse resolution:

- reach misses the area: drop the cell, no descendant can hold an inside point;
- reach lies deep inside the area: an *inner* cell, all its descendants are in;
- otherwise: an *edge* cell; split it into its 7 children, or keep it as an edge
  candidate once at the final resolution.

This is H3's 'overlap' containment (a superset: the exact filter follows) made
safe for descendants, and it only ever looks at cells near the boundary, so it
costs the same for a commune outline of 5,000 vertices as for a square: GEOS's
prepared geometries answer each distance test in about a microsecond.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final

import h3.api.basic_int as h3
import numpy as np
import numpy.typing as npt

from geo.cells import STORAGE_RESOLUTION, Coverage, children
from geo.points import EARTH_RADIUS_M, BoundingBox

#: Spill of descendants out of their ancestor, as a share of its average edge
#: (0.154 measured, rounded up for cells larger than average).
DRIFT_FACTOR: Final = 0.2
#: Circumradius of a cell (centre to farthest vertex) as a share of the average
#: edge of its resolution: 1.08 measured in France, 1.10 over the whole globe.
CIRCUMRADIUS_FACTOR: Final = 1.25
#: Metres added to every reach: H3 edges are gnomonic arcs and shapely's lon/lat
#: chords, projections are approximate, the boundary has a 0.1 mm tolerance.
REACH_SLACK_M: Final = 2.0
#: Final (finest) resolutions are chosen so that an area has about this many edge
#: cells: ranges grow with them, candidates to check exactly shrink with them.
EDGE_CELL_BUDGET: Final = 400
#: Edge cells per (perimeter / average edge): the band of cells whose reach
#: crosses the boundary is 2 · reach wide, reach ≈ 1.45 edges, a cell ≈ 2.6 edges².
_EDGE_CELLS_PER_EDGE_LENGTH: Final = 1.1
#: The walk starts at the finest resolution where the area's box holds this few cells.
_START_CELLS: Final = 64
#: Coarsest resolution used (edge ≈ 60 km): ample for a 50,000 km² area.
MIN_RESOLUTION: Final = 3
#: Metres per degree of latitude on the mean sphere.
M_PER_DEG: Final = EARTH_RADIUS_M * math.pi / 180.0

#: classify(lats, lons, reach_m) -> (near, deep): ``near`` when the area may come
#: within reach_m of the centre, ``deep`` when the whole disk of radius reach_m
#: around it is surely inside. Both may err only on the cautious side.
Classifier = Callable[
    [npt.NDArray[np.float64], npt.NDArray[np.float64], float],
    tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]],
]


def reach_m(resolution: int) -> float:
    """Radius around a cell's centre holding every point of its storage descendants."""
    edge = h3.average_hexagon_edge_length(resolution, "m")
    spill = 0.0 if resolution >= STORAGE_RESOLUTION else DRIFT_FACTOR * edge
    return spill + CIRCUMRADIUS_FACTOR * edge + REACH_SLACK_M


#: The widest reach ever used (with _start_cells' 1 %): cell centres tested lie
#: at most this far out of an area.
MAX_REACH_M: Final = reach_m(MIN_RESOLUTION) * 1.01


def choose_final_resolution(perimeter_m: float, budget: int = EDGE_CELL_BUDGET) -> int:
    """The finest resolution (≤ storage) at which the boundary crosses about ``budget`` cells."""
    for res in range(STORAGE_RESOLUTION, MIN_RESOLUTION - 1, -1):
        edge = h3.average_hexagon_edge_length(res, "m")
        if perimeter_m / edge * _EDGE_CELLS_PER_EDGE_LENGTH <= budget:
            return res
    return MIN_RESOLUTION


def _start_cells(box: BoundingBox, final_res: int) -> tuple[int, list[int]]:
    """A coarse resolution and its cells whose reach may touch the box."""
    for res in range(final_res, MIN_RESOLUTION - 1, -1):
        # 1 % over the reach: H3's sphere and the mean sphere differ by far less.
        reach = reach_m(res) * 1.01
        dlat = reach / M_PER_DEG
        far_lat = min(89.0, max(abs(box.min_lat), abs(box.max_lat)) + dlat)
        dlon = dlat / math.cos(math.radians(far_lat))
        height = (box.max_lat - box.min_lat + 2 * dlat) * M_PER_DEG
        width = (box.max_lon - box.min_lon + 2 * dlon) * M_PER_DEG * math.cos(math.radians(far_lat))
        if height * width / h3.average_hexagon_area(res, "m^2") <= _START_CELLS:
            break
    south, north = box.min_lat - dlat, box.max_lat + dlat
    west, east = box.min_lon - dlon, box.max_lon + dlon
    rectangle = h3.LatLngPoly([(south, west), (south, east), (north, east), (north, west)])
    # A cell whose reach touches the box has its centre in the box grown by reach:
    # H3's default 'center' containment is exactly that test.
    return res, list(h3.h3shape_to_cells(rectangle, res))


def cover(box: BoundingBox, classify: Classifier, final_res: int) -> Coverage:
    """Walk from coarse cells down to ``final_res``, keeping inner and edge cells."""
    if not MIN_RESOLUTION <= final_res <= STORAGE_RESOLUTION:
        raise ValueError(
            f"edge resolution must be in {MIN_RESOLUTION}..{STORAGE_RESOLUTION}, not {final_res}"
        )
    res, cells = _start_cells(box, final_res)
    inner: list[int] = []
    edge: list[int] = []
    while cells:
        centres = np.array([h3.cell_to_latlng(c) for c in cells], dtype=float)
        near, deep = classify(centres[:, 0], centres[:, 1], reach_m(res))
        inner.extend(c for c, d in zip(cells, deep, strict=True) if d)
        crossing = [c for c, n, d in zip(cells, near, deep, strict=True) if n and not d]
        if res == final_res:
            edge = crossing
            break
        res += 1
        cells = [child for c in crossing for child in children(c)]
    return Coverage.from_cells(inner, edge, final_res)


def circle_vertex_count(radius_m: float) -> int:
    """Vertices for a polygon drawing a circle: more for big circles, 32..128."""
    return max(32, min(128, int(math.sqrt(radius_m)) * 2))
