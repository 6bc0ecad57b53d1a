"""Pure image work on bytes and Pillow images: decode, sanitize, thumbnail and upscale.

Everything decodes through `images.validation`, so the same format allow-list,
pixel limits and frame limits hold here as at upload. What these functions
return is what is kept and served: upright, in sRGB, with no metadata at all.

Metadata: EXIF (with GPS and camera serials), XMP, IPTC, JPEG comments and PNG
text chunks are dropped. The ICC profile is dropped too, after converting the
pixels to sRGB with it: served files then look the same in every viewer, and
no client ever parses a profile an uploader wrote (profiles also name devices).

Animations (GIF, WebP, APNG) keep every frame, duration and loop count; each
frame is written whole, so no disposal trick of the original is relied on.
Thumbnails and upscales use the first frame only.
"""

from __future__ import annotations

import functools
import io
from typing import Any

from django.conf import settings
from PIL import Image, ImageCms, ImageFile, ImageOps, ImageSequence, PngImagePlugin

from config.errors import InvalidInput
from images.errors import UpscaleTooLarge
from images.validation import ImageFormat, decoding, format_of, image_load, image_open

THUMBNAIL_BOX = 256
UPSCALE_FACTORS = (2, 4)

_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": 90},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 90},
    "GIF": {"optimize": True},
    "BMP": {},
}

# Whole frames replace each other outright, whatever the original's disposal was.
_ANIMATION_OPTIONS: dict[str, dict[str, Any]] = {
    "GIF": {"disposal": 2},
    "WEBP": {},
    "PNG": {"disposal": PngImagePlugin.Disposal.OP_NONE, "blend": PngImagePlugin.Blend.OP_SOURCE},
}

