"""What a classification keeps of each image: the upright centre square, small, in RGB, giving
the model the input the whole picture gives it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from classifier.preprocessing import MODEL_INPUT_SIDE, image_array, model_input


def _saved(image: Image.Image, format_name: str, **options: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format=format_name, **options)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.fixture(scope="module")
def picture(foolbox_photos) -> Image.Image:
    photo = Image.open(foolbox_photos[3]).convert("RGB")
    return photo.resize((1800, 1200), Image.Resampling.BICUBIC)


@pytest.mark.parametrize(
    ("mode", "format_name"),
    [("RGB", "JPEG"), ("RGB", "PNG"), ("RGBA", "PNG"), ("P", "GIF"), ("RGB", "WEBP")],
)
def test_the_kept_square_gives_the_model_the_input_the_whole_picture_gives(
    picture, mode, format_name
):
    kept = model_input(_saved(picture.convert(mode), format_name))

    assert (kept.mode, kept.size) == ("RGB", (MODEL_INPUT_SIDE, MODEL_INPUT_SIDE))
    whole = image_array(_saved(picture.convert(mode), format_name))
    assert float(np.abs(image_array(kept) - whole).mean()) < 0.03


def test_a_picture_smaller_than_the_square_is_kept_at_its_own_size(picture):
    kept = model_input(_saved(picture.resize((300, 200)), "PNG"))

    assert kept.size == (200, 200)


def test_the_kept_square_is_upright(picture):
    upright = picture.crop((0, 0, 1200, 1600))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways saves it
    exif = Image.Exif()
    exif[0x0112] = 6

    kept = model_input(_saved(stored, "PNG", exif=exif))

    assert not kept.getexif()
    assert float(np.abs(image_array(kept) - image_array(upright)).mean()) < 0.05
    assert (
        float(
            np.abs(
                image_array(kept.transpose(Image.Transpose.ROTATE_90)) - image_array(upright)
            ).mean()
        )
        > 0.1
    )


def test_transparent_parts_are_kept_on_white():
    clear = Image.new("RGBA", (900, 700), (0, 0, 0, 0))

    kept = model_input(_saved(clear, "PNG"))

    assert kept.getextrema() == ((255, 255), (255, 255), (255, 255))
