"""The Module protocol: a building block that owns its JSON config keys, its save and its load.

A model is an ordered list of modules; each reads and writes a ``features`` dict
(``input_ids`` -> ``token_embeddings`` -> ``sentence_embedding`` ...). Config files and type names
follow sentence-transformers, so folders move freely between the two libraries.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import torch

from omnivec.errors import ModelLoadError
from omnivec.loading.options import LoadOptions

logger = logging.getLogger(__name__)

_REGISTRY: dict[str, type[Module]] = {}


class Module(torch.nn.Module):
    """Base class of omnivec's building blocks.

    Subclasses list their JSON config keys in ``config_keys``; ``get_config_dict`` and ``from_config``
    round-trip them. ``st_type`` is the ``modules.json`` type written on save (a sentence-transformers
    class path, so that sentence-transformers can load omnivec's folders).
    """

    config_file_name: ClassVar[str] = "config.json"
    config_keys: ClassVar[tuple[str, ...]] = ()
    # Keys that sentence-transformers writes but that do not change this module's numbers.
    ignored_config_keys: ClassVar[frozenset[str]] = frozenset()
    # Old key names -> current ones, renamed silently on load.
    config_key_renames: ClassVar[dict[str, str]] = {}
    save_in_root: ClassVar[bool] = False
    st_type: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.st_type:
            register_module(cls)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- config -----------------------------------------------------------------------------------
    def get_config_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    @classmethod
    def read_config(cls, folder: Path) -> dict[str, Any]:
        """Read this module's JSON config from ``folder`` (empty when the module has none)."""
        path = folder / cls.config_file_name
        if not path.is_file():
            return {}
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"{cls.__name__} config {str(path)!r} is not valid JSON: {exc}") from None
        if not isinstance(config, dict):
            raise ModelLoadError(f"{cls.__name__} config {str(path)!r} must hold a JSON object.")
        for old, new in cls.config_key_renames.items():
            if old in config and new not in config:
                config[new] = config.pop(old)
        return config

    @classmethod
    def split_config(cls, config: dict[str, Any], folder: Path) -> dict[str, Any]:
        """Keep the keys this module understands; say which others are ignored (never silently)."""
        known = {k: v for k, v in config.items() if k in cls.config_keys}
        unknown = sorted(set(config) - set(cls.config_keys) - cls.ignored_config_keys)
        if unknown:
            logger.warning("%s config in %s: ignoring keys omnivec does not use: %s", cls.__name__, folder, unknown)
        return known

    def save_config(self, folder: Path) -> None:
        with open(folder / self.config_file_name, "w", encoding="utf-8") as f:
            json.dump(self.get_config_dict(), f, indent=4)

    # -- save / load ------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write this module's config (and weights, if any) into ``folder``."""
        self.save_config(folder)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Module:
        """Build the module from a local folder. ``options`` are the model's load settings: a module without
        weights from transformers (this default, Pooling, Normalize...) has none to apply."""
        return cls(**cls.split_config(cls.read_config(folder), folder))

    def save_weights(self, folder: Path) -> None:
        from safetensors.torch import save_model

        save_model(self, str(folder / "model.safetensors"))

    def load_weights(self, folder: Path) -> None:
        """Load ``model.safetensors`` (or a legacy ``pytorch_model.bin``) into this module, strictly."""
        safetensors_path, bin_path = folder / "model.safetensors", folder / "pytorch_model.bin"
        try:
            if safetensors_path.is_file():
                from safetensors.torch import load_file

                state = load_file(str(safetensors_path))
                source = safetensors_path
            elif bin_path.is_file():
                state = torch.load(bin_path, map_location="cpu", weights_only=True)
                source = bin_path
            else:
                raise ModelLoadError(
                    f"{type(self).__name__} in {str(folder)!r} has no weights: looked for model.safetensors "
                    "and pytorch_model.bin."
                )
        except ModelLoadError:
            raise
        except Exception as exc:  # safetensors and pickle raise many types for a damaged file
            raise ModelLoadError(f"Weights file in {str(folder)!r} is unreadable or corrupt: {exc}") from None
        try:
            self.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"Weights in {str(source)!r} do not fit {type(self).__name__}: {exc}") from None


def register_module(cls: type[Module], *aliases: str) -> None:
    """Make ``cls`` loadable from modules.json by its sentence-transformers and omnivec type names."""
    for name in (cls.st_type, f"{cls.__module__}.{cls.__name__}", *aliases):
        _REGISTRY[name] = cls
    _REGISTRY[cls.__name__] = cls


def module_class_for(type_name: str) -> type[Module]:
    """The module class behind a modules.json ``type`` such as ``sentence_transformers.models.Pooling``.

    sentence-transformers has moved its classes between packages across versions
    (``models.Pooling``, ``sentence_transformer.modules.pooling.Pooling``, ...): any of its paths
    resolves by class name.
    """
    import omnivec.modules  # noqa: F401  (registers the built-in modules)

    if type_name in _REGISTRY:
        return _REGISTRY[type_name]
    if type_name.startswith(("sentence_transformers.", "omnivec.")):
        class_name = type_name.rsplit(".", 1)[-1]
        if class_name in _REGISTRY:
            return _REGISTRY[class_name]
    supported = sorted({cls.__name__ for cls in _REGISTRY.values()})
    raise ModelLoadError(
        f"modules.json names module type {type_name!r}, which omnivec does not provide. "
        f"Supported module types: {', '.join(supported)}. Custom code modules are not loaded."
    )