# The modes each encoder writes as they are; anything else is converted first.
_ENCODER_MODES: dict[str, frozenset[str]] = {
    "JPEG": frozenset({"L", "RGB", "CMYK"}),
    "PNG": frozenset({"1", "L", "LA", "I;16", "P", "RGB", "RGBA"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "GIF": frozenset({"1", "L", "P", "RGB", "RGBA"}),
    "BMP": frozenset({"1", "L", "P", "RGB", "RGBA"}),
}

# Modes an ICC transform can take, and the sRGB mode it gives back.
_SRGB_MODES = {"RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}

# Info that describes pixels rather than the picture's origin; all else is metadata.
_PIXEL_INFO = ("transparency",)


def image_decode(data: bytes) -> ImageFile.ImageFile:
    """Return the image with every used frame decoded, within the accepted formats and limits."""
    image = image_open(data)
    image_load(image)
    return image


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    """Return the sRGB profile every kept image is converted to."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def _srgb(image: Image.Image) -> Image.Image:
    """Return the image's colours in sRGB when it carries an ICC profile of its own."""
    profile = image.info.get("icc_profile")
    output_mode = _SRGB_MODES.get(image.mode)
    if not profile or output_mode is None:
        # Grey and palette images lose their profile without conversion: at most a
        # slight shift in tone, and no other colour space is served.
        return image
    try:
        source = ImageCms.getOpenProfile(io.BytesIO(profile))
        converted = ImageCms.profileToProfile(
            image, source, _srgb_profile(), outputMode=output_mode
        )
    except ImageCms.PyCMSError:
        # An unreadable profile is dropped with the rest; the colours stay as stored.
        return image
    return converted or image


def _pixels_only(image: Image.Image) -> Image.Image:
    """Return a copy holding pixels and palette only: no EXIF, XMP, ICC, comments or text."""
    clean = image.copy()
    # Encoders write what `info` holds (a JPEG comment, a PNG profile), so it starts empty.
    clean.info = {key: image.info[key] for key in _PIXEL_INFO if key in image.info}
    return clean


def _eight_bit(image: Image.Image) -> Image.Image:
    """Return 16-bit grey scaled to 8 bits, since converting it directly clips to white."""
    if image.mode not in ("I", "I;16"):
        return image
    return image.convert("I").point(lambda value: value / 256).convert("L")


def _on_white(image: Image.Image) -> Image.Image:
    """Return the image in RGB, its transparent parts laid over white."""
    image = _eight_bit(image)
    if not image.has_transparency_data:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")


def _encodable(image: Image.Image, format_name: str) -> Image.Image:
    """Return the image in a mode the format's encoder writes."""
    if image.mode in _ENCODER_MODES[format_name]:
        return image
    if format_name == "JPEG" or not image.has_transparency_data:
        return _on_white(image)
    return _eight_bit(image).convert("RGBA")


def _encode(image: Image.Image, format_name: str, **options: Any) -> bytes:
    """Return the image's pixels encoded in the format, with no metadata."""
    buffer = io.BytesIO()
    clean = _pixels_only(_encodable(image, format_name))
    clean.save(buffer, format=format_name, **{**_SAVE_OPTIONS[format_name], **options})
    return buffer.getvalue()


def _animation_frames(image: Image.Image) -> tuple[list[Image.Image], list[int]]:
    """Return every frame whole and upright, in sRGB and without metadata, with its duration."""
    frames: list[Image.Image] = []
    durations: list[int] = []
    for frame in ImageSequence.Iterator(image):
        whole = frame.convert("RGBA")
        # Read after decoding: WebP learns a frame's duration only then.
        durations.append(int(frame.info.get("duration", 0)))
        frames.append(_pixels_only(_srgb(ImageOps.exif_transpose(whole))))
    image.seek(0)
    return frames, durations


def _animation_encode(image: Image.Image, image_format: ImageFormat) -> bytes:
    """Return the animation re-encoded frame by frame, keeping durations and the loop count."""
    with decoding(label=image_format.label):
        frames, durations = _animation_frames(image)
    options: dict[str, Any] = {
        **_ANIMATION_OPTIONS[image_format.name],
        "save_all": True,
        "append_images": frames[1:],
        "duration": durations,
    }
    # A GIF without a loop count plays once; writing one would make it loop forever.
    if "loop" in image.info:
        options["loop"] = int(image.info["loop"])
    return _encode(frames[0], image_format.name, **options)


def image_sanitize(image: Image.Image) -> bytes:
    """Return an image from `image_decode` re-encoded in its format, upright, without metadata."""
    image_format = format_of(image)
    if image_format.animated and getattr(image, "n_frames", 1) > 1:
        return _animation_encode(image, image_format)
    with decoding(label=image_format.label):
        upright = _srgb(ImageOps.exif_transpose(image))
    return _encode(upright, image_format.name)


def thumbnail_make(data: bytes) -> bytes:
    """Return an upright JPEG within 256x256 pixels, transparency on white, without metadata."""
    image = image_open(data)
    image_format = format_of(image)
    with decoding(label=image_format.label):
        if image_format.name == "JPEG":
            # libjpeg decodes at 1/2, 1/4 or 1/8 scale far faster than a full decode and resize.
            image.draft("RGB", (THUMBNAIL_BOX, THUMBNAIL_BOX))
        image.load()
        upright = _srgb(ImageOps.exif_transpose(image))
    small = _on_white(upright)
    small.thumbnail((THUMBNAIL_BOX, THUMBNAIL_BOX), Image.Resampling.LANCZOS)
    return _encode(small, "JPEG")


def _resamplable(image: Image.Image) -> Image.Image:
    """Return the image in a mode Lanczos works in: palettes would resize as nearest pixels."""
    if image.mode == "1":
        return image.convert("L")
    if image.mode not in ("P", "PA"):
        return image
    return image.convert("RGBA" if image.has_transparency_data else "RGB")


def image_upscale(data: bytes, *, factor: int) -> bytes:
    """Return the first frame `factor` times larger (Lanczos), in its format, without metadata."""
    if factor not in UPSCALE_FACTORS:
        raise InvalidInput("The scale must be 2 or 4.", field="scale")
    image = image_open(data)
    maximum = settings.IMAGE_MAX_DIMENSION
    # Refused from the header, before a single pixel is decoded or allocated.
    if max(image.size) * factor > maximum:
        raise UpscaleTooLarge(
            width=image.width, height=image.height, factor=factor, maximum=maximum
        )
    image_format = format_of(image)
    with decoding(label=image_format.label):
        image.load()
        upright = _resamplable(_srgb(ImageOps.exif_transpose(image)))
    size = (upright.width * factor, upright.height * factor)
    larger = upright.resize(size, Image.Resampling.LANCZOS)
    return _encode(larger, image_format.name)
