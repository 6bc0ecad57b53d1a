"""A still PNG's pixel data checked against its header a bounded piece at a time."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

# PNG colour type -> samples per pixel.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's passes: first column, first row, column step, row step.
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)
_PNG_FILTERS = bytes(range(5))
# Compressed bytes fed to zlib at once, and the most it may give back at once.
_INFLATE_INPUT = 64 * 1024
_INFLATE_OUTPUT = 256 * 1024


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """Yield each chunk's type and data, up to IEND (their checksums were verified)."""
    view, offset = memoryview(data), 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        yield kind, view[offset + 8 : offset + 8 + length]
        if kind == b"IEND":
            return
        offset += length + 12


def _png_passes(data: bytes) -> list[tuple[int, int]]:
    """Return each pass's rows and bytes per row (filter byte included), from the header."""
    width, height, depth, colour, _, _, interlace = struct.unpack_from(">IIBBBBB", data, 16)
    if colour not in _PNG_CHANNELS:
        raise SyntaxError(f"unknown PNG colour type {colour}")
    bits = depth * _PNG_CHANNELS[colour]
    passes = []
    for column, row, column_step, row_step in _ADAM7 if interlace else ((0, 0, 1, 1),):
        columns = max(0, width - column + column_step - 1) // column_step
        rows = max(0, height - row + row_step - 1) // row_step
        if columns and rows:
            passes.append((rows, 1 + (columns * bits + 7) // 8))
    return passes


def _png_inflated(data: bytes) -> Iterator[bytes]:
    """Yield the PNG's scanlines inflated a bounded piece at a time."""
    inflater = zlib.decompressobj()
    for kind, payload in _png_chunks(data):
        if kind != b"IDAT":
            continue
        for start in range(0, len(payload), _INFLATE_INPUT):
            pending: bytes | memoryview = payload[start : start + _INFLATE_INPUT]
            while pending:
                yield inflater.decompress(pending, _INFLATE_OUTPUT)
                pending = inflater.unconsumed_tail


def png_data_check(data: bytes) -> None:
    """Refuse a still PNG whose compressed scanlines do not inflate to what its header says.

    What Pillow's decoder refuses is refused (broken zlib data, an unknown row filter,
    too few rows) while only a bounded piece of the inflated rows is held at a time.
    """
    passes = _png_passes(data)
    expected = sum(rows * stride for rows, stride in passes)
    # Rows of one length (no interlacing) have their filter bytes at fixed places.
    stride = passes[0][1] if len(passes) == 1 else None
    produced = 0
    for inflated in _png_inflated(data):
        # Whatever follows the last row is ignored, as Pillow ignores it.
        piece = inflated[: expected - produced]
        if stride and piece[-produced % stride :: stride].translate(None, _PNG_FILTERS):
            raise SyntaxError("unknown PNG row filter")
        produced += len(piece)
        if produced >= expected:
            return
    raise EOFError("the PNG's image data ends before its last row")
