"""The test settings serving the benchmark's baseline views beside the project's."""

from config.settings_test import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
