"""The one exception of the geography package.

Every message is French and written for the person who drew or typed the
geometry: it says what is wrong and what to do next. Callers map
``GeoError`` to a 422 problem detail without rewording it.
"""

from __future__ import annotations


class GeoError(ValueError):
    """A coordinate, geometry or radius that cannot be used (message in French)."""
