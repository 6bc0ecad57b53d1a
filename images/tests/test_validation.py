"""Upload validation: size, real format, file name, dimensions, animations and damaged data."""

import functools
import hashlib
import io
import struct
import uuid
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageFile

from images import errors
from images.validation import filename_sanitize, storage_path_for, upload_validate

MB = 1_000_000


def image_bytes(fmt: str, size=(48, 40), mode="RGB", **options) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, "red").save(buffer, fmt, **options)
    return buffer.getvalue()


def animation_bytes(fmt: str, frames: int, size=(48, 40)) -> bytes:
    colours = [(index * 37 % 256, index * 91 % 256, 128) for index in range(frames)]
    images = [Image.new("RGB", size, colour) for colour in colours]
    buffer = io.BytesIO()
    images[0].save(buffer, fmt, save_all=True, append_images=images[1:], duration=40)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose IHDR is patched to claim other dimensions, CRC included."""
    data = bytearray(image_bytes("PNG", size=(40, 40)))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def validate(data: bytes, filename: str = "photo.png", max_bytes: int = 5 * MB):
    return upload_validate(file=io.BytesIO(data), filename=filename, max_bytes=max_bytes)


def refused(error_class, data: bytes, filename: str = "photo.png", **kwargs):
    with pytest.raises(error_class) as caught:
        validate(data, filename, **kwargs)
    return caught.value


# --- What an accepted upload reports --------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "filename", "content_type", "extension"),
    [
        ("JPEG", "car.JPG", "image/jpeg", "jpg"),
        ("JPEG", "car.jpeg", "image/jpeg", "jpg"),
        ("PNG", "car.png", "image/png", "png"),
        ("WEBP", "car.webp", "image/webp", "webp"),
        ("GIF", "car.gif", "image/gif", "gif"),
        ("BMP", "car.bmp", "image/bmp", "bmp"),
    ],
)
def test_each_accepted_format_is_detected_from_the_bytes(fmt, filename, content_type, extension):
    data = image_bytes(fmt)

    upload = validate(data, filename)

    assert (upload.format, upload.content_type, upload.extension) == (fmt, content_type, extension)
    assert (upload.width, upload.height, upload.frame_count) == (48, 40, 1)
    assert upload.size_bytes == len(data)
    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.filename == filename
    assert upload.data == data
    assert "data=" not in repr(upload)


def test_a_django_upload_is_read_from_its_start_and_its_name_sanitized():
    data = image_bytes("PNG")
    file = SimpleUploadedFile("ignored.png", data, content_type="text/plain")
    file.read(10)  # a caller that already looked at the file

    upload = upload_validate(file=file, filename="../../etc/passwd.png", max_bytes=MB)

    assert upload.sha256 == hashlib.sha256(data).hexdigest()
    assert upload.filename == "passwd.png"


def test_the_edges_of_the_dimension_range_are_accepted():
    assert validate(image_bytes("PNG", size=(32, 32))).width == 32
    assert validate(image_bytes("PNG", size=(8192, 32))).width == 8192


# --- Size ------------------------------------------------------------------------------


class CountingReader(io.BytesIO):
    """A stream that remembers how many bytes were read from it."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def test_a_file_over_the_limit_is_refused_without_reading_it_all():
    stream = CountingReader(image_bytes("BMP", size=(1000, 1000)))  # about 3 MB

    with pytest.raises(errors.FileTooLarge) as caught:
        upload_validate(file=stream, filename="big.bmp", max_bytes=100_000)

    assert stream.bytes_read == 100_001
    assert (caught.value.status, caught.value.code) == (413, "FILE_TOO_LARGE")
    assert caught.value.detail == (
        "The file is larger than the limit: the largest file accepted is 100 KB (100,000 bytes)."
    )


def test_an_upload_over_the_limit_names_its_size_and_the_limit():
    data = image_bytes("BMP", size=(1000, 1000))
    file = SimpleUploadedFile("big.bmp", data)

    with pytest.raises(errors.FileTooLarge) as caught:
        upload_validate(file=file, filename="big.bmp", max_bytes=2 * MB)

    assert caught.value.detail == (
        f"The file is 3 MB ({len(data):,} bytes); the largest file accepted is "
        "2 MB (2,000,000 bytes)."
    )


def test_a_file_of_exactly_the_limit_is_accepted():
    data = image_bytes("PNG")
    assert validate(data, max_bytes=len(data)).size_bytes == len(data)
    refused(errors.FileTooLarge, data, max_bytes=len(data) - 1)


# --- Formats outside the allow-list ----------------------------------------------------


def psd_bytes() -> bytes:
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 40, 40, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + bytes(3 * 40 * 40)


