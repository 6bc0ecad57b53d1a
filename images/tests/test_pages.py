"""The images pages of the dashboard, through a browser signed in at /login/: home, upload,
the gallery, one image and its deletion, and who is offered and allowed what."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image as PILImage

from accounts.services.organizations import organization_limits_set
from audit.models import AuditEvent
from classifier.labels import label_name
from classifier.models import Classification
from config.testing.http import browser, signed_in_browser
from images.models import Image, Job
from images.tasks import job_run_task
from images.tests.factories import ImageFactory
from images.upload_rules import REJECTION_MESSAGES

pytestmark = pytest.mark.django_db

UPLOAD_API = "/api/v1/images/upload"
UPLOAD = "/upload/"
GALLERY = "/images/"
TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    """Each test stores its files in a directory of its own."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def jpeg_bytes(size: tuple[int, int] = (320, 200), colour: str = "red") -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def html_of(response: Any) -> str:
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    return response.content.decode()


def form_token(html: str) -> str:
    """The CSRF token a page's form carries, which its script sends as X-CSRFToken."""
    match = TOKEN_FIELD.search(html)
    assert match, html
    return match.group(1)


def page_upload(client: Client, data: bytes, name: str = "car.jpg", **fields: str) -> Any:
    """Upload as the upload page's script does: session cookie, X-CSRFToken, Idempotency-Key."""
    token = form_token(client.get(UPLOAD).content.decode())
    headers = {
        "X-CSRFToken": token,
        "Idempotency-Key": uuid.uuid4().hex,
        "Accept": "application/json",
    }
    return client.post(
        UPLOAD_API, {"file": SimpleUploadedFile(name, data), **fields}, headers=headers
    )


def processed_image(client: Client, data: bytes | None = None, **fields: str) -> Image:
    """An image uploaded through the page's API call and processed by its job."""
    response = page_upload(client, data or jpeg_bytes(), **fields)
    assert response.status_code == 202, response.content
    outcome = job_run_task.apply(args=(response.json()["job_id"],))
    assert outcome.successful(), outcome.traceback
    return Image.objects.get(id=response.json()["image_id"])


def classification_of(org: Any, label: str, when: dt.datetime | None = None) -> Classification:
    return Classification.objects.create(
        organization=org,
        principal="user:0",
        principal_display="bob",
        upload_sha256="0" * 64,
        is_vehicle=label != "not_vehicle",
        top_label=label,
        predictions={},
        vehicle_probability=0.9,
        provider="onnx",
        model="test-model",
        processing_time_ms=1.0,
        **({"created_at": when} if when else {}),
    )


def job_of(image: Image, status: str = Job.Status.SUCCEEDED) -> Job:
    return Job.objects.create(
        organization_id=image.organization_id, image=image, kind=Job.Kind.CLASSIFY, status=status
    )


# --- Home ----------------------------------------------------------------------------


