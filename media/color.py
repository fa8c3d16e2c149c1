"""Bring pixels into sRGB so the ICC profile can be dropped with the rest of the metadata.

Choice: outputs carry NO ICC profile, so their pixels must already be sRGB (what browsers and
phones assume for an untagged JPEG). A tagged input (iPhone Display P3, Adobe RGB from a
camera, a CMYK print file) is converted with LittleCMS; an untagged one is taken as sRGB.
Keeping a P3 profile instead would be a few hundred bytes more per file but also one more
metadata block to audit; the gamut we lose is invisible on a pothole.
"""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageCms

__all__ = ["to_srgb"]

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# The ICC colour space each Pillow mode must be described by for a transform to make sense.
_SPACE_FOR_MODE = {"RGB": "RGB", "L": "GRAY", "CMYK": "CMYK"}


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached LittleCMS transform from `icc_profile` to sRGB, or None when there is nothing
    to do (already sRGB) or nothing sensible to do (unreadable profile, wrong colour space)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        space = source.profile.xcolor_space.strip()
        description = ImageCms.getProfileDescription(source) or ""
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None  # a broken profile does not make a broken photo: treat it as untagged
    if space != _SPACE_FOR_MODE.get(mode) or (space == "RGB" and "sRGB" in description):
        return None
    try:
        return ImageCms.buildTransform(
            source,
            _SRGB,
            mode,
            "RGB",
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
            # NOCACHE: the transform is shared between worker threads, and LittleCMS's
            # one-pixel cache inside a transform is not thread-safe.
            flags=ImageCms.Flags.NOCACHE,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Return `image` as an RGB image whose pixels are sRGB.

    `icc_profile` is the profile the image was tagged with (``info["icc_profile"]``), if any.
    `image` must be in mode RGB, L or CMYK; the result is always a new or the same RGB image
    and never carries the profile.
    """
    if icc_profile:
        transform = _transform_to_srgb(bytes(icc_profile), image.mode)
        if transform is not None:
            return transform.apply(image)
    return image if image.mode == "RGB" else image.convert("RGB")
