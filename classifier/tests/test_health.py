"""Provider health: failover, degradation, ejection and its doubling, recovery, shared state."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import caches
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from audit.models import AuditEvent
from classifier.chain import classify_with_failover
from classifier.errors import ProviderError
from classifier.health import (
    DEGRADED,
    HEALTHY,
    UNHEALTHY,
    ProviderHealth,
    ejection_seconds,
    provider_health,
)
from classifier.selectors import providers_status

pytestmark = pytest.mark.django_db

# The seed's figure, the setting's default.
EJECTION_SECONDS = 300

# What GET /api/v1/classifier/providers promises for each provider.
API_FIELDS = (
    "name",
    "state",
    "consecutive_failures",
    "consecutive_successes",
    "last_success_at",
    "last_failure_at",
    "avg_response_ms",
    "requests",
    "failures",
)
SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}
_UNREACHABLE = {
    "BACKEND": "django_redis.cache.RedisCache",
    "LOCATION": "redis://127.0.0.1:1/0",
    "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
}
UNREACHABLE_REDIS = {"default": _UNREACHABLE, "shared": _UNREACHABLE}


@pytest.fixture
def chain(onnx_ready, remote, settings):
    """`remote` (failing until told otherwise) first, `onnx` second."""
    settings.CLASSIFIER_PROVIDERS = ["remote", "onnx"]
    return remote


def _frozen():
    return time_machine.travel(time.time(), tick=False)


def _classify(photo, times=1):
    return [classify_with_failover([photo])[0] for _ in range(times)]


def _remote():
    return provider_health("remote").status()


def _metric(name, labels):
    text = APIClient().get("/metrics", **SCRAPE).content.decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def _state_changes():
    events = AuditEvent.objects.filter(action="classifier.provider_state_changed")
    return [
        (event.details["previous"], event.details["state"]) for event in events.order_by("position")
    ]


def test_a_failing_provider_is_passed_over_for_the_next(chain, photo):
    failovers = _metric(
        "vantage_classifier_failovers_total", {"provider": "remote", "reason": "failed"}
    )

    (result,) = _classify(photo)

    assert result.provider == "onnx"
    assert chain.calls == 1
    status = _remote()
    assert status.state == HEALTHY
    assert (status.consecutive_failures, status.requests, status.failures) == (1, 1, 1)
    assert status.last_failure_at is not None
    assert "503" in status.last_error
    after = _metric(
        "vantage_classifier_failovers_total", {"provider": "remote", "reason": "failed"}
    )
    assert after == failovers + 1


def test_three_failures_degrade_and_five_eject_the_provider(chain, photo):
    _classify(photo, times=2)
    assert _remote().state == HEALTHY
    _classify(photo)
    assert _remote().state == DEGRADED
    _classify(photo)
    assert _remote().state == DEGRADED
    assert not _remote().ejected

    with _frozen():
        _classify(photo)
        status = _remote()

        assert status.state == UNHEALTHY
        assert status.ejected
        assert status.ejected_until - status.ejected_at == timedelta(seconds=EJECTION_SECONDS)
    assert _state_changes() == [(HEALTHY, DEGRADED), (DEGRADED, UNHEALTHY)]
    event = (
        AuditEvent.objects.filter(action="classifier.provider_state_changed")
        .order_by("position")
        .last()
    )
    assert (event.actor_type, event.organization_id) == ("system", None)
    assert (event.resource_type, event.resource_id) == ("classifier_provider", "remote")
    assert _metric("vantage_classifier_provider_state", {"provider": "remote"}) == 2


def test_an_ejected_provider_is_not_called_until_its_ejection_ends(chain, photo):
    with _frozen() as clock:
        _classify(photo, times=5)
        assert chain.calls == 5

        clock.shift(EJECTION_SECONDS - 1)
        results = _classify(photo, times=3)
        assert chain.calls == 5
        assert {result.provider for result in results} == {"onnx"}

        clock.shift(2)
        _classify(photo)
        assert chain.calls == 6


def test_a_second_ejection_lasts_twice_as_long_and_they_stop_growing_at_eight_times(chain, photo):
    with _frozen() as clock:
        _classify(photo, times=5)
        durations = []
        for _ in range(5):
            status = _remote()
            durations.append((status.ejected_until - status.ejected_at).total_seconds())
            clock.shift((status.ejected_until - status.ejected_at).total_seconds() - 1)
            calls = chain.calls
            _classify(photo)
            assert chain.calls == calls  # still ejected a second before the end
            clock.shift(1)
            _classify(photo)  # tried again, fails, ejected again
            assert chain.calls == calls + 1

    assert durations == [300, 600, 1200, 2400, 2400]
    assert _remote().state == UNHEALTHY


def test_time_in_service_forgets_earlier_ejections(chain, photo):
    with _frozen() as clock:
        _classify(photo, times=5)
        clock.shift(EJECTION_SECONDS)
        _classify(photo)  # the second ejection: 600 s
        assert ejection_seconds(_remote().ejections) == 600
        clock.shift(600)
        chain.status = 200
        _classify(photo, times=3)
        assert _remote().state == HEALTHY

        clock.shift(2 * EJECTION_SECONDS)  # two periods in service forget two doublings
        chain.status = 503
        _classify(photo, times=5)
        status = _remote()

    assert status.state == UNHEALTHY
    assert (status.ejected_until - status.ejected_at).total_seconds() == EJECTION_SECONDS


def test_three_successes_in_a_row_bring_a_recovered_provider_back(chain, photo):
    with _frozen() as clock:
        _classify(photo, times=5)
        clock.shift(EJECTION_SECONDS)
        chain.status = 200

        first, second = _classify(photo, times=2)
        assert (first.provider, second.provider) == ("remote", "remote")
        assert _remote().state == UNHEALTHY
        assert _remote().consecutive_successes == 2
        _classify(photo)
        status = _remote()

    assert status.state == HEALTHY
    assert (status.consecutive_failures, status.consecutive_successes) == (0, 3)
    assert status.last_success_at is not None
    assert status.avg_response_ms > 0
    assert _state_changes()[-1] == (UNHEALTHY, HEALTHY)


def test_without_a_window_a_success_between_failures_starts_the_count_again(chain, photo, settings):
    settings.CLASSIFIER_HEALTH_FAILURE_WINDOW = 0
    _classify(photo, times=2)
    chain.status = 200
    _classify(photo)
    chain.status = 503
    _classify(photo, times=2)

    assert _remote().consecutive_failures == 2
    assert _remote().state == HEALTHY


def test_the_last_usable_provider_is_never_ejected(remote, photo, settings):
    settings.CLASSIFIER_PROVIDERS = ["remote"]

    for _ in range(7):
        with pytest.raises(ProviderError) as failed:
            classify_with_failover([photo])
        assert failed.value.permanent is False

    status = _remote()
    assert status.state == UNHEALTHY
    assert not status.ejected
    assert remote.calls == 7  # every request still reached it


def test_when_every_provider_is_ejected_the_one_ejected_first_is_tried(chain, photo):
    with _frozen() as clock:
        onnx = provider_health("onnx")
        for _ in range(5):
            onnx.record_failure(10.0, "out of memory")  # as another process saw it
        clock.shift(10)
        remote_health = provider_health("remote")
        for _ in range(5):
            remote_health.record_failure(10.0, "HTTP 503")
        assert onnx.status().ejected
        assert remote_health.status().ejected

        (result,) = _classify(photo)

    assert result.provider == "onnx"
    assert chain.calls == 0


def test_two_trackers_share_one_record_through_the_cache():
    one, other = ProviderHealth("remote"), ProviderHealth("remote")

    for _ in range(3):
        one.record_failure(5.0, "HTTP 503")
    seen = other.status()
    other.record_success(7.0)

    assert (seen.state, seen.consecutive_failures, seen.requests) == (DEGRADED, 3, 3)
    assert one.status().consecutive_failures == 0
    assert one.status().requests == 4
    assert one.status().avg_response_ms == pytest.approx((3 * 5.0 + 7.0) / 4)


def test_while_the_cache_is_down_each_process_keeps_the_record_itself(settings, log_lines):
    failures = _metric("vantage_classifier_health_cache_failures_total", {})
    reachable = settings.CACHES
    settings.CACHES = UNREACHABLE_REDIS
    health = ProviderHealth("remote")

    for _ in range(5):
        health.record_failure(5.0, "HTTP 503")
    status = health.status()

    assert (status.state, status.consecutive_failures) == (UNHEALTHY, 5)
    assert status.ejected
    assert any(line["event"] == "classifier_health_cache_failed" for line in log_lines())
    settings.CACHES = reachable
    assert _metric("vantage_classifier_health_cache_failures_total", {}) > failures


def test_the_status_report_lists_every_provider_of_the_chain(chain, photo):
    _classify(photo, times=3)

    report = providers_status()

    assert report["chain"] == ["remote", "onnx"]
    remote_row, onnx_row = report["providers"]
    assert set(remote_row) >= set(API_FIELDS)
    assert (remote_row["name"], remote_row["state"], remote_row["failures"]) == (
        "remote",
        DEGRADED,
        3,
    )
    assert remote_row["last_success_at"] is None
    assert remote_row["last_failure_at"].endswith("Z")
    assert onnx_row["state"] == HEALTHY
    assert (onnx_row["requests"], onnx_row["consecutive_successes"]) == (3, 3)
    assert caches["shared"].get("classifier:health:remote:state") == DEGRADED


def test_the_thresholds_default_to_the_seeds_figures(settings):
    from classifier.health import thresholds

    assert thresholds() == thresholds().__class__(
        degraded_after=3,
        unhealthy_after=5,
        healthy_after=3,
        ejection_seconds=300,
        failure_window_seconds=3600,
    )


def test_failures_within_the_window_add_up_though_successes_come_between(chain, photo):
    with _frozen() as clock:
        for count in range(1, 5):
            chain.status = 503
            _classify(photo)
            expected = HEALTHY if count < 3 else DEGRADED
            assert (_remote().state, _remote().counted_failures) == (expected, count)
            chain.status = 200
            _classify(photo)  # one success: never three in a row
            assert _remote().consecutive_failures == 0
            clock.shift(600)  # five failures over 40 minutes
        chain.status = 503
        _classify(photo)
        assert (_remote().state, _remote().counted_failures) == (UNHEALTHY, 5)
        assert _remote().ejected
    assert _state_changes() == [(HEALTHY, DEGRADED), (DEGRADED, UNHEALTHY)]


def test_failures_older_than_the_window_no_longer_count(chain, photo, settings):
    settings.CLASSIFIER_HEALTH_FAILURE_WINDOW = 600
    with _frozen() as clock:
        _classify(photo, times=2)
        clock.shift(590)
        _classify(photo)  # three in the window: degraded
        assert (_remote().state, _remote().counted_failures) == (DEGRADED, 3)
        clock.shift(30)  # the first two have left the window
        assert _remote().counted_failures == 1
        _classify(photo, times=3)
        assert (_remote().state, _remote().counted_failures) == (DEGRADED, 4)
        _classify(photo)
        assert _remote().state == UNHEALTHY


def test_thresholds_and_ejection_time_follow_the_settings(chain, photo, settings):
    settings.CLASSIFIER_HEALTH_DEGRADED_AFTER = 1
    settings.CLASSIFIER_HEALTH_UNHEALTHY_AFTER = 2
    settings.CLASSIFIER_HEALTH_EJECTION_SECONDS = 40
    settings.CLASSIFIER_HEALTH_HEALTHY_AFTER = 5
    with _frozen() as clock:
        _classify(photo)
        assert _remote().state == DEGRADED
        _classify(photo)
        status = _remote()
        assert (status.state, status.ejected) == (UNHEALTHY, True)
        assert (status.ejected_until - status.ejected_at).total_seconds() == 40
        clock.shift(40)
        chain.status = 200
        _classify(photo, times=4)
        assert _remote().state == UNHEALTHY
        _classify(photo)
        assert _remote().state == HEALTHY
        # Healthy again: the failures before no longer count.
        assert _remote().counted_failures == 0


def test_the_providers_page_states_the_thresholds_in_force(staff_browser, settings):
    settings.CLASSIFIER_HEALTH_DEGRADED_AFTER = 4
    settings.CLASSIFIER_HEALTH_UNHEALTHY_AFTER = 7
    settings.CLASSIFIER_HEALTH_FAILURE_WINDOW = 1800

    page = staff_browser.get("/providers/").content.decode()

    assert "4 failures within 1800 s make a provider degraded, 7 unhealthy" in page