def test_home_signed_out_redirects_to_the_login_page(db):
    response = browser().get("/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"


def test_home_shows_counts_quota_categories_and_recent_jobs(org, member, other_org):
    ready = ImageFactory(organization=org, filename="truck-1.jpg", label="truck")
    failed = ImageFactory(organization=org, status=Image.Status.FAILED, label="")
    job_of(ready)
    job_of(failed, Job.Status.FAILED)
    for label in ("car", "car", "not_vehicle"):
        ImageFactory(organization=org, label=label)
    ImageFactory(organization=org, label="bus", created_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    ImageFactory(organization=other_org, label="boat")
    for label in ("truck", "truck", "bus"):
        classification_of(org, label)  # the Classify page's runs: no image is kept
    ImageFactory.create_batch(2, organization=other_org)
    organization_limits_set(organization=org, uploads_per_day=40)
    client = signed_in_browser("bob")
    assert page_upload(client, jpeg_bytes()).status_code == 202  # counted against the quota

    html = html_of(client.get("/"))

    assert "<strong>bob</strong>" in html
    assert "<code>acme</code>" in html
    for status, count in (("processing", 1), ("ready", 5), ("failed", 1)):
        assert f'badge {status}">{status}</span> <span class="count">{count}</span>' in html
    for status, count in (("queued", 1), ("running", 0), ("succeeded", 1), ("failed", 1)):
        assert f'badge {status}">{status}</span></span> <span class="count">{count}</span>' in html
    assert '<p class="stat">1 <span class="stat-of">of 40</span></p>' in html
    assert '<rect class="fill" width="2.50"' in html  # 1 of 40
    assert "39 left today" in html
    chart = html.split('id="categories-heading"')[1].split("</section>")[0]
    links = re.findall(r'chart-label"><a href="([^"]+)">([^<]+)</a>', chart)
    # Kept images, most first: neither 2020's bus, Globex's boat nor the Classify page's runs.
    assert [label for _, label in links] == ["car", "truck"]
    assert re.findall(r'chart-value">([^<]+)</span>', chart) == ["2", "1"]
    since = (timezone.now().date() - dt.timedelta(days=6)).isoformat()
    assert links[0][0] == f"/images/?label=car&amp;uploaded_after={since}"
    assert "Images without a vehicle: <a href=" in chart
    # The gallery, opened from the bar, lists exactly the images the bar counts.
    gallery = html_of(client.get(f"/images/?label=car&uploaded_after={since}"))
    assert "2 images match these filters." in gallery
    assert f'href="/images/{ready.id}/">truck-1.jpg</a>' in html
    assert 'href="/upload/"' in html
    assert 'href="/classify/"' in html


def test_home_of_an_organization_without_images_says_so(org, member):
    html = html_of(signed_in_browser("bob").get("/"))

    assert "No vehicle among the images uploaded in the last 7 days." in html
    assert "No jobs yet." in html
    assert '<p class="stat">0 <span class="stat-of">of 10,000</span></p>' in html


def test_home_offers_a_viewer_no_upload(org, viewer):
    ImageFactory(organization=org)

    html = html_of(signed_in_browser("carol").get("/"))

    assert "Uploads today" in html
    assert 'href="/upload/"' not in html
    assert 'href="/classify/"' not in html
    assert 'href="/images/"' in html


def test_home_tells_a_guest_without_image_read_what_they_can_do(org, guest):
    ImageFactory(organization=org, filename="secret.jpg")
    job_of(ImageFactory(organization=org, filename="hidden.jpg"))

    response = signed_in_browser("dave").get("/")

    assert response.status_code == 200
    html = html_of(response)
    assert "does not include seeing the organization" in html
    assert "image:read" in html
    assert 'href="/sessions/"' in html
    assert "secret.jpg" not in html
    assert "hidden.jpg" not in html
    assert 'href="/images/"' not in html
    assert 'href="/upload/"' not in html


def test_home_answers_in_few_queries_however_many_jobs(org, member, django_assert_max_num_queries):
    client = signed_in_browser("bob")
    job_of(ImageFactory(organization=org))
    client.get("/")  # the principal and its permissions are cached from here on
    with django_assert_max_num_queries(10) as one_job:
        client.get("/")
    for image in ImageFactory.create_batch(20, organization=org):
        job_of(image)
        classification_of(org, "car")

    with django_assert_max_num_queries(10) as many_jobs:
        response = client.get("/")

    assert response.status_code == 200
    assert response.content.decode().count('<td data-label="Image"><a href="/images/') == 8
    assert len(many_jobs.captured_queries) == len(one_job.captured_queries)


# --- Upload page ---------------------------------------------------------------------


def test_the_upload_page_offers_a_drop_zone_a_labelled_file_input_and_its_script(org, member):
    response = signed_in_browser("bob").get(UPLOAD)

    assert response.status_code == 200
    html = html_of(response)
    assert 'id="drop-zone"' in html
    assert '<label for="upload-files"' in html
    assert re.search(r'<input type="file" id="upload-files" name="file" multiple', html)
    assert '<label for="upload-bucket">Bucket</label>' in html
    assert 'data-upload-url="/api/v1/images/upload"' in html
    assert 'data-max-bytes="25000000"' in html
    assert 'id="upload-list"' in html
    assert form_token(html)
    assert '<script type="module" src="/static/js/upload.js"></script>' in html
    assert "<script>" not in html  # the Content-Security-Policy allows no inline script
    messages = re.search(
        r'<script id="rejection-messages" type="application/json">(.*?)</script>', html
    ).group(1)
    assert json.loads(messages) == REJECTION_MESSAGES
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_the_upload_page_states_the_organizations_limits(org, member):
    organization_limits_set(organization=org, max_file_size_bytes=2_000_000, uploads_per_day=7)

    html = html_of(signed_in_browser("bob").get(UPLOAD))

    assert 'data-max-bytes="2000000"' in html
    assert "up to 2 MB each" in html
    assert (
        'uploaded <span data-quota="used">0</span> of <span data-quota="limit">7</span> images '
        '(<span data-quota="remaining">7</span> left)'
    ) in html
    assert "JPEG, PNG, WebP, GIF or BMP" in html


def test_the_upload_script_exists_and_drives_the_rows_the_tests_read():
    script = Path(__file__).resolve().parents[2] / "static" / "js" / "upload.js"

    source = script.read_text()

    for needle in (
        'getElementById("upload-files")',
        'upload.addEventListener("progress"',
        '"X-CSRFToken"',
        '"Idempotency-Key"',
        "Retry-After",
        "dataset.state",
        '"labels"',
    ):
        assert needle in source, needle
    for state in ("uploading", "processing", "succeeded", "failed", "rejected"):
        assert f"{state}:" in source, state


def test_a_viewer_is_refused_the_upload_page(org, viewer):
    response = signed_in_browser("carol").get(UPLOAD)

    assert response.status_code == 403
    html = html_of(response)
    assert "image:upload" in html
    assert "upload.js" not in html


def test_the_upload_page_signed_out_redirects_to_the_login_page(db):
    response = browser().get(UPLOAD)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fupload%2F"


def test_the_upload_api_takes_the_pages_session_and_csrf_token_then_reports_the_job(org, member):
    client = signed_in_browser("bob")

    response = page_upload(client, jpeg_bytes(), "car.jpg", bucket="fleet")

    assert response.status_code == 202, response.content
    body = response.json()
    image = Image.objects.get(id=body["image_id"])
    assert (image.bucket, image.uploaded_by_display) == ("fleet", "bob")
    queued = client.get(body["status_url"], headers={"Accept": "application/json"})
    assert queued.status_code == 200
    assert queued.json()["status"] == "queued"
    assert queued["Retry-After"] == "1"
    job_run_task.apply(args=(body["job_id"],))
    done = client.get(body["status_url"], headers={"Accept": "application/json"})
    assert done.status_code == 200
    assert "Retry-After" not in done
    classification = done.json()["result"]["classification"]
    assert classification["top_label"] == classification["predictions"][0]["label"]


def test_the_upload_api_refuses_the_session_without_the_csrf_token(org, member):
    client = signed_in_browser("bob")

    response = client.post(UPLOAD_API, {"file": SimpleUploadedFile("car.jpg", jpeg_bytes())})

    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED"
    assert "CSRF" in response.json()["detail"]
    assert not Image.objects.exists()


def test_the_upload_api_refuses_a_viewers_session(org, viewer):
    client = signed_in_browser("carol")
    token = client.cookies["csrftoken"].value

    response = client.post(
        UPLOAD_API,
        {"file": SimpleUploadedFile("car.jpg", jpeg_bytes())},
        headers={"X-CSRFToken": token},
    )

    assert response.status_code == 403
    assert response.json()["code"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (b"plain text, not a picture", "notes.jpg", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (jpeg_bytes((16, 16)), "tiny.jpg", 400, "IMAGE_DIMENSIONS_OUT_OF_RANGE"),
        (jpeg_bytes()[:200], "cut.jpg", 400, "INVALID_IMAGE"),
    ],
    ids=["not-an-image", "too-small", "truncated"],
)
def test_a_refused_upload_answers_the_code_and_detail_the_page_shows(
    org, member, *, data, name, status, code
):
    response = page_upload(signed_in_browser("bob"), data, name)

    assert response.status_code == status
    body = response.json()
    assert body["code"] == code
    assert body["detail"]
    assert code in REJECTION_MESSAGES


def test_an_upload_over_the_quota_answers_when_the_quota_resets(org, member):
    organization_limits_set(organization=org, uploads_per_day=1)
    client = signed_in_browser("bob")
    assert page_upload(client, jpeg_bytes(colour="red")).status_code == 202

    response = page_upload(client, jpeg_bytes(colour="blue"))

    assert response.status_code == 429
    assert response.json()["code"] == "QUOTA_EXCEEDED"
    assert int(response["Retry-After"]) > 0
    assert "resets at" in response.json()["detail"]


def test_an_upload_over_the_rate_limit_answers_retry_after(org, member, settings):
    settings.RATE_LIMIT_ENABLED = True
    organization_limits_set(organization=org, requests_per_minute=1)
    client = signed_in_browser("bob")
    token = form_token(client.get(UPLOAD).content.decode())
    headers = {"X-CSRFToken": token}
    client.post(UPLOAD_API, {"file": SimpleUploadedFile("a.jpg", jpeg_bytes())}, headers=headers)

    response = client.post(
        UPLOAD_API, {"file": SimpleUploadedFile("b.jpg", jpeg_bytes())}, headers=headers
    )

    assert response.status_code == 429
    assert response.json()["code"] == "RATE_LIMIT_EXCEEDED"
    assert int(response["Retry-After"]) > 0


# --- Gallery -------------------------------------------------------------------------


def test_the_gallery_shows_the_organizations_images_newest_first_with_thumbnails(
    org, member, other_org
):
    client = signed_in_browser("bob")
    processed = processed_image(client)
    waiting = ImageFactory(
        organization=org, filename="waiting.jpg", status=Image.Status.PROCESSING, label=""
    )
    ImageFactory(organization=other_org, filename="globex.jpg")

    response = client.get(GALLERY)

    assert response.status_code == 200
    html = html_of(response)
    assert "2 images." in html
    assert html.index("waiting.jpg") < html.index(processed.filename)
    assert f'<img src="/api/v1/images/{processed.id}/thumbnail" alt=""' in html
    assert f'href="/images/{waiting.id}/"' in html
    assert "Processing…" in html
    assert "globex.jpg" not in html
    assert 'href="/upload/"' in html
    thumbnail = client.get(f"/api/v1/images/{processed.id}/thumbnail")
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"


def test_the_gallery_filters_as_the_api_does(org, member):
    ImageFactory(organization=org, filename="car-fleet.jpg", label="car", bucket="fleet")
    ImageFactory(organization=org, filename="car-default.jpg", label="car")
    ImageFactory(organization=org, filename="bus-fleet.jpg", label="bus", bucket="fleet")
    ImageFactory(
        organization=org,
        filename="old-car.jpg",
        label="car",
        bucket="fleet",
        created_at=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC),
    )
    ImageFactory(organization=org, filename="failed.jpg", label="", status=Image.Status.FAILED)
    client = signed_in_browser("bob")

    def shown(query: str) -> list[str]:
        response = client.get(GALLERY + query)
        assert response.status_code == 200, response.content
        return sorted(re.findall(r'card-name">([^<]+)<', response.content.decode()))

    assert shown("?label=car&bucket=fleet") == ["car-fleet.jpg", "old-car.jpg"]
    assert shown("?status=failed") == ["failed.jpg"]
    assert shown("?label=car&uploaded_after=2024-04-30&uploaded_before=2024-05-02") == [
        "old-car.jpg"
    ]
    assert shown("?uploaded_after=2025-01-01&bucket=fleet") == ["bus-fleet.jpg", "car-fleet.jpg"]
    html = client.get(GALLERY + "?label=car&bucket=fleet").content.decode()
    assert '<option value="car" selected>' in html
    assert 'name="bucket" value="fleet"' in html
    assert "match these filters" in html
    assert 'href="/images/">Clear</a>' in html


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?label=Car!", "label"),
        ("?bucket=Not%20A%20Bucket", "bucket"),
        ("?status=lost", "status"),
        ("?uploaded_after=yesterday", "uploaded_after"),
        ("?uploaded_before=2024-13-45", "uploaded_before"),
    ],
)
def test_bad_filters_are_shown_as_errors_with_no_list(org, member, query, field):
    ImageFactory(organization=org, filename="listed.jpg")

    response = signed_in_browser("bob").get(GALLERY + query)

    assert response.status_code == 400
    html = html_of(response)
    assert 'role="alert"' in html
    assert f'href="#filter-{field}"' in html
    assert f'aria-invalid="true" aria-describedby="error-{field}"' in html
    assert f'<p class="field-error" id="error-{field}">' in html
    assert "cannot be used." in html
    assert "listed.jpg" not in html


