"""Images on S3-compatible object storage: settings from the environment, then the whole
life of an image (upload, job, files, deletion) through the API against a real S3 server
(moto's, on loopback) instead of the filesystem.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import FileSystemStorage, StorageHandler
from django.db import transaction
from storages.backends.s3 import S3Storage

from config.testing.http import assert_problem
from config.testing.processes import free_port
from images.errors import TransientJobError
from images.models import Image, Job
from images.pipeline import job_run
from images.tests.factories import (
    BUCKET,
    IMAGES,
    UPSCALE,
    accepted,
    assert_no_metadata,
    content,
    jpeg_bytes,
    objects,
    opened,
    phone_jpeg,
    run_job,
    settings_run,
    storages_from_environment,
    upload,
)

pytestmark = pytest.mark.django_db(transaction=True)

FILESYSTEM = "django.core.files.storage.FileSystemStorage"
S3 = "storages.backends.s3.S3Storage"


# --- The settings, as a fresh process builds them from its environment ------------------


def test_without_a_bucket_images_stay_on_the_filesystem_under_media_root(settings, media_root):
    built = storages_from_environment()

    assert built["default"] == {"BACKEND": FILESYSTEM}
    assert built["staticfiles"] == settings.STORAGES["staticfiles"]
    storage = StorageHandler(built)["default"]
    assert isinstance(storage, FileSystemStorage)
    assert Path(storage.location) == media_root


def test_a_bucket_puts_images_on_s3_with_the_options_from_the_environment(settings):
    built = storages_from_environment(
        STORAGE_S3_BUCKET="fleet-images",
        STORAGE_S3_ENDPOINT_URL="https://s3.example.test:9000",
        STORAGE_S3_REGION="eu-central-1",
        STORAGE_S3_ACCESS_KEY_ID="AKIAEXAMPLE",
        STORAGE_S3_SECRET_ACCESS_KEY="example-secret",
        STORAGE_S3_ADDRESSING_STYLE="path",
        STORAGE_S3_PREFIX="/vantage/media/",
        STORAGE_S3_MAX_MEMORY_SIZE="1048576",
    )

    assert built["default"] == {
        "BACKEND": S3,
        "OPTIONS": {
            "bucket_name": "fleet-images",
            "endpoint_url": "https://s3.example.test:9000",
            "region_name": "eu-central-1",
            "access_key": "AKIAEXAMPLE",
            "secret_key": "example-secret",
            "addressing_style": "path",
            "location": "vantage/media",
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
            "max_memory_size": 1_048_576,
        },
    }
    assert built["staticfiles"] == settings.STORAGES["staticfiles"]
    storage = StorageHandler(built)["default"]
    assert isinstance(storage, S3Storage)
    assert (storage.bucket_name, storage.location, storage.file_overwrite) == (
        "fleet-images",
        "vantage/media",
        True,
    )


def test_a_bucket_alone_leaves_endpoint_region_and_credentials_to_the_aws_defaults():
    built = storages_from_environment(STORAGE_S3_BUCKET="fleet-images")

    options = built["default"]["OPTIONS"]
    assert (options["endpoint_url"], options["region_name"]) == (None, None)
    # No keys: boto3's default credential chain (environment, files, instance or pod role).
    assert (options["access_key"], options["secret_key"]) == (None, None)
    assert (options["addressing_style"], options["location"]) == ("auto", "")
    assert isinstance(StorageHandler(built)["default"], S3Storage)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        pytest.param(
            {"STORAGE_S3_ADDRESSING_STYLE": "dns"},
            "STORAGE_S3_ADDRESSING_STYLE",
            id="addressing-style",
        ),
        pytest.param(
            {"STORAGE_S3_ACCESS_KEY_ID": "AKIAEXAMPLE"},
            "STORAGE_S3_SECRET_ACCESS_KEY",
            id="access-key-alone",
        ),
        pytest.param(
            {"STORAGE_S3_SECRET_ACCESS_KEY": "example-secret"},
            "STORAGE_S3_ACCESS_KEY_ID",
            id="secret-key-alone",
        ),
    ],
)
def test_an_incomplete_or_invalid_bucket_configuration_stops_the_app(variables, message):
    finished = settings_run(STORAGE_S3_BUCKET="fleet-images", **variables)

    assert finished.returncode != 0
    assert "ImproperlyConfigured" in finished.stderr
    assert message in finished.stderr


# --- A real S3 server --------------------------------------------------------------------


@pytest.fixture
def media_files(media_root: Path) -> Callable[[], list[Path]]:
    """Return every file under MEDIA_ROOT right now."""
    return lambda: sorted(path for path in media_root.rglob("*") if path.is_file())


def names_of(org: Any, image_id: str) -> tuple[str, str]:
    """Return the storage names of an image's original (JPEG) and thumbnail."""
    folder = f"images/{org.id}/{image_id}"
    return f"{folder}/original.jpg", f"{folder}/thumbnail.jpg"


# --- Through the API ---------------------------------------------------------------------


def test_an_upload_is_stored_in_the_bucket_under_its_ids(
    member_client, org, bucket, s3_storage, media_files
):
    data = phone_jpeg()

    body = accepted(upload(member_client, data, "holiday.jpg"))

    original, _ = names_of(org, body["image_id"])
    assert Image.objects.get().original_path == original
    assert objects(bucket) == {original: data}
    assert media_files() == []


