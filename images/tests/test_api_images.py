"""The images API: uploads, upscales, jobs, listing, files, deletion and who may do what."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import random
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from PIL import ExifTags
from PIL import Image as PILImage
from rest_framework.test import APIClient

from accounts.models import UploadDay
from accounts.services.organizations import organization_limits_set
from accounts.services.quotas import quota_day_bounds
from audit.models import AuditEvent
from config.testing.http import assert_problem, login_client
from images.models import IdempotentUpload, Image, Job
from images.tests.factories import (
    GPS_IFD,
    IMAGES,
    UPLOAD,
    UPSCALE,
    ImageFactory,
    accepted,
    assert_no_metadata,
    content,
    encoded,
    jpeg_bytes,
    opened,
    phone_jpeg,
    run_job,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = "/api/v1/images/limits"

ANSWER_FIELDS = {"job_id", "image_id", "status_url", "message"}
JOB_FIELDS = {
    "id",
    "image_id",
    "kind",
    "status",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "result",
    "error",
}
IMAGE_FIELDS = {
    "id",
    "filename",
    "bucket",
    "content_type",
    "size_bytes",
    "width",
    "height",
    "sha256",
    "uploaded_by",
    "created_at",
    "status",
    "classification",
    "file_url",
    "thumbnail_url",
}


# --- Files as clients send them ---------------------------------------------------------


def png_bytes(size: tuple[int, int] = (64, 48), colour: str = "green") -> bytes:
    return encoded(PILImage.new("RGB", size, colour), "PNG")


def noisy_jpeg(size: tuple[int, int] = (400, 300)) -> bytes:
    """A JPEG of noise, which does not compress: its scan data is most of the file."""
    noise = random.Random(size[0] * size[1]).randbytes(size[0] * size[1] * 3)
    return encoded(PILImage.frombytes("RGB", size, noise), "JPEG", quality=95)


def png_claiming(width: int, height: int) -> bytes:
    """A small valid PNG whose header is patched to claim other dimensions, CRC included."""
    data = bytearray(png_bytes((40, 40)))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def psd_bytes(width: int = 48, height: int = 40) -> bytes:
    """A flat RGB Photoshop document, raw data, as the PSD format defines it."""
    header = b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, height, width, 8, 3)
    sections = struct.pack(">III", 0, 0, 0)  # colour mode data, resources, layers
    return header + sections + struct.pack(">H", 0) + bytes(3 * width * height)


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
    b'<rect width="100" height="100" fill="red"/></svg>'
)


def colour_of(pixel: tuple[int, ...]) -> str:
    named = {"red": (255, 0, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}

    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(pixel, named[name], strict=True))

    return min(named, key=distance)


# --- Requests ---------------------------------------------------------------------------


def used_today(client: APIClient) -> int:
    return client.get(LIMITS).json()["used_today"]


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Each test stores its files in a directory of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def stored_files(media_root: Path) -> Callable[[], list[Path]]:
    """Return every file under MEDIA_ROOT right now."""
    return lambda: sorted(path for path in media_root.rglob("*") if path.is_file())


@pytest.fixture
def processed(member_client: APIClient) -> dict[str, Any]:
    """An image uploaded by the member and fully processed by its job."""
    body = accepted(upload(member_client, jpeg_bytes()))
    run_job(body["job_id"])
    return body


def assert_nothing_stored(client: APIClient, stored_files: Callable[[], list[Path]]) -> None:
    assert not Image.objects.exists()
    assert not Job.objects.exists()
    assert not IdempotentUpload.objects.exists()
    assert not AuditEvent.objects.filter(action="image.uploaded").exists()
    assert stored_files() == []
    assert used_today(client) == 0


# --- Upload and processing ----------------------------------------------------------------


def test_an_upload_is_accepted_stored_audited_and_queued(member_client, member, org, stored_files):
    data = jpeg_bytes((320, 200))

    response = upload(member_client, data, "car.jpg", bucket="fleet")

    body = accepted(response)
    assert set(body) == ANSWER_FIELDS
    assert body["status_url"] == f"/api/v1/images/jobs/{body['job_id']}"
    assert response["Location"] == body["status_url"]
    assert body["message"]
    image = Image.objects.get()
    assert str(image.id) == body["image_id"]
    assert image.organization_id == org.id
    assert image.uploaded_by == f"user:{member.id}"
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert (image.width, image.height, image.size_bytes) == (320, 200, len(data))
    assert (image.content_type, image.bucket, image.filename) == ("image/jpeg", "fleet", "car.jpg")
    assert image.status == Image.Status.PROCESSING
    job = Job.objects.get()
    assert str(job.id) == body["job_id"]
    assert (job.image_id, job.organization_id) == (image.id, org.id)
    assert (job.kind, job.status, job.attempts) == (Job.Kind.CLASSIFY, Job.Status.QUEUED, 0)
    with default_storage.open(image.original_path, "rb") as stored:
        assert stored.read() == data
    assert len(stored_files()) == 1
    event = AuditEvent.objects.get(action="image.uploaded")
    assert (event.organization_id, event.actor_type, event.actor_id) == (
        org.id,
        "user",
        str(member.id),
    )
    assert (event.resource_type, event.resource_id, event.outcome) == (
        "image",
        str(image.id),
        "success",
    )
    assert event.details["sha256"] == image.sha256
    assert event.details["job_id"] == str(job.id)
    assert used_today(member_client) == 1


def test_the_job_classifies_the_image_and_makes_a_thumbnail(member_client):
    body = accepted(upload(member_client, jpeg_bytes((320, 200)), "car.jpg"))

    run_job(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"], job["error"]) == ("succeeded", 1, None)
    classification = job["result"]["classification"]
    assert classification["top_label"] == classification["predictions"][0]["label"]
    assert classification["provider"] == "onnx"
    image = Image.objects.get()
    assert image.status == Image.Status.READY
    assert image.label == classification["top_label"]
    detail = member_client.get(f"{IMAGES}/{body['image_id']}").json()
    assert detail["status"] == "ready"
    assert detail["classification"] == classification
    assert detail["thumbnail_url"] == f"{IMAGES}/{body['image_id']}/thumbnail"

    thumbnail = member_client.get(detail["thumbnail_url"])
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert thumbnail["X-Content-Type-Options"] == "nosniff"
    small = opened(content(thumbnail))
    assert small.format == "JPEG"
    assert small.size == (256, 160)


def test_the_original_is_downloaded_as_an_attachment_of_its_stored_type(member_client):
    body = accepted(upload(member_client, png_bytes((64, 48)), "plate.png"))
    run_job(body["job_id"])

    response = member_client.get(f"{IMAGES}/{body['image_id']}/file")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="plate.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    served = opened(content(response))
    assert (served.format, served.size) == ("PNG", (64, 48))


def test_gps_and_camera_metadata_are_gone_and_the_photo_is_upright_once_processed(
    member_client,
):
    data = phone_jpeg()
    assert opened(data).getexif().get_ifd(GPS_IFD)[ExifTags.GPS.GPSLatitudeRef] == "N"
    body = accepted(upload(member_client, data, "holiday.jpg"))

    run_job(body["job_id"])

    served = content(member_client.get(f"{IMAGES}/{body['image_id']}/file"))
    assert_no_metadata(served)
    upright = opened(served).convert("RGB")
    # Orientation 6 turns the top of the picture to the right: red ends up on top.
    assert upright.size == (80, 160)
    assert colour_of(upright.getpixel((40, 20))) == "red"
    assert colour_of(upright.getpixel((40, 140))) == "blue"
    thumbnail = content(member_client.get(f"{IMAGES}/{body['image_id']}/thumbnail"))
    assert_no_metadata(thumbnail)
    small = opened(thumbnail).convert("RGB")
    assert small.size == (80, 160)
    assert colour_of(small.getpixel((40, 20))) == "red"


def test_an_images_dimensions_are_those_of_the_upright_file_it_serves(member_client):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg"))
    run_job(body["job_id"])

    detail = member_client.get(f"{IMAGES}/{body['image_id']}").json()
    served = opened(content(member_client.get(detail["file_url"])))

    assert (detail["width"], detail["height"]) == served.size == (80, 160)


# --- Refused uploads ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        pytest.param(SVG, "drawing.svg", (415, "UNSUPPORTED_MEDIA_TYPE"), id="svg"),
        pytest.param(
            encoded(PILImage.new("RGB", (64, 64), "red"), "TIFF"),
            "scan.tiff",
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            id="tiff",
        ),
        pytest.param(psd_bytes(), "layers.psd", (415, "UNSUPPORTED_MEDIA_TYPE"), id="psd"),
        pytest.param(
            b"just some text, not a picture",
            "notes.jpg",
            (415, "UNSUPPORTED_MEDIA_TYPE"),
            id="text",
        ),
        pytest.param(
            png_bytes(), "photo.jpg", (415, "UNSUPPORTED_MEDIA_TYPE"), id="extension-mismatch"
        ),
        pytest.param(png_bytes(), "photo", (415, "UNSUPPORTED_MEDIA_TYPE"), id="no-extension"),
        pytest.param(
            png_bytes((16, 16)), "icon.png", (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE"), id="too-small"
        ),
        pytest.param(
            png_bytes((8193, 32)),
            "strip.png",
            (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE"),
            id="too-wide",
        ),
        pytest.param(
            png_claiming(50_000, 50_000),
            "bomb.png",
            (400, "IMAGE_DIMENSIONS_OUT_OF_RANGE"),
            id="bomb",
        ),
        pytest.param(noisy_jpeg()[:4000], "cut.jpg", (400, "INVALID_IMAGE"), id="truncated-jpeg"),
    ],
)
def test_a_refused_upload_stores_nothing(member_client, stored_files, data, filename, expected):
    response = upload(member_client, data, filename)

    status, code = expected
    assert_problem(response, status=status, code=code)
    assert_nothing_stored(member_client, stored_files)


def test_the_refused_files_are_really_what_they_claim_to_be():
    assert opened(encoded(PILImage.new("RGB", (64, 64)), "TIFF")).format == "TIFF"
    psd = opened(psd_bytes())
    assert (psd.format, psd.size) == ("PSD", (48, 40))
    with pytest.raises(PILImage.DecompressionBombError, match="2500000000 pixels"):
        PILImage.open(io.BytesIO(png_claiming(50_000, 50_000)))
    cut = PILImage.open(io.BytesIO(noisy_jpeg()[:4000]))
    assert (cut.format, cut.size) == ("JPEG", (400, 300))
    with pytest.raises(OSError, match="truncated"):
        cut.load()


def test_an_upload_without_a_file_is_a_validation_error(member_client, stored_files):
    response = member_client.post(UPLOAD, {"bucket": "fleet"}, format="multipart")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["file"]
    assert_nothing_stored(member_client, stored_files)


def test_an_empty_file_is_a_validation_error(member_client, stored_files):
    body = assert_problem(
        upload(member_client, b"", "empty.jpg"), status=400, code="VALIDATION_ERROR"
    )
    assert [error["field"] for error in body["errors"]] == ["file"]
    assert_nothing_stored(member_client, stored_files)


@pytest.mark.parametrize("bucket", ["Fleet", "fleet cars", "../etc", "-fleet", "x" * 65])
def test_an_invalid_bucket_is_refused(member_client, stored_files, bucket):
    response = upload(member_client, jpeg_bytes(), bucket=bucket)

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["bucket"]
    assert_nothing_stored(member_client, stored_files)


@pytest.mark.parametrize("key", ["k" * 256, ""], ids=["too-long", "empty"])
def test_an_invalid_idempotency_key_is_refused(member_client, stored_files, key):
    response = upload(member_client, jpeg_bytes(), key=key)

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["Idempotency-Key"]
    assert_nothing_stored(member_client, stored_files)


def test_a_key_of_255_characters_is_accepted(member_client):
    assert accepted(upload(member_client, jpeg_bytes(), key="k" * 255))
    assert IdempotentUpload.objects.count() == 1


def test_a_file_over_the_organizations_size_limit_is_refused(member_client, org, stored_files):
    organization_limits_set(organization=org, max_file_size_bytes=2_000)
    large = noisy_jpeg((100, 100))
    assert len(large) > 2_000

    response = upload(member_client, large, "large.jpg")

    body = assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert "2,000 bytes" in body["detail"]
    assert_nothing_stored(member_client, stored_files)
    small = png_bytes((32, 32))
    assert len(small) <= 2_000
    assert accepted(upload(member_client, small, "small.png"))


def test_a_request_announcing_a_body_over_the_limit_is_refused_before_it_is_read(
    member_client, org, stored_files
):
    organization_limits_set(organization=org, max_file_size_bytes=2_000)
    body = {"file": SimpleUploadedFile("small.png", png_bytes((32, 32)))}

    # The body is small: only its announced length can have refused it.
    response = member_client.post(UPLOAD, body, format="multipart", CONTENT_LENGTH="10000000")

    body = assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert "larger than the limit" in body["detail"]
    assert "2,000 bytes" in body["detail"]
    assert_nothing_stored(member_client, stored_files)


@pytest.mark.parametrize("path", [UPLOAD, UPSCALE], ids=["upload", "upscale"])
def test_a_file_over_the_limit_is_stopped_while_it_streams(member_client, org, stored_files, path):
    # The request is within the room left for the form's other parts, so only the
    # count of the file's bytes, as the parser reads them, can stop it.
    organization_limits_set(organization=org, max_file_size_bytes=2_000)
    large = noisy_jpeg((100, 100))
    assert 2_000 < len(large) < 60_000
    fields = {"scale": "2"} if path == UPSCALE else {}

    response = upload(member_client, large, "large.jpg", path=path, **fields)

    body = assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert "larger than the limit" in body["detail"]
    assert_nothing_stored(member_client, stored_files)


def test_a_browser_sessions_oversized_upload_is_stopped_while_it_streams(member, org, stored_files):
    from config.testing.http import csrf_token, signed_in_browser

    organization_limits_set(organization=org, max_file_size_bytes=2_000)
    browser = signed_in_browser(member.username)
    body = {
        "file": SimpleUploadedFile("large.jpg", noisy_jpeg((100, 100))),
        "csrfmiddlewaretoken": csrf_token(browser),
    }

    response = browser.post(UPLOAD, body)

    body = assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert "larger than the limit" in body["detail"]
    assert Image.objects.count() == 0
    assert stored_files() == []
    small = {
        "file": SimpleUploadedFile("small.png", png_bytes((32, 32))),
        "csrfmiddlewaretoken": csrf_token(browser),
    }
    assert browser.post(UPLOAD, small).status_code == 202


# --- The daily quota ---------------------------------------------------------------------


def test_the_upload_past_the_daily_quota_is_refused_and_stores_nothing(
    member_client, org, stored_files
):
    organization_limits_set(organization=org, uploads_per_day=2)
    first = accepted(upload(member_client, jpeg_bytes(colour="red")))
    second = accepted(upload(member_client, jpeg_bytes(colour="blue")))

    response = upload(member_client, jpeg_bytes(colour="green"))

    assert_problem(response, status=429, code="QUOTA_EXCEEDED")
    assert 1 <= int(response["Retry-After"]) <= 86_400
    assert response["X-RateLimit-Remaining"] == "0"
    assert {str(i) for i in Image.objects.values_list("id", flat=True)} == {
        first["image_id"],
        second["image_id"],
    }
    assert Job.objects.count() == 2
    assert len(stored_files()) == 2
    assert AuditEvent.objects.filter(action="image.uploaded").count() == 2
    assert used_today(member_client) == 2


def test_the_daily_quota_resets_at_the_next_utc_midnight(member, org):
    organization_limits_set(organization=org, uploads_per_day=2)
    with time_machine.travel(dt.datetime(2026, 3, 1, 23, 59, tzinfo=dt.UTC), tick=False):
        client = login_client(member)
        accepted(upload(client, jpeg_bytes(colour="red")))
        accepted(upload(client, jpeg_bytes(colour="blue")))
        refused = upload(client, jpeg_bytes(colour="green"))
        assert_problem(refused, status=429, code="QUOTA_EXCEEDED")
        assert refused["Retry-After"] == "60"

    with time_machine.travel(dt.datetime(2026, 3, 2, 0, 0, 1, tzinfo=dt.UTC), tick=False):
        client = login_client(member)
        accepted(upload(client, jpeg_bytes(colour="green")))
        assert used_today(client) == 1

    assert Image.objects.count() == 3


# --- Idempotency -------------------------------------------------------------------------


def test_a_retry_with_the_same_key_and_file_gets_the_first_answer(member_client, stored_files):
    data = jpeg_bytes()
    first = upload(member_client, data, key="order-17")

    retry = upload(member_client, data, key="order-17")

    assert accepted(first)["job_id"] == accepted(retry)["job_id"]
    assert retry.json()["image_id"] == first.json()["image_id"]
    assert retry["Location"] == first["Location"]
    assert (Image.objects.count(), Job.objects.count(), IdempotentUpload.objects.count()) == (
        1,
        1,
        1,
    )
    assert len(stored_files()) == 1
    assert AuditEvent.objects.filter(action="image.uploaded").count() == 1
    assert used_today(member_client) == 1


def test_a_retry_after_the_job_finished_still_gets_the_first_answer(member_client):
    data = jpeg_bytes()
    first = accepted(upload(member_client, data, key="order-17"))
    run_job(first["job_id"])

    retry = accepted(upload(member_client, data, key="order-17"))

    assert (retry["job_id"], retry["image_id"]) == (first["job_id"], first["image_id"])
    assert Job.objects.get().status == Job.Status.SUCCEEDED


def test_the_same_key_with_another_file_is_refused(member_client, stored_files):
    first = accepted(upload(member_client, jpeg_bytes(colour="red"), key="order-17"))

    response = upload(member_client, jpeg_bytes(colour="blue"), key="order-17")

    assert_problem(response, status=409, code="IDEMPOTENCY_KEY_REUSED")
    assert [str(i) for i in Image.objects.values_list("id", flat=True)] == [first["image_id"]]
    assert Job.objects.count() == 1
    assert len(stored_files()) == 1
    assert used_today(member_client) == 1


def test_the_same_key_from_another_principal_is_independent(member_client, admin_client):
    data = jpeg_bytes()
    mine = accepted(upload(member_client, data, key="order-17"))

    theirs = accepted(upload(admin_client, data, key="order-17"))

    assert theirs["job_id"] != mine["job_id"]
    assert theirs["image_id"] != mine["image_id"]
    assert Image.objects.count() == 2
    assert IdempotentUpload.objects.count() == 2


def test_a_key_is_remembered_for_24_hours_and_free_again_after(member):
    data = jpeg_bytes()
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    with time_machine.travel(start, tick=False):
        first = accepted(upload(login_client(member), data, key="order-17"))
    with time_machine.travel(start + dt.timedelta(hours=23, minutes=59), tick=False):
        within = accepted(upload(login_client(member), data, key="order-17"))
    with time_machine.travel(start + dt.timedelta(hours=24, seconds=1), tick=False):
        after = accepted(upload(login_client(member), data, key="order-17"))

    assert within["job_id"] == first["job_id"]
    assert after["job_id"] != first["job_id"]
    assert Image.objects.count() == 2
    assert str(IdempotentUpload.objects.get().job_id) == after["job_id"]


class RequestThread(threading.Thread):
    """A thread with a database connection of its own, closed when it ends."""

    def __init__(self, target: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._run = target
        self.error: BaseException | None = None
        self.result: Any = None

    def run(self) -> None:
        try:
            self.result = self._run()
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.error = exc
        finally:
            connections.close_all()

    def finish(self, timeout: float = 30) -> Any:
        self.join(timeout)
        assert not self.is_alive(), "the thread did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def test_a_duplicate_sent_while_the_first_is_in_flight_is_refused_with_conflict(
    member, org, stored_files
):
    data = jpeg_bytes()
    first_client, second_client = login_client(member), login_client(member)
    day, _ = quota_day_bounds()
    UploadDay.objects.create(organization_id=org.id, day=day)
    holding, release = threading.Event(), threading.Event()

    def hold_the_quota_row() -> None:
        # The first upload waits here, in its transaction, after storing its file.
        with transaction.atomic():
            UploadDay.objects.select_for_update().get(organization_id=org.id, day=day)
            holding.set()
            release.wait(timeout=30)

    holder = RequestThread(hold_the_quota_row)
    holder.start()
    assert holding.wait(timeout=10)
    first = RequestThread(lambda: upload(first_client, data, key="order-17"))
    first.start()
    deadline = time.monotonic() + 10
    while not stored_files() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stored_files(), "the first upload did not reach its transaction"

    duplicate = upload(second_client, data, key="order-17")
    release.set()
    holder.finish()
    first_body = accepted(first.finish())

    assert_problem(duplicate, status=409, code="CONFLICT")
    assert Image.objects.count() == Job.objects.count() == 1
    assert len(stored_files()) == 1
    retry = accepted(upload(second_client, data, key="order-17"))
    assert retry["job_id"] == first_body["job_id"]


# --- Upscaling ---------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [2, 4])
def test_an_upscale_job_makes_a_larger_image_to_download(member_client, org, scale):
    data = jpeg_bytes((120, 80), colour="blue")
    body = accepted(upload(member_client, data, "car.jpg", path=UPSCALE, scale=scale))
    assert Job.objects.get().kind == Job.Kind.UPSCALE

    run_job(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert job["status"] == "succeeded"
    assert job["image_id"] == body["image_id"]
    result_id = job["result"]["image_id"]
    assert result_id != body["image_id"]
    larger = Image.objects.get(id=result_id)
    assert larger.organization_id == org.id
    assert (larger.width, larger.height) == (120 * scale, 80 * scale)
    assert (larger.filename, larger.content_type) == (f"car@{scale}x.jpg", "image/jpeg")
    detail = member_client.get(f"{IMAGES}/{result_id}").json()
    assert (detail["width"], detail["height"], detail["status"]) == (
        120 * scale,
        80 * scale,
        "ready",
    )
    download = member_client.get(detail["file_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "image/jpeg"
    served = content(download)
    assert opened(served).size == (120 * scale, 80 * scale)
    assert hashlib.sha256(served).hexdigest() == larger.sha256


@pytest.mark.parametrize("scale", ["3", "1", "", "two"])
def test_an_upscale_by_another_factor_is_refused(member_client, stored_files, scale):
    response = upload(member_client, jpeg_bytes(), path=UPSCALE, scale=scale)

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["scale"]
    assert_nothing_stored(member_client, stored_files)


def test_an_upscale_past_the_largest_dimension_is_refused_before_storing(
    member_client, stored_files
):
    wide = jpeg_bytes((3000, 200))

    response = upload(member_client, wide, "wide.jpg", path=UPSCALE, scale=4)

    body = assert_problem(response, status=400, code="IMAGE_DIMENSIONS_OUT_OF_RANGE")
    assert "12000x800" in body["detail"]
    assert_nothing_stored(member_client, stored_files)
    assert accepted(upload(member_client, wide, "wide.jpg", path=UPSCALE, scale=2))


def test_an_upscale_refuses_a_file_that_is_not_an_accepted_image(member_client, stored_files):
    response = upload(member_client, SVG, "drawing.svg", path=UPSCALE, scale=2)

    assert_problem(response, status=415, code="UNSUPPORTED_MEDIA_TYPE")
    assert_nothing_stored(member_client, stored_files)


def test_the_original_of_an_upscale_is_served_without_metadata(member_client):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg", path=UPSCALE, scale=2))
    run_job(body["job_id"])

    served = content(member_client.get(f"{IMAGES}/{body['image_id']}/file"))

    assert_no_metadata(served)


# --- Job status --------------------------------------------------------------------------


def test_a_job_asks_to_be_polled_until_it_finishes(member_client):
    body = accepted(upload(member_client, jpeg_bytes()))

    queued = member_client.get(body["status_url"])

    assert queued.status_code == 200
    assert queued["Retry-After"] == "1"
    job = queued.json()
    assert set(job) == JOB_FIELDS
    assert (job["id"], job["image_id"], job["kind"]) == (
        body["job_id"],
        body["image_id"],
        "classify",
    )
    assert (job["status"], job["attempts"], job["started_at"], job["finished_at"]) == (
        "queued",
        0,
        None,
        None,
    )
    assert (job["result"], job["error"]) == (None, None)

    run_job(body["job_id"])
    finished = member_client.get(body["status_url"])

    assert finished.status_code == 200
    assert "Retry-After" not in finished
    job = finished.json()
    assert job["status"] == "succeeded"
    assert job["started_at"] is not None
    assert job["finished_at"] >= job["started_at"]


def test_a_job_whose_file_is_gone_fails_for_good_with_its_reason(member_client, stored_files):
    body = accepted(upload(member_client, jpeg_bytes()))
    default_storage.delete(Image.objects.get().original_path)
    assert stored_files() == []

    run_job(body["job_id"])

    response = member_client.get(body["status_url"])
    assert "Retry-After" not in response
    job = response.json()
    assert (job["status"], job["attempts"], job["result"]) == ("failed", 1, None)
    assert job["error"]["code"] == "IMAGE_MISSING"
    assert job["error"]["message"]
    assert job["finished_at"] is not None
    assert member_client.get(f"{IMAGES}/{body['image_id']}").json()["status"] == "failed"
    assert_problem(
        member_client.get(f"{IMAGES}/{body['image_id']}/file"), status=404, code="NOT_FOUND"
    )
    run_job(body["job_id"])  # delivered again: a finished job is left as it is
    assert Job.objects.get().attempts == 1


def test_an_unknown_job_is_not_found(member_client):
    assert_problem(member_client.get(f"{IMAGES}/jobs/{uuid.uuid4()}"), status=404, code="NOT_FOUND")


# --- Listing -----------------------------------------------------------------------------


@pytest.fixture
def gallery(org: Any, other_org: Any) -> dict[str, Image]:
    """Five images of `org` a day apart (oldest first) and one of another organization."""
    start = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    specs = {
        "monday": ("fleet", "car", Image.Status.READY),
        "tuesday": ("fleet", "truck", Image.Status.READY),
        "wednesday": ("default", "car", Image.Status.READY),
        "thursday": ("default", "", Image.Status.PROCESSING),
        "friday": ("archive", "", Image.Status.FAILED),
    }
    images = {
        name: ImageFactory(
            organization=org,
            bucket=bucket,
            label=label,
            status=status,
            created_at=start + dt.timedelta(days=day),
        )
        for day, (name, (bucket, label, status)) in enumerate(specs.items())
    }
    images["foreign"] = ImageFactory(
        organization=other_org, bucket="fleet", label="car", created_at=start + dt.timedelta(days=2)
    )
    return images


def listed(client: APIClient, query: str = "") -> list[str]:
    response = client.get(f"{IMAGES}{query}")
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def ids(gallery: dict[str, Image], *names: str) -> list[str]:
    return [str(gallery[name].id) for name in names]


def test_the_list_shows_the_organizations_images_newest_first(member_client, gallery):
    response = member_client.get(IMAGES)

    body = response.json()
    assert body["count"] == 5
    assert (body["next"], body["previous"]) == (None, None)
    assert [item["id"] for item in body["results"]] == ids(
        gallery, "friday", "thursday", "wednesday", "tuesday", "monday"
    )
    assert set(body["results"][0]) == IMAGE_FIELDS


def test_the_list_is_paginated(member_client, gallery):
    first = member_client.get(f"{IMAGES}?page_size=2").json()
    assert first["count"] == 5
    assert [item["id"] for item in first["results"]] == ids(gallery, "friday", "thursday")
    assert first["previous"] is None
    assert "page=2" in first["next"]

    second = member_client.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == ids(gallery, "wednesday", "tuesday")
    assert second["previous"] is not None
    assert second["next"] is not None

    last = member_client.get(second["next"]).json()
    assert [item["id"] for item in last["results"]] == ids(gallery, "monday")
    assert last["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?bucket=fleet", ["tuesday", "monday"]),
        ("?label=car", ["wednesday", "monday"]),
        ("?status=processing", ["thursday"]),
        ("?status=failed", ["friday"]),
        ("?uploaded_after=2026-03-03T12:00:00Z", ["friday", "thursday", "wednesday"]),
        ("?uploaded_before=2026-03-03T12:00:00Z", ["tuesday", "monday"]),
        ("?bucket=default&label=car", ["wednesday"]),
        ("?bucket=nowhere", []),
    ],
)
def test_each_filter_narrows_the_list(member_client, gallery, query, expected):
    assert listed(member_client, query) == ids(gallery, *expected)


def test_the_list_takes_the_same_few_queries_for_a_long_page(
    member_client, org, gallery, django_assert_max_num_queries
):
    member_client.get(IMAGES)  # the principal's permissions are cached from here on
    for _ in range(40):
        ImageFactory(organization=org)

    with django_assert_max_num_queries(3) as short_page:
        member_client.get(f"{IMAGES}?page_size=5")
    with django_assert_max_num_queries(3) as long_page:
        response = member_client.get(f"{IMAGES}?page_size=45")

    assert len(response.json()["results"]) == 45
    assert len(long_page.captured_queries) == len(short_page.captured_queries)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=done", "status"),
        ("?bucket=Not%20A%20Bucket", "bucket"),
        ("?label=Car!", "label"),
        ("?uploaded_after=yesterday", "uploaded_after"),
        ("?uploaded_before=2026-13-01", "uploaded_before"),
    ],
)
def test_an_invalid_filter_is_refused(member_client, gallery, query, field):
    body = assert_problem(
        member_client.get(f"{IMAGES}{query}"), status=400, code="VALIDATION_ERROR"
    )
    assert [error["field"] for error in body["errors"]] == [field]


# --- Detail and deletion -----------------------------------------------------------------


def test_the_detail_describes_the_image(member_client, member):
    data = jpeg_bytes((320, 200))
    body = accepted(upload(member_client, data, "car.jpg", bucket="fleet"))

    detail = member_client.get(f"{IMAGES}/{body['image_id']}").json()

    image = Image.objects.get()
    assert detail == {
        "id": body["image_id"],
        "filename": "car.jpg",
        "bucket": "fleet",
        "content_type": "image/jpeg",
        "size_bytes": len(data),
        "width": 320,
        "height": 200,
        "sha256": hashlib.sha256(data).hexdigest(),
        "uploaded_by": image.uploaded_by_display,
        "created_at": detail["created_at"],
        "status": "processing",
        "classification": None,
        "file_url": f"{IMAGES}/{body['image_id']}/file",
        "thumbnail_url": None,
    }
    assert image.uploaded_by_display == member.username
    assert dt.datetime.fromisoformat(detail["created_at"]) == image.created_at
    assert_problem(
        member_client.get(f"{IMAGES}/{body['image_id']}/thumbnail"), status=404, code="NOT_FOUND"
    )


def test_deleting_an_image_removes_its_rows_and_files(
    member_client, member, org, processed, stored_files
):
    image = Image.objects.get()
    paths = [image.original_path, image.thumbnail_path]
    assert all(default_storage.exists(path) for path in paths)
    assert len(stored_files()) == 2

    response = member_client.delete(f"{IMAGES}/{processed['image_id']}")

    assert response.status_code == 204
    assert not Image.objects.exists()
    assert not Job.objects.exists()
    assert not any(default_storage.exists(path) for path in paths)
    assert stored_files() == []
    event = AuditEvent.objects.get(action="image.deleted")
    assert (event.organization_id, event.actor_id, event.resource_id) == (
        org.id,
        str(member.id),
        processed["image_id"],
    )
    assert event.details["sha256"] == image.sha256
    assert_problem(
        member_client.get(f"{IMAGES}/{processed['image_id']}"), status=404, code="NOT_FOUND"
    )
    assert_problem(member_client.get(processed["status_url"]), status=404, code="NOT_FOUND")


def test_deleting_an_image_frees_its_idempotency_key(member_client):
    data = jpeg_bytes()
    first = accepted(upload(member_client, data, key="order-17"))
    assert member_client.delete(f"{IMAGES}/{first['image_id']}").status_code == 204
    assert not IdempotentUpload.objects.exists()

    again = accepted(upload(member_client, data, key="order-17"))

    assert again["image_id"] != first["image_id"]


# --- Who may do what ---------------------------------------------------------------------


def image_paths(body: dict[str, Any]) -> list[str]:
    image = f"{IMAGES}/{body['image_id']}"
    return [image, f"{image}/file", f"{image}/thumbnail", body["status_url"]]


def test_an_outsider_finds_none_of_another_organizations_images(outsider_client, processed):
    for path in image_paths(processed):
        assert_problem(outsider_client.get(path), status=404, code="NOT_FOUND")

    assert_problem(
        outsider_client.delete(f"{IMAGES}/{processed['image_id']}"), status=404, code="NOT_FOUND"
    )
    assert Image.objects.filter(id=processed["image_id"]).exists()
    assert outsider_client.get(IMAGES).json()["count"] == 0


def test_a_viewer_reads_but_may_not_upload_upscale_or_delete(
    viewer_client, processed, stored_files
):
    for path in image_paths(processed):
        assert viewer_client.get(path).status_code == 200
    assert viewer_client.get(IMAGES).json()["count"] == 1

    assert_problem(
        upload(viewer_client, jpeg_bytes(colour="blue")), status=403, code="PERMISSION_DENIED"
    )
    assert_problem(
        upload(viewer_client, jpeg_bytes(colour="blue"), path=UPSCALE, scale=2),
        status=403,
        code="PERMISSION_DENIED",
    )
    assert_problem(
        viewer_client.delete(f"{IMAGES}/{processed['image_id']}"),
        status=403,
        code="PERMISSION_DENIED",
    )
    assert [str(i) for i in Image.objects.values_list("id", flat=True)] == [processed["image_id"]]
    assert Job.objects.count() == 1
    assert len(stored_files()) == 2


def test_a_guest_may_not_read_images(guest_client, processed):
    for path in [IMAGES, *image_paths(processed)]:
        assert_problem(guest_client.get(path), status=403, code="PERMISSION_DENIED")


def test_anonymous_requests_are_refused(processed, stored_files):
    anonymous = APIClient()
    image = f"{IMAGES}/{processed['image_id']}"
    for path in [IMAGES, *image_paths(processed)]:
        assert_problem(anonymous.get(path), status=401, code="NOT_AUTHENTICATED")
    assert_problem(anonymous.delete(image), status=401, code="NOT_AUTHENTICATED")
    assert_problem(
        upload(anonymous, jpeg_bytes(colour="blue")), status=401, code="NOT_AUTHENTICATED"
    )
    assert_problem(
        upload(anonymous, jpeg_bytes(colour="blue"), path=UPSCALE, scale=2),
        status=401,
        code="NOT_AUTHENTICATED",
    )
    assert Image.objects.count() == 1
    assert len(stored_files()) == 2