def test_the_gallery_is_paginated_and_pages_keep_the_filters(
    org, member, django_assert_max_num_queries
):
    base = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    for number in range(30):
        ImageFactory(
            organization=org,
            filename=f"photo-{number:02}.jpg",
            label="car",
            created_at=base + dt.timedelta(minutes=number),
        )
    ImageFactory(organization=org, filename="bus.jpg", label="bus")
    client = signed_in_browser("bob")
    client.get(GALLERY)  # the principal and its permissions are cached from here on
    with django_assert_max_num_queries(8) as one_image:
        client.get(GALLERY + "?label=bus")

    with django_assert_max_num_queries(8) as full_page:
        first = client.get(GALLERY + "?label=car")
    second = client.get(GALLERY + "?label=car&page=2")

    first_html, second_html = first.content.decode(), second.content.decode()
    assert first_html.count('class="card"') == 24
    assert "30 images match these filters." in first_html
    assert "Page 1 of 2" in first_html
    assert 'href="?label=car&amp;page=2" rel="next"' in first_html
    assert "photo-29.jpg" in first_html
    assert "photo-05.jpg" not in first_html
    assert second_html.count('class="card"') == 6
    assert "photo-05.jpg" in second_html
    assert 'href="?label=car&amp;page=1" rel="prev"' in second_html
    assert "bus.jpg" not in first_html + second_html
    assert len(full_page.captured_queries) == len(one_image.captured_queries)


