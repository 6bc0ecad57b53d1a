"""One DRF view answering a JSON document the size of the project's profile answer.

Two more views add what no secured request can do without, and nothing else:
the floor under the project's figures. `/bare+read` makes one Redis round
trip (three reads, as a credential's check makes); `/bare+limiter` sends what
the project's warm request sends in its one round trip, the reads and the
rate limiter's moving-window script (the project's own file) over two windows.
"""

import os
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import redis
from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class BareApi(APIView):
    """DRF with no authentication, permission or throttle."""

    authentication_classes: list[type] = []
    permission_classes: list[type] = []

    def get(self, request: Request) -> Response:
        return Response(PROFILE)


PROFILE: dict[str, Any] = {
    "id": "6f1c2e0a-9b8d-4c55-8e3a-1f2b3c4d5e6f",
    "username": "bench",
    "email": "bench@example.com",
    "name": "Bench Baseline",
    "organization": {"id": "0b7c5d2e-4f60-4a8e-9d1c-2e3f4a5b6c7d", "name": "Bench", "tier": "pro"},
    "role": "admin",
}

WINDOW_SCRIPT = (
    Path(__file__).resolve().parents[2] / "accounts" / "ratelimits" / "moving_window.lua"
).read_text()
KEYS = ["bench-floor:session", "bench-floor:generation", "bench-floor:member"]
WINDOWS = ["bench-floor:window:principal", "bench-floor:window:organization"]


@cache
def _redis() -> Any:
    client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"], socket_timeout=5)
    client.set(KEYS[0], b"x" * 120)
    return client, client.script_load(WINDOW_SCRIPT)


class BareReadApi(BareApi):
    """The bare view after one Redis round trip reading three keys."""

    def get(self, request: Request) -> Response:
        client, _ = _redis()
        client.mget(KEYS)
        return super().get(request)


class BareLimiterApi(BareApi):
    """The bare view after the round trip of a warm secured request: reads and the limiter."""

    def get(self, request: Request) -> Response:
        client, script = _redis()
        pipe = client.pipeline(transaction=False)
        pipe.mget(KEYS)
        pipe.evalsha(script, 2, *WINDOWS, 60_000, uuid.uuid4().hex, 1_000_000, 5_000_000)
        pipe.execute()
        return super().get(request)


urlpatterns = [
    path("bare", BareApi.as_view()),
    path("bare+read", BareReadApi.as_view()),
    path("bare+limiter", BareLimiterApi.as_view()),
]
