"""Image processing: decoding within limits, metadata removal, thumbnails and upscaling."""

import io
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from config.errors import InvalidInput
from images.errors import (
    DecompressionBomb,
    ImageDimensionsOutOfRange,
    InvalidImage,
    UnsupportedMediaType,
    UpscaleTooLarge,
)
from images.processing import image_decode, image_sanitize, image_upscale, thumbnail_make
from images.tests.factories import GPS_IFD, camera_exif, encoded


def reopened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def landscape_photo() -> Image.Image:
    """An 80x40 photo whose left half is red and right half blue."""
    image = Image.new("RGB", (80, 40), "red")
    image.paste((0, 0, 255), (40, 0, 80, 40))
    return image


def phone_jpeg(size=(80, 40), **options) -> bytes:
    image = landscape_photo().resize(size)
    return encoded(image, "JPEG", exif=camera_exif(), comment=b"taken at home", **options)


def colour_of(pixel) -> str:
    """Name the primary colour (or white or black) nearest to an RGB pixel."""
    named = {
        "red": (255, 0, 0),
        "green": (0, 255, 0),
        "blue": (0, 0, 255),
        "white": (255, 255, 255),
        "black": (0, 0, 0),
    }
    return min(
        named, key=lambda name: sum((a - b) ** 2 for a, b in zip(pixel, named[name], strict=True))
    )


def assert_no_metadata(image: Image.Image) -> None:
    assert len(image.getexif()) == 0
    for key in ("exif", "xmp", "icc_profile", "comment", "XML:com.adobe.xmp"):
        assert key not in image.info


def test_the_photo_used_here_really_carries_gps_and_orientation():
    original = reopened(phone_jpeg())

    exif = original.getexif()
    assert exif[ExifTags.Base.Orientation] == 6
    assert exif.get_ifd(GPS_IFD)[ExifTags.GPS.GPSLatitudeRef] == "N"
    assert original.info["comment"] == b"taken at home"


# --- Decoding -------------------------------------------------------------------------


def test_decoding_returns_the_pixels_of_an_accepted_format():
    image = image_decode(encoded(landscape_photo().resize((64, 32)), "PNG"))

    assert (image.format, image.size) == ("PNG", (64, 32))
    assert image.getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize(
    ("data", "error_class"),
    [
        (encoded(Image.new("RGB", (40, 40)), "TIFF"), UnsupportedMediaType),
        (encoded(Image.new("RGB", (16, 16)), "PNG"), ImageDimensionsOutOfRange),
        (phone_jpeg(size=(200, 100))[:300], InvalidImage),
    ],
    ids=["tiff", "tiny", "truncated"],
)
def test_decoding_holds_the_upload_rules(data, error_class):
    with pytest.raises(error_class):
        image_decode(data)


