"""A storage that fails mid-write (a full disk, an object store refusing writes) loses nothing.

Each disk test runs twice: on a real 300 KB tmpfs mounted for the test (where the
machine permits mounting) and on `SmallDiskStorage`, chosen through STORAGES,
which fails the same way on every machine. The object store tests answer a
write as a full MinIO does (`507 XMinioStorageFull`), at botocore's network edge.
"""

from __future__ import annotations

import errno
import hashlib
import io
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from accounts.models import UploadDay
from config.testing.http import assert_problem
from images.errors import TransientJobError
from images.models import Image, Job
from images.pipeline import job_run
from images.tests.factories import IMAGES, accepted, content, objects, opened, upload

pytestmark = pytest.mark.django_db(transaction=True)

DISK_BYTES = 300 * 1024
FILLER = "filler.bin"


def grainy_jpeg(seed: int = 0, size: tuple[int, int] = (400, 300)) -> bytes:
    """A JPEG of noise at low quality: the cleaned copy (quality 90) is about three times larger."""
    noise = random.Random(seed).randbytes(size[0] * size[1] * 3)
    buffer = io.BytesIO()
    PILImage.frombytes("RGB", size, noise).save(buffer, "JPEG", quality=30)
    return buffer.getvalue()


class Disk:
    """The small disk MEDIA_ROOT is on, and a file of the test's own to fill it."""

    def __init__(self, root: Path, *, capacity_bytes: int | None) -> None:
        self.root = root
        # None for a real filesystem: it says itself when it is full.
        self.capacity_bytes = capacity_bytes

    def fill(self) -> None:
        """Fill the disk to its last byte."""
        with (self.root / FILLER).open("wb", buffering=0) as filler:
            if self.capacity_bytes is not None:
                used = sum(path.stat().st_size for path in self.root.rglob("*") if path.is_file())
                filler.write(bytes(self.capacity_bytes - used))
                return
            try:
                while True:
                    filler.write(bytes(4096))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    def release(self) -> None:
        (self.root / FILLER).unlink()

    def files(self) -> list[str]:
        """Return the storage names of every file on the disk but the filler."""
        names = (path.relative_to(self.root).as_posix() for path in self.root.rglob("*"))
        return sorted(name for name in names if name != FILLER and (self.root / name).is_file())


def _tmpfs_mount(root: Path) -> None:
    mount = shutil.which("mount")
    if mount is None:
        pytest.skip("mount(8) is not installed: a tmpfs cannot be mounted for this test")
    mounted = subprocess.run(
        [mount, "-t", "tmpfs", "-o", f"size={DISK_BYTES // 1024}k", "tmpfs", str(root)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")


@pytest.fixture(params=["tmpfs", "counted"])
def disk(request: pytest.FixtureRequest, settings: Any, tmp_path: Path) -> Iterator[Disk]:
    """MEDIA_ROOT on a 300 KB disk: a real tmpfs, or SmallDiskStorage counting the bytes."""
    root = tmp_path / "media"
    root.mkdir()
    if request.param == "counted":
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "images.tests.small_disk.SmallDiskStorage",
                "OPTIONS": {"capacity_bytes": DISK_BYTES, "location": str(root)},
            },
        }
        yield Disk(root, capacity_bytes=DISK_BYTES)
        return
    _tmpfs_mount(root)
    try:
        settings.MEDIA_ROOT = str(root)
        assert Path(default_storage.path("x")).parent == root
        yield Disk(root, capacity_bytes=None)
    finally:
        umount = shutil.which("umount") or "/bin/umount"
        subprocess.run([umount, str(root)], capture_output=True, timeout=30, check=False)


def folder_of(image_id: str) -> str:
    image = Image.objects.get(id=image_id)
    return f"images/{image.organization_id}/{image.id}"


# --- The job ----------------------------------------------------------------------------


