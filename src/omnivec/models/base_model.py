"""BaseModel: the one loading path of Embedder and CrossEncoder, and their save.

A model is an ordered list of modules. BaseModel resolves a folder, Hub id or default model, reads
``modules.json`` and ``config_sentence_transformers.json`` (or asks the subclass for the default modules of a
plain Hugging Face checkpoint), merges prompts, places the model on a device, and writes the same layout back.
Subclasses add their task API and four hooks: ``_default_modules``, ``_assemble``, ``_configure`` and
``_model_config``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import torch

from omnivec._version import __version__
from omnivec.errors import ConfigError, InputError, ModelLoadError, ModelNotFoundError
from omnivec.loading.hub import MODEL_MARKER_FILES, hub_id_for, resolve_model_dir
from omnivec.loading.options import BACKENDS, LoadOptions
from omnivec.models.backend_choice import resolve_backend
from omnivec.models.model_card import write_model_card
from omnivec.models.multi_process import MultiProcessPool
from omnivec.models.st_methods import ModelMethods
from omnivec.modules.base import Module, module_class_for
from omnivec.modules.router import Router
from omnivec.modules.transformer import Transformer

logger = logging.getLogger(__name__)

MODEL_CONFIG_FILE = "config_sentence_transformers.json"
MODULES_FILE = "modules.json"


class BaseModel(ModelMethods, MultiProcessPool, torch.nn.Sequential):
    """Modules applied in order to a features dict; loaded from and saved to the sentence-transformers layout.

    Args:
        model_name_or_path: a local folder, a Hub id (a default model is found offline first: ``loading/``), or
            None to build from ``modules``.
        modules: the modules, when not loading.
        options: the load settings every module's ``load`` receives.
        device: where the model runs (default: the fastest device torch sees).
        prompts / default_prompt_name: the caller's prompts; they override the saved ones by name.
        config: the caller's model-config settings (a None value: not given); they win over the saved
            ``config_sentence_transformers.json`` and over what a plain checkpoint says.
    """

    model_type: ClassVar[str] = "SentenceTransformer"
    model_kind: ClassVar[str] = "embedder"  # what a model cache and a cached backend measurement file it under
    # A short name ("all-MiniLM-L6-v2") is read as this organization's Hub id, as in sentence-transformers.
    default_huggingface_organization: ClassVar[str | None] = None

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None,
        modules: Sequence[Module] | None,
        options: LoadOptions,
        *,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        if options.runtime != "torch":  # ONNX Runtime / OpenVINO run on the CPU
            if device is not None and torch.device(device).type != "cpu":  # checked before anything loads or exports
                raise ConfigError(f"backend {options.backend!r} runs on the CPU; got device={str(device)!r}.")
        given = {key: value for key, value in (config or {}).items() if value is not None}
        model_config: dict[str, Any] = dict(given)
        if model_name_or_path is not None:
            model_name_or_path = hub_id_for(model_name_or_path, self.default_huggingface_organization)
            modules, model_config, options = self._load_on_backend(model_name_or_path, options, given, device)
        if options.runtime != "torch":
            device = "cpu"  # the features stay where the backend computes them
        super().__init__(*self._assemble(modules or [], model_config))
        self.name_or_path = str(model_name_or_path) if model_name_or_path is not None else None
        if options.max_seq_length is not None and len(self):
            self.max_seq_length = options.max_seq_length
        self._set_prompts(model_config, prompts, default_prompt_name)
        self._configure(model_config)
        self.to(device or default_device())
        self.eval()

    def _load_on_backend(self, name_or_path: str | os.PathLike, options: LoadOptions, given: Mapping[str, Any],
                         device: Any) -> tuple[list[Module], dict[str, Any], LoadOptions]:
        """The folder's modules on the backend ``options`` name (an int8 variant or ``auto`` resolved first). Only
        ``auto`` falls back to torch, with a warning, when its choice cannot load this model."""
        asked = options
        try:
            if options.backend not in BACKENDS:
                options = resolve_backend(type(self), name_or_path, options, given, device)
            modules, model_config = self._read_folder(name_or_path, options, given)
        except ModelLoadError as exc:
            if asked.backend != "auto" or options.runtime == "torch":
                raise
            logger.warning("backend='auto': %s cannot run on %s (%s); loading it with torch.", name_or_path,
                           options.backend, str(exc).splitlines()[0])
            options = replace(asked, backend="torch")
            modules, model_config = self._read_folder(name_or_path, options, given)
        return modules, model_config, options

    @classmethod
    def loaded_with(cls, model_name_or_path: str | os.PathLike, options: LoadOptions,
                    config: Mapping[str, Any] | None = None) -> BaseModel:
        """A model of this class loaded with ``options`` as they are (a subclass's constructor only turns its
        arguments into these): how an export of the model is made before the model the caller asked for loads."""
        model = cls.__new__(cls)
        name = hub_id_for(model_name_or_path, cls.default_huggingface_organization)
        BaseModel.__init__(model, name, None, options, config=config)
        return model

    # -- subclass hooks ---------------------------------------------------------------------------
    @classmethod
    def _default_modules(cls, folder: Path, options: LoadOptions,
                         config: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        """The modules of a plain Hugging Face checkpoint (config.json, no modules.json), and model-config
        settings the checkpoint itself carries. ``config``: the saved and the caller's settings."""
        raise NotImplementedError

    def _assemble(self, modules: Sequence[Module], config: Mapping[str, Any]) -> list[Module]:
        """The modules the model is built from, given the loaded (or passed) ones and the model config; a subclass
        may swap a head for one its settings need here, before the model exists (modules are never changed after)."""
        return list(modules)

    def _configure(self, config: Mapping[str, Any]) -> None:
        """Read this model class's settings from the model config (saved, then the caller's)."""

    def _model_config(self) -> dict[str, Any]:
        """This model class's settings, written to config_sentence_transformers.json beside the prompts."""
        return {}

    # -- prompts ----------------------------------------------------------------------------------
    def _set_prompts(self, model_config: Mapping[str, Any], prompts: dict[str, str] | None,
                     default_prompt_name: str | None) -> None:
        """Saved prompts, overridden by the caller's."""
        self.prompts: dict[str, str] = {**(model_config.get("prompts") or {}), **(prompts or {})}
        self.default_prompt_name = default_prompt_name or model_config.get("default_prompt_name")
        if self.default_prompt_name is not None and self.default_prompt_name not in self.prompts:
            raise ConfigError(f"default_prompt_name {self.default_prompt_name!r} is not among the prompts "
                             f"{sorted(self.prompts)}.")

    def _resolve_prompt(self, prompt: str | None, prompt_name: str | None) -> str | None:
        if prompt is not None:
            return prompt
        name = prompt_name if prompt_name is not None else self.default_prompt_name
        if name is None:
            return None
        if name not in self.prompts:
            raise InputError(f"prompt_name {name!r} is not among this model's prompts {sorted(self.prompts)}.")
        return self.prompts[name]

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        for module in self:
            features = module(features)
        return features

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def _read_folder(cls, name_or_path: str | os.PathLike, options: LoadOptions,
                     given: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        """The modules of a model folder (modules.json, else the class's defaults) and its model config."""
        folder = resolve_model_dir(name_or_path, options.hub)
        saved = _read_json(folder / MODEL_CONFIG_FILE) if (folder / MODEL_CONFIG_FILE).is_file() else {}
        if not isinstance(saved, dict):
            raise ModelLoadError(f"{str(folder / MODEL_CONFIG_FILE)!r} must hold a JSON object.")
        if (folder / MODULES_FILE).is_file():
            return _load_modules(folder, options), {**saved, **given}
        if (folder / "config.json").is_file():
            modules, from_checkpoint = cls._default_modules(folder, options, {**saved, **given})
            return modules, {**saved, **from_checkpoint, **given}
        raise ModelNotFoundError(
            f"Model folder {str(folder)!r} holds neither {' nor '.join(MODEL_MARKER_FILES)}: it is not a "
            "sentence-transformers or Hugging Face model folder."
        )

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, model_name: str | None = None, create_model_card: bool = True,
             train_datasets: list[str] | None = None, safe_serialization: bool = True) -> None:
        """Save in the sentence-transformers layout (loadable by sentence-transformers and omnivec), with a README.md
        model card (``create_model_card``) naming ``model_name`` and ``train_datasets``. Weights are written as
        safetensors whatever ``safe_serialization`` says (as transformers 5 writes them; both libraries load them)."""
        import transformers

        if not isinstance(safe_serialization, bool):
            raise InputError(f"safe_serialization must be True or False, got {safe_serialization!r}.")

        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        entries = []
        for index, (name, module) in enumerate(self._modules.items()):
            if not isinstance(module, Module):
                raise TypeError(f"Module {name!r} is a {type(module).__name__}, not an omnivec Module: it has no "
                                "sentence-transformers config to save.")
            subfolder = "" if index == 0 and module.save_in_root else f"{index}_{type(module).__name__}"
            target = folder / subfolder
            target.mkdir(parents=True, exist_ok=True)
            module.save(target)
            entries.append({"idx": index, "name": name, "path": subfolder, "type": module.st_type})
        with open(folder / MODULES_FILE, "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
        config = {
            "model_type": self.model_type,
            "__version__": {"omnivec": __version__, "transformers": transformers.__version__,
                            "pytorch": torch.__version__},
            "prompts": self.prompts,
            "default_prompt_name": self.default_prompt_name,
            **self._model_config(),
        }
        with open(folder / MODEL_CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2, sort_keys=True)
        if create_model_card:
            write_model_card(folder, self, model_name, train_datasets)

    save_pretrained = save

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


def _load_modules(folder: Path, options: LoadOptions) -> list[Module]:
    entries = _read_json(folder / MODULES_FILE)
    if not isinstance(entries, list) or not entries:
        raise ModelLoadError(f"{str(folder / MODULES_FILE)!r} must be a non-empty JSON list of modules.")
    modules: list[Module] = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or "type" not in entry or "path" not in entry:
            raise ModelLoadError(f"modules.json entry {position} in {str(folder)!r} needs 'type' and 'path': {entry!r}")
        subfolder = (folder / entry["path"]).resolve()
        if folder.resolve() not in (subfolder, *subfolder.parents):
            raise ModelLoadError(f"modules.json entry {position} path {entry['path']!r} points outside {str(folder)!r}.")
        modules.append(module_class_for(entry["type"]).load(subfolder, options))
    return modules
