"""What comes out of the pipeline: accepted types, orientation, colours, sizes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms, ImageOps

from media import DEFAULT_LIMITS, ImageType, Limits, process_image
from tests.media.factories import (
    decode,
    display_p3_profile,
    encode,
    marker_image,
    orientation_exif,
    photo_like,
    swapped_profile,
)


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    assert a.size == b.size
    return float(np.mean(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16))))


@pytest.mark.parametrize(
    ("fmt", "params", "expected_type"),
    [
        ("JPEG", {"quality": 92}, ImageType.JPEG),
        ("PNG", {}, ImageType.PNG),
        ("WEBP", {"quality": 90}, ImageType.WEBP),
        ("HEIF", {"quality": 80}, ImageType.HEIC),
    ],
)
def test_each_supported_type_becomes_a_jpeg_display_and_thumbnail(
    fmt: str, params: dict[str, object], expected_type: ImageType
) -> None:
    source = photo_like(400, 300, seed=3)
    result = process_image(encode(source, fmt, **params))

    assert result.original_type is expected_type
    assert result.content_type == "image/jpeg"
    display, thumb = decode(result.display), decode(result.thumbnail)
    assert (display.format, display.mode, display.size) == ("JPEG", "RGB", (400, 300))
    assert (thumb.format, thumb.mode, thumb.size) == ("JPEG", "RGB", (320, 240))
    assert (result.width, result.height, result.thumb_width, result.thumb_height) == (
        400,
        300,
        320,
        240,
    )
    assert result.sha256 == hashlib.sha256(result.display).hexdigest()
    assert _mean_abs_diff(display, source) < 8  # same picture, lossy twice at most


def test_png_with_alpha_is_flattened_on_white() -> None:
    image = Image.new("RGBA", (200, 100), (0, 0, 0, 0))  # fully transparent...
    image.paste((200, 30, 30, 255), (0, 0, 100, 100))  # ...except an opaque red half
    result = decode(process_image(encode(image, "PNG")).display)
    assert result.mode == "RGB"
    assert all(abs(c - 255) <= 2 for c in result.getpixel((150, 50)))  # type: ignore[union-attr]
    red = result.getpixel((50, 50))
    assert isinstance(red, tuple) and red[0] > 180 and red[1] < 60


def test_palette_png_with_transparency_is_flattened_on_white() -> None:
    image = Image.new("P", (64, 64), 0)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.paste(1, (0, 0, 32, 64))
    data = encode(image, "PNG", transparency=0)
    result = decode(process_image(data).display)
    assert all(c >= 250 for c in result.getpixel((48, 32)))  # type: ignore[union-attr]


def test_sixteen_bit_grey_png_keeps_its_tones() -> None:
    grey = Image.new("I;16", (32, 32), 32768)  # mid-grey in 16 bits
    result = decode(process_image(encode(grey, "PNG")).display)
    r, g, b = result.getpixel((16, 16))  # type: ignore[misc]
    assert 120 <= r <= 136 and r == g == b


def test_greyscale_and_cmyk_jpegs_become_rgb() -> None:
    for image in (Image.new("L", (64, 64), 90), Image.new("CMYK", (64, 64), (0, 255, 255, 0))):
        result = decode(process_image(encode(image, "JPEG", quality=95)).display)
        assert result.mode == "RGB"
    red = result.getpixel((32, 32))
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60 and red[2] < 60


def test_multi_picture_jpeg_from_a_phone_keeps_the_first_picture() -> None:
    first, second = marker_image(120, 80), Image.new("RGB", (120, 80), "green")
    mpo = encode(first, "MPO", save_all=True, append_images=[second])
    result = process_image(mpo)
    assert result.original_type is ImageType.JPEG
    assert _mean_abs_diff(decode(result.display), first) < 6


@pytest.mark.parametrize("fmt", ["WEBP", "PNG"])
def test_animated_image_keeps_its_first_frame(fmt: str) -> None:
    first, second = marker_image(120, 80), Image.new("RGB", (120, 80), "green")
    data = encode(first, fmt, save_all=True, append_images=[second], duration=100)
    assert _mean_abs_diff(decode(process_image(data).display), first) < 6


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_exif_transpose(orientation: int) -> None:
    data = encode(marker_image(240, 120), "JPEG", quality=95, exif=orientation_exif(orientation))
    expected = ImageOps.exif_transpose(decode(data))
    result = process_image(data)
    display = decode(result.display)
    assert display.size == expected.size == (result.width, result.height)
    assert _mean_abs_diff(display, expected) < 4


def test_orientation_6_turns_a_landscape_sensor_image_upright() -> None:
    # Phone held upright: the sensor stores 240x120 and tags "rotate 90° clockwise".
    data = encode(marker_image(240, 120), "JPEG", quality=95, exif=orientation_exif(6))
    display = decode(process_image(data).display)
    assert display.size == (120, 240)
    top_right = display.getpixel((100, 20))  # the red top-left quadrant moved to the top right
    assert isinstance(top_right, tuple) and top_right[0] > 180 and top_right[2] < 80


def test_orientation_of_a_large_jpeg_is_applied_after_the_fast_downscale() -> None:
    source = marker_image(3400, 1700)  # decoded at 3/8 scale (1275 px), then rotated
    data = encode(source, "JPEG", quality=90, exif=orientation_exif(8))
    result = process_image(data)
    assert (result.width, result.height) == (638, 1275)
    upright = source.transpose(Image.Transpose.ROTATE_90)
    expected = upright.resize((638, 1275), Image.Resampling.LANCZOS)
    assert _mean_abs_diff(decode(result.display), expected) < 3


@pytest.mark.parametrize(
    ("sensor", "display"),
    [
        ((4000, 3000), (1500, 1125)),  # 12 MP: 3/8 scale, no resampling pass
        ((4032, 3024), (1512, 1134)),  # 12 MP (iPhone "most compatible", Pixel)
        ((3264, 2448), (1224, 918)),  # 8 MP: 3/8 keeps 3/4 of the bound
        ((4624, 3468), (1600, 1200)),  # 16 MP: 2/8 would lose too much, 3/8 then resized
        ((1500, 1000), (1500, 1000)),  # already within the bound: untouched
    ],
)
def test_phone_jpegs_get_a_display_size_between_three_quarters_of_the_bound_and_the_bound(
    sensor: tuple[int, int], display: tuple[int, int]
) -> None:
    source = marker_image(*sensor)
    result = process_image(encode(source, "JPEG", quality=85))
    assert (result.width, result.height) == display
    assert decode(result.display).size == display
    expected = source.resize(display, Image.Resampling.LANCZOS)
    assert _mean_abs_diff(decode(result.display), expected) < 3


def test_heic_orientation_is_not_applied_twice() -> None:
    # pillow-heif turns EXIF orientation into HEIF rotation, which libheif applies on decode.
    data = encode(marker_image(240, 120), "HEIF", quality=90, exif=orientation_exif(6))
    display = decode(process_image(data).display)
    assert display.size == (120, 240)
    top_right = display.getpixel((100, 20))
    assert isinstance(top_right, tuple) and top_right[0] > 150 and top_right[2] < 100


def test_colours_tagged_with_an_icc_profile_are_converted_to_srgb() -> None:
    # In this profile the first channel is blue: a "red" pixel must come out blue.
    data = encode(
        Image.new("RGB", (64, 64), (255, 0, 0)), "JPEG", quality=95, icc_profile=swapped_profile()
    )
    pixel = decode(process_image(data).display).getpixel((32, 32))
    assert isinstance(pixel, tuple) and pixel[2] > 230 and pixel[0] < 30


def test_display_p3_photo_is_converted_and_srgb_photo_is_untouched() -> None:
    colour = (200, 120, 60)
    p3 = encode(Image.new("RGB", (64, 64), colour), "PNG", icc_profile=display_p3_profile())
    converted = decode(process_image(p3).display).getpixel((32, 32))
    assert isinstance(converted, tuple) and converted[0] > colour[0]  # P3 orange is more saturated

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = encode(Image.new("RGB", (64, 64), colour), "PNG", icc_profile=srgb)
    kept = decode(process_image(plain).display).getpixel((32, 32))
    assert isinstance(kept, tuple)
    assert all(abs(a - b) <= 2 for a, b in zip(kept, colour, strict=True))


def test_broken_icc_profile_does_not_refuse_the_photo() -> None:
    data = encode(Image.new("RGB", (64, 64), (10, 120, 200)), "JPEG", icc_profile=b"garbage" * 20)
    assert process_image(data).width == 64


def test_large_photo_is_bounded_to_the_display_and_thumbnail_sizes() -> None:
    result = process_image(encode(marker_image(4000, 3000), "JPEG", quality=85))
    assert (result.width, result.height) == (1500, 1125)
    assert (result.thumb_width, result.thumb_height) == (320, 240)
    assert decode(result.display).size == (1500, 1125)
    assert decode(result.thumbnail).size == (320, 240)
    assert len(result.display) < 1_000_000 and len(result.thumbnail) < 60_000


def test_output_is_deterministic() -> None:
    data = encode(photo_like(300, 200), "WEBP")
    assert process_image(data) == process_image(data)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limits(thumb_max_side=2000)
    with pytest.raises(ValueError):
        Limits(display_quality=100)
    with pytest.raises(ValueError):
        Limits(max_pixels=0)
    assert DEFAULT_LIMITS.max_bytes == 15 * 1024 * 1024


SMALL = Limits(display_max_side=48, thumb_max_side=12)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 400),
    height=st.integers(1, 400),
    orientation=st.integers(1, 8),
    fmt=st.sampled_from(["JPEG", "PNG", "WEBP"]),
)
def test_any_shape_fits_the_bounds_and_keeps_its_aspect_ratio(
    width: int, height: int, orientation: int, fmt: str
) -> None:
    data = encode(
        Image.new("RGB", (width, height), (90, 140, 200)), fmt, exif=orientation_exif(orientation)
    )
    result = process_image(data, SMALL)
    upright = (height, width) if orientation >= 5 else (width, height)

    display_bound = SMALL.display_max_side
    long_side = max(result.width, result.height)
    if fmt == "JPEG" and max(upright) > display_bound:
        # Decoded straight at a DCT scale: at least 3/4 of the bound, never more.
        assert 0.75 * display_bound <= long_side <= display_bound
    else:
        assert long_side == min(display_bound, max(upright))  # never upscaled
    assert max(result.thumb_width, result.thumb_height) == min(SMALL.thumb_max_side, long_side)
    for w, h in ((result.width, result.height), (result.thumb_width, result.thumb_height)):
        assert w >= 1 and h >= 1
        if min(w, h) > 2:  # rounding to whole pixels: within one pixel of the true ratio
            assert abs(w / h - upright[0] / upright[1]) <= (upright[0] / upright[1]) * 2 / min(w, h)
    assert decode(result.display).size == (result.width, result.height)
    assert decode(result.thumbnail).size == (result.thumb_width, result.thumb_height)
