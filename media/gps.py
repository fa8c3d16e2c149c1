"""Read the EXIF GPS position of a photo as a location hint.

The hint is personal data (where the resident stood): it is offered to the resident to place
the report, never published, and it is read BEFORE the metadata is stripped. A missing,
partial or nonsensical GPS block yields None rather than an error: a photo without a fix is a
perfectly good photo.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PIL import ExifTags, Image

__all__ = ["GpsHint", "gps_from_exif"]

_GPS = ExifTags.GPS


@dataclass(frozen=True, slots=True)
class GpsHint:
    """Where the camera says the photo was taken (WGS 84, decimal degrees).

    `accuracy_m` is the horizontal positioning error the phone recorded (EXIF
    GPSHPositioningError, written by iPhones and recent Android), when present.
    """

    latitude: float
    longitude: float
    accuracy_m: float | None = None


def _number(value: Any) -> float | None:
    """A finite float from an EXIF rational/int/float, else None (e.g. x/0 rationals)."""
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(value: Any) -> float | None:
    """Degrees from EXIF ``(deg, min, sec)``; also accepts ``(deg, min)`` and ``(deg,)``."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        parts = [_number(part) for part in value[:3]]
    else:  # some writers store a single decimal-degree rational
        parts = [_number(value)]
    if not parts or any(part is None or part < 0 for part in parts):
        return None
    total = 0.0
    for part, unit in zip(parts, (1.0, 60.0, 3600.0), strict=False):
        assert part is not None  # checked above; narrows for mypy
        total += part / unit
    return total


def _hemisphere(value: Any) -> str:
    """The reference letter (``N``/``S``/``E``/``W``) of an EXIF ref tag, '' if unreadable."""
    if isinstance(value, bytes):
        value = value.decode("ascii", "ignore")
    if not isinstance(value, str):
        return ""
    return value.strip("\x00 ").upper()[:1]


def _signed(magnitude: float | None, ref: str, positive: str, negative: str) -> float | None:
    if magnitude is None:
        return None
    if ref == negative:
        return -magnitude
    # A missing ref is read as the positive hemisphere, as exiftool and phones' galleries do.
    return magnitude if ref in (positive, "") else None


def gps_from_exif(exif: Image.Exif) -> GpsHint | None:
    """Extract the GPS position from a Pillow `Exif`, or None if absent or implausible.

    Latitude and longitude use the hemisphere refs (S and W are negative). Values outside
    ±90/±180 and the (0, 0) "no fix" placeholder some cameras write are rejected.
    """
    raw = exif.get(ExifTags.IFD.GPSInfo)
    if isinstance(raw, Mapping):  # an Exif built in memory holds the sub-IFD as a dict
        gps: Mapping[int, Any] = raw
    else:
        try:
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
        except (KeyError, ValueError, TypeError, OSError, SyntaxError, AttributeError):
            return None  # malformed IFD offset in a crafted file: no hint, not an error
    if not gps:
        return None
    latitude = _signed(
        _degrees(gps.get(_GPS.GPSLatitude)), _hemisphere(gps.get(_GPS.GPSLatitudeRef)), "N", "S"
    )
    longitude = _signed(
        _degrees(gps.get(_GPS.GPSLongitude)), _hemisphere(gps.get(_GPS.GPSLongitudeRef)), "E", "W"
    )
    if latitude is None or longitude is None:
        return None
    if abs(latitude) > 90 or abs(longitude) > 180 or (latitude == 0 and longitude == 0):
        return None
    accuracy = _number(gps.get(_GPS.GPSHPositioningError))
    return GpsHint(
        latitude=round(latitude, 7),  # ~1 cm: more digits are noise, not precision
        longitude=round(longitude, 7),
        accuracy_m=accuracy if accuracy is not None and accuracy >= 0 else None,
    )
