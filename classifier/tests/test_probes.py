"""Probing the providers: `manage.py classifier_health` and the periodic task."""

import json

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from classifier.health import DEGRADED, HEALTHY, UNHEALTHY, provider_health
from classifier.tasks import providers_probe_task

pytestmark = pytest.mark.django_db


def test_the_health_command_prints_each_provider_and_succeeds_when_one_is_healthy(
    onnx_ready, remote, settings, capsys
):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]

    call_command("classifier_health")

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["provider", "state"]
    remote_line, onnx_line = lines[1:]
    assert remote_line.split()[:2] == ["remote", HEALTHY]
    assert "HTTP 503" in remote_line
    assert onnx_line.split()[:2] == ["onnx", HEALTHY]
    assert onnx_line.endswith("probe ok")
    assert remote.calls == 1


def test_the_health_command_fails_when_no_provider_is_healthy(remote, settings, capsys):
    settings.CLASSIFIER_PROVIDERS = ["remote"]

    with pytest.raises(CommandError, match="No classifier provider is healthy") as failed:
        call_command("classifier_health", "--json")

    assert failed.value.returncode == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == "remote"
    assert row["probe"] == "The remote classifier answered HTTP 503."
    assert (row["consecutive_failures"], row["requests"]) == (1, 1)


def test_probes_degrade_a_failing_provider_and_restore_a_recovered_one(remote, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote"]

    for _ in range(3):
        providers_probe_task()
    assert provider_health("remote").status().state == DEGRADED
    remote.status = 200
    for _ in range(3):
        outcome = providers_probe_task()

    assert outcome[0]["state"] == HEALTHY
    assert outcome[0]["probe"] == "ok"
    assert remote.calls == 6


def test_probes_reach_an_ejected_provider_so_it_can_recover_early(onnx_ready, remote, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    for _ in range(5):
        providers_probe_task()
    assert provider_health("remote").status().ejected
    remote.status = 200

    for _ in range(3):
        providers_probe_task()
    status = provider_health("remote").status()

    assert remote.calls == 8
    assert status.state == HEALTHY
    assert not status.ejected


def test_a_failed_probe_of_an_ejected_provider_does_not_extend_its_ejection(
    onnx_ready, remote, settings
):
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    for _ in range(5):
        providers_probe_task()
    ejected = provider_health("remote").status()

    providers_probe_task()
    status = provider_health("remote").status()

    assert status.state == UNHEALTHY
    assert (status.ejected_until, status.ejections) == (ejected.ejected_until, 1)
    assert status.consecutive_failures == 6


def test_beat_probes_the_providers_every_minute():
    entry = django_settings.CELERY_BEAT_SCHEDULE["classifier-providers-probe"]

    assert entry == {"task": providers_probe_task.name, "schedule": 60.0}
    assert providers_probe_task.name == "classifier.providers_probe"
