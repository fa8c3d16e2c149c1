"""Content-addressed local storage: round trip, deduplication, atomic writes, cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from pathlib import Path

import pytest

from media import (
    LocalMediaStorage,
    MediaNotFound,
    MediaStorage,
    ProcessedImage,
    StoredObject,
    process_image,
    store_processed,
)
from tests.media.factories import encode, photo_like

BASE_URL = "https://relais.example/media/"


@pytest.fixture
def storage(tmp_path: Path) -> LocalMediaStorage:
    return LocalMediaStorage(tmp_path / "media", BASE_URL)


@pytest.fixture(scope="module")
def processed() -> ProcessedImage:
    return process_image(encode(photo_like(480, 360), "JPEG"))


def _all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_local_storage_satisfies_the_protocol(storage: LocalMediaStorage) -> None:
    assert isinstance(storage, MediaStorage)


async def test_put_then_get_returns_the_same_bytes(storage: LocalMediaStorage) -> None:
    data = b"\xff\xd8\xff pretend jpeg \xff\xd9"
    stored = await storage.put(data, "image/jpeg")

    digest = hashlib.sha256(data).hexdigest()
    assert stored == StoredObject(
        key=f"{digest[:2]}/{digest[2:4]}/{digest}.jpg",
        size=len(data),
        content_type="image/jpeg",
        created=True,
    )
    assert await storage.get(stored.key) == data
    assert await storage.exists(stored.key)
    assert storage.url_for(stored.key) == f"https://relais.example/media/{stored.key}"
    assert stat.S_IMODE((storage.root / stored.key).stat().st_mode) == 0o644


async def test_same_bytes_give_the_same_key_and_are_stored_once(
    storage: LocalMediaStorage,
) -> None:
    first = await storage.put(b"same photo", "image/jpeg")
    mtime = (storage.root / first.key).stat().st_mtime_ns
    second = await storage.put(b"same photo", "image/jpeg")

    assert second.key == first.key
    assert (first.created, second.created) == (True, False)
    assert _all_files(storage.root) == [storage.root / first.key]
    assert (storage.root / first.key).stat().st_mtime_ns == mtime  # not rewritten


async def test_different_bytes_give_different_keys(storage: LocalMediaStorage) -> None:
    a = await storage.put(b"photo a", "image/jpeg")
    b = await storage.put(b"photo b", "image/jpeg")
    assert a.key != b.key


async def test_concurrent_puts_of_the_same_bytes_leave_one_complete_file(
    storage: LocalMediaStorage,
) -> None:
    data = os.urandom(256 * 1024)
    results = await asyncio.gather(*(storage.put(data, "image/jpeg") for _ in range(8)))
    assert {r.key for r in results} == {results[0].key}
    assert _all_files(storage.root) == [storage.root / results[0].key]  # no temp file left
    assert await storage.get(results[0].key) == data


def _key(data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}.jpg"


def _block(storage: LocalMediaStorage, key: str) -> Path:
    """Make the final rename of `key` fail for real: a directory sits where the file goes."""
    blocker = storage.root / key
    (blocker / "occupied").mkdir(parents=True)
    return blocker


async def test_a_failed_write_leaves_neither_a_partial_file_nor_a_temporary(
    storage: LocalMediaStorage,
) -> None:
    data = b"never completely written"
    blocker = _block(storage, _key(data))
    with pytest.raises(OSError):
        await storage.put(data, "image/jpeg")
    assert not await storage.exists(_key(data))
    assert list(blocker.parent.iterdir()) == [blocker]  # the temporary file is gone


async def test_delete_is_idempotent(storage: LocalMediaStorage) -> None:
    stored = await storage.put(b"to delete", "image/webp")
    assert stored.key.endswith(".webp")
    await storage.delete(stored.key)
    await storage.delete(stored.key)
    assert not await storage.exists(stored.key)
    with pytest.raises(MediaNotFound):
        await storage.get(stored.key)


@pytest.mark.parametrize(
    "key",
    [
        "../../etc/passwd",
        "/etc/passwd",
        "ab/cd/" + "0" * 64 + ".jpg",  # shard does not match the digest
        "00/00/" + "0" * 64 + ".exe",
        "00/00/" + "0" * 64 + ".jpg/../../x",
        "00/00/" + "0" * 63 + ".jpg",
        "",
    ],
)
async def test_keys_that_are_not_ours_are_not_found(storage: LocalMediaStorage, key: str) -> None:
    with pytest.raises(MediaNotFound):
        await storage.get(key)
    assert not await storage.exists(key)
    with pytest.raises(MediaNotFound):
        storage.url_for(key)


async def test_unknown_content_type_is_refused(storage: LocalMediaStorage) -> None:
    with pytest.raises(ValueError, match="content type"):
        await storage.put(b"<svg/>", "image/svg+xml")


async def test_store_processed_stores_display_and_thumbnail(
    storage: LocalMediaStorage, processed: ProcessedImage
) -> None:
    display_key, thumb_key = await store_processed(storage, processed)
    assert await storage.get(display_key) == processed.display
    assert await storage.get(thumb_key) == processed.thumbnail
    assert display_key == _key(processed.display)
    assert processed.sha256 in display_key


async def test_store_processed_removes_the_display_when_the_thumbnail_fails(
    storage: LocalMediaStorage, processed: ProcessedImage
) -> None:
    _block(storage, _key(processed.thumbnail))
    with pytest.raises(OSError):
        await store_processed(storage, processed)
    assert not await storage.exists(_key(processed.display))
    assert [p for p in _all_files(storage.root) if p.name != "occupied"] == []


async def test_store_processed_keeps_a_display_another_report_already_uses(
    storage: LocalMediaStorage, processed: ProcessedImage
) -> None:
    earlier = await storage.put(processed.display, processed.content_type)
    _block(storage, _key(processed.thumbnail))
    with pytest.raises(OSError):
        await store_processed(storage, processed)
    assert await storage.get(earlier.key) == processed.display


async def test_readers_see_nothing_or_everything_while_a_photo_is_written(
    storage: LocalMediaStorage,
) -> None:
    data = os.urandom(8 * 1024 * 1024)
    key = _key(data)
    writing = asyncio.create_task(storage.put(data, "image/jpeg"))
    seen: list[int] = []
    while not writing.done():
        try:
            seen.append(len(await storage.get(key)))
        except MediaNotFound:
            seen.append(0)
    await writing
    assert set(seen) <= {0, len(data)}
    assert await storage.get(key) == data
