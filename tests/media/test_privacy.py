"""The GPS position is read as a hint, then no metadata at all leaves the pipeline."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, IptcImagePlugin

from media import GpsHint, gps_from_exif, process_image
from tests.media.factories import (
    PARIS_LAT,
    PARIS_LON,
    decode,
    display_p3_profile,
    encode,
    gps_exif,
    insert_jpeg_segment,
    iptc_app13,
    jpeg_segments,
    photo_like,
)

XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
    b'22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" '
    b'exif:GPSLatitude="48,51.19N" exif:GPSLongitude="2,20.95E"/></rdf:RDF></x:xmpmeta>'
)
COMMENT = b"Photo de Jeanne Dupont, 12 rue des Lilas"
# Bytes that betray a metadata block or its contents if found anywhere in an output file.
TELLTALES = [
    b"Exif",
    b"http://ns.adobe.com",
    b"xmpmeta",
    b"Photoshop 3.0",
    b"8BIM",
    b"ICC_PROFILE",
    b"Apple",
    b"iPhone",
    b"Jeanne",
    b"Dupont",
    b"Lilas",
]


def _loaded_jpeg(size: tuple[int, int] = (800, 600)) -> bytes:
    """A JPEG carrying EXIF (camera, author, GPS), XMP, IPTC, an ICC profile and a comment."""
    data = encode(
        photo_like(*size),
        "JPEG",
        quality=92,
        exif=gps_exif(orientation=6),
        xmp=XMP,
        comment=COMMENT,
        icc_profile=display_p3_profile(),
    )
    return insert_jpeg_segment(data, 0xED, iptc_app13("Jeanne Dupont"))


def test_the_source_fixture_really_carries_every_kind_of_metadata() -> None:
    source = decode(_loaded_jpeg())
    assert source.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert {"exif", "xmp", "comment", "icc_profile"} <= source.info.keys()
    assert IptcImagePlugin.getiptcinfo(source)


def test_gps_is_extracted_as_a_hint_from_a_jpeg() -> None:
    hint = process_image(_loaded_jpeg()).gps
    assert hint is not None
    assert hint.latitude == pytest.approx(PARIS_LAT, abs=1e-6)
    assert hint.longitude == pytest.approx(PARIS_LON, abs=1e-6)
    assert hint.accuracy_m == 5.0


@pytest.mark.parametrize(("fmt", "params"), [("HEIF", {"quality": 70}), ("WEBP", {}), ("PNG", {})])
def test_gps_is_extracted_from_other_types_too(fmt: str, params: dict[str, object]) -> None:
    data = encode(photo_like(128, 96), fmt, exif=gps_exif(-33.8568, -151.2153), **params)
    assert process_image(data).gps == GpsHint(-33.8568, -151.2153, 5.0)


@pytest.mark.parametrize("which", ["display", "thumbnail"])
def test_no_metadata_survives_in_the_outputs(which: str) -> None:
    result = process_image(_loaded_jpeg())
    assert result.gps is not None  # it was there...
    output: bytes = getattr(result, which)

    reopened = decode(output)
    assert not reopened.getexif()  # ...and it is gone: no EXIF, hence no GPS
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "photoshop"):
        assert key not in reopened.info
    assert IptcImagePlugin.getiptcinfo(reopened) is None
    for telltale in TELLTALES:
        assert telltale not in output, telltale

    # Structurally: only JFIF APP0, tables, frame and scan segments; no APP1-15, no COM.
    markers = {marker for marker, _ in jpeg_segments(output)}
    assert markers <= {0xE0, 0xDB, 0xC0, 0xC4, 0xDA, 0xDD}, sorted(hex(m) for m in markers)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "HEIF"])
def test_metadata_of_other_types_does_not_survive(fmt: str) -> None:
    params: dict[str, object] = {"exif": gps_exif(), "icc_profile": display_p3_profile()}
    if fmt != "HEIF":
        params["xmp"] = XMP
    result = process_image(encode(photo_like(200, 150), fmt, **params))
    assert result.gps is not None
    for output in (result.display, result.thumbnail):
        assert not decode(output).getexif()
        assert all(telltale not in output for telltale in TELLTALES)


def test_photo_without_gps_has_no_hint() -> None:
    assert process_image(encode(photo_like(64, 48), "JPEG")).gps is None


def _with_gps(tags: dict[int, object]) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = tags
    return exif


def _gps(tags: dict[int, object]) -> GpsHint | None:
    return gps_from_exif(_roundtrip(_with_gps(tags)))


def _roundtrip(exif: Image.Exif) -> Image.Exif:
    # Through bytes, as it comes out of a file.
    return decode(encode(Image.new("RGB", (8, 8)), "JPEG", exif=exif)).getexif()


G = ExifTags.GPS


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (
            {G.GPSLatitudeRef: "S", G.GPSLatitude: (22.0, 54.0, 30.0),
             G.GPSLongitudeRef: "W", G.GPSLongitude: (43.0, 12.0, 0.0)},
            (-22.9083333, -43.2),
        ),
        (  # no refs at all: read as N/E, like photo galleries do
            {G.GPSLatitude: (45.0, 30.0, 0.0), G.GPSLongitude: (4.0, 15.0, 0.0)},
            (45.5, 4.25),
        ),
        (  # decimal minutes, seconds at zero (common in Android writers)
            {G.GPSLatitudeRef: "N", G.GPSLatitude: (43.0, 17.5, 0.0),
             G.GPSLongitudeRef: "E", G.GPSLongitude: (5.0, 22.25, 0.0)},
            (43.2916667, 5.3708333),
        ),
    ],
)  # fmt: skip
def test_gps_coordinates_use_hemisphere_refs(
    tags: dict[int, object], expected: tuple[float, float]
) -> None:
    hint = _gps(tags)
    assert hint is not None
    assert (hint.latitude, hint.longitude) == pytest.approx(expected, abs=1e-6)
    assert hint.accuracy_m is None


@pytest.mark.parametrize(
    "tags",
    [
        {G.GPSLatitudeRef: "N", G.GPSLatitude: (48.0, 51.0, 0.0)},  # no longitude
        {G.GPSLatitudeRef: "N", G.GPSLatitude: (95.0, 0.0, 0.0),
         G.GPSLongitudeRef: "E", G.GPSLongitude: (2.0, 0.0, 0.0)},  # beyond the pole
        {G.GPSLatitudeRef: "N", G.GPSLatitude: (0.0, 0.0, 0.0),
         G.GPSLongitudeRef: "E", G.GPSLongitude: (0.0, 0.0, 0.0)},  # "no fix" placeholder
        {G.GPSLatitudeRef: "X", G.GPSLatitude: (48.0, 0.0, 0.0),
         G.GPSLongitudeRef: "E", G.GPSLongitude: (2.0, 0.0, 0.0)},  # nonsense ref
        {G.GPSVersionID: b"\x02\x03\x00\x00"},  # GPS block without a position
    ],
)  # fmt: skip
def test_implausible_or_partial_gps_gives_no_hint(tags: dict[int, object]) -> None:
    assert _gps(tags) is None


def test_gps_rational_with_zero_denominator_gives_no_hint() -> None:
    from PIL.TiffImagePlugin import IFDRational

    hint = gps_from_exif(
        _with_gps({G.GPSLatitudeRef: "N", G.GPSLatitude: (IFDRational(48, 0), 0.0, 0.0),
                   G.GPSLongitudeRef: "E", G.GPSLongitude: (2.0, 0.0, 0.0)})
    )  # fmt: skip
    assert hint is None


@settings(max_examples=60, deadline=None)
@given(
    lat=st.floats(-89.99, 89.99).filter(lambda v: abs(v) > 1e-4),
    lon=st.floats(-179.99, 179.99).filter(lambda v: abs(v) > 1e-4),
)
def test_any_position_survives_the_exif_round_trip(lat: float, lon: float) -> None:
    hint = gps_from_exif(_roundtrip(gps_exif(lat, lon, accuracy=None)))
    assert hint is not None
    assert hint.latitude == pytest.approx(lat, abs=1e-6)
    assert hint.longitude == pytest.approx(lon, abs=1e-6)
