"""The real type comes from the bytes; names and claimed types are never trusted."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from PIL import features

from media import CorruptImage, ImageType, UnsupportedImage, process_image, sniff_image_type
from tests.media.factories import encode, marker_image

EXPECTED_MESSAGE = (
    "Ce fichier n'est pas une photo reconnue. Envoyez une image JPEG, PNG, WebP ou HEIC."
)


@pytest.mark.parametrize(
    ("fmt", "params", "expected"),
    [
        ("JPEG", {}, ImageType.JPEG),
        ("PNG", {}, ImageType.PNG),
        ("WEBP", {}, ImageType.WEBP),
        ("HEIF", {"quality": 60}, ImageType.HEIC),
    ],
)
def test_each_accepted_type_is_recognised_from_its_bytes(
    fmt: str, params: dict[str, object], expected: ImageType
) -> None:
    assert sniff_image_type(encode(marker_image(64, 48), fmt, **params)) is expected


def test_generic_heif_brand_without_hevc_brand_is_heif() -> None:
    ftyp = b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1miaf"
    assert sniff_image_type(ftyp + b"\x00" * 32) is ImageType.HEIF


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    return buffer.getvalue()


NOT_PHOTOS = {
    "empty": b"",
    "text": "Nid-de-poule rue de la République\n".encode(),
    "pdf": b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n",
    "zip": _zip(),
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" '
    b'height="10"><script>alert(1)</script></svg>',
    "html": b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>",
    "gif": encode(marker_image(16, 16), "GIF"),
    "bmp": encode(marker_image(16, 16), "BMP"),
    "tiff": encode(marker_image(16, 16), "TIFF"),
    "mp4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 40,
    "avif brands": b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 40,
}


@pytest.mark.parametrize("content", NOT_PHOTOS.values(), ids=NOT_PHOTOS.keys())
def test_files_that_are_not_photos_are_refused_with_a_french_message(content: bytes) -> None:
    with pytest.raises(UnsupportedImage) as caught:
        process_image(content)
    assert caught.value.code == "unsupported_image"
    assert caught.value.message == EXPECTED_MESSAGE
    assert isinstance(caught.value, ValueError)


@pytest.mark.skipif(not features.check("avif"), reason="Pillow built without AVIF")
def test_a_real_avif_file_is_refused() -> None:
    with pytest.raises(UnsupportedImage):
        process_image(encode(marker_image(32, 32), "AVIF"))


def test_html_saved_as_photo_jpg_is_refused(tmp_path: Path) -> None:
    upload = tmp_path / "photo.jpg"  # what the phone would call it; we never look at names
    upload.write_bytes(NOT_PHOTOS["html"])
    with pytest.raises(UnsupportedImage):
        process_image(upload.read_bytes())


def test_only_the_sniffed_decoder_is_allowed_to_open_the_file() -> None:
    # PNG signature followed by a JPEG body: no plugin shopping, the PNG decoder refuses it.
    jpeg = encode(marker_image(32, 32), "JPEG")
    with pytest.raises(CorruptImage):
        process_image(b"\x89PNG\r\n\x1a\n" + jpeg)
