"""Turning images into the model's input: RGB, short side 256, centre 224, scaled to [-1, 1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image

RESIZE_TO = 256
INPUT_SIZE = 224
# EfficientNet-Lite's weights were trained on (x - 127) / 128, not ImageNet mean and std.
PIXEL_OFFSET = 127.0
PIXEL_SCALE = 128.0
PREPROCESSING = (
    f"RGB; resize short side to {RESIZE_TO} (bilinear); centre crop {INPUT_SIZE}x{INPUT_SIZE}; "
    f"(x - {PIXEL_OFFSET:g}) / {PIXEL_SCALE:g}; NCHW float32"
)
# The most any provider looks at (the remote one sends 512 pixels a side): each image of a
# batch is held this small from its decoding until the whole batch is classified.
MODEL_INPUT_SIDE = 512
# Rows converted and reduced at once: a full-size picture is never converted whole.
_STRIP_BYTES = 1024 * 1024
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that shows the picture upright.
_UPRIGHT: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def rgb_image(image: Image.Image) -> Image.Image:
    """Return the image in RGB, transparent parts shown on white as a viewer would."""
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def short_side_resized(image: Image.Image, target: int) -> Image.Image:
    """Return the image scaled (bilinear) so that its shorter side is `target` pixels."""
    width, height = image.size
    scale = target / min(width, height)
    size = (max(target, round(width * scale)), max(target, round(height * scale)))
    if size == image.size:
        return image
    # reducing_gap first shrinks by a whole factor (box averaging), then resamples: much
    # faster on large images, and at 3 or more Pillow finds it as good as a fair resize.
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=3.0)


def decode_reduced(image: Image.Image, short_side: int) -> None:
    """Let an undecoded JPEG decode at the smallest scale keeping its short side >= `short_side`."""
    width, height = image.size
    shrink = short_side / min(width, height)
    # A no-op for anything but an undecoded JPEG: its decoder then scales the
    # DCT blocks down by 2, 4 or 8, which costs a fraction of a full decode.
    image.draft("RGB", (int(width * shrink) + 1, int(height * shrink) + 1))


def exif_orientation(image: Image.Image) -> int:
    """Return the image's EXIF orientation (1, upright, when it has none)."""
    return int(image.getexif().get(_ORIENTATION_TAG, 1))


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Return the image turned as its EXIF orientation says a viewer shows it."""
    return image.transpose(_UPRIGHT[orientation]) if orientation in _UPRIGHT else image


def image_array(image: Image.Image) -> npt.NDArray[np.float32]:
    """Return one image as a normalized CHW float32 array of INPUT_SIZE x INPUT_SIZE.

    An image still undecoded (as Image.open leaves it) decodes faster: a JPEG
    much larger than needed is decoded, in place, at a fraction of its size.
    """
    orientation = exif_orientation(image)
    decode_reduced(image, RESIZE_TO)
    resized = short_side_resized(rgb_image(image), RESIZE_TO)
    left = (resized.width - INPUT_SIZE) // 2
    top = (resized.height - INPUT_SIZE) // 2
    cropped = resized.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    # A centred square crop commutes with rotations and flips, so only the small
    # crop is turned upright, never the full picture.
    pixels = np.asarray(upright(cropped, orientation), dtype=np.float32)
    return ((pixels - PIXEL_OFFSET) / PIXEL_SCALE).transpose(2, 0, 1)


def batch_array(images: Sequence[Image.Image]) -> npt.NDArray[np.float32]:
    """Return the images as one NCHW float32 batch."""
    return np.ascontiguousarray(np.stack([image_array(image) for image in images]))


def _strips_reduced(image: Image.Image, box: tuple[int, int, int, int], factor: int) -> Image.Image:
    """Return the box of the image in RGB, reduced by `factor`, converted a strip at a time."""
    if image.mode == "RGB":
        # Nothing to convert: reduced straight from the decoded picture, with no copy of it.
        return image.reduce(factor, box=box) if factor > 1 else image.crop(box)
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    # Whole multiples of the factor, so the strips reduce exactly as the box would at once.
    rows = max(1, _STRIP_BYTES // (4 * width * factor)) * factor
    for y in range(top, bottom, rows):
        strip = rgb_image(image.crop((left, y, right, min(y + rows, bottom))))
        reduced.paste(strip.reduce(factor) if factor > 1 else strip, (0, (y - top) // factor))
    return reduced


def model_input(image: Image.Image, side: int = MODEL_INPUT_SIDE) -> Image.Image:
    """Return the upright RGB centre square of an opened image, at most `side` pixels a side.

    The centre square is all the model looks at. A JPEG decodes at a reduced scale;
    other formats decode whole, once, and only strips of them are ever converted.
    """
    orientation = exif_orientation(image)
    decode_reduced(image, side)
    image.load()
    square = min(image.size)
    left, top = (image.width - square) // 2, (image.height - square) // 2
    box = (left, top, left + square, top + square)
    reduced = _strips_reduced(image, box, max(1, square // side))
    if reduced.width > side:
        reduced = reduced.resize((side, side), Image.Resampling.BILINEAR)
    turned = upright(reduced, orientation)
    # Pillow copies `info` along, EXIF included: the upright square must not be turned again.
    turned.info = {}
    return turned
