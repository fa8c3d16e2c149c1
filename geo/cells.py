"""H3 cells as signed BIGINTs, and coverages made of integer cell ranges.

A stored point carries ``cell_of(point)``: its H3 cell at ``STORAGE_RESOLUTION``
as a plain int. H3 puts the resolution's digits in fixed 3-bit slots with unused
digits set to 7, so the descendants of any coarser cell at the storage resolution
are exactly one integer interval, and every other integer in it is an invalid
index that no row ever holds. "Everyone inside this area" is therefore a union of
``cell BETWEEN first AND last`` on a B-tree: the same SQL on SQLite and PostgreSQL.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal, NamedTuple

import h3.api.basic_int as h3

from geo.points import GeoPoint

#: Resolution of the cell stored with every point (edge ≈ 66–76 m, area ≈ 0.015 km²).
#: Why 10:
#: - the cell is only an index, we keep exact lat/lon for the exact filter; what
#:   matters is that a coverage never *needs* a finer cell, and 10 lets the adaptive
#:   coarse resolution go down to a 10 m circle (a burst main in one street);
#: - range-cover speed does not depend on it: a coarse cell maps to its interval at
#:   any storage resolution in O(1), so a finer storage level would cost nothing but
#:   bring nothing either;
#: - privacy (reference/alerts.md §5): if a retention purge ever drops the precise
#:   coordinates, the res-10 cell alone locates a person to a block, not a door.
#: Changing it means recomputing every stored cell: it is a schema decision.
STORAGE_RESOLUTION: Final = 10

_RES_SHIFT: Final = 52
_RES_MASK: Final = 0xF << _RES_SHIFT
_BASE_SHIFT: Final = 45
_MAX_BASE_CELL: Final = 121


#: 0o66…6 with ``res`` digits: every digit of the last child.
_SIXES: Final = tuple(int("6" * res, 8) if res else 0 for res in range(16))


def _digit_shift(res: int) -> int:
    """Bit offset of the 3-bit digit of resolution ``res`` (1..15)."""
    return 3 * (15 - res)


def cell_of(point: GeoPoint) -> int:
    """The point's H3 cell at STORAGE_RESOLUTION, as an int that fits a signed BIGINT."""
    return cell_of_lat_lon(point.lat, point.lon)


def cell_of_lat_lon(lat: float, lon: float) -> int:
    """Like ``cell_of`` for raw degrees (no validation: for bulk loads of checked data)."""
    # Bit 63 of an H3 index is reserved and always 0, so the int is < 2**63.
    return int(h3.latlng_to_cell(lat, lon, STORAGE_RESOLUTION))


class CellRange(NamedTuple):
    """An inclusive interval of cell ints: ``cell BETWEEN first AND last``."""

    first: int
    last: int


def descendant_range(cell: int, resolution: int = STORAGE_RESOLUTION) -> CellRange:
    """The interval holding exactly the descendants of ``cell`` at ``resolution``.

    Equal to [cell_to_center_child(cell, res), child_pos_to_cell(cell, res, size - 1)]
    (checked in the tests), computed with bit operations because covering calls it
    thousands of times: the center child has digits 0, the last child digits 6.
    """
    parent_res = resolution_of(cell)
    if parent_res > resolution:
        raise ValueError(f"cell resolution {parent_res} is finer than {resolution}")
    if parent_res == resolution:
        return CellRange(cell, cell)
    width = 3 * (resolution - parent_res)
    low = _digit_shift(resolution)
    span = ((1 << width) - 1) << low
    sixes = _SIXES[resolution - parent_res] << low
    first = ((cell & ~_RES_MASK) | (resolution << _RES_SHIFT)) & ~span
    return CellRange(first, first | sixes)


def _next_index(cell: int, resolution: int) -> int:
    """Smallest well-formed index at ``resolution`` after ``cell``.

    It is a lower bound of the next valid cell (pentagons skip some indexes, which
    only makes merging more cautious). Digits count in base 7 inside 3-bit slots:
    the lowest digit that is not 6 goes up by one, the digits below it go to 0.
    """
    low = _digit_shift(resolution)
    mask = ((1 << (3 * resolution)) - 1) << low
    digits = (cell & mask) >> low
    not_six = digits ^ _SIXES[resolution]  # slots holding 6 become 0
    if not_six:
        slot = ((not_six & -not_six).bit_length() - 1) // 3
        digits = ((digits >> (3 * slot)) + 1) << (3 * slot)
        return (cell & ~mask) | (digits << low)
    # All digits are 6: the next index starts the next base cell.
    base = (cell >> _BASE_SHIFT) & 0x7F
    bumped = (cell & ~(0x7F << _BASE_SHIFT)) | (min(base + 1, _MAX_BASE_CELL + 1) << _BASE_SHIFT)
    return bumped & ~mask


