"""The `remote` provider against a real HTTP server, and what its errors mean to the chain."""

import io

import pytest
from PIL import Image

from classifier.chain import classify_with_failover
from classifier.errors import ProviderError
from classifier.providers.remote import RemoteProvider, upload_bytes
from classifier.tests.factories import REMOTE_TOKEN, classification_answer
from config.testing.processes import free_port

pytestmark = pytest.mark.django_db


def test_a_valid_answer_becomes_classifications(remote, photo):
    remote.status = 200

    (result,) = RemoteProvider().classify([photo])

    assert result.is_vehicle is True
    assert result.top_label == "truck"
    ranked = [(prediction.label, prediction.confidence) for prediction in result.predictions]
    assert ranked == [("truck", 0.81), ("not_vehicle", 0.12), ("van", 0.05)]
    assert result.vehicle_probability == 0.88
    assert result.imagenet[0].label == "semi-trailer truck"
    assert result.provider == "remote"
    assert result.model == "efficientnet-lite0@0.1.0"
    assert result.processing_time_ms > 0
    (sent,) = remote.requests
    assert sent["path"] == "/api/v1/vehicle/classify-batch"
    assert sent["headers"]["Authorization"] == f"Bearer {REMOTE_TOKEN}"
    assert sent["files"] == 1
    assert b"Content-Type: image/jpeg" in sent["body"]


def test_a_large_batch_is_sent_in_requests_of_at_most_32_files(remote, photo):
    remote.status = 200

    results = RemoteProvider().classify([photo] * 40)

    assert len(results) == 40
    assert [sent["files"] for sent in remote.requests] == [32, 8]


def test_the_vehicle_probability_is_derived_when_the_answer_lacks_it(remote, photo):
    remote.status = 200
    remote.answer = [classification_answer(vehicle_probability=None)]

    (result,) = RemoteProvider().classify([photo])

    assert result.vehicle_probability == pytest.approx(0.88)


def test_the_remote_through_the_chain_answers_for_the_chain(remote, photo, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    remote.status = 200

    (result,) = classify_with_failover([photo])

    assert result.provider == "remote"
    assert remote.calls == 1


def test_an_upload_is_a_jpeg_no_larger_than_needed():
    large = Image.new("RGB", (2000, 1500), (200, 30, 30))
    sent = Image.open(io.BytesIO(upload_bytes(large)))

    assert sent.format == "JPEG"
    assert sent.size == (683, 512)
    small = Image.open(io.BytesIO(upload_bytes(Image.new("L", (100, 80), 90))))
    assert (small.size, small.mode) == ((100, 80), "RGB")


def test_an_upload_is_turned_upright_as_its_exif_orientation_says():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: a viewer turns it a quarter to the right
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 120, 40)).save(buffer, format="JPEG", exif=exif)

    sent = Image.open(io.BytesIO(upload_bytes(Image.open(buffer))))

    assert sent.size == (300, 400)
    assert 0x0112 not in sent.getexif()


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (500, False),
        (502, False),
        (503, False),
        (429, False),
        (408, False),
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (413, True),
    ],
)
def test_server_errors_are_transient_and_refusals_permanent(remote, photo, status, permanent):
    remote.status = status

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is permanent
    assert str(status) in failed.value.message


def test_an_unreachable_server_is_a_transient_error(settings, photo):
    settings.CLASSIFIER_REMOTE_URL = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is False
    assert "unreachable" in failed.value.message


def test_a_slow_server_times_out_as_a_transient_error(remote, photo, settings):
    remote.status, remote.delay = 200, 1.5
    settings.CLASSIFIER_REMOTE_TIMEOUT = 0.3

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is False
    assert "Timeout" in failed.value.message


def test_a_refused_image_in_the_answer_is_a_permanent_error(remote, photo):
    remote.status = 200
    remote.answer = [{"filename": "image-0.jpg", "error": {"code": "INVALID_IMAGE"}}]

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is True
    assert "INVALID_IMAGE" in failed.value.message


@pytest.mark.parametrize(
    "results",
    [[], [classification_answer(), classification_answer()], [{"is_vehicle": True}], "nope"],
    ids=["too-few", "too-many", "malformed", "not-a-list"],
)
def test_an_answer_that_does_not_fit_the_request_is_a_transient_error(remote, photo, results):
    remote.status = 200
    remote.answer = results

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is False


def test_without_a_url_the_remote_is_a_permanent_error(settings, photo):
    settings.CLASSIFIER_REMOTE_URL = ""

    with pytest.raises(ProviderError) as failed:
        RemoteProvider().classify([photo])

    assert failed.value.permanent is True


# --- What a failed chain tells its caller ------------------------------------------


def test_a_chain_whose_providers_all_refused_fails_permanently(remote, photo, settings, tmp_path):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    settings.CLASSIFIER_MODEL_PATH = tmp_path / "absent.onnx"  # onnx: a permanent error too
    remote.status = 401

    with pytest.raises(ProviderError) as failed:
        classify_with_failover([photo])

    assert failed.value.permanent is True
    assert "remote: " in failed.value.message
    assert "onnx: " in failed.value.message


def test_a_chain_with_one_transient_failure_fails_transiently(remote, photo, settings, tmp_path):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    settings.CLASSIFIER_MODEL_PATH = tmp_path / "absent.onnx"
    remote.status = 503

    with pytest.raises(ProviderError) as failed:
        classify_with_failover([photo])

    assert failed.value.permanent is False


def test_a_permanent_failure_still_fails_over_to_the_next_provider(
    onnx_ready, remote, photo, settings
):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    remote.status = 403

    (result,) = classify_with_failover([photo])

    assert result.provider == "onnx"
    assert remote.calls == 1
