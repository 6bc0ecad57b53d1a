"""The exported EfficientNet-Lite0 model: its metadata and one ONNX Runtime session per process."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import structlog

from classifier.errors import ProviderError

logger = structlog.get_logger("vantage.classifier")

MODEL_NAME = "efficientnet-lite0"
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@dataclass(frozen=True)
class LoadedModel:
    """An inference session and the metadata of the file it was loaded from."""

    session: ort.InferenceSession
    metadata: dict[str, Any]

    @property
    def model_id(self) -> str:
        """Return the name@version that classifications carry, e.g. `efficientnet-lite0@0.1.0`."""
        return f"{self.metadata['name']}@{self.metadata['version']}"

    def logits(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Return the model's logits for a NCHW batch."""
        (logits,) = self.session.run([OUTPUT_NAME], {INPUT_NAME: batch})
        return np.asarray(logits, dtype=np.float32)


def metadata_path(model_path: Path) -> Path:
    """Return where the metadata of a model file is kept: beside it, ending in .json."""
    return model_path.with_suffix(".json")


def model_metadata(model_path: Path) -> dict[str, Any]:
    """Return the metadata written when the model was exported."""
    try:
        metadata = json.loads(metadata_path(model_path).read_text())
    except FileNotFoundError as exc:
        raise ProviderError(
            f"The model metadata {metadata_path(model_path)} is missing: "
            "run `manage.py classifier_export_model`.",
            permanent=True,
        ) from exc
    except (OSError, ValueError) as exc:
        raise ProviderError(f"The model metadata cannot be read: {exc}", permanent=True) from exc
    if not isinstance(metadata, dict) or not {"name", "version", "sha256"} <= metadata.keys():
        raise ProviderError("The model metadata lacks name, version or sha256.", permanent=True)
    return metadata


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Without the arena the session keeps about 160 MB resident instead of 450:
    # each process pays for one model, not for the largest batch it ever ran.
    options.enable_cpu_mem_arena = False
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def _load(model_path: Path, threads: int) -> LoadedModel:
    metadata = model_metadata(model_path)
    try:
        content = model_path.read_bytes()
    except FileNotFoundError as exc:
        raise ProviderError(
            f"The model file {model_path} is missing: run `manage.py classifier_export_model`.",
            permanent=True,
        ) from exc
    # The bytes checked are the bytes loaded: a file replaced half-way is never run.
    if hashlib.sha256(content).hexdigest() != metadata["sha256"]:
        raise ProviderError(
            f"The model file {model_path} does not match the SHA-256 in its metadata.",
            permanent=True,
        )
    session = ort.InferenceSession(
        content, sess_options=_session_options(threads), providers=["CPUExecutionProvider"]
    )
    logger.info("classifier_model_loaded", path=str(model_path), sha256=metadata["sha256"])
    return LoadedModel(session=session, metadata=metadata)


_models: dict[tuple[Path, int], LoadedModel] = {}
_models_lock = threading.Lock()


def loaded_model(model_path: Path, threads: int) -> LoadedModel:
    """Return this process's session of the model file, loading it on first use."""
    key = (model_path, threads)
    model = _models.get(key)
    if model is not None:
        return model
    with _models_lock:
        if key not in _models:
            _models[key] = _load(model_path, threads)
        return _models[key]
