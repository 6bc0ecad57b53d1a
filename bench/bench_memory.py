"""Peak memory per request: classifying one image and a batch, and uploading, set against the
same requests with a small image (the baseline) in the same process and run.

Each request's cost is how far the process's resident set peaks above its size
just before (the peak is reset through /proc/self/clear_refs). The model is
loaded by the warm-up requests (one image and a batch), once per process, and is not
counted.
"""

from __future__ import annotations

import gc
import io
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.test import Client
from PIL import Image

BATCH = 32
SIDE = 8192
GOAL_BATCH_MB = 300


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def peak_growth_mb(call: Callable[[], Any]) -> float:
    """Return how far the resident set peaked above its size before the call."""
    gc.collect()
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    call()
    return _status_mb("VmHWM") - before


def _token() -> str:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.sessions import auth_login

    org = organization_create(name="Bench memory", slug="bench-memory", tier="enterprise")
    user = user_create(
        username="bench-memory", email="memory@example.com", password="bench-passphrase-12345"
    )
    member_add(organization=org, user=user, role="user")
    return str(auth_login(login="bench-memory", password="bench-passphrase-12345").tokens["access"])


def _payloads(directory: Path) -> None:
    """Write the images the requests send, made here so the probes hold none of the making."""
    from images.tests.factories import solid_png

    (directory / "small.png").write_bytes(solid_png(64, (10, 120, 200)))
    (directory / "huge.png").write_bytes(solid_png(SIDE, (200, 30, 30)))
    buffer = io.BytesIO()
    Image.effect_noise((4032, 3024), 40).convert("RGB").save(buffer, format="JPEG", quality=90)
    (directory / "photo.jpg").write_bytes(buffer.getvalue())


# Each case: the path, the form field and the payload files it sends.
CASES: dict[str, tuple[str, str, list[str]]] = {
    "classify, 64x64 PNG (baseline)": ("classify", "file", ["small.png"]),
    f"classify, {SIDE}x{SIDE} PNG": ("classify", "file", ["huge.png"]),
    "classify, 4032x3024 JPEG": ("classify", "file", ["photo.jpg"]),
    f"classify-batch, {BATCH} x 64x64 PNG": ("classify-batch", "files", ["small.png"] * BATCH),
    f"classify-batch, {BATCH} x {SIDE}x{SIDE} PNG": (
        "classify-batch",
        "files",
        ["huge.png"] * BATCH,
    ),
    "upload, 64x64 PNG": ("upload", "file", ["small.png"]),
    f"upload, {SIDE}x{SIDE} PNG": ("upload", "file", ["huge.png"]),
    "upload, 4032x3024 JPEG": ("upload", "file", ["photo.jpg"]),
}
_PATHS = {
    "classify": "/api/v1/vehicle/classify",
    "classify-batch": "/api/v1/vehicle/classify-batch",
    "upload": "/api/v1/images/upload",
}

# Run in a fresh interpreter per case: what one request costs a web process that has
# served small classifications before (its model loaded).
PROBE = """
import json, sys, django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from bench.bench_memory import probe
print(json.dumps(probe(sys.argv[1], sys.argv[2], sys.argv[3])))
"""


def _request(client: Client, case: str, directory: Path) -> Callable[[], Any]:
    kind, field, names = CASES[case]

    def call() -> None:
        files = []
        for index, name in enumerate(names):
            upload = io.BytesIO((directory / name).read_bytes())
            upload.name = f"{index}-{name}"
            files.append(upload)
        response = client.post(_PATHS[kind], {field: files if len(files) > 1 else files[0]})
        assert response.status_code in (200, 202), response.content[:300]

    return call


def probe(case: str, token: str, directory: str) -> float:
    """Return the peak growth of one request of the case, after small warm-up requests."""
    from django.conf import settings

    settings.ALLOWED_HOSTS = ["testserver"]
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    # A single image and a batch: the model's first run of each batch size sets up for it.
    _request(client, "classify, 64x64 PNG (baseline)", Path(directory))()
    _request(client, f"classify-batch, {BATCH} x 64x64 PNG", Path(directory))()
    return peak_growth_mb(_request(client, case, Path(directory)))


def _probed(case: str, token: str, directory: Path) -> float:
    from config.testing.processes import database_url_for_subprocess

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": database_url_for_subprocess(),
        "RATE_LIMIT_ENABLED": "false",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, case, token, str(directory)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return float(json.loads(completed.stdout.strip().splitlines()[-1]))


def run() -> None:
    if not settings.CLASSIFIER_MODEL_PATH.exists():
        call_command("classifier_export_model")
    if not os.access("/proc/self/clear_refs", os.W_OK):
        print("\nPeak memory per request: /proc/self/clear_refs is not writable here; skipped")
        return
    token = _token()
    with tempfile.TemporaryDirectory() as directory:
        _payloads(Path(directory))
        growth = {case: _probed(case, token, Path(directory)) for case in CASES}
    baseline = next(iter(growth.values()))
    print("\nPeak memory per request (resident set above its size before it; fresh process each)")
    print(f"{'case':<44}{'peak growth':>14}{'over baseline':>16}")
    for name, megabytes in growth.items():
        print(f"{name:<44}{megabytes:>11.0f} MB{megabytes - baseline:>13.0f} MB")
    worst = growth[f"classify-batch, {BATCH} x {SIDE}x{SIDE} PNG"]
    print(
        f"classify-batch of {BATCH} {SIDE}x{SIDE} PNGs: {worst:.0f} MB (goal <= {GOAL_BATCH_MB} MB)"
    )