def test_decoding_refuses_a_bomb_before_allocating_it():
    data = bytearray(encoded(Image.new("RGB", (40, 40)), "PNG"))
    data[16:24] = (50_000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")

    with pytest.raises(DecompressionBomb):
        image_decode(bytes(data))


# --- Sanitizing -------------------------------------------------------------------------


def test_sanitizing_drops_gps_camera_and_comment_and_turns_the_photo_upright():
    sanitized = reopened(image_sanitize(image_decode(phone_jpeg())))

    assert sanitized.format == "JPEG"
    assert sanitized.size == (40, 80)
    assert_no_metadata(sanitized)
    # Orientation 6 turns the top of the picture to the right: red is now on top.
    assert colour_of(sanitized.getpixel((20, 10))) == "red"
    assert colour_of(sanitized.getpixel((20, 70))) == "blue"


def test_sanitizing_drops_xmp_and_the_icc_profile_of_a_jpeg():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description Creator="Alice"/></x:xmpmeta>'
    data = encoded(landscape_photo().resize((64, 32)), "JPEG", icc_profile=srgb, xmp=xmp)
    assert "icc_profile" in reopened(data).info
    assert "xmp" in reopened(data).info

    sanitized = reopened(image_sanitize(image_decode(data)))

    assert_no_metadata(sanitized)
    # An sRGB profile converts to the same colours.
    assert sanitized.getpixel((2, 2))[0] > 240


def test_an_unreadable_icc_profile_is_dropped_and_the_pixels_kept():
    data = encoded(Image.new("RGB", (40, 40), (10, 200, 30)), "PNG", icc_profile=b"not a profile")
    assert reopened(data).info["icc_profile"] == b"not a profile"

    sanitized = reopened(image_sanitize(image_decode(data)))

    assert_no_metadata(sanitized)
    assert sanitized.getpixel((0, 0)) == (10, 200, 30)


def test_sanitizing_a_png_drops_its_text_chunks_and_exif_and_keeps_transparency():
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "Alice Example")
    text.add_itxt("Location", "Home, 52.37N 4.89E")
    image = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (0, 0, 20, 40))
    data = encoded(image, "PNG", pnginfo=text, exif=camera_exif(orientation=1))

    sanitized = reopened(image_sanitize(image_decode(data)))

    assert sanitized.format == "PNG"
    assert sanitized.text == {}
    assert_no_metadata(sanitized)
    assert sanitized.getpixel((30, 5)) == (0, 0, 0, 0)
    assert sanitized.getpixel((5, 5)) == (255, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_sanitizing_keeps_the_format(fmt):
    data = encoded(Image.new("RGB", (48, 40), (0, 128, 255)), fmt)

    assert reopened(image_sanitize(image_decode(data))).format == fmt


def test_a_transparent_gif_stays_transparent():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([255, 255, 255, 200, 0, 0])
    image.paste(1, (0, 0, 20, 40))
    data = encoded(image, "GIF", transparency=0, comment=b"made by Alice")

    sanitized = reopened(image_sanitize(image_decode(data))).convert("RGBA")

    assert sanitized.getpixel((30, 5))[3] == 0
    assert sanitized.getpixel((5, 5)) == (200, 0, 0, 255)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_an_animation_keeps_its_frames_durations_and_loop_and_loses_its_metadata(fmt):
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (48, 40), colour) for colour in colours]
    extra = {"comment": b"made by Alice"} if fmt == "GIF" else {"exif": camera_exif(1)}
    data = encoded(
        frames[0],
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=2,
        **extra,
    )

    sanitized = reopened(image_sanitize(image_decode(data)))

    assert (sanitized.format, sanitized.n_frames, sanitized.info["loop"]) == (fmt, 3, 2)
    for index, colour in enumerate(colours):
        sanitized.seek(index)
        sanitized.load()
        assert sanitized.info["duration"] == (index + 1) * 100
        pixel = sanitized.convert("RGB").getpixel((10, 10))
        assert all(abs(got - want) < 8 for got, want in zip(pixel, colour, strict=True))
        assert_no_metadata(sanitized)


def test_only_the_first_picture_of_a_multi_picture_jpeg_is_kept():
    pictures = [Image.new("RGB", (48, 40), "red"), Image.new("RGB", (48, 40), "blue")]
    data = encoded(pictures[0], "MPO", save_all=True, append_images=pictures[1:])
    assert reopened(data).format == "MPO"

    sanitized = reopened(image_sanitize(image_decode(data)))

    assert sanitized.format == "JPEG"
    assert getattr(sanitized, "n_frames", 1) == 1
    assert sanitized.getpixel((5, 5))[0] > 240


def test_sanitizing_refuses_an_image_it_cannot_name_the_format_of():
    with pytest.raises(ValueError, match="image_open"):
        image_sanitize(Image.new("RGB", (40, 40)))


# --- Thumbnails -------------------------------------------------------------------------


def test_a_thumbnail_is_an_upright_jpeg_within_256_without_metadata():
    data = phone_jpeg(size=(2000, 1000))

    thumbnail = reopened(thumbnail_make(data))

    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (128, 256)
    assert_no_metadata(thumbnail)
    assert colour_of(thumbnail.getpixel((64, 30))) == "red"