def test_the_job_rewrites_the_original_in_place_without_metadata_and_stores_a_thumbnail(
    member_client, org, bucket, s3_storage, media_files
):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg"))

    run_job(body["job_id"])

    assert member_client.get(body["status_url"]).json()["status"] == "succeeded"
    original, thumbnail = names_of(org, body["image_id"])
    image = Image.objects.get()
    assert (image.original_path, image.thumbnail_path) == (original, thumbnail)
    stored = objects(bucket)
    # Overwritten at its own name: no second object beside it under another name.
    assert set(stored) == {original, thumbnail}
    assert_no_metadata(stored[original])
    assert opened(stored[original]).size == (80, 160)  # turned upright
    assert_no_metadata(stored[thumbnail])
    assert opened(stored[thumbnail]).format == "JPEG"
    assert media_files() == []


def test_the_file_and_thumbnail_are_read_from_the_bucket_when_asked_for(
    member_client, org, bucket, s3_storage, media_files
):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg"))
    run_job(body["job_id"])
    original, thumbnail = names_of(org, body["image_id"])
    stored = objects(bucket)

    file = member_client.get(f"{IMAGES}/{body['image_id']}/file")
    small = member_client.get(f"{IMAGES}/{body['image_id']}/thumbnail")

    assert file.status_code == 200
    assert file["Content-Type"] == "image/jpeg"
    assert file["Content-Disposition"] == 'attachment; filename="holiday.jpg"'
    assert file["Cache-Control"] == "private, no-store"
    assert content(file) == stored[original]
    assert small.status_code == 200
    assert small["X-Content-Type-Options"] == "nosniff"
    assert content(small) == stored[thumbnail]
    # Whatever the bucket holds now is what goes out.
    replacement = jpeg_bytes((256, 128), colour="blue")
    bucket.put_object(Bucket=BUCKET, Key=thumbnail, Body=replacement)
    assert content(member_client.get(f"{IMAGES}/{body['image_id']}/thumbnail")) == replacement
    assert media_files() == []


def test_deleting_an_image_removes_its_objects_once_the_deletion_commits(
    member_client, org, bucket, s3_storage, media_files
):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg"))
    run_job(body["job_id"])
    original, thumbnail = names_of(org, body["image_id"])

    with transaction.atomic():
        response = member_client.delete(f"{IMAGES}/{body['image_id']}")
        assert response.status_code == 204
        assert set(objects(bucket)) == {original, thumbnail}  # not committed yet

    assert objects(bucket) == {}
    assert not Image.objects.exists()
    assert not Job.objects.exists()
    assert media_files() == []


def test_an_object_gone_from_the_bucket_fails_the_job_and_answers_404(
    member_client, org, bucket, s3_storage
):
    body = accepted(upload(member_client, jpeg_bytes(), "car.jpg"))
    original, _ = names_of(org, body["image_id"])
    bucket.delete_object(Bucket=BUCKET, Key=original)

    run_job(body["job_id"])

    job = member_client.get(body["status_url"]).json()
    assert (job["status"], job["error"]["code"]) == ("failed", "IMAGE_MISSING")
    assert_problem(
        member_client.get(f"{IMAGES}/{body['image_id']}/file"), status=404, code="NOT_FOUND"
    )


def test_an_upscaled_image_is_stored_in_the_bucket_beside_its_source(
    member_client, org, bucket, s3_storage, media_files
):
    body = accepted(
        upload(member_client, jpeg_bytes((120, 80)), "car.jpg", path=UPSCALE, scale="2")
    )

    run_job(body["job_id"])

    result_id = member_client.get(body["status_url"]).json()["result"]["image_id"]
    source, _ = names_of(org, body["image_id"])
    larger, _ = names_of(org, result_id)
    stored = objects(bucket)
    assert set(stored) == {source, larger}
    assert Image.objects.get(id=result_id).original_path == larger
    assert opened(stored[larger]).size == (240, 160)
    assert content(member_client.get(f"{IMAGES}/{result_id}/file")) == stored[larger]
    assert media_files() == []


@pytest.mark.parametrize("s3_storage", ["vantage/media"], indirect=True)
def test_a_key_prefix_holds_every_object_while_stored_names_stay_without_it(
    member_client, org, bucket, s3_storage, media_files
):
    body = accepted(upload(member_client, phone_jpeg(), "holiday.jpg"))
    run_job(body["job_id"])
    original, thumbnail = names_of(org, body["image_id"])

    image = Image.objects.get()
    assert (image.original_path, image.thumbnail_path) == (original, thumbnail)
    stored = objects(bucket)
    assert set(stored) == {f"{s3_storage}/{original}", f"{s3_storage}/{thumbnail}"}
    assert_no_metadata(stored[f"{s3_storage}/{original}"])
    served = content(member_client.get(f"{IMAGES}/{body['image_id']}/file"))
    assert served == stored[f"{s3_storage}/{original}"]

    assert member_client.delete(f"{IMAGES}/{body['image_id']}").status_code == 204
    assert objects(bucket) == {}
    assert media_files() == []


def test_an_unreachable_object_store_is_retried_by_jobs_and_refused_as_unavailable(
    member_client, org, bucket, s3_storage, settings
):
    body = accepted(upload(member_client, jpeg_bytes(), "car.jpg"))
    unreachable = copy.deepcopy(settings.STORAGES)
    unreachable["default"]["OPTIONS"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    settings.STORAGES = unreachable

    with pytest.raises(TransientJobError, match="storage could not be read"):
        job_run(body["job_id"])
    assert Job.objects.get(id=body["job_id"]).status == Job.Status.QUEUED  # to be tried again
    download = member_client.get(f"{IMAGES}/{body['image_id']}/file")
    deletion = member_client.delete(f"{IMAGES}/{body['image_id']}")

    assert_problem(download, status=503, code="SERVICE_UNAVAILABLE")
    assert int(download["Retry-After"]) > 0
    assert deletion.status_code == 204
    assert not Image.objects.filter(id=body["image_id"]).exists()