def test_a_viewer_sees_the_gallery_without_an_upload_link(org, viewer):
    ImageFactory(organization=org, filename="shared.jpg")

    html = html_of(signed_in_browser("carol").get(GALLERY))

    assert "shared.jpg" in html
    assert 'href="/upload/"' not in html


def test_a_guest_is_refused_the_gallery(org, guest):
    assert signed_in_browser("dave").get(GALLERY).status_code == 403


def test_the_gallery_signed_out_redirects_to_the_login_page(db):
    response = browser().get(GALLERY + "?label=car")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fimages%2F%3Flabel%3Dcar"


# --- One image -----------------------------------------------------------------------


def test_an_image_page_shows_the_picture_predictions_metadata_and_jobs(org, member):
    client = signed_in_browser("bob")
    with time_machine.travel(dt.datetime(2025, 6, 1, 8, 30, tzinfo=dt.UTC), tick=False):
        image = processed_image(client, jpeg_bytes((320, 200)), bucket="fleet")

    response = client.get(f"/images/{image.id}/")

    assert response.status_code == 200
    html = html_of(response)
    assert f'<img src="/api/v1/images/{image.id}/file"' in html
    assert f'href="/api/v1/images/{image.id}/file" download="car.jpg"' in html
    # The vehicle categories' bars; "not a vehicle" is the verdict's rule, never a bar.
    predictions = [p for p in image.classification["predictions"] if p["label"] != "not_vehicle"]
    labels = re.findall(r'chart-label">([^<]+)</span>', html)
    assert labels == [label_name(prediction["label"]) for prediction in predictions]
    probability = image.classification["vehicle_probability"] * 100
    assert (
        f'Vehicle probability <strong class="vehicle-probability">{probability:.1f}%</strong>, '
        "counted as a vehicle at 30% or more."
    ) in html
    top = predictions[0]["confidence"] * 100
    assert f'<rect class="fill" width="{top:.2f}"' in html
    assert f"{top:.1f}%" in html
    assert image.sha256 in html
    assert f"({image.size_bytes:,} bytes)" in html
    assert "320 &times; 200 px" in html
    assert "<code>image/jpeg</code>" in html
    assert "<dt>Uploaded by</dt><dd>bob</dd>" in html
    assert "2025-06-01 08:30:00 UTC" in html
    assert 'href="/images/?bucket=fleet">fleet</a>' in html
    assert '<span class="badge succeeded">succeeded</span>' in html
    assert f'href="/images/{image.id}/delete/"' in html


