"""The contract a backend model keeps: what ``Transformer.forward`` reads from a Hugging Face model, nothing more."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from omnivec.errors import ConfigError, ModelLoadError

# Tasks a backend can run so far, and the output each gives (the field Transformer.forward reads).
BACKEND_TASKS: dict[str, str] = {"feature-extraction": "last_hidden_state", "sequence-classification": "logits"}
# The token inputs a text model may take; a backend feeds those its graph declares.
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Modalities a dual encoder's tower may embed on a backend, each through get_<modality>_features.
TOWER_MODALITIES = ("text", "image", "audio")
# model_kwargs keys a backend reads itself (sentence-transformers' names); never passed to from_pretrained.
BACKEND_KWARGS = frozenset({"file_name", "provider", "export", "ov_config"})


class BackendModel(Protocol):
    """A model run by another runtime: ``config`` is the Hugging Face config; a call with feature tensors (it feeds
    those its graph declares) returns an object with ``last_hidden_state`` (feature-extraction), ``logits``
    (sequence-classification) or, for one tower of a dual encoder, ``embeds``; float32 on CPU."""

    config: Any

    def __call__(self, **inputs: torch.Tensor) -> Any: ...


@dataclass(frozen=True)
class BackendOutput:
    """What a backend call returns: the one field its task produces is set."""

    last_hidden_state: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeds: torch.Tensor | None = None  # a tower's vectors (CLIP's get_image_features(...).pooler_output)


@dataclass(frozen=True)
class BackendSettings:
    """The backend's own keys of ``model_kwargs`` (sentence-transformers' names), checked.

    Attributes:
        file_name: the exported file in the backend's subfolder (``model_O3.onnx``; an ``onnx/`` prefix is allowed).
        provider: the runtime's device (ONNX Runtime execution provider, OpenVINO device).
        export: export again even when the file exists.
        ov_config: OpenVINO compile settings (a dict, or a JSON file's path), as sentence-transformers takes them.
    """

    file_name: str | None = None
    provider: str | None = None
    export: bool = False
    ov_config: Mapping[str, Any] | str | None = None

    @classmethod
    def from_model_kwargs(cls, model_kwargs: Mapping[str, Any]) -> BackendSettings:
        file_name, provider, export = (model_kwargs.get(k) for k in ("file_name", "provider", "export"))
        for name, value in (("file_name", file_name), ("provider", provider)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"model_kwargs[{name!r}] must be a string, got {type(value).__name__}.")
        if not isinstance(export, bool | None):
            raise ConfigError(f"model_kwargs['export'] must be True or False, got {export!r}.")
        ov_config = model_kwargs.get("ov_config")
        if ov_config is not None and not isinstance(ov_config, Mapping | str):
            raise ConfigError(f"model_kwargs['ov_config'] must be a dict or a JSON file path, got {type(ov_config).__name__}.")
        return cls(file_name=file_name, provider=provider, export=bool(export), ov_config=ov_config)


def tower_file_name(file_name: str, modality: str | None) -> str:
    """The export file of one modality's graph (tower): ``file_name`` itself for a text model (``modality`` None),
    else the name prefixed with the modality: ``model.onnx`` -> ``image_model.onnx``, ``openvino_model.xml`` ->
    ``text_openvino_model.xml``, ``onnx/model_qint8_avx512_vnni.onnx`` -> ``onnx/audio_model_qint8_avx512_vnni.onnx``
    (a folder part stays in front). So ``model_kwargs={"file_name": X}`` names one variant of every tower."""
    if modality is None:
        return file_name
    folder, _, name = file_name.rpartition("/")
    return f"{folder}/{modality}_{name}" if folder else f"{modality}_{name}"


def check_supported(backend: str, task: str, text_only: bool,
                    modality_config: Mapping[str, Mapping[str, Any]] | None = None) -> bool:
    """Raise unless the backend can run this Transformer: a text model for feature extraction or classification
    (returns False: one graph), or a dual encoder (CLIP, SigLIP, CLAP) whose every modality runs its own tower
    method, ``get_<modality>_features`` (returns True: one graph per modality)."""
    if task in BACKEND_TASKS and text_only:
        return False
    towers = task == "feature-extraction" and bool(modality_config) and all(
        modality in TOWER_MODALITIES and spec.get("method") == f"get_{modality}_features"
        and isinstance(spec.get("method_output_name"), str | None)
        for modality, spec in (modality_config or {}).items())
    if towers:
        return True
    what = f"transformer_task {task!r}"
    if task in BACKEND_TASKS and modality_config:
        methods = ", ".join(f"{m} through {spec.get('method')!r}" for m, spec in modality_config.items())
        what += f" with non-text inputs ({methods})"
    raise ModelLoadError(
        f"backend {backend!r} cannot run this model ({what}): only text models for {' and '.join(BACKEND_TASKS)} "
        f"and the towers of dual encoders ({', '.join(f'get_{m}_features' for m in TOWER_MODALITIES)}: CLIP, "
        "SigLIP, CLAP) are supported by this backend so far; load it with backend='torch'."
    )


def export_inputs(tokenizer: Any) -> dict[str, torch.Tensor]:
    """Example token inputs (2 rows of unequal length, padded) to trace a graph for export."""
    enc = tokenizer(["an example input to export", "a second, longer example input to export the model"],
                    padding=True, return_tensors="pt")
    return {k: v for k, v in enc.items() if k in TOKEN_INPUTS}


ModelLoader = Callable[[], torch.nn.Module]


class SingleOutput(torch.nn.Module):
    """The Hugging Face model with the token inputs as named arguments and the task's one tensor as output: what
    the exporters trace (ONNX, OpenVINO)."""

    def __init__(self, model: torch.nn.Module, field: str) -> None:
        super().__init__()
        self.model = model
        self.field = field

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **extra)[self.field]


EXPORT_SUBFOLDERS = {"onnx": "onnx", "openvino": "openvino"}


def export_files(folder: Path, backend: str, file_name: str, modalities: Sequence[str] | None = None) -> list[Path]:
    """The files of one export in a model folder, in sentence-transformers' layout: ``onnx/<file_name>``, or
    ``openvino/<file_name>`` with its ``.bin`` weights; with ``modalities`` (a dual encoder's towers), those of each
    tower (``onnx/text_<file_name>``, ``onnx/image_<file_name>``)."""
    name = file_name.removeprefix(f"{EXPORT_SUBFOLDERS[backend]}/")
    paths = [folder / EXPORT_SUBFOLDERS[backend] / tower_file_name(name, modality)
             for modality in (modalities if modalities is not None else [None])]
    return paths if backend == "onnx" else [file for path in paths for file in (path, path.with_suffix(".bin"))]


# The files of a model's torch weights (sentence-transformers and transformers save one of these).
TORCH_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                      "pytorch_model.bin.index.json")


def has_torch_weights(folder: Path) -> bool:
    """Whether ``folder`` holds the torch weights (else only exports, e.g. a folder of ONNX files)."""
    return any((folder / name).is_file() for name in TORCH_WEIGHT_FILES)
