"""Cells as BIGINTs, descendant intervals and range merging."""

from __future__ import annotations

import itertools
import random

import h3.api.basic_int as h3
import pytest

from geo import (
    STORAGE_RESOLUTION,
    CellRange,
    Coverage,
    GeoPoint,
    cell_of,
    cell_of_lat_lon,
    descendant_range,
    merge_ranges,
)
from geo.cells import _next_index, children


def test_cell_of_is_the_h3_cell_at_storage_resolution_and_fits_a_signed_bigint() -> None:
    point = GeoPoint(47.8521, 2.0608)
    cell = cell_of(point)
    assert cell == h3.latlng_to_cell(point.lat, point.lon, STORAGE_RESOLUTION)
    assert h3.get_resolution(cell) == STORAGE_RESOLUTION
    assert 0 < cell < 2**63
    assert cell_of_lat_lon(point.lat, point.lon) == cell


def test_descendant_range_matches_h3_center_child_and_last_child() -> None:
    rng = random.Random(1)
    for _ in range(300):
        res = rng.randint(0, STORAGE_RESOLUTION)
        cell = h3.latlng_to_cell(rng.uniform(-80, 80), rng.uniform(-180, 180), res)
        first, last = descendant_range(cell)
        size = h3.cell_to_children_size(cell, STORAGE_RESOLUTION)
        assert first == h3.cell_to_center_child(cell, STORAGE_RESOLUTION)
        assert last == h3.child_pos_to_cell(cell, STORAGE_RESOLUTION, size - 1)


def test_descendant_range_holds_exactly_the_descendants() -> None:
    parent = h3.latlng_to_cell(47.85, 2.06, 8)
    first, last = descendant_range(parent)
    inside = set(h3.cell_to_children(parent, STORAGE_RESOLUTION))
    assert all(first <= c <= last for c in inside)
    # Every storage cell around the parent is in the range exactly when it descends from it.
    for neighbour in h3.grid_disk(parent, 1):
        for c in h3.cell_to_children(neighbour, STORAGE_RESOLUTION):
            assert (first <= c <= last) == (c in inside)


def test_children_by_bits_match_h3() -> None:
    rng = random.Random(2)
    for _ in range(100):
        cell = h3.latlng_to_cell(rng.uniform(-60, 60), rng.uniform(-180, 180), rng.randint(0, 14))
        assert children(cell) == sorted(h3.cell_to_children(cell))
    pentagon = h3.get_pentagons(5)[0]
    assert children(pentagon) == sorted(h3.cell_to_children(pentagon))


def test_merge_joins_overlapping_touching_and_sibling_ranges_only() -> None:
    parent = h3.latlng_to_cell(47.85, 2.06, 9)
    kids = sorted(h3.cell_to_children(parent, STORAGE_RESOLUTION))
    # Children 2, 3, 4 are consecutive valid cells: one range. Child 6 stands alone.
    merged = merge_ranges(
        [(kids[3], kids[3]), (kids[2], kids[2]), (kids[4], kids[4]), (kids[6], kids[6])]
    )
    assert merged == (CellRange(kids[2], kids[4]), CellRange(kids[6], kids[6]))
    assert merge_ranges([(1, 5), (3, 9)], STORAGE_RESOLUTION) == (CellRange(1, 9),)


def test_next_index_steps_through_valid_cells_in_order() -> None:
    grandparent = h3.latlng_to_cell(47.85, 2.06, 7)
    cells = sorted(h3.cell_to_children(grandparent, STORAGE_RESOLUTION))  # 343 cells
    for a, b in itertools.pairwise(cells):
        assert _next_index(a, STORAGE_RESOLUTION) == b


def test_merged_ranges_select_exactly_the_chosen_cells() -> None:
    """Merging across gaps of invalid indexes never lets in a cell that was not chosen."""
    rng = random.Random(3)
    root = h3.latlng_to_cell(45.76, 4.83, 6)
    universe = sorted(h3.cell_to_children(root, STORAGE_RESOLUTION))  # 2,401 cells
    for _ in range(30):
        chosen_parents = [
            c for c in h3.cell_to_children(root, rng.choice([7, 8, 9])) if rng.random() < 0.5
        ]
        chosen = {d for p in chosen_parents for d in h3.cell_to_children(p, STORAGE_RESOLUTION)}
        ranges = merge_ranges(descendant_range(p) for p in chosen_parents)
        assert len(ranges) <= len(chosen_parents)
        for a, b in itertools.pairwise(ranges):
            assert a.last < b.first
        for cell in universe:
            assert any(r.first <= cell <= r.last for r in ranges) == (cell in chosen)


def test_coverage_classifies_cells_and_keeps_inner_and_edge_apart() -> None:
    parent = h3.latlng_to_cell(47.85, 2.06, 8)
    inner_cell, edge_cell, *_ = h3.cell_to_children(parent, 9)
    coverage = Coverage.from_cells([inner_cell], [edge_cell, inner_cell], edge_resolution=9)
    # A cell listed as both inner and edge is checked exactly: doubt means edge.
    assert coverage.inner == ()
    coverage = Coverage.from_cells([inner_cell], [edge_cell], edge_resolution=9)
    some_inner = h3.cell_to_center_child(inner_cell, STORAGE_RESOLUTION)
    some_edge = h3.cell_to_center_child(edge_cell, STORAGE_RESOLUTION)
    elsewhere = h3.latlng_to_cell(43.6, 1.44, STORAGE_RESOLUTION)
    assert coverage.classify(some_inner) == "inner"
    assert coverage.classify(some_edge) == "edge"
    assert coverage.classify(elsewhere) is None
    assert some_inner in coverage and elsewhere not in coverage
    assert coverage.ranges == merge_ranges([*coverage.inner, *coverage.edge])


def test_compaction_turns_seven_siblings_into_one_range() -> None:
    parent = h3.latlng_to_cell(47.85, 2.06, 8)
    coverage = Coverage.from_cells(h3.cell_to_children(parent, 9), [], edge_resolution=9)
    assert coverage.inner == (descendant_range(parent),)


@pytest.mark.parametrize("res", [0, 5, STORAGE_RESOLUTION])
def test_descendant_range_of_a_storage_cell_is_itself(res: int) -> None:
    cell = h3.latlng_to_cell(47.85, 2.06, res)
    first, last = descendant_range(cell, res)
    assert first == last == cell