def test_an_image_still_processing_says_so(org, member):
    image = ImageFactory(organization=org, status=Image.Status.PROCESSING, label="")
    job_of(image, Job.Status.QUEUED)

    html = html_of(signed_in_browser("bob").get(f"/images/{image.id}/"))

    assert "being processed" in html
    assert '<span class="badge queued">queued</span>' in html


def test_a_viewer_sees_an_image_but_is_not_offered_its_deletion(org, viewer):
    image = ImageFactory(organization=org)

    html = html_of(signed_in_browser("carol").get(f"/images/{image.id}/"))

    assert image.filename in html
    assert "/delete/" not in html
    assert "Delete" not in html


def test_another_organizations_image_is_not_found(org, outsider):
    image = ImageFactory(organization=org, filename="acme-only.jpg")
    client = signed_in_browser("mallory")

    for response in (client.get(f"/images/{image.id}/"), client.get(f"/images/{image.id}/delete/")):
        assert response.status_code == 404
        assert "acme-only.jpg" not in html_of(response)


def test_an_unknown_image_is_not_found(org, member):
    assert signed_in_browser("bob").get(f"/images/{uuid.uuid4()}/").status_code == 404


def test_an_image_page_signed_out_redirects_to_the_login_page(org):
    image = ImageFactory(organization=org)

    response = browser().get(f"/images/{image.id}/")

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next=%2Fimages%2F{image.id}%2F"


