"""The embedded default's cache shared by a host's processes: counts keep their expiry."""

import time

import pytest
import time_machine

from config.shared_file_cache import SharedFileCache


@pytest.fixture
def shared(tmp_path) -> SharedFileCache:
    return SharedFileCache(str(tmp_path), {})


def test_counting_keeps_the_time_a_counter_has_left(shared):
    now = time.time()
    with time_machine.travel(now, tick=False):
        shared.add("failures", 0, 3600)
        assert shared.incr("failures") == 1
    with time_machine.travel(now + 600, tick=False):
        # Past Django's default timeout of 300 s, still within the counter's hour.
        assert shared.incr("failures", 2) == 3
    with time_machine.travel(now + 3500, tick=False):
        assert shared.get("failures") == 3
    with time_machine.travel(now + 3601, tick=False):
        assert shared.get("failures") is None
        with pytest.raises(ValueError, match="not found"):
            shared.incr("failures")


def test_a_counter_without_expiry_keeps_none(shared):
    shared.set("total", 5, None)
    assert shared.incr("total") == 6
    with time_machine.travel(time.time() + 10 * 365 * 86400, tick=False):
        assert shared.get("total") == 6


def test_counting_a_missing_key_is_refused_as_django_does(shared):
    with pytest.raises(ValueError, match="not found"):
        shared.incr("absent")
