"""Checks an uploaded image before anything is stored: size, real format, name, dimensions, data.

Only Pillow's decoders for the accepted formats are ever tried, and every
decoder runs with the pixel limit derived from the largest accepted
dimensions. Stored paths never come from what the client sent: they are
built from ids by `storage_path_for`; the client's file name is kept,
sanitized, as a label only.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import threading
import unicodedata
import uuid
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO

from django.conf import settings
from PIL import Image, ImageFile, UnidentifiedImageError

from accounts.identity.principal import Principal
from config.errors import DomainError
from images import metrics
from images.errors import (
    AnimationTooLarge,
    DecompressionBomb,
    ExtensionMismatch,
    FileTooLarge,
    ImageDimensionsOutOfRange,
    InvalidImage,
    TooManyFrames,
    UnsupportedMediaType,
)
from images.png_data import png_data_check


@dataclass(frozen=True)
class ImageFormat:
    """An accepted format: Pillow's name for it, how people and browsers name it."""

    name: str
    label: str
    content_type: str
    extensions: tuple[str, ...]
    signature: re.Pattern[bytes]
    animated: bool = False


FORMATS: dict[str, ImageFormat] = {
    image_format.name: image_format
    for image_format in (
        ImageFormat("JPEG", "JPEG", "image/jpeg", ("jpg", "jpeg"), re.compile(rb"\xff\xd8\xff")),
        ImageFormat(
            "PNG", "PNG", "image/png", ("png",), re.compile(rb"\x89PNG\r\n\x1a\n"), animated=True
        ),
        ImageFormat(
            "WEBP", "WebP", "image/webp", ("webp",), re.compile(rb"RIFF.{4}WEBP", re.DOTALL), True
        ),
        ImageFormat("GIF", "GIF", "image/gif", ("gif",), re.compile(rb"GIF8[79]a"), animated=True),
        ImageFormat("BMP", "BMP", "image/bmp", ("bmp",), re.compile(rb"BM")),
    )
}

# Pillow opens a JPEG carrying several pictures (MPO, from stereo and some phone
# cameras) as its own format; only its first picture is kept, as a plain JPEG.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# Everything a Pillow decoder raises when the data is not what its header promised.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    struct.error,
    zlib.error,
)

_READ_CHUNK = 64 * 1024
PICTURE_BLOCK_BYTES = 64 * 1024 * 1024
_NAME_MAX_BYTES = 255
_EXTENSION_MAX_BYTES = 16
_VARIANT = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")


@dataclass(frozen=True)
class ValidatedUpload:
    """An upload that passed every check, with what was learned about it."""

    format: str
    content_type: str
    extension: str
    width: int
    height: int
    frame_count: int
    size_bytes: int
    sha256: str
    filename: str
    # The exact bytes that were checked and hashed, so what is stored is what was validated.
    data: bytes = field(repr=False)


def pixel_limit() -> int:
    """Return the most pixels one frame may have: the largest accepted square."""
    return int(settings.IMAGE_MAX_DIMENSION) ** 2


def decoder_limits_apply() -> None:
    """Set Pillow's process-wide pixel limit and the size of the blocks pictures are kept in."""
    # Pillow's default (about 89 MP, an error only at twice that) knows nothing of
    # this service's limits; every decode in the process, here or elsewhere, uses this.
    Image.MAX_IMAGE_PIXELS = pixel_limit()
    # Blocks above glibc's largest mmap threshold (32 MiB) go back to the system when
    # freed; smaller ones stay in the freeing thread's arena, unusable by other threads.
    Image.core.set_block_size(PICTURE_BLOCK_BYTES)


def accepted_formats() -> list[ImageFormat]:
    """Return the formats whose content types the settings accept, in the settings' order."""
    by_type = {image_format.content_type: image_format for image_format in FORMATS.values()}
    return [by_type[name] for name in settings.IMAGE_ALLOWED_TYPES if name in by_type]


def format_of(image: Image.Image) -> ImageFormat:
    """Return the accepted format an image opened by `image_open` was read as."""
    name = image.format or ""
    image_format = FORMATS.get(_FORMAT_ALIASES.get(name, name))
    if image_format is None:
        raise ValueError(f"not an image opened by image_open: format {image.format!r}")
    return image_format