# --- Deleting an image ---------------------------------------------------------------


def test_deleting_asks_first_then_removes_the_image_and_its_files(
    org, member, django_capture_on_commit_callbacks
):
    client = signed_in_browser("bob")
    image = processed_image(client)
    paths = [image.original_path, image.thumbnail_path]
    assert all(default_storage.exists(name) for name in paths)

    confirm = client.get(f"/images/{image.id}/delete/")

    assert confirm.status_code == 200
    html = html_of(confirm)
    assert f'<form method="post" action="/images/{image.id}/delete/"' in html
    assert "cannot be undone" in html
    assert Image.objects.filter(id=image.id).exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/images/{image.id}/delete/", {"csrfmiddlewaretoken": form_token(html)}
        )

    assert response.status_code == 302
    assert response["Location"] == GALLERY
    assert not Image.objects.filter(id=image.id).exists()
    assert not any(default_storage.exists(name) for name in paths)
    event = AuditEvent.objects.get(action="image.deleted")
    assert (event.resource_id, event.actor_id) == (str(image.id), str(member.id))
    gallery = client.get(GALLERY).content.decode()
    assert "Deleted car.jpg." in gallery


def test_deleting_without_the_csrf_token_is_refused(org, member):
    image = ImageFactory(organization=org)

    response = signed_in_browser("bob").post(f"/images/{image.id}/delete/")

    assert response.status_code == 403
    assert Image.objects.filter(id=image.id).exists()


def test_a_viewer_may_not_delete(org, viewer):
    image = ImageFactory(organization=org)
    client = signed_in_browser("carol")
    token = client.cookies["csrftoken"].value

    confirm = client.get(f"/images/{image.id}/delete/")
    response = client.post(f"/images/{image.id}/delete/", {"csrfmiddlewaretoken": token})

    assert confirm.status_code == 403
    assert response.status_code == 403
    assert "image:delete" in html_of(response)
    assert Image.objects.filter(id=image.id).exists()


def test_an_outsider_may_not_delete_another_organizations_image(org, outsider):
    image = ImageFactory(organization=org)
    client = signed_in_browser("mallory")
    token = client.cookies["csrftoken"].value

    response = client.post(f"/images/{image.id}/delete/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 404
    assert Image.objects.filter(id=image.id).exists()
    assert not AuditEvent.objects.filter(action="image.deleted").exists()


def test_deleting_signed_out_redirects_to_the_login_page_and_deletes_nothing(org):
    image = ImageFactory(organization=org)
    client = browser()

    confirm = client.get(f"/images/{image.id}/delete/")
    response = client.post(f"/images/{image.id}/delete/")

    assert confirm.status_code == 302
    assert confirm["Location"] == f"/login/?next=%2Fimages%2F{image.id}%2Fdelete%2F"
    assert response.status_code == 403  # no CSRF token: refused before the page
    assert Image.objects.filter(id=image.id).exists()


def test_gallery_cards_and_recent_jobs_name_each_label_as_every_page_does(org, member):
    for label, probability in (("other_vehicle", 0.314), ("not_vehicle", 0.05)):
        image = ImageFactory(
            organization=org, label=label, classification={"vehicle_probability": probability}
        )
        job_of(image)
    client = signed_in_browser("bob")

    gallery = html_of(client.get(GALLERY))
    home = html_of(client.get("/"))

    assert 'data-label="other_vehicle">other vehicle</span>' in gallery
    assert 'data-label="not_vehicle">not a vehicle</span>' in gallery
    assert "vehicle probability 31.4%" in gallery
    assert "an image is counted as a vehicle at 30% or more." in gallery
    assert '<td data-label="Label">other vehicle</td>' in home
    assert '<td data-label="Label">not a vehicle</td>' in home
    for html in (gallery, home):
        assert ">other_vehicle<" not in html
        assert ">not_vehicle<" not in html
