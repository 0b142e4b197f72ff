"""LoadOptions: the settings a model is loaded with, one frozen object from the model class down to every module."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, get_args

from omnivec.errors import ConfigError
from omnivec.loading.hub import HubOptions

if TYPE_CHECKING:
    import torch

Backend = Literal["torch", "onnx", "openvino"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# What a model class accepts: a runtime, its int8 variant (made for this CPU on first use), or "auto" (the variant
# `omnivec bench-backends` measured best here). models/backend_choice.py turns the last three into a runtime.
BackendName = Literal["torch", "onnx", "openvino", "onnx-int8", "openvino-int8", "auto"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)

KwargsField = Literal["model_kwargs", "tokenizer_kwargs", "config_kwargs"]
KWARGS_FIELDS: tuple[KwargsField, ...] = get_args(KwargsField)


@dataclass(frozen=True)
class LoadOptions:
    """How a model folder becomes modules: ``Module.load(folder, options)`` receives this whole.

    Attributes:
        dtype: weights dtype (``"float32"``, ``"float16"``, ``"bfloat16"``, a ``torch.dtype``, ``"auto"``; None: the
            transformers default).
        trust_remote_code: the caller's consent to run a checkpoint's own code (never taken from a config file).
        model_kwargs / tokenizer_kwargs / config_kwargs: passed to the matching ``from_pretrained`` (read-only);
            tokenizer_kwargs also reach a multimodal processor.
        max_seq_length: a token limit that overrides the saved one (None: the saved one).
        backend: what runs the Transformer module: ``"torch"``, ``"onnx"`` (ONNX Runtime) or ``"openvino"``; the
            backend's own ``model_kwargs`` (``file_name``, ``provider``, ``export``) are read by it. A model class
            also takes ``"onnx-int8"``, ``"openvino-int8"`` and ``"auto"``, and resolves them to one of these
            before any module loads (``runtime`` and ``int8`` name the parts).
        hub: where a Hub id is fetched from (revision, token, cache folder, offline).
    """

    dtype: str | torch.dtype | None = None
    trust_remote_code: bool = False
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    tokenizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    config_kwargs: Mapping[str, Any] = field(default_factory=dict)
    max_seq_length: int | None = None
    backend: BackendName = "torch"
    hub: HubOptions = field(default_factory=HubOptions)

    def __post_init__(self) -> None:
        if self.backend not in BACKEND_NAMES:
            raise ConfigError(f"backend {self.backend!r} is not supported; choose one of {list(BACKEND_NAMES)}.")
        for name in KWARGS_FIELDS:
            value = getattr(self, name)
            if value is None:
                value = {}
            if not isinstance(value, Mapping):
                raise ConfigError(f"{name} must be a dict of keyword arguments, got {type(value).__name__}.")
            # A copy behind a read-only view: the caller's dict may change later, these options may not.
            object.__setattr__(self, name, MappingProxyType(dict(value)))
        length = self.max_seq_length
        if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
            raise ConfigError(f"max_seq_length must be None or a positive integer, got {length!r}.")
        if not isinstance(self.hub, HubOptions):
            raise ConfigError(f"hub must be a HubOptions, got {type(self.hub).__name__}.")
        # The hub settings name the backend's export file, so that a Hub download fetches that one file.
        file_name = self.model_kwargs.get("file_name") if self.runtime != "torch" else None
        if file_name is not None and not isinstance(file_name, str):
            raise ConfigError(f"model_kwargs['file_name'] must be a string, got {type(file_name).__name__}.")
        if self.runtime != "torch" and self.dtype is not None and str(self.dtype).removeprefix("torch.") != "float32":
            raise ConfigError(f"backend {self.backend!r} runs float32 models; got dtype={self.dtype!r}.")
        backend_file = file_name
        object.__setattr__(self, "hub", replace(self.hub, backend=self.runtime, backend_file=backend_file))

    @property
    def runtime(self) -> Backend:
        """The runtime of ``backend``: ``"onnx"`` for ``"onnx-int8"``; ``"torch"`` for ``"auto"`` until resolved."""
        if self.backend in ("onnx", "onnx-int8"):
            return "onnx"
        if self.backend in ("openvino", "openvino-int8"):
            return "openvino"
        return "torch"

    @property
    def int8(self) -> bool:
        """Whether the backend is an int8 variant (``"onnx-int8"``, ``"openvino-int8"``)."""
        return self.backend.endswith("-int8")

    def from_pretrained_kwargs(self, name: KwargsField) -> dict[str, Any]:
        """A fresh dict of one kwargs field, with ``trust_remote_code=True`` where the caller allowed it."""
        remote = {"trust_remote_code": True} if self.trust_remote_code else {}
        return {**remote, **getattr(self, name)}
