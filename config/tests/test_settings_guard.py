"""The app refuses to start in production with an unsafe configuration."""

import os
import subprocess
import sys

import pytest
from django.conf import settings

STRONG_KEY = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz"


def _start(**overrides: str) -> subprocess.CompletedProcess[str]:
    """Load the production settings in a fresh interpreter with these variables."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_URL", "REDIS_URL"))
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", **overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_settings_start_with_a_strong_key():
    result = _start(DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY)
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize(
    "overrides",
    [
        {"DJANGO_DEBUG": "false"},
        {"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "short-key"},
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": "django-insecure-vantage-development-key-never-use-in-production",
        },
    ],
    ids=["missing", "short", "default"],
)
def test_production_refuses_a_weak_secret_key(overrides):
    result = _start(**overrides)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize("origins", ["*", "https://a.example.com,*", "https://*.example.com"])
def test_production_refuses_a_wildcard_cors_origin(origins):
    result = _start(
        DJANGO_DEBUG="false", DJANGO_SECRET_KEY=STRONG_KEY, DJANGO_CORS_ALLOWED_ORIGINS=origins
    )
    assert result.returncode != 0
    assert "DJANGO_CORS_ALLOWED_ORIGINS may not contain a wildcard" in result.stderr


def test_debug_mode_starts_without_a_secret_key():
    result = _start(DJANGO_DEBUG="true")
    assert result.returncode == 0, result.stderr
