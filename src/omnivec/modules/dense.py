"""Dense: a linear layer plus activation on the sentence embedding (projection or score head)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from omnivec.errors import ModelLoadError
from omnivec.loading.options import LoadOptions
from omnivec.modules.base import Module

# sentence-transformers' default activation, one shared instance as its signature's default is
_TANH = torch.nn.Tanh()


class Dense(Module):
    """``activation(linear(x))`` applied to ``features[module_input_name]``.

    Args:
        in_features / out_features / bias: the linear layer's shape.
        activation_function: a torch module (default ``Tanh``; ``None`` for identity).
        module_input_name / module_output_name: feature keys read and written.
    """

    config_keys = ("in_features", "out_features", "bias", "activation_function", "module_input_name", "module_output_name")
    st_type = "sentence_transformers.models.Dense"

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation_function: torch.nn.Module | None = _TANH,
        module_input_name: str = "sentence_embedding",
        module_output_name: str | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features, self.bias = in_features, out_features, bias
        self.activation_function = activation_function if activation_function is not None else torch.nn.Identity()
        self.linear = torch.nn.Linear(in_features, out_features, bias=bias)
        self.module_input_name = module_input_name
        self.module_output_name = module_output_name or module_input_name

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        features[self.module_output_name] = self.activation_function(self.linear(features[self.module_input_name]))
        return features

    def get_embedding_dimension(self) -> int:
        return self.out_features

    def get_config_dict(self) -> dict[str, Any]:
        config = super().get_config_dict()
        config["activation_function"] = activation_path(self.activation_function)
        return config

    def save(self, folder: Path) -> None:
        self.save_config(folder)
        self.save_weights(folder)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Dense:
        config = cls.split_config(cls.read_config(folder), folder)
        if "activation_function" in config:
            config["activation_function"] = activation_from_path(config["activation_function"],
                                                                 f"Dense config in {str(folder)!r}")
        module = cls(**config)
        module.load_weights(folder)  # keys as sentence-transformers writes them: linear.*, activation_function.*
        return module


def activation_path(activation: object) -> str:
    """The class path a config stores for an activation (a torch module; as sentence-transformers writes it)."""
    cls = type(activation)
    return f"{cls.__module__}.{cls.__qualname__}"


def activation_from_path(path: str | None, where: str) -> torch.nn.Module:
    """Instantiate a ``torch.*`` activation class named in a config (``where`` says which); nothing else is
    imported, so a config file never runs custom code."""
    if path is None:
        return torch.nn.Identity()
    if not path.startswith("torch."):
        raise ModelLoadError(f"{where} names activation {path!r}; only torch.* activation modules are loaded "
                             "(a config file never runs custom code).")
    module_path, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_path), name)
    except (ImportError, AttributeError):
        raise ModelLoadError(f"{where} names unknown activation {path!r}.") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelLoadError(f"{where}: activation {path!r} is not a torch.nn.Module class.")
    return cls()
