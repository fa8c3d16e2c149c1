"""Serving stored photos. Content-addressed, so each URL's bytes never change: cached forever.

A photo staff redacted is no longer served to the public, even by its URL.
"""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath

from backend.demandes.tables import Photo
from backend.exceptions import NotFound
from backend.news.tables import NewsImage
from media import MediaNotFound, MediaStorage


async def publicly_visible(key: str) -> bool:
    """A key is public while a non-redacted report photo or a news image uses it."""
    photo = await Photo.exists().where(
        ((Photo.display_key == key) | (Photo.thumb_key == key)) & (Photo.redacted == False)  # noqa: E712
    )
    return photo or await NewsImage.exists().where(
        (NewsImage.display_key == key) | (NewsImage.thumb_key == key)
    )


class MediaController(Controller):
    """GET /media/<key>."""

    path = "/media"
    tags = ["Médias"]

    @get("/{key:path}", operation_id="getMedia")
    async def get_media(
        self, key: FromPath[str], storage: NamedDependency[MediaStorage]
    ) -> Response[bytes]:
        """A stored image (display size or thumbnail), without any metadata."""
        key = key.lstrip("/")
        missing = NotFound("Cette image est introuvable.")
        if not await publicly_visible(key):
            raise missing
        try:
            data = await storage.get(key)
        except MediaNotFound as exc:
            raise missing from exc
        return Response(
            data,
            media_type="image/jpeg" if key.endswith(".jpg") else "application/octet-stream",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )
