"""Turn an uploaded photo into a clean display JPEG and a thumbnail.

`process_image` is synchronous, pure (bytes in, bytes out, no I/O, no shared mutable state) and
picklable, so it runs in a thread or a process pool; `process_upload` is the async entry point
the HTTP layer awaits. Nothing is stored here: a refused or failed photo leaves no trace.

Pipeline (order matters):

1. size check on the raw bytes, then the type from magic bytes (`media.sniffing`);
2. Pillow opens the header only, restricted to the sniffed plugin; the pixel count is checked
   there, BEFORE any decoding (decompression bombs);
3. JPEG (RGB or grey): libjpeg-turbo, through simplejpeg, decodes straight at a DCT scale
   n/8 (see `_dct_scale`): most of the IDCT and pixel work is skipped, and for usual phone
   sizes the output IS the display image, with no resampling pass at all. A truncated file
   fails here (strict mode), whatever the scale. Other inputs: Pillow decodes them fully
   (CMYK JPEGs too: Pillow knows Adobe's inverted channels). The EXIF orientation and GPS and
   the ICC profile are read from the header Pillow parsed;
4. alpha flattened on white, resize to the display size when still needed, orientation
   applied (on the small image: cheaper, and resizing commutes with a transposition), colour
   converted to sRGB;
5. encoded as a baseline JPEG from a pixel-only image: no EXIF, XMP, IPTC, ICC or comment;
6. the thumbnail is made from the display image, not from the original.

Display size: the long side is at most `Limits.display_max_side` (1600 px) and, for a JPEG,
whatever its fastest DCT scale gives if that keeps at least 3/4 of it: a 12 MP phone photo
(4000×3000, 4032×3024, 4080×3060) becomes ~1500 px wide at 3/8 scale with no resampling
pass, which is what keeps it under the 80 ms target on one core (a 2000 → 1600 px resize
alone costs ~20 ms). Every other input is resized to exactly the bound. Clients get the
actual `width` and `height` with every photo; 1200–1600 px is more than a phone screen shows.

Output format: JPEG rather than WebP. Every client (old Android WebViews, mail clients, the
Open311 ``media_url`` consumers, PDF route sheets) decodes it, and libjpeg-turbo encodes a
1500 px image in ~6 ms where libwebp takes ~170 ms (method 4) or ~50 ms (method 0) on the
same core: WebP's ~15 % smaller files do not pay for a 10-30x slower upload path.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import os
import struct
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field

import pillow_heif
import simplejpeg
from PIL import ExifTags, Image, ImageFile

from media.color import to_srgb
from media.errors import CorruptImage, ImageBomb, ImageTooLarge, MediaError
from media.gps import GpsHint, gps_from_exif
from media.sniffing import ImageType, sniff_image_type

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "ProcessedImage",
    "process_image",
    "process_upload",
]

OUTPUT_CONTENT_TYPE = "image/jpeg"

# Resampling, when the decoder did not already land on the display size. A small step (below
# 2x: a JPEG whose DCT scale overshot, e.g. 4624 px decoded at 3/8 to 1734, then to 1600)
# uses BOX (area averaging): 17 ms on one core where HAMMING costs 24, BICUBIC 40 and LANCZOS
# 52, within 0.4 dB PSNR of a full-decode Lanczos after the q82 encode. Known cost of the DCT
# scaling: periodic detail close to the sensor's pixel pitch (a zone plate; at worst railings
# shot from afar) shows faint moiré, whatever filter follows. Larger steps (PNG, WebP, HEIC:
# no DCT scaling) use HAMMING: the cost of BILINEAR, but sharper. reducing_gap=1.5 first
# box-averages by an integer factor (cheap), leaving at most a ~3x step for the filter.
_SMALL_STEP_RESAMPLE = Image.Resampling.BOX
_LARGE_STEP_RESAMPLE = Image.Resampling.HAMMING
# Thumbnail: ~5x down from the display image (1500 -> 320). When the factor is a whole number,
# reduce() averages each block (1.4 ms for 1600 -> 320); otherwise LANCZOS after a reduce(3),
# ~5 ms, within 0.1 dB PSNR of each other after the q80 encode (tests/media/test_quality.py).
_THUMB_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 1.5

# Same table as ImageOps.exif_transpose (EXIF 2.32, tag 0x0112).
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# What Pillow and pillow-heif raise on damaged input. Broad on purpose: whatever the decoder
# chokes on, the user's answer is the same ("send it again"); MediaError is re-raised first.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # includes UnidentifiedImageError and "image file is truncated"
    SyntaxError,  # broken PNG chunks, pillow-heif parse errors
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    RuntimeError,
)


@functools.cache
def _register_heif() -> None:
    """Teach Pillow to open HEIC/HEIF (iPhones), once per process."""
    # Depth maps and auxiliary images are never used here: do not even parse them.
    pillow_heif.register_heif_opener(depth_images=False, aux_images=False)


_register_heif()


@dataclass(frozen=True, slots=True)
class Limits:
    """What the pipeline accepts and produces. Defaults suit phone photos and news images.

    `max_bytes` applies to the upload as received (15 Mio by default); `max_pixels` to the
    dimensions announced by the header, checked before decoding. Qualities are JPEG qualities.
    """

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 50_000_000
    display_max_side: int = 1600
    thumb_max_side: int = 320
    display_quality: int = 82
    thumb_quality: int = 80

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "display_max_side", "thumb_max_side"):
            if getattr(self, name) <= 0:
                raise ValueError(f"Limits.{name} must be positive")
        if self.thumb_max_side > self.display_max_side:
            raise ValueError("Limits.thumb_max_side cannot exceed display_max_side")
        for name in ("display_quality", "thumb_quality"):
            if not 1 <= getattr(self, name) <= 95:  # above 95 libjpeg output only grows
                raise ValueError(f"Limits.{name} must be between 1 and 95")


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """A photo ready to store: two metadata-free sRGB JPEGs and what we learnt on the way.

    `width`/`height` are the display image's (after orientation), `gps` the location hint
    read from the original's EXIF (personal data: show it to the resident, do not publish it),
    `original_type` the sniffed input type, `sha256` the hex digest of `display`.
    """

    display: bytes = field(repr=False)
    thumbnail: bytes = field(repr=False)
    width: int
    height: int
    thumb_width: int
    thumb_height: int
    content_type: str
    gps: GpsHint | None
    original_type: ImageType
    sha256: str


def _require_strict_decoding() -> None:
    # LOAD_TRUNCATED_IMAGES is process-wide and read by Pillow at decode time; if anything in
    # the process turned it on, a cut-off upload would be accepted as a half-grey photo. Fail
    # loudly (a deployment bug) rather than store broken photos quietly.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError(
            "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process; media needs it False "
            "to refuse truncated uploads"
        )


def _fit(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled to a long side of at most `max_side`, keeping the aspect ratio."""
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return size
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(
    image: Image.Image, max_side: int, resample: Image.Resampling | None = None
) -> Image.Image:
    """`image` shrunk to a long side of `max_side` (never enlarged). Without an explicit
    `resample`, the filter depends on the step (see _SMALL_STEP_RESAMPLE)."""
    target = _fit(image.size, max_side)
    if target == image.size:
        return image
    if resample is None:
        small_step = max(image.size) < 2 * max(target)
        resample = _SMALL_STEP_RESAMPLE if small_step else _LARGE_STEP_RESAMPLE
    return image.resize(target, resample, reducing_gap=_REDUCING_GAP)


