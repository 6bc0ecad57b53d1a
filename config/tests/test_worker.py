"""A task enqueued by a web request runs in a separate worker process, with the request's id."""

import os
import uuid

import pytest


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("config.tests.urls")
def test_task_enqueued_by_a_request_runs_in_the_worker_process(api_client, celery_worker_process):
    marker = uuid.uuid4().hex
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    response = api_client.post(
        "/api/test/enqueue",
        {"marker": marker},
        format="json",
        HTTP_X_REQUEST_ID="enqueue-req-1",
        HTTP_TRACEPARENT=traceparent,
    )
    assert response.status_code == 202

    executed = celery_worker_process.wait_for_log(
        lambda line: line.get("event") == "test_task_executed" and line.get("marker") == marker
    )
    # Run by the worker's own process, not this one, and logged with the
    # request id and trace id of the request that enqueued it.
    assert executed["pid"] != os.getpid()
    assert executed["request_id"] == "enqueue-req-1"
    assert executed["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert executed["task_name"] == "tests.record_execution"

    finished = celery_worker_process.wait_for_log(
        lambda line: (
            line.get("event") == "task_finished" and line.get("task_id") == executed["task_id"]
        )
    )
    assert finished["state"] == "SUCCESS"
    assert finished["request_id"] == "enqueue-req-1"
    assert finished["duration_ms"] >= 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.urls("config.tests.urls")
def test_task_carries_the_generated_request_id(api_client, celery_worker_process):
    marker = uuid.uuid4().hex
    response = api_client.post("/api/test/enqueue", {"marker": marker}, format="json")

    executed = celery_worker_process.wait_for_log(
        lambda line: line.get("event") == "test_task_executed" and line.get("marker") == marker
    )
    assert executed["request_id"] == response["X-Request-ID"]
    assert "trace_id" not in executed