@contextmanager
def decoding(label: str | None) -> Iterator[None]:
    """Run Pillow decoding with bomb warnings as errors and its failures as domain errors."""
    # catch_warnings swaps the process-wide filter list; a thread racing it can at
    # worst see the warning as a warning, and the explicit size checks still refuse.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise DecompressionBomb(maximum=settings.IMAGE_MAX_DIMENSION) from exc
        except _DECODE_ERRORS as exc:
            raise InvalidImage(label=label) from exc


def _open_allowed(data: bytes) -> ImageFile.ImageFile:
    """Return the image opened by the accepted formats' decoders only."""
    formats = accepted_formats()
    # Bytes that start like an accepted format are a damaged image, not another kind of file.
    claimed = next((fmt for fmt in formats if fmt.signature.match(data[:16])), None)
    with decoding(label=claimed.label if claimed else None):
        try:
            return Image.open(io.BytesIO(data), formats=[fmt.name for fmt in formats])
        except UnidentifiedImageError:
            if claimed:
                raise InvalidImage(label=claimed.label) from None
            raise UnsupportedMediaType(accepted=[fmt.label for fmt in formats]) from None


def _dimensions_check(size: tuple[int, int]) -> None:
    """Refuse a frame with a side outside the accepted range."""
    smallest, largest = settings.IMAGE_MIN_DIMENSION, settings.IMAGE_MAX_DIMENSION
    width, height = size
    if not (smallest <= width <= largest and smallest <= height <= largest):
        raise ImageDimensionsOutOfRange(
            width=width, height=height, minimum=smallest, maximum=largest
        )


def frame_count(image: Image.Image) -> int:
    """Return how many frames of the image are used: all for animations, else the first."""
    image_format = format_of(image)
    if not image_format.animated:
        return 1
    # Counting a GIF's frames walks its blocks without decoding them.
    with decoding(label=image_format.label):
        return int(getattr(image, "n_frames", 1))


def _animation_check(frames: int, pixels: int) -> None:
    """Refuse an animation with too many frames or too many pixels in all."""
    if frames > settings.IMAGE_MAX_FRAMES:
        raise TooManyFrames(frames=frames, limit=settings.IMAGE_MAX_FRAMES)
    if pixels > settings.IMAGE_MAX_TOTAL_PIXELS:
        raise AnimationTooLarge(frames=frames, pixels=pixels, limit=settings.IMAGE_MAX_TOTAL_PIXELS)


def image_open(data: bytes) -> ImageFile.ImageFile:
    """Return the image opened lazily, after the header-only checks of format and size."""
    image = _open_allowed(data)
    _dimensions_check(image.size)
    frames = frame_count(image)
    _animation_check(frames, frames * image.width * image.height)
    return image


def image_load(image: ImageFile.ImageFile) -> None:
    """Decode every used frame of an opened image, refusing damaged data on the way."""
    frames, pixels = frame_count(image), 0
    with decoding(label=format_of(image).label):
        for index in range(frames):
            image.seek(index)
            image.load()
            # A GIF frame may reach beyond the canvas the header declared, and Pillow grows it.
            _dimensions_check(image.size)
            pixels += image.width * image.height
            _animation_check(frames, pixels)
        image.seek(0)


# A picture decoded whole takes up to 4 bytes a pixel (256 MiB at 8192x8192), and a web
# process serves several requests at once on its threads: one such decode at a time.
_FULL_SIZE_DECODING = threading.Lock()


def full_size_decoding() -> threading.Lock:
    """Return the lock a thread holds while it decodes a picture whole."""
    return _FULL_SIZE_DECODING


