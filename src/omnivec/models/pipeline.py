"""Pipeline: an ordered list of modules, loaded from and saved to the sentence-transformers layout."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from omnivec._version import __version__
from omnivec.errors import ModelLoadError, ModelNotFoundError
from omnivec.models.hub import MODEL_MARKER_FILES, HubOptions, resolve_model_dir
from omnivec.modules.base import Module, module_class_for
from omnivec.modules.router import Router
from omnivec.modules.transformer import Transformer

logger = logging.getLogger(__name__)

MODEL_CONFIG_FILE = "config_sentence_transformers.json"


def load_options(
    *, dtype: Any, trust_remote_code: bool, model_kwargs: dict[str, Any] | None,
    tokenizer_kwargs: dict[str, Any] | None, config_kwargs: dict[str, Any] | None,
) -> dict[str, Any]:
    """The model-wide options every module's ``load`` receives."""
    remote = {"trust_remote_code": True} if trust_remote_code else {}
    return {
        "dtype": dtype,
        "model_kwargs": {**remote, **(model_kwargs or {})},
        "tokenizer_kwargs": {**remote, **(tokenizer_kwargs or {})},
        "config_kwargs": {**remote, **(config_kwargs or {})},
    }


class Pipeline(torch.nn.Sequential):
    """Modules applied in order to a features dict; base of Embedder and CrossEncoder."""

    model_type = "SentenceTransformer"

    def _set_prompts(self, model_config: dict[str, Any], prompts: dict[str, str] | None,
                     default_prompt_name: str | None) -> None:
        """Saved prompts, overridden by the caller's."""
        self.prompts: dict[str, str] = {**(model_config.get("prompts") or {}), **(prompts or {})}
        self.default_prompt_name = default_prompt_name or model_config.get("default_prompt_name")
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ValueError(f"default_prompt_name {self.default_prompt_name!r} is not among the prompts "
                             f"{sorted(self.prompts)}.")

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise ValueError(f"prompt_name {name!r} is not among this model's prompts {sorted(self.prompts)}.")
        return self.prompts[name]

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        for module in self:
            features = module(features)
        return features

    # -- loading ----------------------------------------------------------------------------------
    @staticmethod
    def read_folder(
        name_or_path: str | os.PathLike, hub: HubOptions, load_options: dict[str, Any]
    ) -> tuple[Path, list[Module] | None, dict[str, Any]]:
        """Resolve a folder and load its modules.json modules and model config.

        Returns ``(folder, modules, model_config)``; ``modules`` is None for a plain Hugging Face
        checkpoint (config.json without modules.json), which the caller completes with its defaults.
        """
        folder = resolve_model_dir(name_or_path, hub)
        model_config = _read_json(folder / MODEL_CONFIG_FILE) if (folder / MODEL_CONFIG_FILE).is_file() else {}
        if (folder / "modules.json").is_file():
            return folder, _load_modules(folder, load_options), model_config
        if (folder / "config.json").is_file():
            return folder, None, model_config
        raise ModelNotFoundError(
            f"Model folder {str(folder)!r} holds neither {' nor '.join(MODEL_MARKER_FILES)}: it is not a "
            "sentence-transformers or Hugging Face model folder."
        )

    # -- saving -----------------------------------------------------------------------------------
    def save_modules(self, path: str | os.PathLike, model_config: dict[str, Any]) -> None:
        """Write every module plus modules.json and config_sentence_transformers.json into ``path``."""
        import transformers

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for index, (name, module) in enumerate(self._modules.items()):
            if index == 0 and module.save_in_root:
                subfolder = ""
            else:
                subfolder = f"{index}_{type(module).__name__}"
            target = folder / subfolder
            target.mkdir(parents=True, exist_ok=True)
            module.save(target)
            entries.append({"idx": index, "name": name, "path": subfolder, "type": module.st_type})
        with open(folder / "modules.json", "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
        config = {
            "model_type": self.model_type,
            "__version__": {"omnivec": __version__, "transformers": transformers.__version__,
                            "pytorch": torch.__version__},
            **model_config,
        }
        with open(folder / MODEL_CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)

    # -- shared helpers -------------------------------------------------------------------------
    @property
    def transformer(self) -> Transformer:
        """The input Transformer (for a Router: the default route's)."""
        first = self[0] if len(self) else None
        if isinstance(first, Router):
            first = first.route(None, None)[0]
        if not isinstance(first, Transformer):
            raise TypeError(f"This {type(self).__name__} does not start with a Transformer module.")
        return first

    @property
    def tokenizer(self) -> Any:
        return self.transformer.tokenizer

    @property
    def max_seq_length(self) -> int:
        return self.transformer.max_seq_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        self.transformer.max_seq_length = int(value)

    def modules_of(self, cls: type[Module]) -> Iterable[Module]:
        return (m for m in self if isinstance(m, cls))

    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for tensor in self.parameters():
            if tensor.is_floating_point():
                return tensor.dtype
        return torch.float32


def default_device() -> str:
    """cuda, then mps, then cpu: the fastest device torch can see."""
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{str(path)!r} is not valid JSON: {exc}") from None


def _load_modules(folder: Path, load_options: dict[str, Any]) -> list[Module]:
    entries = _read_json(folder / "modules.json")
    if not isinstance(entries, list) or not entries:
        raise ModelLoadError(f"{str(folder / 'modules.json')!r} must be a non-empty JSON list of modules.")
    modules: list[Module] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
            raise ModelLoadError(f"modules.json entry {position} in {str(folder)!r} needs 'type' and 'path': {entry!r}")
        subfolder = (folder / entry["path"]).resolve()
        if folder.resolve() not in (subfolder, *subfolder.parents):
            raise ModelLoadError(f"modules.json entry {position} path {entry['path']!r} points outside {str(folder)!r}.")
        cls = module_class_for(entry["type"])
        modules.append(cls.load(subfolder, **load_options))
    return modules