def fits_bytes() -> bytes:
    values = {"SIMPLE": "T", "BITPIX": 8, "NAXIS": 2, "NAXIS1": 40, "NAXIS2": 40}
    cards = [f"{key:<8}= {value:>20}" for key, value in values.items()] + ["END"]
    header = "".join(card.ljust(80) for card in cards).ljust(2880).encode()
    return header + bytes(40 * 40).ljust(2880, b"\0")


# Formats Pillow reads when left to itself; each must be refused here.
PILLOW_READABLE = {"psd": psd_bytes, "fits": fits_bytes} | {
    fmt.lower(): functools.partial(image_bytes, fmt) for fmt in ("TIFF", "ICO", "PPM", "PCX", "TGA")
}


@pytest.mark.parametrize("kind", sorted(PILLOW_READABLE))
def test_formats_pillow_could_read_are_refused_without_trying_their_decoder(kind):
    data = PILLOW_READABLE[kind]()
    assert Image.open(io.BytesIO(data)).format  # Pillow unrestricted would open it

    error = refused(errors.UnsupportedMediaType, data, f"image.{kind}")

    assert (error.status, error.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert "JPEG, PNG, WebP, GIF or BMP" in error.detail


NON_IMAGES = {
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "text": b"just some text, not an image at all\n",
    "html": b"<html><body><img src=x onerror=alert(1)></body></html>",
}


@pytest.mark.parametrize("data", NON_IMAGES.values(), ids=NON_IMAGES.keys())
def test_non_images_are_unsupported_whatever_their_name(data):
    refused(errors.UnsupportedMediaType, data, "photo.png")


def test_only_the_types_in_the_settings_are_accepted(settings):
    settings.IMAGE_ALLOWED_TYPES = ("image/png",)

    error = refused(errors.UnsupportedMediaType, image_bytes("JPEG"), "photo.jpg")

    assert "send a PNG image" in error.detail
    assert validate(image_bytes("PNG")).format == "PNG"


# --- File name and extension -----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "filename", "detail"),
    [
        (
            "PNG",
            "photo.jpg",
            "ends in .jpg but the file holds a PNG image; a PNG image must end in .png",
        ),
        ("PNG", "photo.png\x00.jpg", "ends in .jpg but the file holds a PNG image"),
        ("JPEG", "photo", "has no extension; a JPEG image must end in .jpg or .jpeg"),
    ],
)
def test_a_name_that_does_not_end_in_the_formats_extension_is_refused(fmt, filename, detail):
    error = refused(errors.ExtensionMismatch, image_bytes(fmt), filename)

    assert (error.status, error.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
    assert error.detail.startswith(f"The file name {detail}")


# --- Dimensions, bombs and animations ---------------------------------------------------


def test_a_tiny_image_is_refused_with_the_range():
    error = refused(errors.ImageDimensionsOutOfRange, image_bytes("PNG", size=(16, 16)))

    assert (error.status, error.code) == (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert error.detail == (
        "The image is 16x16 pixels; each side must be between 32 and 8192 pixels."
    )


def test_a_side_over_the_maximum_is_refused_from_the_header():
    # The pixel data is that of a 40x40 image: decoding would fail, so this is the header.
    error = refused(errors.ImageDimensionsOutOfRange, png_claiming(9000, 100))

    assert "9000x100 pixels; each side must be between 32 and 8192 pixels" in error.detail


def test_the_range_comes_from_the_settings(settings):
    settings.IMAGE_MIN_DIMENSION = 50

    refused(errors.ImageDimensionsOutOfRange, image_bytes("PNG", size=(40, 40)))


def test_a_png_claiming_50000_squared_is_refused_as_a_bomb():
    error = refused(errors.DecompressionBomb, png_claiming(50_000, 50_000))

    assert (error.status, error.code) == (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert "decompression bomb" in error.detail
    assert "8192x8192" in error.detail


def test_a_claim_just_over_the_pixel_limit_is_an_error_not_a_warning():
    # 9000x9000 is over the limit but under twice it, where Pillow only warns.
    refused(errors.DecompressionBomb, png_claiming(9000, 9000))


def test_pillow_limits_every_decode_in_the_process_to_the_largest_accepted_image():
    assert Image.MAX_IMAGE_PIXELS == 8192 * 8192
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(("fmt", "extension"), [("GIF", "gif"), ("WEBP", "webp"), ("PNG", "png")])
def test_an_animation_within_the_limits_reports_its_frames(fmt, extension):
    upload = validate(animation_bytes(fmt, frames=5), f"anim.{extension}")

    assert upload.frame_count == 5


def test_an_animated_gif_with_too_many_frames_is_refused():
    error = refused(errors.TooManyFrames, animation_bytes("GIF", frames=101), "anim.gif")

    assert (error.status, error.code) == (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert error.detail == "The animation has 101 frames; at most 100 are accepted."


def test_the_frame_limit_comes_from_the_settings(settings):
    settings.IMAGE_MAX_FRAMES = 3

    refused(errors.TooManyFrames, animation_bytes("WEBP", frames=4), "anim.webp")


def test_an_animation_with_too_many_pixels_in_all_is_refused(settings):
    settings.IMAGE_MAX_TOTAL_PIXELS = 1_000_000

    error = refused(
        errors.AnimationTooLarge, animation_bytes("GIF", 10, size=(400, 300)), "anim.gif"
    )

    assert error.code == "IMAGE_DIMENSIONS_OUT_OF_RANGE"
    assert error.detail == (
        "The animation's 10 frames hold 1.2 megapixels in all; at most 1 megapixels are accepted."
    )


def gif_growing_past_its_canvas() -> bytes:
    """A GIF whose header declares 40x36 and whose second frame is 64x48."""
    first, second = image_bytes("GIF", size=(40, 36)), image_bytes("GIF", size=(64, 48))
    descriptor = second.index(b"\x2c\x00\x00\x00\x00" + struct.pack("<HH", 64, 48))
    return first[:-1] + second[descriptor:]  # the same one-colour palette serves both


def test_a_gif_frame_reaching_past_the_declared_canvas_is_measured_when_decoded(settings):
    data = gif_growing_past_its_canvas()
    assert validate(data, "anim.gif").frame_count == 2
    settings.IMAGE_MAX_DIMENSION = 50

    error = refused(errors.ImageDimensionsOutOfRange, data, "anim.gif")

    assert "64x48" in error.detail


# --- Damaged data ------------------------------------------------------------------------


def cut_in_half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def flipped_in_idat(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[damaged.index(b"IDAT") + 8] ^= 0xFF
    return bytes(damaged)


DAMAGED = {
    "empty": (lambda: b"", "photo.png", "an image"),
    "truncated-jpeg": (lambda: cut_in_half(image_bytes("JPEG", (200, 150))), "a.jpg", "a JPEG"),
    "png-with-flipped-bytes": (lambda: flipped_in_idat(image_bytes("PNG")), "a.png", "a PNG"),
    "png-with-its-header-cut": (lambda: image_bytes("PNG")[:20], "a.png", "a PNG"),
    "gif-with-its-last-frame-cut": (lambda: animation_bytes("GIF", 3)[:-20], "a.gif", "a GIF"),
}


@pytest.mark.parametrize("kind", DAMAGED)
def test_damaged_files_are_invalid_images_of_the_format_they_start_as(kind):
    make, filename, what = DAMAGED[kind]

    error = refused(errors.InvalidImage, make(), filename)

    assert (error.status, error.code) == (400, "INVALID_IMAGE")
    assert f"could not be read as {what}" in error.detail


# --- File names and storage paths -----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("a\\b.png", "b.png"),
        ("C:\\Users\\me\\photo.jpg", "photo.jpg"),
        ("evil\x00.png", "evil.png"),
        ("line\nbreak\r.png", "linebreak.png"),
        ("\u202egnp.exe", "gnp.exe"),
        ("\uff50\uff48\uff4f\uff54\uff4f\uff0e\uff50\uff4e\uff47", "photo.png"),  # full width
        ("..\uff0f..\uff0fsecret.png", "secret.png"),
        ("cafe\u0301.png", "café.png"),
        ("...hidden.png", "hidden.png"),
        ("  spaced .png ", "spaced.png"),
        ("a..b.png", "a.b.png"),
        (".png", "image.png"),
        ("..", "image"),
        ("", "image"),
        ("photo", "photo"),
        ("photo.png.", "photo.png"),
        ("a" * 300 + ".jpeg", "a" * 250 + ".jpeg"),  # 255 bytes, the extension kept
        ("\u00e9" * 200 + ".png", "\u00e9" * 125 + ".png"),  # cut between characters
    ],
)
def test_file_names_are_sanitized(given, expected):
    assert filename_sanitize(given) == expected


def test_storage_paths_are_built_from_ids_only():
    organization, image = uuid.uuid4(), uuid.uuid4()

    path = storage_path_for(
        organization_id=organization, image_id=str(image), variant="thumbnail", extension="jpg"
    )

    assert path == f"images/{organization}/{image}/thumbnail.jpg"


@pytest.mark.parametrize(
    ("organization_id", "variant", "extension", "reason"),
    [
        ("../../etc", "original", "png", "badly formed"),
        (uuid.uuid4(), "../original", "png", "not a variant"),
        (uuid.uuid4(), "original", "php", "not an accepted extension"),
    ],
)
def test_storage_paths_refuse_anything_but_ids_and_known_names(
    organization_id, variant, extension, reason
):
    with pytest.raises(ValueError, match=reason):
        storage_path_for(
            organization_id=organization_id,
            image_id=uuid.uuid4(),
            variant=variant,
            extension=extension,
        )