def test_a_small_image_is_not_enlarged_for_its_thumbnail():
    thumbnail = reopened(thumbnail_make(encoded(Image.new("RGB", (100, 50)), "PNG")))

    assert thumbnail.size == (100, 50)


def test_transparency_becomes_white_in_a_thumbnail():
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 200, 400))

    thumbnail = reopened(thumbnail_make(encoded(image, "WEBP", lossless=True)))

    assert (thumbnail.mode, thumbnail.size) == ("RGB", (256, 256))
    assert all(channel > 245 for channel in thumbnail.getpixel((250, 128)))
    assert colour_of(thumbnail.getpixel((5, 128))) == "blue"


def test_a_16_bit_grey_png_keeps_its_tones_in_the_thumbnail():
    grey = Image.new("I;16", (64, 64), 32768)  # half way up a 16-bit scale

    thumbnail = reopened(thumbnail_make(encoded(grey, "PNG")))

    assert all(120 <= channel <= 136 for channel in thumbnail.getpixel((10, 10)))


def test_an_animation_thumbnail_shows_its_first_frame():
    frames = [Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:])

    assert colour_of(reopened(thumbnail_make(data)).getpixel((10, 10))) == "red"


# --- Upscaling --------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_upscaling_multiplies_each_side_in_the_same_format(factor):
    data = encoded(Image.new("RGB", (48, 40), "green"), "PNG")

    larger = reopened(image_upscale(data, factor=factor))

    assert (larger.format, larger.size) == ("PNG", (48 * factor, 40 * factor))


def test_upscaling_turns_the_photo_upright_and_drops_its_metadata():
    larger = reopened(image_upscale(phone_jpeg(), factor=2))

    assert (larger.format, larger.size) == ("JPEG", (80, 160))
    assert_no_metadata(larger)


def test_upscaling_a_palette_image_smooths_instead_of_repeating_pixels():
    image = Image.new("P", (40, 40), 0)
    image.putpalette([0, 0, 0, 255, 255, 255])
    image.paste(1, (20, 0, 40, 40))

    larger = reopened(image_upscale(encoded(image, "GIF"), factor=4)).convert("RGB")

    # Lanczos leaves an in-between grey at the edge, where nearest neighbour would not.
    assert larger.size == (160, 160)
    edge = [larger.getpixel((x, 80))[0] for x in range(76, 84)]
    assert any(20 < value < 235 for value in edge)


def test_upscaling_up_to_exactly_the_largest_side_is_allowed():
    data = encoded(Image.new("L", (2048, 32)), "PNG")

    assert reopened(image_upscale(data, factor=4)).size == (8192, 128)


def test_upscaling_past_the_largest_side_is_refused_with_the_sizes():
    data = encoded(Image.new("RGB", (4100, 40)), "PNG")

    with pytest.raises(UpscaleTooLarge) as caught:
        image_upscale(data, factor=2)

    assert (caught.value.status, caught.value.code) == (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert caught.value.detail == (
        "Upscaling the 4100x40 image 2 times would give 8200x80 pixels; each side may be at "
        "most 8192 pixels. Choose a smaller scale or a smaller image."
    )


def test_the_largest_side_for_upscaling_comes_from_the_settings(settings):
    settings.IMAGE_MAX_DIMENSION = 100
    data = encoded(Image.new("RGB", (48, 40)), "PNG")

    assert reopened(image_upscale(data, factor=2)).size == (96, 80)
    with pytest.raises(UpscaleTooLarge):
        image_upscale(data, factor=4)


def test_only_scales_2_and_4_are_offered():
    data = encoded(Image.new("RGB", (48, 40)), "PNG")

    with pytest.raises(InvalidInput) as caught:
        image_upscale(data, factor=3)

    assert caught.value.errors == [
        {"field": "scale", "message": "The scale must be 2 or 4.", "code": "invalid"}
    ]