def pixels_check(data: bytes, image: ImageFile.ImageFile) -> None:
    """Refuse damaged pixel data, holding at most a reduced copy of a JPEG or a PNG."""
    image_format = format_of(image)
    if image_format.name == "PNG" and frame_count(image) == 1:
        with decoding(label=image_format.label):
            png_data_check(data)
    elif image_format.name == "JPEG":
        reduced = image_open(data)
        with decoding(label=image_format.label):
            # libjpeg reads every coefficient of the file at 1/8 scale too, so damage
            # and truncation are found with an eighth of the sides in memory.
            reduced.draft(reduced.mode, (reduced.width // 8, reduced.height // 8))
            reduced.load()
    else:
        # No reduced decoding for these: each frame is decoded whole, within the limits.
        with full_size_decoding():
            image_load(image)


def _upload_read(file: IO[bytes], max_bytes: int) -> bytes:
    """Return the file's bytes, refusing it once more than `max_bytes` have been read."""
    if file.seekable():
        file.seek(0)
    chunks: list[bytes] = []
    read = 0
    while chunk := file.read(min(_READ_CHUNK, max_bytes + 1 - read)):
        chunks.append(chunk)
        read += len(chunk)
        if read > max_bytes:
            # An upload knows its full size; a plain stream is only known to be too large.
            size = getattr(file, "size", None)
            known = size if isinstance(size, int) and size > max_bytes else None
            raise FileTooLarge(size_bytes=known, limit_bytes=max_bytes)
    return b"".join(chunks)


def _extension_check(filename: str, image_format: ImageFormat) -> str:
    """Return the format's usual extension, refusing a name that promises another format."""
    stem, dot, extension = filename.rpartition(".")
    given = extension.lower() if dot and stem else None
    if given not in image_format.extensions:
        raise ExtensionMismatch(
            extension=given, label=image_format.label, expected=list(image_format.extensions)
        )
    return image_format.extensions[0]


def upload_validate(*, file: IO[bytes], filename: str, max_bytes: int) -> ValidatedUpload:
    """Return what an upload holds, or raise the domain error for its first failed check."""
    data = _upload_read(file, max_bytes)
    if not data:
        raise InvalidImage()
    image = image_open(data)
    image_format = format_of(image)
    clean_name = filename_sanitize(filename)
    extension = _extension_check(clean_name, image_format)
    # verify() checks what decoding skips (PNG chunk checksums) but leaves the image
    # unusable, so the pixels are checked from a fresh open.
    with decoding(label=image_format.label):
        _open_allowed(data).verify()
    pixels_check(data, image)
    return ValidatedUpload(
        format=image_format.name,
        content_type=image_format.content_type,
        extension=extension,
        width=image.width,
        height=image.height,
        frame_count=frame_count(image),
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        filename=clean_name,
        data=data,
    )


def _name_truncate(stem: str, suffix: str) -> str:
    """Return stem and suffix within the byte limit, cutting the stem at a character boundary."""
    budget = _NAME_MAX_BYTES - len(suffix.encode())
    return stem.encode()[:budget].decode(errors="ignore").rstrip(". ") + suffix


def filename_sanitize(name: str) -> str:
    """Return a file name safe to show and to offer for download: one plain component."""
    # NFKC first, so look-alike slashes and dots become the real ones removed below.
    name = unicodedata.normalize("NFKC", name)
    name = re.split(r"[/\\]", name)[-1]
    # Control, format (bidirectional overrides) and unassigned characters disguise names.
    name = "".join(char for char in name if not unicodedata.category(char).startswith("C"))
    name = re.sub(r"\.{2,}", ".", name).strip()
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension.encode()) > _EXTENSION_MAX_BYTES:
        stem, extension = name, ""
    # Leading dots hide a file; trailing dots and spaces vanish on some systems.
    stem = stem.strip(" .") or "image"
    return _name_truncate(stem, f".{extension}" if extension else "")


def storage_path_for(
    *, organization_id: uuid.UUID | str, image_id: uuid.UUID | str, variant: str, extension: str
) -> str:
    """Return where a stored file lives: built from ids and fixed names, never from the client."""
    if not _VARIANT.fullmatch(variant):
        raise ValueError(f"not a variant name: {variant!r}")
    if not any(extension in image_format.extensions for image_format in FORMATS.values()):
        raise ValueError(f"not an accepted extension: {extension!r}")
    # Parsing the ids refuses anything that is not a UUID before it reaches a path.
    organization, image = uuid.UUID(str(organization_id)), uuid.UUID(str(image_id))
    return f"images/{organization}/{image}/{variant}.{extension}"


decoder_limits_apply()


def upload_checked(*, principal: Principal, file: IO[bytes], filename: str) -> ValidatedUpload:
    """Return the upload validated within the principal's limits; a refusal is counted."""
    try:
        return upload_validate(
            file=file, filename=filename, max_bytes=principal.limits["max_file_size_bytes"]
        )
    except DomainError as exc:
        metrics.VALIDATION_REJECTIONS.labels(code=exc.code).inc()
        raise
