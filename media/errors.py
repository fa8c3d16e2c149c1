"""Errors raised by the photo pipeline.

Every error derives from `MediaError` (a `ValueError`: the input is wrong, not the server) and
carries a stable machine `code` and a French `message` written for the resident or the agent
who sent the file: it says what went wrong and what to do next. The HTTP layer maps them to
problem details once (suggested: 415 for `UnsupportedImage`, 413 for `ImageTooLarge`, 422 for
`ImageBomb` and `CorruptImage`, 404 for `MediaNotFound`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

__all__ = [
    "CorruptImage",
    "ImageBomb",
    "ImageTooLarge",
    "MediaError",
    "MediaNotFound",
    "UnsupportedImage",
]


def _megabytes(size: int) -> str:
    """Bytes as French megabytes (1 Mo = 1 048 576 octets): ``"15"``, ``"15,1"``.

    Rounded up to a tenth, so a file just over the limit never reads as equal to it.
    """
    tenths = math.ceil(size * 10 / (1024 * 1024))
    text = str(tenths // 10) if tenths % 10 == 0 else f"{tenths / 10:.1f}"
    return text.replace(".", ",")


class MediaError(ValueError):
    """Base of every photo pipeline error: a stable `code` and a French `message`."""

    code: ClassVar[str] = "media_error"
    default_message: ClassVar[str] = (
        "Cette image n'a pas pu être traitée. Essayez avec une autre photo."
    )

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take other constructor arguments than ``args``; rebuild from the instance
        # state so errors survive a trip back from a process pool worker.
        return _rebuild, (type(self), dict(self.__dict__))


def _rebuild(cls: type[MediaError], state: dict[str, Any]) -> MediaError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    ValueError.__init__(error, state["message"])
    return error


class UnsupportedImage(MediaError):
    """The bytes are not a JPEG, PNG, WebP or HEIC/HEIF image (whatever the file name said)."""

    code = "unsupported_image"
    default_message = (
        "Ce fichier n'est pas une photo reconnue. Envoyez une image JPEG, PNG, WebP ou HEIC."
    )


class ImageTooLarge(MediaError):
    """The upload is heavier than the configured byte limit."""

    code = "image_too_large"

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"Cette photo est trop lourde ({_megabytes(size)} Mo). La taille maximale est de "
            f"{_megabytes(limit)} Mo : réduisez-la ou envoyez une autre photo."
        )


class ImageBomb(MediaError):
    """The header announces more pixels than we agree to decode (decompression bomb)."""

    code = "image_bomb"

    def __init__(self, limit: int, width: int | None = None, height: int | None = None) -> None:
        self.limit = limit
        self.width = width
        self.height = height
        dims = f" ({width} × {height} pixels)" if width and height else ""
        megapixels = max(1, limit // 1_000_000)
        super().__init__(
            f"Cette image est trop grande{dims}. "
            f"Envoyez une photo de {megapixels} mégapixels au maximum."
        )


class CorruptImage(MediaError):
    """The file starts like an image but cannot be decoded completely (truncated, damaged)."""

    code = "corrupt_image"
    default_message = (
        "Cette photo est incomplète ou endommagée. Reprenez la photo ou envoyez-la à nouveau."
    )


class MediaNotFound(MediaError):
    """No stored object has this key (or the key is not one of ours)."""

    code = "media_not_found"
    default_message = "Cette image n'existe pas ou a été supprimée."