def _thumbnail(display: Image.Image, max_side: int) -> Image.Image:
    """A new image of `display` shrunk to a long side of `max_side` (see _THUMB_RESAMPLE)."""
    target = _fit(display.size, max_side)
    if target == display.size:  # already small: the same pixels, at thumbnail quality
        return display.copy()
    factor = display.width // target[0]
    if factor > 1 and (target[0] * factor, target[1] * factor) == display.size:
        return display.reduce(factor)
    return _resize(display, max_side, _THUMB_RESAMPLE)


def _orientation(exif: Image.Exif) -> int:
    value = exif.get(ExifTags.Base.Orientation, 1)
    return value if isinstance(value, int) and value in _ORIENTATION_TRANSPOSE else 1


def _flatten(image: Image.Image) -> Image.Image:
    """The image in mode RGB, L or CMYK, with any transparency composited on white."""
    mode = image.mode
    if mode in ("RGB", "L", "CMYK") and "transparency" not in image.info:
        return image
    if mode == "1":
        return image.convert("L")
    if mode == "I" or mode.startswith("I;16"):
        # 16-bit grey (PNG): scale to 8 bits; a plain convert("L") would clip to white.
        return image.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    grey = mode in ("L", "LA", "La")
    has_alpha = "A" in mode or "a" in mode or "transparency" in image.info
    if not has_alpha:
        return image.convert("L" if grey else "RGB")
    with_alpha = image.convert("LA" if grey else "RGBA")
    background = Image.new("L" if grey else "RGB", image.size, 255 if grey else (255, 255, 255))
    background.paste(with_alpha, mask=with_alpha.getchannel("A"))
    return background


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    # Drop everything but pixels: Pillow's JPEG writer re-emits info["comment"] by itself, and
    # resize/convert/transpose copy info (ICC, XMP, EXIF bytes) from the original.
    image.info = {}
    buffer = io.BytesIO()
    # Baseline, not progressive (progressive costs ~40 ms more at 1600 px); no Huffman
    # optimisation on the display image (+8 ms for ~3 % smaller).
    image.save(buffer, "JPEG", quality=quality, subsampling="4:2:0", optimize=False)
    return buffer.getvalue()


