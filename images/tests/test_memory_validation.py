"""Upload validation checks a still PNG's pixel data without decoding it, and a JPEG's at
1/8 scale, yet refuses every damaged file that a full decode refuses."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from images import errors
from images.tests.factories import _chunk
from images.validation import upload_validate

COLOUR = b"\xc8\x1e\x1e"
# Adam7's passes: first column, first row, column step, row step.
ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def png(scanlines: bytes, *, width: int = 64, height: int = 48, interlace: int = 0) -> bytes:
    """Return an RGB PNG of these filtered scanlines, every checksum right."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (_chunk(b"IHDR", header), _chunk(b"IDAT", zlib.compress(scanlines)), _chunk(b"IEND", b""))
    )


def rows(count: int, *, width: int = 64, filter_type: int = 0) -> bytes:
    return (bytes([filter_type]) + COLOUR * width) * count


def interlaced_rows(width: int, height: int) -> bytes:
    scanlines = b""
    for column, row, column_step, row_step in ADAM7:
        columns = max(0, width - column + column_step - 1) // column_step
        count = max(0, height - row + row_step - 1) // row_step
        if columns and count:
            scanlines += rows(count, width=columns)
    return scanlines


def validate(data: bytes):
    return upload_validate(file=io.BytesIO(data), filename="a.png", max_bytes=10**7)


def fully_decoded(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        image.load()


def test_a_whole_png_is_accepted():
    data = png(rows(48))
    fully_decoded(data)

    assert (validate(data).width, validate(data).height) == (64, 48)


def test_a_whole_interlaced_png_is_accepted():
    data = png(interlaced_rows(64, 48), interlace=1)
    fully_decoded(data)

    assert validate(data).format == "PNG"


def _sums_right_data_wrong() -> bytes:
    compressed = bytearray(zlib.compress(rows(48)))
    compressed[len(compressed) // 2] ^= 0xFF
    header = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (_chunk(b"IHDR", header), _chunk(b"IDAT", bytes(compressed)), _chunk(b"IEND", b""))
    )


DAMAGED = {
    "broken-deflate-stream": _sums_right_data_wrong,
    "unknown-row-filter": lambda: png(rows(47) + rows(1, filter_type=9)),
    "interlaced-pass-missing": lambda: png(interlaced_rows(64, 48)[:-500], interlace=1),
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_a_png_whose_checksums_hold_but_pixels_do_not_is_refused(kind):
    data = DAMAGED[kind]()
    with pytest.raises((OSError, SyntaxError, ValueError)):
        fully_decoded(data)

    with pytest.raises(errors.InvalidImage):
        validate(data)


def test_a_png_whose_data_ends_early_is_refused_where_a_decoder_would_paint_it_black():
    data = png(rows(40))
    fully_decoded(data)  # Pillow leaves the 8 missing rows black, without a word

    with pytest.raises(errors.InvalidImage):
        validate(data)


def test_rows_after_the_last_are_ignored_as_a_decoder_ignores_them():
    data = png(rows(48) + rows(3, filter_type=9))
    fully_decoded(data)

    assert validate(data).height == 48


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_a_truncated_jpeg_is_refused_though_decoded_at_an_eighth(keep):
    buffer = io.BytesIO()
    Image.effect_noise((800, 600), 64).convert("RGB").save(buffer, format="JPEG")
    data = buffer.getvalue()

    with pytest.raises(errors.InvalidImage):
        upload_validate(
            file=io.BytesIO(data[: int(len(data) * keep)]), filename="a.jpg", max_bytes=10**7
        )
