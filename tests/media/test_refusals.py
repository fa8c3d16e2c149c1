"""Oversize uploads, decompression bombs and damaged files are refused, nothing is decoded
for nothing, and each refusal carries a stable code and a French message."""

from __future__ import annotations

import pytest
from PIL import Image, ImageFile

from media import (
    CorruptImage,
    ImageBomb,
    ImageTooLarge,
    Limits,
    MediaError,
    process_image,
)
from tests.media.factories import (
    encode,
    marker_image,
    photo_like,
    png_header_only,
    with_jpeg_dimensions,
)


def test_upload_over_the_byte_limit_is_refused_before_anything_else() -> None:
    too_big = b"\xff\xd8\xff" + b"\x00" * (15 * 1024 * 1024)  # not even a valid JPEG
    with pytest.raises(ImageTooLarge) as caught:
        process_image(too_big)
    error = caught.value
    assert error.code == "image_too_large"
    assert error.limit == 15 * 1024 * 1024
    assert "15,1 Mo" in error.message and "15 Mo" in error.message


def test_byte_limit_is_configurable() -> None:
    data = encode(photo_like(200, 150), "JPEG", quality=95)
    with pytest.raises(ImageTooLarge):
        process_image(data, Limits(max_bytes=len(data) - 1))
    assert process_image(data, Limits(max_bytes=len(data))).width == 200


def test_png_header_claiming_ten_gigapixels_is_refused() -> None:
    with pytest.raises(ImageBomb) as caught:
        process_image(png_header_only(100_000, 100_000))
    assert caught.value.code == "image_bomb"
    assert "mégapixels" in caught.value.message


def test_bomb_is_refused_from_the_header_without_decoding() -> None:
    # 64 MP announced (under Pillow's own 89 MP threshold) but only 64 bytes of pixel data:
    # decoding would report a truncated file, so ImageBomb proves we never started.
    with pytest.raises(ImageBomb) as caught:
        process_image(png_header_only(8000, 8000))
    assert (caught.value.width, caught.value.height) == (8000, 8000)


def test_real_highly_compressible_large_png_is_refused() -> None:
    data = encode(Image.new("1", (8000, 8000)), "PNG")  # 64 MP of black in a few KB
    assert len(data) < 20_000
    with pytest.raises(ImageBomb):
        process_image(data)


def test_jpeg_header_lying_about_its_size_is_refused_as_a_bomb() -> None:
    small = encode(photo_like(64, 48), "JPEG")
    with pytest.raises(ImageBomb):
        process_image(with_jpeg_dimensions(small, 9_000, 9_000))


def test_pixel_limit_is_configurable() -> None:
    data = encode(photo_like(100, 100), "PNG")
    with pytest.raises(ImageBomb):
        process_image(data, Limits(max_pixels=9_999))
    assert process_image(data, Limits(max_pixels=10_000)).width == 100


@pytest.mark.parametrize("keep", [0.5, 0.9], ids=["half", "nine-tenths"])
def test_truncated_jpeg_is_refused(keep: float) -> None:
    data = encode(photo_like(640, 480), "JPEG", quality=90)
    with pytest.raises(CorruptImage) as caught:
        process_image(data[: int(len(data) * keep)])
    assert caught.value.code == "corrupt_image"
    assert "Reprenez la photo" in caught.value.message


def test_jpeg_missing_only_its_end_marker_is_refused() -> None:
    data = encode(photo_like(640, 480), "JPEG", quality=90)
    assert data.endswith(b"\xff\xd9")
    with pytest.raises(CorruptImage):
        process_image(data[:-2])


def test_truncated_jpeg_is_refused_on_the_fast_scaled_path_too() -> None:
    # Large enough that the decoder works at 3/8 scale: it must still read every scan.
    data = encode(marker_image(3400, 2550), "JPEG", quality=85, progressive=True)
    with pytest.raises(CorruptImage):
        process_image(data[: len(data) - 200])


def test_jpeg_followed_by_trailing_bytes_is_accepted() -> None:
    # Samsung and Google "motion photos" append data after the image's end marker.
    data = encode(photo_like(320, 240), "JPEG") + b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 500
    assert process_image(data).width == 320


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {}), ("HEIF", {"quality": 60})])
def test_truncated_files_of_other_types_are_refused(fmt: str, params: dict[str, object]) -> None:
    data = encode(photo_like(320, 240), fmt, **params)
    with pytest.raises(CorruptImage):
        process_image(data[: len(data) * 2 // 3])


def test_garbage_after_a_jpeg_signature_is_corrupt_not_a_crash() -> None:
    with pytest.raises(CorruptImage):
        process_image(b"\xff\xd8\xff\xe0" + b"<html>" * 100)


def test_truncated_images_are_refused_even_if_someone_relaxed_pillow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(photo_like(64, 48), "JPEG")
    with pytest.raises(RuntimeError, match="LOAD_TRUNCATED_IMAGES"):
        process_image(data[: len(data) // 2])


def test_every_refusal_is_a_media_error_with_a_code_and_a_french_message() -> None:
    errors = [ImageTooLarge(2, 1), ImageBomb(50_000_000, 9000, 9000), CorruptImage()]
    assert {type(error).code for error in errors} == {
        "image_too_large",
        "image_bomb",
        "corrupt_image",
    }
    for error in errors:
        assert isinstance(error, MediaError) and isinstance(error, ValueError)
        assert error.message and str(error) == error.message


def test_importing_media_leaves_pillow_strict() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
