"""Recognise the real type of an upload from its first bytes.

The file name and the client's Content-Type are never consulted: an HTML page renamed
``photo.jpg`` is refused here, before any decoder sees it. Only the four families a phone or a
communications desk produces are accepted; everything else (GIF, TIFF, BMP, SVG, AVIF, PDF,
ZIP...) is an `UnsupportedImage`.
"""

from __future__ import annotations

from enum import StrEnum

from media.errors import UnsupportedImage

__all__ = ["SNIFF_BYTES", "ImageType", "sniff_image_type"]

#: How many leading bytes `sniff_image_type` needs at most (an ISO-BMFF ``ftyp`` box with its
#: compatible brands fits comfortably).
SNIFF_BYTES = 64


class ImageType(StrEnum):
    """An accepted input type, valued by its MIME type."""

    JPEG = "image/jpeg"
    PNG = "image/png"
    WEBP = "image/webp"
    HEIC = "image/heic"
    HEIF = "image/heif"

    @property
    def pillow_format(self) -> str:
        """The Pillow plugin allowed to decode this type (no other plugin gets to guess)."""
        return _PILLOW_FORMATS[self]


_PILLOW_FORMATS = {
    ImageType.JPEG: "JPEG",
    ImageType.PNG: "PNG",
    ImageType.WEBP: "WEBP",
    ImageType.HEIC: "HEIF",  # pillow-heif registers one plugin for both
    ImageType.HEIF: "HEIF",
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# HEVC-coded HEIF brands (ISO/IEC 23008-12 annex B): what iPhones and recent Android write.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
# Generic HEIF structural brands; AVIF files carry them too, so AVIF brands veto them.
_HEIF_BRANDS = frozenset({b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def _ftyp_brands(head: bytes) -> set[bytes] | None:
    """Major and compatible brands of a leading ISO-BMFF ``ftyp`` box, or None if there is none."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return None
    box_size = int.from_bytes(head[0:4], "big")
    if box_size < 16:  # 0 and 1 (to end of file, 64-bit size) are not valid for ftyp either
        return None
    end = min(box_size, len(head))
    # Major brand at 8, minor version at 12, compatible brands from 16 in 4-byte steps.
    compatible = {head[i : i + 4] for i in range(16, end - 3, 4)}
    return {head[8:12], *compatible}


def sniff_image_type(data: bytes) -> ImageType:
    """Return the type announced by the magic bytes of `data`.

    Only the first `SNIFF_BYTES` bytes are looked at; this does not prove the rest decodes
    (that is `process_image`'s job). Raises `UnsupportedImage` for anything else.
    """
    head = bytes(data[:SNIFF_BYTES])
    if head.startswith(b"\xff\xd8\xff"):
        return ImageType.JPEG
    if head.startswith(_PNG_SIGNATURE):
        return ImageType.PNG
    if len(head) >= 12 and head[0:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageType.WEBP
    brands = _ftyp_brands(head)
    if brands is not None and not brands & _AVIF_BRANDS:
        if brands & _HEIC_BRANDS:
            return ImageType.HEIC
        if brands & _HEIF_BRANDS:
            return ImageType.HEIF
    raise UnsupportedImage()
