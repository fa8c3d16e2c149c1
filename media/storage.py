"""Where processed photos live: a content-addressed store behind a small Protocol.

Keys are ``ab/cd/<sha256>.<ext>`` from the SHA-256 of the stored bytes, so storing the same
bytes twice is a no-op returning the same key, and a key never changes meaning. The local
implementation writes a temporary file in the target directory and renames it into place
(``os.replace`` is atomic on POSIX), so a reader never sees a half-written photo. An
S3-compatible implementation can follow the same Protocol later.

Deleting needs care: identical photos (the same picture sent to two reports) share one key.
The database layer must delete a key only when no row references it any more; `store_processed`
only ever removes what its own call created.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from media.errors import MediaNotFound
from media.processing import ProcessedImage

__all__ = [
    "LocalMediaStorage",
    "MediaStorage",
    "StoredObject",
    "media_key",
    "store_processed",
]

_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
_CONTENT_TYPES = {extension: ctype for ctype, extension in _EXTENSIONS.items()}
_KEY = re.compile(r"(?P<a>[0-9a-f]{2})/(?P<b>[0-9a-f]{2})/(?P<sha>[0-9a-f]{64})\.(?P<ext>[a-z]+)")


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A stored blob. `created` is False when identical bytes were already stored.

    (Two concurrent puts of the same new bytes may both report True: both renames succeed
    and leave the same file.)
    """

    key: str
    size: int
    content_type: str
    created: bool = True


@runtime_checkable
class MediaStorage(Protocol):
    """A content-addressed blob store for processed photos."""

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        """Store `data` under its SHA-256 key (idempotent) and describe it."""
        ...

    async def get(self, key: str) -> bytes:
        """The bytes stored under `key`; `MediaNotFound` if there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; deleting a missing key is not an error."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether `key` is stored."""
        ...

    def url_for(self, key: str) -> str:
        """The public URL where clients fetch `key`."""
        ...


def media_key(data: bytes, content_type: str) -> str:
    """The content address of `data`: ``ab/cd/<sha256>.<ext>``.

    Raises ValueError for a content type the store does not hold.
    """
    try:
        extension = _EXTENSIONS[content_type]
    except KeyError:
        raise ValueError(f"unsupported content type for media storage: {content_type!r}") from None
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}.{extension}"


def _check_key(key: str) -> None:
    """Refuse anything but exactly one of our keys (no ``..``, no absolute path, no typo)."""
    match = _KEY.fullmatch(key)
    if (
        match is None
        or match["ext"] not in _CONTENT_TYPES
        or not match["sha"].startswith(match["a"] + match["b"])
    ):
        raise MediaNotFound()


class LocalMediaStorage:
    """`MediaStorage` in a local directory, served by the web server under `base_url`."""

    def __init__(self, root: Path, base_url: str) -> None:
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")

    def _path(self, key: str) -> Path:
        _check_key(key)
        return self.root / key

    def _write(self, path: Path, data: bytes) -> bool:
        """Atomically create `path` with `data`; False if it already existed."""
        if path.is_file():
            return False  # same key, same bytes: nothing to do
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary file sits in the target directory so os.replace stays a same-filesystem
        # rename; its dot-prefixed name is never a valid key, so readers cannot stumble on it.
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as tmp:
                tmp.write(data)
                tmp.flush()
                os.fsync(tmp.fileno())  # data on disk before the name points at it
            os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the web server must read it
            os.replace(tmp_name, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        return True

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        """Store `data` under its SHA-256 key; a second put of the same bytes writes nothing."""
        key = media_key(data, content_type)
        created = await asyncio.to_thread(self._write, self.root / key, bytes(data))
        return StoredObject(key=key, size=len(data), content_type=content_type, created=created)

    async def get(self, key: str) -> bytes:
        """The stored bytes; `MediaNotFound` for an unknown or malformed key."""
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise MediaNotFound() from None

    async def delete(self, key: str) -> None:
        """Remove the object; a missing key is fine (deletes are retried after failures)."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(path.unlink)

    async def exists(self, key: str) -> bool:
        """Whether the object is stored (False for a malformed key)."""
        try:
            path = self._path(key)
        except MediaNotFound:
            return False
        return await asyncio.to_thread(path.is_file)

    def url_for(self, key: str) -> str:
        """``<base_url>/<key>``; the key is validated, so it needs no escaping."""
        _check_key(key)
        return f"{self.base_url}/{key}"


async def store_processed(storage: MediaStorage, processed: ProcessedImage) -> tuple[str, str]:
    """Store the display image and the thumbnail; return ``(display_key, thumb_key)``.

    All or nothing: if storing the thumbnail fails (or the task is cancelled), the display
    image is removed again, unless it was already stored before this call (another report
    uses the same bytes).
    """
    display = await storage.put(processed.display, processed.content_type)
    try:
        thumb = await storage.put(processed.thumbnail, processed.content_type)
    except BaseException:
        if display.created:
            # Shielded: a cancellation must not stop the cleanup halfway.
            await asyncio.shield(storage.delete(display.key))
        raise
    return display.key, thumb.key
