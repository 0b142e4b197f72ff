"""Dual encoders (CLIP, SigLIP, CLAP) on a backend: one exported graph per modality (a tower), each computing what
the torch path's modality method computes, e.g. ``get_image_features(pixel_values).pooler_output`` (the projected
vector), from the processor's features; its files are named by ``base.tower_file_name``."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from omnivec.errors import ModelLoadError
from omnivec.modules.backends.base import BackendModel, tower_file_name
from omnivec.modules.processing import call_processor

# Two rows of unequal length (text) or size (images, audio): padding and resizing are part of what is traced.
_EXAMPLE_TEXTS = ["an example input to export", "a second, longer example input to export the model"]
_EXAMPLE_IMAGE_SHAPES = ((40, 56, 3), (64, 36, 3))
_EXAMPLE_AUDIO_SECONDS = (1.0, 0.5)


@dataclass(frozen=True)
class Tower:
    """One modality's graph of a dual encoder.

    Attributes:
        modality: ``text``, ``image`` or ``audio``: the prefix of its files (``image_model.onnx``).
        method: the torch model's method it computes (the modality config's ``method``).
        output: the field read from that method's result (``pooler_output``); None when it returns the tensor.
        examples: the processor's features for a small example batch (called only to export).
    """

    modality: str
    method: str
    output: str | None
    examples: Callable[[], Mapping[str, Any]]

    @property
    def output_name(self) -> str:
        """The graph's output: ``text_embeds``, ``image_embeds``, ``audio_embeds`` (Hugging Face's names)."""
        return f"{self.modality}_embeds"

    def file_name(self, name: str) -> str:
        return tower_file_name(name, self.modality)

    def dynamic_axes(self) -> dict[int, str]:
        """Axes that vary between calls: batch, and sequence for token inputs (pixels and audio features have the
        processor's fixed size)."""
        return {0: "batch", 1: "sequence"} if self.modality == "text" else {0: "batch"}

    def describe(self, model: Any) -> str:
        return f"the {self.modality} tower ({self.method}) of {type(model).__name__}"


def model_class(auto_class: str, config: Any) -> Any:
    """The transformers class ``auto_class`` (``AutoModel``) builds for ``config``, without building it: its methods
    and return types say which method embeds each modality (``processing.infer_modality_config``)."""
    import transformers

    mapping = getattr(transformers, auto_class)._model_mapping
    try:
        return mapping[type(config)]
    except KeyError:
        raise ModelLoadError(f"transformers' {auto_class} has no model class for {type(config).__name__}; save the "
                             "model with a modality config, or load it with backend='torch'.") from None


def towers_of(modality_config: Mapping[str, Mapping[str, Any]], processor: Any) -> list[Tower]:
    """The towers of a modality config that ``base.check_supported`` accepted, with example inputs from
    ``processor``."""
    return [Tower(modality, spec["method"], spec.get("method_output_name"),
                  lambda modality=modality: example_features(processor, modality))
            for modality, spec in modality_config.items()]


def example_features(processor: Any, modality: str) -> dict[str, Any]:
    """The processor's features for two example texts, images (noise of two sizes) or tones (at its sampling rate)."""
    if modality == "text":
        values: list[Any] = list(_EXAMPLE_TEXTS)
    elif modality == "image":
        rng = np.random.default_rng(0)
        values = [rng.integers(0, 256, shape, dtype=np.uint8) for shape in _EXAMPLE_IMAGE_SHAPES]
    else:
        rate = int(getattr(getattr(processor, "feature_extractor", processor), "sampling_rate", None) or 16000)
        values = [np.sin(np.arange(int(rate * s), dtype=np.float32) * (2 * np.pi * 440 / rate)).astype(np.float32)
                  for s in _EXAMPLE_AUDIO_SECONDS]
    return call_processor(processor, modality, values)


def tower_inputs(model: torch.nn.Module, tower: Tower) -> dict[str, torch.Tensor]:
    """The example features the tower's method takes (tensors only), in the processor's order: the graph's inputs."""
    method = getattr(model, tower.method, None)
    if method is None:
        raise ModelLoadError(f"Cannot export {tower.describe(model)}: the model has no method {tower.method!r}.")
    accepted = set(inspect.signature(method).parameters)
    inputs = {k: v for k, v in tower.examples().items() if k in accepted and isinstance(v, torch.Tensor)}
    if not inputs:
        raise ModelLoadError(f"Cannot export {tower.describe(model)}: the processor's {tower.modality} features "
                             f"({', '.join(tower.examples())}) include none of its inputs ({', '.join(accepted)}).")
    return inputs


class TowerOutput(torch.nn.Module):
    """A tower's method with its inputs as positional tensors (in ``names``' order) and its one tensor as output: what
    the exporters trace."""

    def __init__(self, model: torch.nn.Module, tower: Tower, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.method = tower.method
        self.field = tower.output_name  # openvino.py names the traced output with it
        self._output = tower.output
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        result = getattr(self.model, self.method)(**dict(zip(self.names, tensors, strict=True)), return_dict=True)
        return result if self._output is None else result[self._output]


class BackendTowers:
    """A dual encoder's graphs, one backend model per modality, under the Hugging Face ``config``."""

    def __init__(self, config: Any, towers: Mapping[str, BackendModel]) -> None:
        self.config = config
        self.towers = dict(towers)

    def __call__(self, modality: str, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The vectors of one modality's batch: its tower's graph on the features it declares."""
        tower = self.towers.get(modality)
        if tower is None:
            raise ModelLoadError(f"This backend model has towers for {sorted(self.towers)}, not {modality!r}.")
        output = tower(**inputs).embeds
        assert output is not None, "a tower's backend model always sets embeds"
        return output

    def __repr__(self) -> str:
        return f"BackendTowers({', '.join(f'{m}={t!r}' for m, t in self.towers.items())})"
