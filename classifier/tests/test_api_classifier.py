"""The classifier API, through HTTP: classify now, batches, vehicle reports, models, providers."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from accounts.ratelimits.tiers import tier_limits
from accounts.tests.factories import create_token
from classifier.categories import VEHICLE_CATEGORIES
from classifier.models import Classification, VehicleReport
from classifier.providers.remote import classification_from_answer
from classifier.tests.factories import (
    CHAIR,
    CLASSIFY,
    JEEP,
    REPORT,
    classify,
    classify_batch,
    png,
    report,
)
from config.testing.http import assert_problem
from images.models import Image as StoredImage
from images.tasks import job_run_task

METADATA = "/api/v1/models/metadata"
PROVIDERS = "/api/v1/classifier/providers"


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def photos(onnx_ready: Path, foolbox_photos: list[Path]) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in foolbox_photos}


# --- Classify one image now ----------------------------------------------------------


def test_a_photo_of_a_jeep_is_classified_as_a_car_and_the_classification_is_kept(
    member_client, member, org, photos
):
    response = classify(member_client, photos[JEEP], "jeep.jpg")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["is_vehicle"] is True
    assert body["top_label"] == "car"
    assert body["predictions"][0]["label"] == "car"
    assert body["predictions"][0]["confidence"] >= 0.5
    assert sum(entry["confidence"] for entry in body["predictions"]) <= 1.0 + 1e-6
    assert body["imagenet"][0]["index"] in VEHICLE_CATEGORIES["car"]
    assert body["provider"] == "onnx"
    assert body["model"].startswith("efficientnet-lite0")
    assert body["processing_time_ms"] > 0
    assert body["image_id"] is None
    stored = Classification.objects.get(id=body["classification_id"])
    assert stored.organization_id == org.id
    assert stored.principal == f"user:{member.id}"
    assert stored.upload_sha256 == hashlib.sha256(photos[JEEP]).hexdigest()
    assert stored.top_label == "car"
    # The image itself is not kept.
    assert StoredImage.objects.count() == 0


def test_a_photo_of_something_else_is_not_a_vehicle(member_client, photos):
    body = classify(member_client, photos[CHAIR], "chair.jpg").json()

    assert body["is_vehicle"] is False
    assert body["top_label"] == "not_vehicle"


def test_a_service_token_with_image_upload_classifies(admin_client, photos):
    token = create_token(admin_client, scopes=["image:upload"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token['token']}")

    response = classify(client, photos[JEEP])

    assert response.status_code == 200, response.content
    assert Classification.objects.get().principal == f"service_token:{token['id']}"


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"/>',
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ("photo.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, 400, "INVALID_IMAGE"),
        ("tiny.png", png((8, 8)), 400, "IMAGE_DIMENSIONS_OUT_OF_RANGE"),
        ("photo.jpg", png(), 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
    ids=["svg", "truncated", "too-small", "wrong-extension"],
)
@pytest.mark.usefixtures("onnx_ready")
def test_a_bad_file_is_refused_and_nothing_is_kept(member_client, name, data, status, code):
    response = classify(member_client, data, name)

    assert_problem(response, status=status, code=code)
    assert Classification.objects.count() == 0


def test_a_request_without_a_file_is_refused(member_client):
    response = member_client.post(CLASSIFY, {}, format="multipart")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["file"]


def test_a_file_over_the_organizations_limit_is_refused(member_client, org, photos):
    from accounts.services.organizations import organization_limits_set

    organization_limits_set(organization=org, max_file_size_bytes=1_000)

    response = classify(member_client, photos[JEEP])

    assert_problem(response, status=413, code="FILE_TOO_LARGE")
    assert Classification.objects.count() == 0


@pytest.mark.parametrize("client", ["viewer_client", "guest_client"])
def test_roles_without_image_upload_may_not_classify(request, client, photos):
    response = classify(request.getfixturevalue(client), photos[JEEP])

    assert_problem(response, status=403, code="PERMISSION_DENIED")
    assert Classification.objects.count() == 0


def test_an_anonymous_caller_may_not_classify(api_client, photos):
    assert_problem(classify(api_client, photos[JEEP]), status=401, code="NOT_AUTHENTICATED")


def test_a_failing_remote_provider_fails_over_to_the_model(member_client, photos, remote, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]

    body = classify(member_client, photos[JEEP]).json()

    assert remote.calls == 1
    assert body["provider"] == "onnx"
    assert body["top_label"] == "car"


def test_with_no_provider_able_to_classify_the_answer_is_503_and_nothing_is_kept(
    member_client, photos, remote, settings
):
    settings.CLASSIFIER_PROVIDERS = ["remote"]

    response = classify(member_client, photos[JEEP])

    assert_problem(response, status=503, code="SERVICE_UNAVAILABLE")
    assert int(response["Retry-After"]) > 0
    assert Classification.objects.count() == 0


# --- Batches -------------------------------------------------------------------------


def test_a_batch_classifies_each_file_and_a_bad_file_fails_alone(member_client, photos):
    files = [
        ("jeep.jpg", photos[JEEP]),
        ("notes.txt", b"not an image"),
        ("chair.jpg", photos[CHAIR]),
        ("jeep2.jpg", photos["imagenet_07_609.jpg"]),
    ]

    response = classify_batch(member_client, files)

    assert response.status_code == 200, response.content
    body = response.json()
    assert [result["index"] for result in body["results"]] == [0, 1, 2, 3]
    assert [result["filename"] for result in body["results"]] == [name for name, _ in files]
    assert (body["succeeded"], body["failed"]) == (3, 1)
    assert body["total_time_ms"] > 0
    jeep, bad, chair, jeep2 = body["results"]
    assert (jeep["top_label"], chair["top_label"], jeep2["top_label"]) == (
        "car",
        "not_vehicle",
        "car",
    )
    assert jeep["error"] is None
    assert bad["error"]["status"] == 415
    assert bad["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert bad["error"]["detail"]
    assert "classification_id" not in bad
    assert Classification.objects.count() == 3


def test_a_batch_answer_is_what_the_remote_provider_of_another_deployment_reads(
    member_client, photos
):
    body = classify_batch(
        member_client, [("jeep.jpg", photos[JEEP]), ("chair.jpg", photos[CHAIR])]
    ).json()

    read = [
        classification_from_answer(item, provider="remote", processing_time_ms=1.0)
        for item in body["results"]
    ]

    assert [(result.is_vehicle, result.top_label) for result in read] == [
        (True, "car"),
        (False, "not_vehicle"),
    ]
    assert read[0].imagenet[0].index in VEHICLE_CATEGORIES["car"]


def test_a_batch_of_only_bad_files_answers_each_error(member_client, onnx_ready):
    body = classify_batch(member_client, [("a.txt", b"nothing"), ("b.png", b"")]).json()

    assert (body["succeeded"], body["failed"]) == (0, 2)
    assert [result["error"]["code"] for result in body["results"]] == [
        "UNSUPPORTED_MEDIA_TYPE",
        "INVALID_IMAGE",
    ]
    assert Classification.objects.count() == 0


@pytest.mark.parametrize("count", [0, 33])
def test_a_batch_must_hold_1_to_32_files(member_client, onnx_ready, count):
    files = [(f"p{index}.png", png()) for index in range(count)]

    response = classify_batch(member_client, files)

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["files"]
    assert Classification.objects.count() == 0


def test_a_viewer_may_not_classify_a_batch(viewer_client, onnx_ready):
    response = classify_batch(viewer_client, [("p.png", png())])

    assert_problem(response, status=403, code="PERMISSION_DENIED")


def test_batches_have_a_rate_limit_of_their_own(member_client, org, onnx_ready, settings):
    settings.RATE_LIMIT_ENABLED = True
    response = classify_batch(member_client, [("p.png", png())])

    tier = tier_limits(org.tier)["requests_per_minute"]
    assert response.status_code == 200
    assert int(response["X-RateLimit-Limit"]) == tier // 2
    # The batch was not counted among the organization's other requests.
    other = member_client.get(METADATA)
    assert int(other["X-RateLimit-Limit"]) == tier
    assert int(other["X-RateLimit-Remaining"]) == tier - 1


# --- Jobs keep their classification ------------------------------------------------------


def test_an_uploaded_images_job_keeps_one_classification_however_often_it_runs(
    member_client, member, photos
):
    upload = member_client.post(
        "/api/v1/images/upload",
        {"file": SimpleUploadedFile("jeep.jpg", photos[JEEP])},
        format="multipart",
    ).json()

    for _ in range(2):
        job_run_task.apply(args=(upload["job_id"],))

    stored = Classification.objects.get()
    assert stored.image_id == uuid.UUID(upload["image_id"])
    assert stored.principal == f"user:{member.id}"
    assert stored.top_label == "car"
    image = member_client.get(f"/api/v1/images/{upload['image_id']}").json()
    assert image["classification"]["classification_id"] == str(stored.id)


# --- Vehicle reports -----------------------------------------------------------------


@pytest.fixture
def classification(member_client, photos) -> dict[str, Any]:
    response = classify(member_client, photos[JEEP])
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_a_report_is_kept_with_its_classification_and_listed_newest_first(
    member_client, viewer_client, classification
):
    with time_machine.travel("2026-06-01T10:00:00Z", tick=False):
        first = report(member_client, data={"lane": 2})
    with time_machine.travel("2026-06-01T11:00:00Z", tick=False):
        second = report(
            member_client,
            classification_id=classification["classification_id"],
            data={"speed_kmh": 87, "camera": "north-gate"},
        )

    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    created = second.json()
    assert created["vehicle_id"] == "TRUCK-7"
    assert created["data"] == {"speed_kmh": 87, "camera": "north-gate"}
    assert created["classification"]["top_label"] == "car"
    assert created["classification_id"] == classification["classification_id"]
    assert VehicleReport.objects.count() == 2
    listed = viewer_client.get(f"{REPORT}/TRUCK-7")
    assert listed.status_code == 200, listed.content
    results = listed.json()["results"]
    assert [entry["id"] for entry in results] == [created["id"], first.json()["id"]]
    assert results[1]["classification"] is None


def test_a_report_may_cite_an_image_of_the_organization(member_client, org):
    from images.tests.factories import ImageFactory

    image = ImageFactory(organization=org)

    response = report(member_client, image_id=str(image.id))

    assert response.status_code == 201, response.content
    assert response.json()["image_id"] == str(image.id)


@pytest.mark.parametrize(
    "vehicle_id",
    ["", "has space", "x" * 65, "dots.are.out", "ünïcode"],
    ids=["empty", "space", "too-long", "dots", "unicode"],
)
def test_a_report_with_a_bad_vehicle_id_is_refused(member_client, vehicle_id):
    response = report(member_client, vehicle_id=vehicle_id)

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["vehicle_id"]
    assert VehicleReport.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"data": "not an object"},
        {"data": {"blob": "x" * 20_000}},
        {"classification_id": "not-a-uuid"},
    ],
    ids=["data-not-object", "data-too-large", "bad-classification-id"],
)
def test_a_report_with_bad_fields_is_refused(member_client, body):
    response = report(member_client, **body)

    assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert VehicleReport.objects.count() == 0


@pytest.mark.parametrize("vehicle_id", ["bad!id", "x" * 65, "a%20b"])
def test_reading_reports_with_a_bad_vehicle_id_is_refused(member_client, vehicle_id):
    response = member_client.get(f"{REPORT}/{vehicle_id}")

    body = assert_problem(response, status=400, code="VALIDATION_ERROR")
    assert [error["field"] for error in body["errors"]] == ["vehicle_id"]


def test_another_organizations_reports_and_classifications_are_not_found(
    member_client, outsider_client, classification
):
    assert report(member_client).status_code == 201

    assert_problem(outsider_client.get(f"{REPORT}/TRUCK-7"), status=404, code="NOT_FOUND")
    response = report(outsider_client, classification_id=classification["classification_id"])
    assert_problem(response, status=404, code="NOT_FOUND")
    response = report(outsider_client, image_id=str(uuid.uuid4()))
    assert_problem(response, status=404, code="NOT_FOUND")
    assert VehicleReport.objects.count() == 1


def test_a_vehicle_without_reports_is_not_found(member_client):
    assert_problem(member_client.get(f"{REPORT}/NEVER-SEEN"), status=404, code="NOT_FOUND")


def test_a_viewer_may_read_reports_but_not_file_them(viewer_client, member_client):
    assert report(member_client).status_code == 201

    assert_problem(report(viewer_client), status=403, code="PERMISSION_DENIED")
    assert viewer_client.get(f"{REPORT}/TRUCK-7").status_code == 200


def test_a_guest_may_not_read_reports(guest_client, member_client):
    assert report(member_client).status_code == 201

    assert_problem(guest_client.get(f"{REPORT}/TRUCK-7"), status=403, code="PERMISSION_DENIED")


# --- Models and providers ----------------------------------------------------------------


def test_any_principal_reads_the_models_metadata(guest_client, model_file, onnx_ready):
    response = guest_client.get(METADATA)

    assert response.status_code == 200, response.content
    [model] = response.json()["models"]
    assert model["provider"] == "onnx"
    assert model["name"].startswith("efficientnet-lite0")
    assert model["input_size"] == [224, 224]
    assert "car" in model["labels"]
    assert "not_vehicle" in model["labels"]
    assert model["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest()


def test_the_models_metadata_needs_a_principal(api_client):
    assert_problem(api_client.get(METADATA), status=401, code="NOT_AUTHENTICATED")


def test_an_admin_reads_the_providers_health_and_the_chain(
    admin_client, photos, remote, settings, member_client
):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    classify(member_client, photos[JEEP])

    response = admin_client.get(PROVIDERS)

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["chain"] == ["remote", "onnx"]
    remote_status, onnx_status = body["providers"]
    assert remote_status["name"] == "remote"
    assert remote_status["consecutive_failures"] == 1
    assert remote_status["failures"] == 1
    assert remote_status["last_failure_at"].endswith("Z")
    assert onnx_status["state"] == "healthy"
    assert onnx_status["requests"] == 1
    assert onnx_status["avg_response_ms"] > 0


def test_a_member_may_not_read_the_providers(member_client):
    assert_problem(member_client.get(PROVIDERS), status=403, code="PERMISSION_DENIED")


# --- Django admin --------------------------------------------------------------------


def test_staff_read_classifications_and_reports_in_admin_but_never_edit_them(
    staff_browser, member_client, classification
):
    assert report(member_client).status_code == 201
    stored = Classification.objects.get()

    listed = staff_browser.get("/admin/classifier/classification/")
    assert listed.status_code == 200
    assert "car" in listed.content.decode()
    change = f"/admin/classifier/classification/{stored.id}/change/"
    assert staff_browser.get(change).status_code == 200
    assert staff_browser.get("/admin/classifier/classification/add/").status_code == 403
    assert staff_browser.get("/admin/classifier/vehiclereport/").status_code == 200
    response = staff_browser.post(change, {"top_label": "bus"})
    assert response.status_code == 403
    stored.refresh_from_db()
    assert stored.top_label == "car"
