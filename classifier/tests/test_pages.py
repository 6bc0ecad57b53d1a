"""The classifier pages of the dashboard, through a browser signed in at /login/: classify
one image now, and the providers' health; who is offered and allowed what."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from accounts.services.organizations import organization_limits_set
from classifier.health import provider_health
from classifier.labels import label_name
from classifier.models import Classification
from config.testing.http import browser, signed_in_browser

pytestmark = pytest.mark.django_db

CLASSIFY = "/classify/"
PROVIDERS = "/providers/"
JEEP = "imagenet_06_609.jpg"
TOKEN_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def jeep(onnx_ready: Path, foolbox_photos: list[Path]) -> bytes:
    return next(photo for photo in foolbox_photos if photo.name == JEEP).read_bytes()


def png(size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def html_of(response: Any) -> str:
    assert response["Content-Type"].startswith("text/html"), response["Content-Type"]
    return response.content.decode()


def submit(client: Client, data: bytes | None, name: str = "photo.jpg", **extra: Any) -> Any:
    """Load the classify form, then post a file with the form's CSRF token, as a browser does."""
    form = client.get(CLASSIFY).content.decode()
    match = TOKEN_FIELD.search(form)
    assert match, form
    body: dict[str, Any] = {"csrfmiddlewaretoken": match.group(1), **extra}
    if data is not None:
        body["file"] = SimpleUploadedFile(name, data)
    return client.post(CLASSIFY, body)


# --- Classify ------------------------------------------------------------------------


def test_the_classify_page_offers_a_labelled_multipart_form(org, member):
    response = signed_in_browser("bob").get(CLASSIFY)

    assert response.status_code == 200
    html = html_of(response)
    assert 'enctype="multipart/form-data"' in html
    assert '<form method="post" action="/classify/"' in html
    assert '<label for="classify-file">Image</label>' in html
    assert re.search(r'<input type="file" id="classify-file" name="file"', html)
    assert TOKEN_FIELD.search(html)
    assert "JPEG, PNG, WebP, GIF or BMP images up to 25 MB" in html
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]


def test_a_photo_of_a_jeep_is_classified_as_a_car_with_its_predictions(org, member, jeep):
    response = submit(signed_in_browser("bob"), jeep, "jeep.jpg")

    assert response.status_code == 200
    html = html_of(response)
    classification = Classification.objects.get()
    assert (classification.organization_id, classification.top_label) == (org.id, "car")
    assert "Result for jeep.jpg" in html
    assert "A vehicle: <strong>car</strong>" in html
    categories = [
        entry
        for entry in classification.predictions["categories"]
        if entry["label"] != "not_vehicle"
    ]
    labels = re.findall(r'chart-label">([^<]+)</span>', html)
    assert labels == [label_name(entry["label"]) for entry in categories]
    probability = classification.vehicle_probability * 100
    assert (
        f'Vehicle probability <strong class="vehicle-probability">{probability:.1f}%</strong>, '
        "counted as a vehicle at 30% or more."
    ) in html
    top = categories[0]["confidence"] * 100
    assert f'<rect class="fill" width="{top:.2f}"' in html
    assert f"{top:.1f}%" in html
    assert f"<dt>Provider</dt><dd>{classification.provider}</dd>" in html
    assert f"<dt>Model</dt><dd>{classification.model}</dd>" in html
    assert f"{classification.processing_time_ms:.1f} ms" in html
    assert str(classification.id) in html
    assert "jeep" in html  # the ImageNet classes behind the category
    assert 'role="alert"' not in html


@pytest.mark.parametrize(
    ("data", "name", "status", "code", "message"),
    [
        (None, "", 400, "VALIDATION_ERROR", "No file was submitted."),
        (b"", "empty.png", 400, "VALIDATION_ERROR", "The submitted file is empty."),
        (b"just some text", "notes.png", 415, "UNSUPPORTED_MEDIA_TYPE", "Unsupported format."),
        (
            png((16, 16)),
            "tiny.png",
            400,
            "IMAGE_DIMENSIONS_OUT_OF_RANGE",
            "Dimensions out of range.",
        ),
        (png()[:60], "cut.png", 400, "INVALID_IMAGE", "Unreadable image."),
        (png(), "photo.jpg", 415, "UNSUPPORTED_MEDIA_TYPE", "ends in .jpg"),
    ],
    ids=["no-file", "empty", "not-an-image", "too-small", "truncated", "wrong-extension"],
)
def test_a_refused_file_is_explained_with_its_code(
    org, member, *, data, name, status, code, message
):
    response = submit(signed_in_browser("bob"), data, name)

    assert response.status_code == status
    html = html_of(response)
    assert f'<div class="alert problem" role="alert" data-code="{code}">' in html
    assert f"<code>{code}</code>" in html
    assert message in html
    assert 'aria-invalid="true"' in html
    assert not Classification.objects.exists()


