"""Celery defaults: JSON only, late acknowledgement, time limits, bounded retries."""

import uuid

import pytest
from django.db import OperationalError

from config.celery import TRANSIENT_ERRORS, VantageTask
from config.celery import app as celery_app
from config.tests.tasks import flaky


def test_tasks_speak_json_only_and_are_acknowledged_late():
    conf = celery_app.conf
    assert conf.accept_content == ["json"]
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit


def test_default_task_class_retries_transient_errors_a_bounded_number_of_times():
    task = celery_app.tasks["tests.record_execution"]
    assert isinstance(task, VantageTask)
    assert task.max_retries == 5
    assert task.retry_jitter is True
    assert OperationalError in TRANSIENT_ERRORS
    assert set(task.autoretry_for) == set(TRANSIENT_ERRORS)


@pytest.mark.django_db(transaction=True)
def test_transient_failure_is_retried_then_succeeds(celery_worker_process):
    marker = uuid.uuid4().hex
    flaky.delay(marker, 1)

    executed = celery_worker_process.wait_for_log(
        lambda line: line.get("event") == "test_task_executed" and line.get("marker") == marker
    )
    assert executed["attempt"] == 2


@pytest.mark.django_db(transaction=True)
def test_retries_stop_at_the_limit(celery_worker_process):
    marker = uuid.uuid4().hex
    result = flaky.delay(marker, 99)

    failed = celery_worker_process.wait_for_log(
        lambda line: (
            line.get("event") == "task_finished"
            and line.get("task_id") == result.id
            and line.get("state") == "FAILURE"
        )
    )
    attempts = [
        line
        for line in celery_worker_process.log_lines()
        if line.get("event") == "task_started" and line.get("task_id") == result.id
    ]
    # The first run and max_retries=2 retries, then the task is given up.
    assert [line["attempt"] for line in attempts] == [1, 2, 3]
    assert failed["task_name"] == "tests.flaky"