def merge_ranges(
    ranges: Iterable[tuple[int, int]], resolution: int = STORAGE_RESOLUTION
) -> tuple[CellRange, ...]:
    """Sort and merge ranges of cells at ``resolution``.

    Two ranges merge when they overlap, touch, or when only invalid indexes lie
    between them (for instance the descendants of sibling cells 3 and 4): no row can
    hold such an index, so the merged range selects exactly the same rows.
    """
    merged: list[CellRange] = []
    for first, last in sorted(ranges):
        if merged and (
            first <= merged[-1].last + 1 or first <= _next_index(merged[-1].last, resolution)
        ):
            if last > merged[-1].last:
                merged[-1] = CellRange(merged[-1].first, last)
        else:
            merged.append(CellRange(first, last))
    return tuple(merged)


def _in_ranges(ranges: tuple[CellRange, ...], cell: int) -> bool:
    """True when ``cell`` lies in one of the sorted, disjoint ``ranges``."""
    i = bisect.bisect_right(ranges, (cell, 1 << 64)) - 1
    return i >= 0 and ranges[i].first <= cell <= ranges[i].last


@dataclass(frozen=True, slots=True)
class Coverage:
    """The storage cells an area may contain, as sorted, disjoint, inclusive int ranges.

    ``inner`` cells are entirely inside the area: their points need no exact check.
    ``edge`` cells straddle the boundary: check their points with ``Area.contains``.
    A point inside the area always has its storage cell in ``inner`` or ``edge``.
    """

    inner: tuple[CellRange, ...]
    edge: tuple[CellRange, ...]
    #: The resolution of the edge cells (inner cells are coarser where they can be).
    edge_resolution: int
    #: The resolution of the cells the ranges select.
    resolution: int = STORAGE_RESOLUTION
    #: Inner and edge merged: the ranges to put in the ``BETWEEN`` query.
    ranges: tuple[CellRange, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ranges", merge_ranges([*self.inner, *self.edge], self.resolution))

    @classmethod
    def from_cells(
        cls,
        inner: Iterable[int],
        edge: Iterable[int],
        edge_resolution: int,
        resolution: int = STORAGE_RESOLUTION,
    ) -> Coverage:
        """Build a coverage from inner and edge cells (any resolution ≤ ``resolution``).

        A cell listed in both counts as edge: doubt always means an exact check.
        """
        edge_set = set(edge)
        inner_set = set(inner) - edge_set
        return cls(
            inner=merge_ranges(
                (descendant_range(c, resolution) for c in _compact(inner_set)), resolution
            ),
            edge=merge_ranges(
                (descendant_range(c, resolution) for c in _compact(edge_set)), resolution
            ),
            edge_resolution=edge_resolution,
            resolution=resolution,
        )

    def classify(self, cell: int) -> Literal["inner", "edge"] | None:
        """Whether a stored cell is surely inside ('inner'), needs an exact check ('edge'),
        or is surely outside (None)."""
        if _in_ranges(self.inner, cell):
            return "inner"
        if _in_ranges(self.edge, cell):
            return "edge"
        return None

    def __contains__(self, cell: object) -> bool:
        return isinstance(cell, int) and self.classify(cell) is not None


def resolution_of(cell: int) -> int:
    """The resolution of an H3 cell int (read from its bits, no validation)."""
    return (cell & _RES_MASK) >> _RES_SHIFT


def children(cell: int) -> list[int]:
    """The children of ``cell`` one resolution finer (7, or 6 for a pentagon)."""
    res = resolution_of(cell) + 1
    if res > 15:
        raise ValueError("cells of resolution 15 have no children")
    if h3.is_pentagon(cell):
        return list(h3.cell_to_children(cell, res))  # pentagons have no digit-1 child
    # Bit operations: h3-py's cell_to_children costs ~25 µs a call through its
    # array conversions, and covering calls it thousands of times.
    shift = _digit_shift(res)
    base = ((cell & ~_RES_MASK) | (res << _RES_SHIFT)) & ~(7 << shift)
    return [base | (digit << shift) for digit in range(7)]


def _compact(cells: set[int]) -> list[int]:
    """Replace complete sets of siblings by their parent (fewer, wider ranges)."""
    if not cells:
        return []
    by_res: dict[int, list[int]] = {}
    for c in cells:
        by_res.setdefault(resolution_of(c), []).append(c)
    out: list[int] = []
    for group in by_res.values():
        out.extend(h3.compact_cells(group))
    return out