def test_a_full_disk_during_the_job_keeps_the_original_whole_and_the_next_attempt_succeeds(
    member_client, disk
):
    data = grainy_jpeg()
    body = accepted(upload(member_client, data, "car.jpg"))
    original = f"{folder_of(body['image_id'])}/original.jpg"
    disk.fill()

    with pytest.raises(TransientJobError):
        job_run(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"], job["error"]) == ("queued", 1, None)
    served = member_client.get(f"{IMAGES}/{body['image_id']}/file")
    assert served.status_code == 200
    assert content(served) == data  # whole, byte for byte
    assert disk.files() == [original]  # nothing the attempt began is left behind

    disk.release()
    job_run(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"], job["error"]) == ("succeeded", 2, None)
    cleaned = content(member_client.get(f"{IMAGES}/{body['image_id']}/file"))
    assert len(cleaned) > len(data)
    assert opened(cleaned).size == (400, 300)
    assert disk.files() == [original, f"{folder_of(body['image_id'])}/thumbnail.jpg"]


def test_a_disk_full_past_every_attempt_fails_the_job_as_the_servers_fault_keeping_the_original(
    member_client, disk, settings
):
    settings.JOB_MAX_ATTEMPTS = 2
    data = grainy_jpeg()
    body = accepted(upload(member_client, data, "car.jpg"))
    disk.fill()

    with pytest.raises(TransientJobError):
        job_run(body["job_id"])
    job_run(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["attempts"]) == ("failed", 2)
    assert job["error"]["code"] == "INSUFFICIENT_STORAGE"
    assert "kept as uploaded" in job["error"]["message"]
    assert content(member_client.get(f"{IMAGES}/{body['image_id']}/file")) == data
    assert disk.files() == [f"{folder_of(body['image_id'])}/original.jpg"]


# --- The upload -------------------------------------------------------------------------


def test_uploads_to_a_full_disk_are_refused_with_507_leaving_no_file_without_a_row(
    member_client, disk
):
    answers = [upload(member_client, grainy_jpeg(seed), f"car-{seed}.jpg") for seed in range(12)]

    taken = [answer for answer in answers if answer.status_code == 202]
    refused = [answer for answer in answers if answer.status_code != 202]
    assert taken, [answer.status_code for answer in answers]
    assert refused, [answer.status_code for answer in answers]
    for answer in refused:
        assert_problem(answer, status=507, code="INSUFFICIENT_STORAGE")
        assert int(answer["Retry-After"]) > 0
    # One file for each image kept, one image for each file, and nothing else.
    kept = Image.objects.all()
    assert disk.files() == sorted(image.original_path for image in kept)
    assert kept.count() == Job.objects.count() == len(taken)
    for image in kept:
        with default_storage.open(image.original_path, "rb") as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == image.sha256
    # A refused upload is not counted against the daily quota.
    assert sum(UploadDay.objects.values_list("count", flat=True)) == len(taken)


# --- An object store that refuses writes ------------------------------------------------


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_options: Any) -> Iterator[bytes]:
        yield self.data


STORAGE_FULL = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code>'
    b"<Message>Storage backend has reached its minimum free drive threshold.</Message></Error>"
)


def refuse_writes() -> None:
    """Answer every PutObject of the storage's client as a full MinIO does."""

    def full(request: Any, **_kwargs: Any) -> AWSResponse:
        return AWSResponse(
            request.url, 507, {"Content-Type": "application/xml"}, _Body(STORAGE_FULL)
        )

    client = default_storage.connection.meta.client
    client.meta.events.register("before-send.s3.PutObject", full)


def test_an_object_store_refusing_the_cleaned_copy_keeps_the_original_in_the_bucket(
    member_client, org, bucket, s3_storage
):
    data = grainy_jpeg()
    body = accepted(upload(member_client, data, "car.jpg"))
    refuse_writes()

    with pytest.raises(TransientJobError):
        job_run(body["job_id"])

    assert Job.objects.get(id=body["job_id"]).status == Job.Status.QUEUED
    original = f"images/{org.id}/{body['image_id']}/original.jpg"
    assert objects(bucket) == {original: data}
    assert content(member_client.get(f"{IMAGES}/{body['image_id']}/file")) == data


def test_an_upload_to_an_object_store_refusing_writes_answers_507_and_keeps_nothing(
    member_client, bucket, s3_storage
):
    refuse_writes()

    answer = upload(member_client, grainy_jpeg(), "car.jpg")

    assert_problem(answer, status=507, code="INSUFFICIENT_STORAGE")
    assert int(answer["Retry-After"]) > 0
    assert objects(bucket) == {}
    assert not Image.objects.exists()
    assert not Job.objects.exists()
