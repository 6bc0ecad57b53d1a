"""Classifier calls leave an audit trail: classify, a batch (one event), reports filed and read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.tests.factories import create_token
from audit.selectors import audit_chain_verify
from classifier.tests.factories import CHAIR, JEEP, REPORT, classify, classify_batch, png, report

EVENTS = "/api/v1/audit/events"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def photos(onnx_ready: Path, foolbox_photos: list[Path]) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in foolbox_photos}


def _events(admin_client: APIClient, action: str) -> list[dict[str, Any]]:
    response = admin_client.get(EVENTS, {"action": action, "page_size": 500})
    assert response.status_code == 200
    return response.json()["results"]


def test_a_classification_is_audited_with_its_result(
    org, admin_client, member, member_client, photos
):
    response = classify(member_client, photos[JEEP])
    assert response.status_code == 200, response.content
    classification = response.json()

    [event] = _events(admin_client, "vehicle.classified")

    assert event["organization_id"] == str(org.id)
    assert event["actor"] == {"type": "user", "id": str(member.id), "display": member.username}
    assert event["resource"] == {
        "type": "classification",
        "id": classification["classification_id"],
    }
    assert event["outcome"] == "success"
    assert event["details"]["is_vehicle"] is True
    assert event["details"]["top_label"] == classification["top_label"]
    assert audit_chain_verify(chain=str(org.id))[1] is None


def test_a_token_classifying_is_the_audited_actor(admin_client, photos):
    made = create_token(admin_client, scopes=["image:upload"])
    token_client = APIClient(HTTP_AUTHORIZATION=f"Bearer {made['token']}")

    assert classify(token_client, photos[CHAIR]).status_code == 200

    [event] = _events(admin_client, "vehicle.classified")
    assert event["actor"]["type"] == "service_token"
    assert event["actor"]["id"] == made["id"]


def test_a_batch_is_one_event_naming_its_count(admin_client, member_client, photos):
    files = [("a.jpg", photos[JEEP]), ("bad.jpg", b"not an image"), ("b.jpg", photos[CHAIR])]

    response = classify_batch(member_client, files)

    assert response.status_code == 200, response.content
    answer = response.json()
    [event] = _events(admin_client, "vehicle.batch_classified")
    assert not _events(admin_client, "vehicle.classified")
    assert event["details"]["count"] == 3
    assert event["details"]["classified"] == 2
    assert event["details"]["refused"] == 1
    stored = [row["classification_id"] for row in answer["results"] if row["error"] is None]
    assert event["details"]["classification_ids"] == stored


def test_a_batch_of_refused_files_is_audited_too(admin_client, member_client, onnx_ready):
    response = classify_batch(member_client, [("x.png", b"nope"), ("y.png", b"nope")])

    assert response.status_code == 200, response.content
    [event] = _events(admin_client, "vehicle.batch_classified")
    assert (event["details"]["count"], event["details"]["classified"]) == (2, 0)


def test_a_refused_classification_records_no_classification_event(admin_client, member_client):
    response = classify(member_client, png()[:20], name="cut.png")

    assert response.status_code == 400
    assert not _events(admin_client, "vehicle.classified")


def test_filing_a_report_is_audited(org, admin_client, member, member_client):
    response = report(member_client, data={"colour": "red"})
    assert response.status_code == 201, response.content

    [event] = _events(admin_client, "vehicle.report_created")

    assert event["resource"] == {"type": "vehicle_report", "id": str(response.json()["id"])}
    assert event["actor"]["id"] == str(member.id)
    assert event["details"]["vehicle_id"] == "TRUCK-7"


def test_reading_reports_is_audited_with_how_many_were_read(
    org, admin_client, member_client, viewer, viewer_client
):
    for _ in range(3):
        assert report(member_client).status_code == 201

    response = viewer_client.get(f"{REPORT}/TRUCK-7")

    assert response.status_code == 200
    [event] = _events(admin_client, "vehicle.reports_read")
    assert event["resource"] == {"type": "vehicle", "id": "TRUCK-7"}
    assert event["actor"]["id"] == str(viewer.id)
    assert event["details"]["count"] == 3


def test_reading_an_unknown_vehicle_records_no_read(admin_client, member_client):
    assert member_client.get(f"{REPORT}/NEVER-SEEN").status_code == 404

    assert not _events(admin_client, "vehicle.reports_read")
