"""Build a Transformer's model on a non-torch backend (ONNX Runtime, OpenVINO) from a model folder, and copy what
such a model saves: its source folder's torch weights and export folders."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from omnivec.errors import ConfigError
from omnivec.modules.backends.base import BackendModel, BackendSettings
from omnivec.modules.backends.towers import BackendTowers, Tower, towers_of

# A backend's export folders (sentence-transformers' names), kept when a model loaded with a backend is saved.
EXPORT_FOLDERS = ("onnx", "openvino")


def load_backend_model(backend: str, folder: Path, load_torch_model: Callable[[], torch.nn.Module], config: Any,
                       task: str, processor: Any, settings: BackendSettings,
                       tower_config: Mapping[str, Mapping[str, Any]] | None = None) -> BackendModel | BackendTowers:
    """The backend's model of ``folder`` (with ``tower_config``, a dual encoder's modality config: one graph per
    modality). ``load_torch_model`` builds the fp32 torch model an export is made from; it is called only when an
    export is missing, and once for all towers."""
    torch_model: list[torch.nn.Module] = []

    def model_loader() -> torch.nn.Module:
        if not torch_model:
            torch_model.append(load_torch_model())
        return torch_model[0]

    tokenizer = getattr(processor, "tokenizer", processor)

    def load(tower: Tower | None) -> BackendModel:
        if backend == "onnx":
            from omnivec.modules.backends.onnx import load_onnx

            return load_onnx(folder, model_loader, config, task, tokenizer, settings, tower=tower)
        if backend == "openvino":
            from omnivec.modules.backends.openvino import load_openvino

            return load_openvino(folder, model_loader, config, task, settings.file_name, settings.provider,
                                 tokenizer.model_input_names, ov_config=settings.ov_config, tower=tower)
        raise ConfigError(f"backend {backend!r} has no Transformer implementation.")

    if tower_config is None:
        return load(None)
    return BackendTowers(config, {tower.modality: load(tower) for tower in towers_of(tower_config, processor)})


def copy_model_files(source: Path, target: Path) -> None:
    """A backend model's saved form: the source folder's torch weights (if any) and export folders."""
    if source.resolve() == target.resolve():
        return
    for pattern in ("*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin"):
        for path in source.glob(pattern):
            shutil.copy2(path, target / path.name)
    for name in EXPORT_FOLDERS:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name, dirs_exist_ok=True)
