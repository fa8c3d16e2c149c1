"""Benchmark: covering commune-sized areas with H3 cell ranges.

Run: ``.venv/bin/python -m tests.bench.bench_geo_cover [--repeat N]``

For each shape it prints the median time of ``cover()`` (computed afresh each
run), the resolution of the edge cells, the number of ranges (inner, edge, and
merged for the SQL ``BETWEEN`` list), and how many exact checks a uniformly spread
population costs: edge candidates per resident inside. For context it also times
plain ``h3.polygon_to_cells_experimental(..., 'overlap')`` at the same resolution
(which alone would miss residents, see ``geo/_covering.py``) and the exact filter.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections.abc import Callable

import h3.api.basic_int as h3
import numpy as np
from shapely.geometry import Polygon

from geo import Area, PolygonArea, cell_of_lat_lon, circle
from geo._covering import choose_final_resolution

M_PER_DEG = 111_195.0


def commune_outline(lat: float, lon: float, km2: float, seed: int, vertices: int = 1500) -> Polygon:
    """A smooth irregular outline with many vertices, like an IGN commune boundary."""
    rng = random.Random(seed)
    radius_m = math.sqrt(km2 / math.pi) * 1000
    terms = [(k, rng.uniform(0, 0.35) / k**1.2, rng.uniform(0, 2 * math.pi)) for k in range(2, 40)]
    kx = M_PER_DEG * math.cos(math.radians(lat))
    ring = []
    for i in range(vertices):
        t = 2 * math.pi * i / vertices
        r = radius_m * max(0.2, 1 + sum(a * math.sin(k * t + p) for k, a, p in terms))
        ring.append((lon + r * math.sin(t) / kx, lat + r * math.cos(t) / M_PER_DEG))
    polygon = Polygon(ring)
    # Scale to the requested area (the noise changes it a little).
    factor = math.sqrt(km2 / PolygonArea(polygon).area_km2)
    return Polygon(
        [(lon + (x - lon) * factor, lat + (y - lat) * factor) for x, y in polygon.exterior.coords]
    )


def rectangle(lat: float, lon: float, width_km: float, height_km: float) -> Polygon:
    dlon = width_km * 1000 / (M_PER_DEG * math.cos(math.radians(lat)))
    dlat = height_km * 1000 / M_PER_DEG
    return Polygon.from_bounds(lon, lat, lon + dlon, lat + dlat)


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``action`` in ms, after one warm-up run."""
    action()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def candidates_per_resident(area: Area, samples: int = 20_000) -> float:
    """Edge candidates (exact checks) per resident inside, for a uniform population."""
    box = area.bbox()
    rng = random.Random(7)
    coverage = area.cover()
    inside = checks = 0
    for _ in range(samples):
        lat = rng.uniform(box.min_lat, box.max_lat)
        lon = rng.uniform(box.min_lon, box.max_lon)
        kind = coverage.classify(cell_of_lat_lon(lat, lon))
        checks += kind == "edge"
        inside += area.contains(lat, lon)
    return checks / max(1, inside)


def bench(name: str, area: Area, repeat: int) -> None:
    resolution = choose_final_resolution(area.perimeter_m())
    cover_ms = median_ms(lambda: area.cover_at(choose_final_resolution(area.perimeter_m())), repeat)
    coverage = area.cover()
    naive = ""
    if isinstance(area, PolygonArea):
        shape = h3.geo_to_h3shape(area.geometry)
        naive_ms = median_ms(
            lambda: h3.h3shape_to_cells_experimental(shape, resolution, "overlap"), repeat
        )
        naive = f"{naive_ms:8.2f}"
    box = area.bbox()
    rng = np.random.default_rng(3)
    lats = rng.uniform(box.min_lat, box.max_lat, 100_000)
    lons = rng.uniform(box.min_lon, box.max_lon, 100_000)
    filter_ms = median_ms(lambda: area.contains_many(lats, lons), max(3, repeat // 5))
    print(
        f"{name:<34} {area.area_km2:9.2f} {cover_ms:9.2f} {naive:>8} {resolution:4d} "
        f"{len(coverage.inner):6d} {len(coverage.edge):6d} {len(coverage.ranges):6d} "
        f"{candidates_per_resident(area):8.2f} {100_000 / filter_ms / 1000:9.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per shape")
    args = parser.parse_args()
    shapes: list[tuple[str, Area]] = [
        ("commune 10 km² (1,500 vertices)", PolygonArea(commune_outline(47.85, 2.06, 10, 1))),
        ("commune 20 km² (1,500 vertices)", PolygonArea(commune_outline(47.85, 2.06, 20, 2))),
        ("commune 30 km² (1,500 vertices)", PolygonArea(commune_outline(45.76, 4.83, 30, 3))),
        ("commune 20 km², La Réunion", PolygonArea(commune_outline(-21.1, 55.5, 20, 4))),
        ("rectangle 3 × 4 km (4 vertices)", PolygonArea(rectangle(48.85, 2.35, 3, 4))),
        ("canton 300 km² (1,500 vertices)", PolygonArea(commune_outline(47.85, 2.06, 300, 5))),
        ("circle r = 500 m", circle(47.85, 2.06, 500)),
        ("circle r = 2 km", circle(47.85, 2.06, 2000)),
        ("circle r = 20 km", circle(47.85, 2.06, 20_000)),
    ]
    print(
        f"{'shape':<34} {'km²':>9} {'cover ms':>9} {'h3 ovl':>8} {'res':>4} "
        f"{'inner':>6} {'edge':>6} {'ranges':>6} {'chk/res':>8} {'Mpts/s':>9}"
    )
    for name, area in shapes:
        bench(name, area, args.repeat)
    print(
        "cover ms: median of cover() from scratch; h3 ovl: h3 polygon_to_cells_experimental "
        "'overlap' alone at the same resolution (not safe for descendants);\nres: edge-cell "
        "resolution; ranges: merged BETWEEN ranges; chk/res: exact checks per resident "
        "inside; Mpts/s: contains_many throughput."
    )


if __name__ == "__main__":
    main()
