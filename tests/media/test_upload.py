"""The async entry point: off the event loop, bounded, and usable with a process pool."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from media import (
    CorruptImage,
    ImageBomb,
    ImageTooLarge,
    Limits,
    MediaError,
    MediaNotFound,
    UnsupportedImage,
    process_image,
    process_upload,
)
from tests.media.factories import encode, gps_exif, photo_like


async def test_process_upload_gives_the_same_result_as_process_image() -> None:
    data = encode(photo_like(640, 480), "JPEG", exif=gps_exif())
    assert await process_upload(data) == process_image(data)


async def test_simultaneous_uploads_share_a_pool_of_one_thread_per_core() -> None:
    uploads = [encode(photo_like(320, 240, seed=i), "JPEG") for i in range(12)]
    results = await asyncio.gather(*(process_upload(data) for data in uploads))
    assert len({r.sha256 for r in results}) == 12
    workers = [t for t in threading.enumerate() if t.name.startswith("relais-media")]
    assert 1 <= len(workers) <= len(os.sched_getaffinity(0))
    assert not threading.current_thread().name.startswith("relais-media")


async def test_oversize_upload_is_refused_before_queueing() -> None:
    with pytest.raises(ImageTooLarge):
        await process_upload(b"\xff\xd8\xff" + b"\x00" * 2000, Limits(max_bytes=1000))


async def test_refusals_propagate_from_the_pool() -> None:
    with pytest.raises(UnsupportedImage):
        await process_upload(b"%PDF-1.7")


@pytest.mark.parametrize(
    "error",
    [
        UnsupportedImage(),
        ImageTooLarge(20_000_000, 15 * 1024 * 1024),
        ImageBomb(50_000_000, 9000, 9000),
        ImageBomb(50_000_000),
        CorruptImage(),
        MediaNotFound(),
    ],
)
def test_errors_survive_pickling(error: MediaError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert (copy.code, copy.message, str(copy)) == (error.code, error.message, str(error))
    assert copy.__dict__ == error.__dict__


async def test_process_upload_works_with_a_process_pool() -> None:
    data = encode(photo_like(320, 240), "WEBP", exif=gps_exif())
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        result = await process_upload(data, executor=pool)
        with pytest.raises(CorruptImage):
            await process_upload(data[:200], executor=pool)
    assert result == process_image(data)
