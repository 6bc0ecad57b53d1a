"""Shared builders of the images tests: factory_boy rows, pictures, uploads through the API."""

import contextlib
import functools
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import uuid
import zlib
from typing import Any

import factory
import httpx
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from factory.django import DjangoModelFactory
from PIL import ExifTags
from PIL import Image as PILImage
from rest_framework.test import APIClient

from accounts.tests.factories import OrganizationFactory
from config.testing.processes import (
    WorkerProcess,
)
from images.models import Image
from images.tasks import job_run_task
from images.validation import storage_path_for

UPSCALE = "/api/v1/images/upscale"
IMAGES = "/api/v1/images"
BUCKET = "vantage-images"
REGION = "us-east-1"
ACCESS_KEY = "vantage-test-access-key"
SECRET_KEY = "vantage-test-secret-key"
PRINT_STORAGES = (
    "import json; from django.conf import settings; print(json.dumps(settings.STORAGES))"
)
UPLOAD = "/api/v1/images/upload"
GPS_IFD = 0x8825
S3_VARIABLES = (
    "STORAGE_S3_BUCKET",
    "STORAGE_S3_ENDPOINT_URL",
    "STORAGE_S3_REGION",
    "STORAGE_S3_ACCESS_KEY_ID",
    "STORAGE_S3_SECRET_ACCESS_KEY",
    "STORAGE_S3_ADDRESSING_STYLE",
    "STORAGE_S3_PREFIX",
)


class ImageFactory(DjangoModelFactory):
    class Meta:
        model = Image

    id = factory.LazyFunction(uuid.uuid4)
    organization = factory.SubFactory(OrganizationFactory)
    uploaded_by = "user:0"
    uploaded_by_display = "someone"
    filename = factory.Sequence(lambda n: f"photo-{n}.jpg")
    bucket = "default"
    content_type = "image/jpeg"
    size_bytes = 1000
    width = 640
    height = 480
    sha256 = factory.LazyAttribute(
        lambda image: hashlib.sha256(image.filename.encode()).hexdigest()
    )
    original_path = factory.LazyAttribute(
        lambda image: storage_path_for(
            organization_id=image.organization.id,
            image_id=image.id,
            variant="original",
            extension="jpg",
        )
    )
    status = Image.Status.READY
    label = "car"


def jpeg_bytes(size: tuple[int, int] = (320, 200), colour: str = "red") -> bytes:
    return encoded(PILImage.new("RGB", size, colour), "JPEG")


def phone_jpeg() -> bytes:
    """A 160x80 photo, left half red and right half blue, stored sideways (Orientation 6)."""
    photo = PILImage.new("RGB", (160, 80), "red")
    photo.paste((0, 0, 255), (80, 0, 160, 80))
    return encoded(photo, "JPEG", exif=camera_exif(), comment=b"taken at home")


def opened(data: bytes) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image


def assert_no_metadata(data: bytes) -> None:
    image = opened(data)
    assert len(image.getexif()) == 0
    for key in ("exif", "xmp", "icc_profile", "comment"):
        assert key not in image.info
    for secret in (b"PhoneMaker", b"Phone 12", b"taken at home"):
        assert secret not in data


def upload(
    client: APIClient,
    data: bytes,
    name: str = "car.jpg",
    *,
    key: str | None = None,
    path: str = UPLOAD,
    **fields: Any,
) -> Any:
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    body = {"file": SimpleUploadedFile(name, data), **fields}
    return client.post(path, body, format="multipart", **headers)


def accepted(response: Any) -> dict[str, Any]:
    assert response.status_code == 202, response.content
    return response.json()


def run_job(job_id: str) -> None:
    outcome = job_run_task.apply(args=(str(job_id),))
    assert outcome.successful(), outcome.traceback


def content(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def solid_png(side: int, colour: tuple[int, int, int]) -> bytes:
    """Return a one-colour RGB PNG, compressed row by row: no full-size image is ever made."""
    row = b"\x00" + bytes(colour) * side
    deflate = zlib.compressobj(9)
    idat = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (_chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b""))
    )


def objects(client: Any) -> dict[str, bytes]:
    """Return every object in the bucket: its key and its bytes."""
    listed = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
        for item in listed
    }


def http_upload(client: httpx.Client, name: str, data: bytes) -> dict[str, Any]:
    kind = "image/png" if name.endswith(".png") else "image/jpeg"
    response = client.post(UPLOAD, files={"file": (name, data, kind)})
    assert response.status_code == 202, response.text
    return dict(response.json())


def job_run_starts(worker: WorkerProcess) -> list[dict[str, Any]]:
    """Return the worker's log lines of each `images.job_run` task it began."""
    return [
        line
        for line in worker.log_lines()
        if line.get("event") == "task_started" and line.get("task_name") == "images.job_run"
    ]


def settings_run(**variables: str) -> subprocess.CompletedProcess[str]:
    """Load config/settings.py in a new interpreter with only these storage variables set."""
    # An empty value reads as unset, and keeps a developer's .env from filling it in.
    env = {
        **os.environ,
        **dict.fromkeys(S3_VARIABLES, ""),
        **variables,
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    return subprocess.run(
        [sys.executable, "-c", PRINT_STORAGES],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@functools.cache
def _storages_built(**variables: str) -> str:
    finished = settings_run(**variables)
    assert finished.returncode == 0, finished.stderr
    return finished.stdout.strip().splitlines()[-1]


def storages_from_environment(**variables: str) -> dict[str, Any]:
    """Return STORAGES as config/settings.py builds it from these environment variables."""
    return json.loads(_storages_built(**variables))


def encoded(image: PILImage.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def camera_exif(orientation: int = 6) -> PILImage.Exif:
    """EXIF as a phone writes it: where the photo was taken, the camera, and how to turn it."""
    exif = PILImage.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 12"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0042"
    exif[GPS_IFD] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (52.0, 22.0, 12.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (4.0, 53.0, 30.0),
    }
    return exif


def _group_signal(worker: WorkerProcess, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signum)