def test_a_file_over_the_organizations_limit_is_refused_before_it_is_classified(org, member):
    organization_limits_set(organization=org, max_file_size_bytes=2_000)
    client = signed_in_browser("bob")

    response = submit(client, png((400, 400)) + bytes(70_000), "big.png")

    assert response.status_code == 413
    html = html_of(response)
    assert 'data-code="FILE_TOO_LARGE"' in html
    assert "File too large." in html
    assert "2 KB" in html
    assert not Classification.objects.exists()


def test_a_file_just_over_the_limit_is_refused_while_it_is_read(org, member):
    organization_limits_set(organization=org, max_file_size_bytes=2_000)

    response = submit(signed_in_browser("bob"), bytes(2_500), "big.png")

    assert response.status_code == 413
    assert 'data-code="FILE_TOO_LARGE"' in html_of(response)


def test_classifying_is_counted_against_the_rate_limit(org, member, settings):
    settings.RATE_LIMIT_ENABLED = True
    organization_limits_set(organization=org, requests_per_minute=1)
    client = signed_in_browser("bob")
    submit(client, b"not an image", "a.png")

    response = submit(client, b"not an image", "b.png")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    html = html_of(response)
    assert 'data-code="RATE_LIMIT_EXCEEDED"' in html
    assert "Too many requests." in html


def test_classifying_without_the_csrf_token_is_refused(org, member, jeep):
    client = signed_in_browser("bob")

    response = client.post(CLASSIFY, {"file": SimpleUploadedFile("jeep.jpg", jeep)})

    assert response.status_code == 403
    assert "CSRF" in html_of(response)
    assert not Classification.objects.exists()


def test_a_viewer_is_refused_the_classify_page(org, viewer):
    client = signed_in_browser("carol")
    token = client.cookies["csrftoken"].value

    page = client.get(CLASSIFY)
    posted = client.post(
        CLASSIFY, {"csrfmiddlewaretoken": token, "file": SimpleUploadedFile("a.png", png())}
    )

    assert page.status_code == 403
    assert posted.status_code == 403
    assert "image:upload" in html_of(posted)
    assert not Classification.objects.exists()


def test_the_classify_page_signed_out_redirects_to_the_login_page(db):
    response = browser().get(CLASSIFY)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fclassify%2F"


# --- Providers -----------------------------------------------------------------------


def test_an_admin_sees_each_providers_health_in_failover_order(org, admin, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    settings.CLASSIFIER_REMOTE_URL = "http://127.0.0.1:9"
    remote = provider_health("remote")
    for _ in range(5):
        remote.record_failure(120.0, "connection refused by the remote classifier")
    provider_health("onnx").record_success(8.0)

    response = signed_in_browser("alice").get(PROVIDERS)

    assert response.status_code == 200
    html = html_of(response)
    chain = html.split('class="chain"')[1].split("</ol>")[0]
    assert re.findall(r"<code>(\w+)</code>", chain) == ["remote", "onnx"]
    remote_row = html.split('data-provider="remote"')[1].split("</tr>")[0]
    assert '<span class="badge unhealthy">unhealthy</span>' in remote_row
    assert '<span class="badge bad">ejected</span>' in remote_row
    assert "connection refused by the remote classifier" in remote_row
    assert "120.0 ms" in remote_row
    assert "0 successes, 5 failures" in remote_row
    assert remote.status().ejected_until.strftime("%Y-%m-%d %H:%M:%S") in remote_row
    onnx_row = html.split('data-provider="onnx"')[1].split("</tr>")[0]
    assert '<span class="badge healthy">healthy</span>' in onnx_row
    assert "8.0 ms" in onnx_row
    assert "ejected" not in onnx_row


# Another process classifying, as the worker does: its calls count in the same record.
OTHER_PROCESS = """
import django
django.setup()
from classifier.chain import classify_with_failover, probe_image
for _ in range(5):
    classify_with_failover([probe_image()])
"""


def test_the_providers_page_counts_the_calls_of_every_process(org, admin, jeep):
    assert submit(signed_in_browser("alice"), jeep, "jeep.jpg").status_code == 200  # this one
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS],
        env=environment,
        check=True,
        cwd=settings.BASE_DIR,
        timeout=120,
    )

    html = html_of(signed_in_browser("alice").get(PROVIDERS))

    onnx_row = html.split('data-provider="onnx"')[1].split("</tr>")[0]
    assert re.findall(r'<td data-label="(?:Requests|Failures)">(\d+)</td>', onnx_row) == ["6", "0"]


def test_the_providers_page_answers_in_few_queries(org, admin, django_assert_max_num_queries):
    client = signed_in_browser("alice")
    client.get(PROVIDERS)

    with django_assert_max_num_queries(5):
        assert client.get(PROVIDERS).status_code == 200


def test_a_member_is_refused_the_providers_page(org, member):
    response = signed_in_browser("bob").get(PROVIDERS)

    assert response.status_code == 403
    assert "metrics:read" in html_of(response)


def test_the_providers_page_is_not_offered_to_a_member(org, member):
    html = html_of(signed_in_browser("bob").get(CLASSIFY))

    assert 'href="/providers/"' not in html
    assert 'href="/classify/"' in html


def test_the_providers_page_signed_out_redirects_to_the_login_page(db):
    response = browser().get(PROVIDERS)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=%2Fproviders%2F"