# DCT scaling keeps the decoder's output when it is at least this share of the display bound.
_MIN_DCT_SHARE = 0.75
# Pillow modes whose JPEGs simplejpeg decodes to the same pixels, and the colour space to ask.
_SIMPLEJPEG_SPACE = {"RGB": "RGB", "L": "GRAY"}


def _scaled(side: int, scale: int) -> int:
    """A side decoded at scale n/8 (libjpeg rounds up)."""
    return -(-side * scale // 8)


def _dct_scale(long_side: int, max_side: int) -> int:
    """Numerator n of the n/8 scale to decode a JPEG at, for a display long side `max_side`.

    The largest scale whose output fits the bound, unless that loses more than a quarter of
    it: then one step up, and a resize finishes the job.
    """
    if long_side <= max_side:
        return 8
    fitting = [n for n in range(1, 8) if _scaled(long_side, n) <= max_side]
    if not fitting:  # even 1/8 is too big: decode at 1/8, resize the rest
        return 1
    best = fitting[-1]
    return best if _scaled(long_side, best) >= _MIN_DCT_SHARE * max_side else best + 1


def _decode_jpeg(data: bytes, header: Image.Image, max_side: int) -> Image.Image:
    """Pixels of a JPEG decoded by libjpeg-turbo straight at its DCT scale (module doc)."""
    width, height = header.size
    scale = _dct_scale(max(width, height), max_side)
    # simplejpeg picks the smallest scale whose output reaches these minimums: exactly n/8.
    pixels = simplejpeg.decode_jpeg(
        data,
        colorspace=_SIMPLEJPEG_SPACE[header.mode],
        min_width=_scaled(width, scale),
        min_height=_scaled(height, scale),
        strict=True,  # a recoverable libjpeg warning (truncated data) is an error here
    )
    if header.mode == "L":
        return Image.fromarray(pixels[:, :, 0], "L")
    return Image.fromarray(pixels, "RGB")


def _decode(
    data: bytes, image_type: ImageType, limits: Limits
) -> tuple[Image.Image, Image.Exif, bytes | None]:
    """Open, check the header's pixel count, decode. Returns the pixels, the EXIF and the ICC
    profile. A JPEG comes out already close to the display size (see `_decode_jpeg`)."""
    try:
        with Image.open(io.BytesIO(data), formats=[image_type.pillow_format]) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise CorruptImage()
            pixels = width * height
            pillow_limit = Image.MAX_IMAGE_PIXELS
            if pixels > limits.max_pixels or (pillow_limit is not None and pixels > pillow_limit):
                raise ImageBomb(limits.max_pixels, width, height)
            if image_type is ImageType.JPEG and image.mode in _SIMPLEJPEG_SPACE:
                exif = image.getexif()  # a JPEG's APP1 and APP2 are parsed with the header
                icc = image.info.get("icc_profile")
                return _decode_jpeg(data, image, limits.display_max_side), exif, icc
            if image_type is ImageType.JPEG:
                # CMYK: Pillow's own DCT-domain downscale (1/2, 1/4 or 1/8 only).
                image.draft(None, _fit(image.size, limits.display_max_side))
            image.load()  # the whole image, so truncation is detected now, not later
            # After load: a PNG may keep its eXIf chunk after the pixel data.
            return image, image.getexif(), image.info.get("icc_profile")
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as exc:
        raise ImageBomb(limits.max_pixels) from exc
    except _DECODE_ERRORS as exc:
        raise CorruptImage() from exc


def process_image(data: bytes, limits: Limits = DEFAULT_LIMITS) -> ProcessedImage:
    """Validate an uploaded photo and produce its stripped display size and thumbnail.

    CPU-bound and synchronous: call it from a worker thread or process (`process_upload`
    does). Raises `ImageTooLarge`, `UnsupportedImage`, `ImageBomb` or `CorruptImage` (all
    `MediaError`) for inputs we refuse.
    """
    _require_strict_decoding()
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(len(data), limits.max_bytes)
    image_type = sniff_image_type(data)
    decoded, exif, icc_profile = _decode(data, image_type, limits)
    gps = gps_from_exif(exif)  # read before anything is dropped
    orientation = _orientation(exif)

    try:
        display = _resize(_flatten(decoded), limits.display_max_side)
        if orientation in _ORIENTATION_TRANSPOSE:
            display = display.transpose(_ORIENTATION_TRANSPOSE[orientation])
        display = to_srgb(display, icc_profile)
        display_bytes = _encode_jpeg(display, limits.display_quality)

        thumb = _thumbnail(display, limits.thumb_max_side)
        thumb_bytes = _encode_jpeg(thumb, limits.thumb_quality)
    except MemoryError as exc:
        raise ImageBomb(limits.max_pixels) from exc

    return ProcessedImage(
        display=display_bytes,
        thumbnail=thumb_bytes,
        width=display.width,
        height=display.height,
        thumb_width=thumb.width,
        thumb_height=thumb.height,
        content_type=OUTPUT_CONTENT_TYPE,
        gps=gps,
        original_type=image_type,
        sha256=hashlib.sha256(display_bytes).hexdigest(),
    )


# Executor choice: a dedicated, bounded thread pool rather than asyncio.to_thread. Pillow,
# libjpeg-turbo and libheif release the GIL while decoding, resizing and encoding, so threads
# use every core without pickling 15 MB uploads to another process; and a pool of one thread
# per core caps the photos decoded at once (memory: up to ~50 MB each for a 12 MP PNG) and keeps
# photo bursts from starving the default executor that file and DNS work also use.
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _media_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
            _executor = ThreadPoolExecutor(
                max_workers=workers or os.cpu_count() or 1, thread_name_prefix="relais-media"
            )
        return _executor


async def process_upload(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, executor: Executor | None = None
) -> ProcessedImage:
    """Run `process_image` off the event loop and return its result.

    By default the work goes to a module thread pool with one thread per available core;
    pass `executor` to use another (e.g. a `ProcessPoolExecutor` to isolate native decoders).
    Oversized uploads are refused at once, without queueing.
    """
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(len(data), limits.max_bytes)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor or _media_executor(), process_image, data, limits)
