"""The classifier: one photo and a batch of 32 through the ONNX model, and a process's memory."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.management import call_command
from PIL import Image

from bench.harness import compare, report

# A full-HD picture, and the 12-megapixel one a phone camera takes.
PHOTO_SIZES = {"1920x1080": (1920, 1080), "4032x3024": (4032, 3024)}
BATCH = 32
GOAL_SIZE = "1920x1080"
GOAL_IMAGE_MS = 12
GOAL_BATCH_MS = 400
GOAL_RSS_MB = 350

# Run in a fresh interpreter: what a web or worker process holds once it has classified.
RSS_PROBE = """
import json, django
django.setup()
from classifier.chain import classify_with_failover, probe_image


def status():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return {name: int(fields[name].split()[0]) // 1024 for name in ("VmRSS", "VmHWM")}


before = status()
classify_with_failover([probe_image()])
once = status()
classify_with_failover([probe_image() for _ in range(32)])
print(json.dumps({"before": before, "once": once, "batch": status()}))
"""


def _photo_jpeg(size: tuple[int, int]) -> bytes:
    """Return a JPEG of that size with a photo's fine-grained texture (which costs decoding)."""
    gradient = Image.linear_gradient("L").resize(size)
    channels = [
        Image.blend(gradient.rotate(angle, expand=False), Image.effect_noise(size, 24), 0.3)
        for angle in (0, 90, 180)
    ]
    buffer = io.BytesIO()
    Image.merge("RGB", channels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _opened(jpeg: bytes, count: int) -> Callable[[], list[Image.Image]]:
    # Each call gets fresh, undecoded images, as the pipeline hands them over.
    return lambda: [Image.open(io.BytesIO(jpeg)) for _ in range(count)]


def _single(jpeg: bytes) -> dict[str, Callable[[], Any]]:
    from classifier.chain import classify_with_failover
    from classifier.preprocessing import image_array
    from classifier.providers.onnx import OnnxProvider

    one, provider = _opened(jpeg, 1), OnnxProvider()
    return {
        "decode + preprocess only (baseline)": lambda: image_array(one()[0]),
        "onnx provider, 1 photo": lambda: provider.classify(one()),
        "failover chain, 1 photo (health recorded)": lambda: classify_with_failover(one()),
    }


def _batched(photos: dict[str, bytes]) -> dict[str, Callable[[], Any]]:
    from classifier.chain import classify_with_failover
    from classifier.providers.onnx import OnnxProvider

    provider = OnnxProvider()
    small, large = (_opened(jpeg, BATCH) for jpeg in photos.values())
    small_name, large_name = photos
    return {
        f"{BATCH} x {small_name}, one at a time (baseline)": lambda: [
            provider.classify([image]) for image in small()
        ],
        f"{BATCH} x {small_name}, one batch, failover chain": lambda: classify_with_failover(
            small()
        ),
        f"{BATCH} x {large_name}, one batch, failover chain": lambda: classify_with_failover(
            large()
        ),
    }


def _memory() -> dict[str, dict[str, int]]:
    """Return a fresh process's memory (MB) before and after it loaded the model and classified."""
    completed = subprocess.run(
        [sys.executable, "-c", RSS_PROBE],
        cwd=settings.BASE_DIR,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "LOG_LEVEL": "WARNING",
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def run() -> None:
    if not settings.CLASSIFIER_MODEL_PATH.exists():
        call_command("classifier_export_model")
    photos = {name: _photo_jpeg(size) for name, size in PHOTO_SIZES.items()}
    print(
        f"ONNX Runtime threads: {settings.CLASSIFIER_ONNX_THREADS}; photos: "
        + ", ".join(f"{name} JPEG {len(jpeg) / 1e6:.1f} MB" for name, jpeg in photos.items())
    )
    per_photo: dict[str, float] = {}
    for name, jpeg in photos.items():
        results = compare(_single(jpeg), warmup=5, rounds=15, per_round=5)
        report(f"Classifier, one {name} photo (decode, preprocess, infer)", results)
        per_photo[name] = results[2].median_us / 1000
    batches = compare(_batched(photos), warmup=1, rounds=5, per_round=1)
    report(f"Classifier, a batch of {BATCH} photos", batches)
    memory = _memory()
    print()
    # The goals are for full-HD photos; a 12-megapixel one is shown for scale.
    for name, milliseconds in per_photo.items():
        goal = f" (goal <= {GOAL_IMAGE_MS} ms)" if name == GOAL_SIZE else ""
        print(f"one {name} photo, chain: {milliseconds:.1f} ms{goal}")
    for result in batches[1:]:
        goal = f" (goal <= {GOAL_BATCH_MS} ms)" if GOAL_SIZE in result.name else ""
        print(f"{result.name}: {result.median_us / 1000:.0f} ms{goal}")
    before, once, batch = memory["before"], memory["once"], memory["batch"]
    print(
        f"a fresh process, model loaded, one photo classified: {once['VmRSS']} MB resident "
        f"(goal <= {GOAL_RSS_MB} MB; {before['VmRSS']} MB before loading); after a batch of "
        f"{BATCH}: {batch['VmRSS']} MB resident, {batch['VmHWM']} MB peak"
    )
