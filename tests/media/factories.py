"""Test images made with Pillow at test time (no binary fixtures in the repository)."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import numpy as np
from PIL import ExifTags, Image, ImageFile

import media  # noqa: F401  (registers the HEIF plugin, as the application does)

# Paris, parvis de Notre-Dame: 48°51'11.4"N 2°20'56.9"E
PARIS_LAT = 48 + 51 / 60 + 11.4 / 3600
PARIS_LON = 2 + 20 / 60 + 56.9 / 3600


def photo_like(width: int, height: int, *, seed: int = 0, noise: float = 6.0) -> Image.Image:
    """An RGB image with gradients, blurred texture, sensor-like grain and sharp shapes.

    Compresses like a photo (neither flat nor pure noise), deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scale = max(width, height) / 4000
    base = np.stack(
        [
            120 + 70 * np.sin(x / (700 * scale)) + 35 * np.cos(y / (450 * scale)),
            110 + 60 * np.cos((x + y) / (900 * scale)),
            100 + 55 * np.sin(y / (300 * scale)),
        ],
        axis=-1,
    )
    coarse = rng.normal(0, 22, (max(1, height // 8), max(1, width // 8), 3)) + 128
    texture = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = rng.normal(0, noise, (height, width, 1)).astype(np.float32)  # mostly luma grain
    chroma = rng.normal(0, noise / 3, (height, width, 3)).astype(np.float32)
    pixels = base + (np.asarray(texture, dtype=np.float32) - 128) + grain + chroma
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    _draw_shapes(image, rng)
    return image


def _draw_shapes(image: Image.Image, rng: np.random.Generator) -> None:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    width, height = image.size
    for _ in range(30):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1 = x0 + int(rng.integers(width // 40 + 1, width // 6 + 2))
        y1 = y0 + int(rng.integers(height // 40 + 1, height // 6 + 2))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((x0, y0, x1, y1), outline=colour, width=max(1, width // 400))


def marker_image(width: int = 240, height: int = 120) -> Image.Image:
    """Grey image with a red top-left quadrant and a blue bottom-right one: shows rotations."""
    image = Image.new("RGB", (width, height), (128, 128, 128))
    image.paste((220, 20, 20), (0, 0, width // 2, height // 2))
    image.paste((20, 20, 220), (width // 2, height // 2, width, height))
    return image


def gps_exif(
    lat: float = PARIS_LAT,
    lon: float = PARIS_LON,
    *,
    orientation: int | None = None,
    accuracy: float | None = 5.0,
) -> Image.Exif:
    """EXIF with a GPS block (degrees, minutes, seconds + hemisphere refs) and camera tags."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Apple"
    exif[ExifTags.Base.Model] = "iPhone 15"
    exif[ExifTags.Base.DateTime] = "2026:03:14 09:26:53"
    exif[ExifTags.Base.Artist] = "Jeanne Dupont"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    gps: dict[int, object] = {
        ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
        ExifTags.GPS.GPSLatitude: _dms(abs(lat)),
        ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
        ExifTags.GPS.GPSLongitude: _dms(abs(lon)),
    }
    if accuracy is not None:
        gps[ExifTags.GPS.GPSHPositioningError] = accuracy
    exif[ExifTags.IFD.GPSInfo] = gps
    return exif


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return float(degrees), float(minutes), round(seconds, 4)


def orientation_exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """`image` saved as `fmt` ("JPEG", "PNG", "WEBP", "HEIF", ...) with Pillow's `params`."""
    exif = params.get("exif")
    if isinstance(exif, Image.Exif):
        params["exif"] = exif.tobytes()
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def decode(data: bytes) -> ImageFile.ImageFile:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- hand-made files ----------------------------------------------------------------------


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG announcing width × height RGB pixels, with almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", idat)
        + png_chunk(b"IEND", b"")
    )


def jpeg_segments(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(marker, payload) for each JPEG segment up to the first SOS (then yields SOS, stops)."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    position = 2
    while position < len(data):
        assert data[position] == 0xFF
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        yield marker, data[position + 4 : position + 2 + length]
        if marker == 0xDA:  # start of scan: entropy-coded data follows
            return
        position += 2 + length


def with_jpeg_dimensions(data: bytes, width: int, height: int) -> bytes:
    """A copy of a baseline JPEG whose SOF0 header claims another size (pixels unchanged)."""
    position = 2
    while position < len(data):
        marker = data[position + 1]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker == 0xC0:
            header = data[position + 4 : position + 2 + length]
            patched = header[:1] + struct.pack(">HH", height, width) + header[5:]
            return data[: position + 4] + patched + data[position + 2 + length :]
        position += 2 + length
    raise AssertionError("no SOF0 segment")


def insert_jpeg_segment(data: bytes, marker: int, payload: bytes) -> bytes:
    """A copy of a JPEG with an extra APPn/COM segment right after SOI."""
    return (
        data[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + data[2:]
    )


def iptc_app13(byline: str) -> bytes:
    """A Photoshop IRB (APP13) holding one IPTC-IIM dataset: 2:80 By-line."""
    value = byline.encode()
    iptc = b"\x1c\x02\x50" + struct.pack(">H", len(value)) + value
    resource = b"8BIM" + struct.pack(">H", 0x0404) + b"\x00\x00" + struct.pack(">I", len(iptc))
    resource += iptc + (b"\x00" if len(iptc) % 2 else b"")
    return b"Photoshop 3.0\x00" + resource


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def rgb_icc_profile(
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    *,
    gamma: float = 2.2,
    description: str = "Relais test RGB",
) -> bytes:
    """A minimal ICC v2 matrix/TRC display profile with the given D50 colorants."""

    def xyz(values: tuple[float, float, float]) -> bytes:
        return b"XYZ \x00\x00\x00\x00" + b"".join(_s15f16(v) for v in values)

    text = description.encode("ascii")
    desc = (
        b"desc\x00\x00\x00\x00"
        + struct.pack(">I", len(text) + 1)
        + text
        + b"\x00"
        + b"\x00" * 8  # no Unicode description
        + b"\x00\x00\x00"
        + b"\x00" * 67  # no ScriptCode description
    )
    curve = b"curv\x00\x00\x00\x00" + struct.pack(">IH", 1, round(gamma * 256)) + b"\x00\x00"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz((0.9642, 1.0, 0.8249))),
        (b"rXYZ", xyz(red)),
        (b"gXYZ", xyz(green)),
        (b"bXYZ", xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text\x00\x00\x00\x00public domain\x00\x00\x00"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload + b"\x00" * (-len(payload) % 4)
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"lcms"
        + bytes([2, 0x10, 0, 0])  # version 2.1
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"APPL"
        + b"\x00" * 4  # flags
        + b"\x00" * 8  # manufacturer, model
        + b"\x00" * 8  # attributes
        + struct.pack(">I", 0)  # perceptual intent
        + _s15f16(0.9642)
        + _s15f16(1.0)
        + _s15f16(0.8249)  # PCS illuminant D50
        + b"lcms"
    )
    header += b"\x00" * (128 - len(header))
    return header + struct.pack(">I", len(tags)) + table + body


# D50-adapted colorants of sRGB and Display P3 (the iPhone camera's space).
SRGB_COLORANTS = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))
P3_COLORANTS = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))


def display_p3_profile() -> bytes:
    red, green, blue = P3_COLORANTS
    return rgb_icc_profile(red, green, blue, description="Display P3 (test)")


def swapped_profile() -> bytes:
    """An RGB profile whose 'red' channel is sRGB blue and vice versa: conversion is obvious."""
    red, green, blue = SRGB_COLORANTS
    return rgb_icc_profile(blue, green, red, description="Swapped R/B (test)")
