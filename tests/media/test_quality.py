"""The fast path (DCT-scaled decode, no resampling pass, thumbnail from the display image)
looks as good as the slow path that decodes every pixel and resamples with Lanczos."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from media import DEFAULT_LIMITS, process_image
from tests.media.factories import decode, encode, photo_like

DISPLAY = (1500, 1125)
SIZE = (4000, 3000)  # a 12 MP phone photo: decoded straight at 3/8 scale, 1500×1125


def psnr(candidate: Image.Image, reference: Image.Image) -> float:
    a = np.asarray(candidate, np.float64)
    b = np.asarray(reference, np.float64)
    mse = float(np.mean((a - b) ** 2))
    return 10 * np.log10(255**2 / mse)


def naive_outputs(data: bytes) -> tuple[Image.Image, Image.Image]:
    """Full decode, Lanczos to the display size, thumbnail from the original, both as q82/q80."""
    original = Image.open(io.BytesIO(data))
    original.load()
    display = original.resize(DISPLAY, Image.Resampling.LANCZOS)
    thumb = original.resize((320, 240), Image.Resampling.LANCZOS)
    return (
        decode(encode(display, "JPEG", quality=DEFAULT_LIMITS.display_quality)),
        decode(encode(thumb, "JPEG", quality=DEFAULT_LIMITS.thumb_quality)),
    )


@pytest.fixture(scope="module")
def scene() -> tuple[Image.Image, bytes]:
    source = photo_like(*SIZE, seed=11, noise=3)
    return source, encode(source, "JPEG", quality=92)


def test_fast_display_is_as_close_to_the_scene_as_the_naive_one(
    scene: tuple[Image.Image, bytes],
) -> None:
    source, data = scene
    truth = source.resize(DISPLAY, Image.Resampling.LANCZOS)
    naive_display, _ = naive_outputs(data)
    fast_display = decode(process_image(data).display)

    naive_db, fast_db = psnr(naive_display, truth), psnr(fast_display, truth)
    assert fast_db >= naive_db - 0.6, (fast_db, naive_db)
    assert psnr(fast_display, naive_display) > 32  # and the two outputs look alike


def test_thumbnail_from_the_display_is_as_good_as_one_from_the_original(
    scene: tuple[Image.Image, bytes],
) -> None:
    source, data = scene
    truth = source.resize((320, 240), Image.Resampling.LANCZOS)
    _, naive_thumb = naive_outputs(data)
    fast_thumb = decode(process_image(data).thumbnail)

    assert psnr(fast_thumb, truth) >= psnr(naive_thumb, truth) - 0.5
