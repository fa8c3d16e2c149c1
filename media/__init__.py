"""Photos: sniff, refuse, strip, re-encode and store what residents and staff upload.

No web framework or ORM here: the HTTP layer calls `process_upload` then `store_processed`,
and maps `MediaError` subclasses to problem details with their French `message`.
"""

from media.errors import (
    CorruptImage,
    ImageBomb,
    ImageTooLarge,
    MediaError,
    MediaNotFound,
    UnsupportedImage,
)
from media.gps import GpsHint, gps_from_exif
from media.processing import (
    DEFAULT_LIMITS,
    Limits,
    ProcessedImage,
    process_image,
    process_upload,
)
from media.sniffing import ImageType, sniff_image_type
from media.storage import (
    LocalMediaStorage,
    MediaStorage,
    StoredObject,
    media_key,
    store_processed,
)

__all__ = [
    "DEFAULT_LIMITS",
    "CorruptImage",
    "GpsHint",
    "ImageBomb",
    "ImageTooLarge",
    "ImageType",
    "Limits",
    "LocalMediaStorage",
    "MediaError",
    "MediaNotFound",
    "MediaStorage",
    "ProcessedImage",
    "StoredObject",
    "UnsupportedImage",
    "gps_from_exif",
    "media_key",
    "process_image",
    "process_upload",
    "sniff_image_type",
    "store_processed",
]
