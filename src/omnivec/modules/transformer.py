"""Transformer: a Hugging Face backbone plus its tokenizer, producing token embeddings or logits."""

from __future__ import annotations

import inspect
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from omnivec.errors import ConfigError, ModelLoadError
from omnivec.loading.hub import HubOptions, resolve_model_dir
from omnivec.loading.options import BACKENDS, KWARGS_FIELDS, LoadOptions
from omnivec.modules.backends.base import BACKEND_KWARGS, BackendSettings, check_supported
from omnivec.modules.backends.loader import copy_model_files, load_backend_model
from omnivec.modules.backends.towers import BackendTowers, model_class
from omnivec.modules.base import Module
from omnivec.modules.processing import call_processor, chat_features, infer_modality_config, processor_modalities
from omnivec.modules.renamed_args import renamed_kwargs

logger = logging.getLogger(__name__)

# Characters kept per token of max_seq_length before tokenizing: far above any tokenizer's average (3-5 characters
# a token in prose), so it only shortens texts whose ending truncation would drop anyway.
CHARS_PER_TOKEN_BOUND = 32

# transformer_task -> (transformers Auto class name, model output field, feature key written)
TASKS: dict[str, tuple[str, str, str]] = {
    "feature-extraction": ("AutoModel", "last_hidden_state", "token_embeddings"),
    "sequence-classification": ("AutoModelForSequenceClassification", "logits", "scores"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "token_embeddings"),  # MLM logits per token: SPLADE's input
    "text-generation": ("AutoModelForCausalLM", "logits", "causal_logits"),
    "any-to-any": ("AutoModelForImageTextToText", "logits", "causal_logits"),  # vision-language LMs
}

# Keys sentence-transformers may write that only steer its own machinery (unpadding, ColBERT expansion).
_ST_ONLY_KEYS = frozenset({"unpad_inputs", "query_length", "document_length", "query_expansion", "backend"})
# Old and new names of the kwargs dicts a saved config may carry.
_KWARG_KEYS = {
    "model_args": "model_kwargs", "model_kwargs": "model_kwargs",
    "tokenizer_args": "tokenizer_kwargs", "processor_kwargs": "tokenizer_kwargs",
    "config_args": "config_kwargs", "config_kwargs": "config_kwargs",
}


class Transformer(Module):
    """A Hugging Face model and tokenizer loaded from a folder or Hub id.

    Args:
        model_name_or_path: local folder or Hub id.
        max_seq_length: longer inputs are truncated; default: the tokenizer's limit, capped at the
            model's position embeddings.
        do_lower_case: lowercase inputs in the tokenizer's normalizer.
        transformer_task: ``feature-extraction`` (token embeddings), ``sequence-classification``
            (scores), ``fill-mask`` (masked-LM logits per token, what SpladePooling pools) or ``text-generation``
            (causal LM logits).
        model_kwargs / tokenizer_kwargs / config_kwargs: passed to the matching ``from_pretrained``.
        dtype: weights dtype (``"float32"``, ``"float16"``, ``"bfloat16"``, a ``torch.dtype`` or ``"auto"``).
        hub: revision, token, cache folder and offline switch for Hub ids.
        backend: what runs the network: ``"torch"``, or ``"onnx"`` / ``"openvino"`` (inference only, float32,
            text models for feature extraction or classification, and dual encoders (CLIP, SigLIP, CLAP) as one
            graph per modality; ``backend_settings`` from ``model_kwargs``).
    """

    config_file_name = "sentence_bert_config.json"
    config_keys = ("max_seq_length", "do_lower_case", "transformer_task", "modality_config", "module_output_name")
    ignored_config_keys = _ST_ONLY_KEYS | frozenset(_KWARG_KEYS) | {"processing_kwargs"}
    save_in_root = True
    st_type = "sentence_transformers.models.Transformer"

    @renamed_kwargs("Transformer", same={"processor_kwargs": "tokenizer_kwargs"}, model_args="model_kwargs",
                    tokenizer_args="tokenizer_kwargs", config_args="config_kwargs")
    def __init__(
        self,
        model_name_or_path: str | Path,
        *,
        max_seq_length: int | None = None,
        do_lower_case: bool = False,
        transformer_task: str = "feature-extraction",
        modality_config: dict[str, Any] | None = None,
        module_output_name: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        dtype: str | torch.dtype | None = None,
        hub: HubOptions | None = None,
        backend: str = "torch",
        backend_settings: BackendSettings | None = None,
    ) -> None:
        super().__init__()
        if transformer_task not in TASKS:
            raise ConfigError(f"transformer_task {transformer_task!r} is not supported; choose one of {list(TASKS)}.")
        self.transformer_task = transformer_task
        auto_class, self._output_field, default_output = TASKS[transformer_task]
        self.do_lower_case = do_lower_case

        folder = resolve_model_dir(model_name_or_path, hub)
        self.config = _load_hf_config(folder, config_kwargs or {})
        if hasattr(self.config, "use_cache"):
            self.config.use_cache = False  # no KV cache is needed to embed or score
        self.processor = _load_processor(folder, tokenizer_kwargs or {})
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        if transformer_task in ("text-generation", "any-to-any"):
            self.tokenizer.padding_side = "left"  # the last position is then every row's last real token
        self.backend = backend
        self.source_folder = folder  # a backend model's weights and exports are copied from here on save
        if backend == "torch":
            self.model: Any = _load_hf_model(folder, auto_class, self.config, dtype, model_kwargs or {})
        else:
            text_only = processor_modalities(self.processor) == ["text"] and set(modality_config or {"text"}) == {"text"}
            if modality_config is None and not text_only and transformer_task == "feature-extraction":
                self.model = model_class(auto_class, self.config)  # what the modality config is inferred from
                modality_config, inferred_output = self.default_modality_config()
                module_output_name = module_output_name or inferred_output
            towers = check_supported(backend, transformer_task, text_only, modality_config)
            kwargs = dict(model_kwargs or {})
            self.model = load_backend_model(
                backend, folder, lambda: _load_hf_model(folder, auto_class, self.config, "float32", kwargs), self.config,
                transformer_task, self.processor, backend_settings or BackendSettings(), modality_config if towers else None)
            modality_config = modality_config or {"text": {"method": "forward", "method_output_name": self._output_field}}
        if modality_config is None:
            modality_config, inferred_output = self.default_modality_config()
            module_output_name = module_output_name or inferred_output
        self.modality_config = modality_config
        self.module_output_name = module_output_name or default_output
        if do_lower_case:
            _add_lowercase(self.tokenizer)
        if max_seq_length is None:
            limit = int(self.tokenizer.model_max_length)
            text_config = getattr(self.config, "text_config", None)
            max_positions = getattr(self.config, "max_position_embeddings", getattr(text_config, "max_position_embeddings", None))
            if max_positions is not None and max_positions > 0:
                limit = min(limit, max_positions)
        else:
            limit = max_seq_length
        self.max_seq_length = int(limit)
        self._prompt_lengths: dict[str, int] = {}
        self._params_cache: dict[str, set[str]] = {}

    def default_modality_config(self) -> tuple[dict[str, dict[str, Any]], str | None]:
        """The modality config used when the saved config has none (inferred from model and processor)."""
        if self.transformer_task != "feature-extraction":
            return {"text": {"method": "forward", "method_output_name": self._output_field}}, None
        return infer_modality_config(self.model, self.processor, self._output_field)

    @property
    def modalities(self) -> list[str]:
        return list(self.modality_config)

    # -- tokenization ---------------------------------------------------------------------------
    def tokenize_unpadded(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, list[list[int]]]:
        """Token ids (and masks, type ids) for each text or text pair, truncated, not yet padded. Texts are first cut
        to ``CHARS_PER_TOKEN_BOUND`` characters per token of the limit, on the side the tokenizer truncates (its
        ``truncation_side``): the tokenizer's work (and memory) on a 1 MB text is then bounded, and what truncation
        keeps of any ordinary text is the same."""
        bound = self.max_seq_length * CHARS_PER_TOKEN_BOUND
        left = getattr(self.tokenizer, "truncation_side", "right") == "left"

        def cut(text: str) -> str:  # keep the part truncation keeps: the end when it truncates on the left
            return text[-bound:] if left else text[:bound]

        if texts and isinstance(texts[0], tuple):
            pairs = cast(Sequence[tuple[str, str]], texts)  # one kind per call: pairs, or texts
            firsts, seconds = [cut(t[0]) for t in pairs], [cut(t[1]) for t in pairs]
            enc = self.tokenizer(firsts, seconds, padding=False, truncation="longest_first", max_length=self.max_seq_length)
        else:
            enc = self.tokenizer([cut(t) for t in cast(Sequence[str], texts)], padding=False, truncation="longest_first",
                                 max_length=self.max_seq_length)
        return dict(enc)

    def collate(self, encoded: dict[str, list[list[int]]], indices: Sequence[int]) -> dict[str, torch.Tensor]:
        """Pad the selected rows of ``encoded`` to their longest, on the tokenizer's padding side."""
        rows = [encoded["input_ids"][i] for i in indices]
        # Width >= 1: a batch of only empty inputs (no special tokens) still needs a tensor to run.
        width = max(max((len(r) for r in rows), default=0), 1)
        left = self.tokenizer.padding_side == "left"
        pad_values = {"input_ids": self.tokenizer.pad_token_id or 0, "attention_mask": 0,
                      "token_type_ids": getattr(self.tokenizer, "pad_token_type_id", 0)}
        out: dict[str, torch.Tensor] = {}
        for key, pad in pad_values.items():
            if key not in encoded:
                continue
            tensor = torch.full((len(rows), width), pad, dtype=torch.long)
            for row, i in enumerate(indices):
                values = encoded[key][i]
                if values:
                    target = tensor[row, width - len(values):] if left else tensor[row, : len(values)]
                    target.copy_(torch.as_tensor(values, dtype=torch.long))
            out[key] = tensor
        return out

    def tokenize(self, texts: Sequence[str] | Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Tokenize and pad a batch in one step."""
        encoded = self.tokenize_unpadded(texts)
        return self.collate(encoded, range(len(texts)))

    def prompt_length(self, prompt: str) -> int:
        """Tokens the prompt occupies at the start of an input (a trailing special token excluded)."""
        if prompt not in self._prompt_lengths:
            ids = self.tokenize_unpadded([prompt])["input_ids"][0]
            length = len(ids)
            if ids and ids[-1] in set(self.tokenizer.all_special_ids):
                length -= 1
            self._prompt_lengths[prompt] = length
        return self._prompt_lengths[prompt]

    # -- compute --------------------------------------------------------------------------------
    def preprocess(self, modality: str, values: Sequence[Any]) -> dict[str, Any]:
        """Features for decoded images / audio (float32 at the processor's rate) / chat conversations."""
        if modality == "message":
            return chat_features(self.processor, values, self.max_seq_length)
        return call_processor(self.processor, modality, values)

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        if self.backend != "torch":
            return self._backend_forward(features)
        modality = features.get("modality", "text")
        spec = self.modality_config[modality]
        method = getattr(self.model, spec["method"])
        accepted = self._accepted_params(spec["method"], method)
        inputs = {k: v for k, v in features.items() if k in accepted and isinstance(v, torch.Tensor)}
        if self.transformer_task in ("text-generation", "any-to-any") and "logits_to_keep" in accepted:
            inputs["logits_to_keep"] = features.get("logits_to_keep", 1)
        output = method(**inputs, return_dict=True)
        name = spec.get("method_output_name")
        for key in ([name] if isinstance(name, str) else (name or [])):
            output = output[key]
        if isinstance(output, torch.Tensor) and output.dim() == 4:  # (B, C, H, W) feature maps -> tokens
            output = output.flatten(2).transpose(1, 2)
        features[self.module_output_name] = output
        return features

    def _backend_forward(self, features: dict[str, Any]) -> dict[str, Any]:
        if torch.is_grad_enabled():  # training reaches here with gradients on; encode and predict run without
            raise ConfigError(f"backend {self.backend!r} is for inference; train with backend='torch'.")
        # Every feature tensor: the backend model feeds those its graph declares (tokens, pixels, audio features).
        inputs = {k: v for k, v in features.items() if isinstance(v, torch.Tensor)}
        if isinstance(self.model, BackendTowers):
            features[self.module_output_name] = self.model(features.get("modality", "text"), inputs)
        else:
            features[self.module_output_name] = getattr(self.model(**inputs), self._output_field)
        return features

    def _accepted_params(self, name: str, method: Any) -> set[str]:
        if name not in self._params_cache:
            self._params_cache[name] = set(inspect.signature(method).parameters)
        return self._params_cache[name]

    @property
    def auto_model(self) -> Any:
        """The Hugging Face model (sentence-transformers' name for ``model``)."""
        return self.model

    def get_word_embedding_dimension(self) -> int:
        """The older name of ``get_embedding_dimension`` (with sentence-transformers' FutureWarning)."""
        warnings.warn("The `get_word_embedding_dimension` method has been renamed to `get_embedding_dimension`.",
                      FutureWarning, stacklevel=2)
        return self.get_embedding_dimension()

    def get_embedding_dimension(self) -> int:
        config = self.config
        if self.module_output_name == "sentence_embedding" and getattr(config, "projection_dim", None):
            return int(config.projection_dim)  # dual encoders emit projected vectors
        for candidate in (config, getattr(config, "text_config", None)):
            if candidate is not None and getattr(candidate, "hidden_size", None):
                return int(candidate.hidden_size)
        raise ModelLoadError(f"Cannot tell the hidden size of a {type(config).__name__}.")

    # -- save / load ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        if self.backend == "torch":
            self.model.save_pretrained(str(folder))
        else:
            self.config.save_pretrained(str(folder))
            copy_model_files(self.source_folder, folder)
        self.processor.save_pretrained(str(folder))
        self.save_config(folder)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Transformer:
        return cls.from_options(folder, options, saved=cls.read_config(folder))

    @classmethod
    def from_options(cls, folder: Path, options: LoadOptions, *, saved: Mapping[str, Any] | None = None,
                     transformer_task: str | None = None) -> Transformer:
        """The Transformer of a local model folder, built from the load settings and the saved module config
        (``sentence_bert_config.json``; none for a plain checkpoint, whose ``transformer_task`` the model class
        chooses). The caller's kwargs win over saved ones; a saved config never grants ``trust_remote_code``.

        The one place that reads ``options.backend``: another backend (ONNX, OpenVINO) is built here."""
        if options.backend not in BACKENDS:  # int8 variants and "auto" are resolved by the model class first
            raise ConfigError(f"backend {options.backend!r} is chosen by a model class (Embedder, CrossEncoder); a "
                              f"Transformer module runs one of {list(BACKENDS)}.")
        saved = saved or {}
        settings = cls.split_config(dict(saved), folder)
        if transformer_task is not None:
            settings["transformer_task"] = transformer_task
        if options.max_seq_length is not None:
            settings["max_seq_length"] = options.max_seq_length
        kwargs: dict[str, dict[str, Any]] = {target: {} for target in KWARGS_FIELDS}
        for key, target in _KWARG_KEYS.items():
            kept = {k: v for k, v in (saved.get(key) or {}).items() if k != "trust_remote_code"}
            kwargs[target].update(kept)
        for target in KWARGS_FIELDS:
            kwargs[target].update(options.from_pretrained_kwargs(target))
        model_kwargs = kwargs["model_kwargs"]
        backend_settings = None
        if options.backend != "torch":
            backend_settings = BackendSettings.from_model_kwargs(model_kwargs)
            model_kwargs = {k: v for k, v in model_kwargs.items() if k not in BACKEND_KWARGS}
            if options.dtype not in (None, "float32", torch.float32):
                raise ConfigError(f"backend {options.backend!r} runs float32 models; got dtype={options.dtype!r}.")
        return cls(folder, **settings, model_kwargs=model_kwargs, tokenizer_kwargs=kwargs["tokenizer_kwargs"],
                   config_kwargs=kwargs["config_kwargs"], dtype=options.dtype, backend=options.backend,
                   backend_settings=backend_settings)

    def __repr__(self) -> str:
        return (f"Transformer({type(self.model).__name__}, backend={self.backend}, task={self.transformer_task}, "
                f"max_seq_length={self.max_seq_length}, do_lower_case={self.do_lower_case})")


def _load_hf_config(folder: Path, config_kwargs: dict[str, Any]) -> Any:
    from transformers import AutoConfig

    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"Model folder {str(folder)!r} has no config.json (a Hugging Face model config).")
    try:
        return AutoConfig.from_pretrained(str(folder), **config_kwargs)
    except (ValueError, OSError, KeyError) as exc:
        raise ModelLoadError(f"config.json in {str(folder)!r} could not be read: {exc}") from None


def _load_hf_model(folder: Path, auto_class: str, config: Any, dtype: Any, model_kwargs: dict[str, Any]) -> Any:
    import transformers

    weights = [p.name for p in folder.glob("*.safetensors")] + [p.name for p in folder.glob("pytorch_model*.bin")]
    if not weights:
        raise ModelLoadError(
            f"Model folder {str(folder)!r} has no weights: looked for model.safetensors, "
            "model-*-of-*.safetensors and pytorch_model.bin."
        )
    kwargs = dict(model_kwargs)
    if dtype is not None:
        kwargs["dtype"] = getattr(torch, dtype) if isinstance(dtype, str) and dtype != "auto" else dtype
    from transformers.utils import logging as hf_logging

    # transformers draws a per-tensor "Loading weights" bar; a model load is not long work worth a bar.
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return getattr(transformers, auto_class).from_pretrained(str(folder), config=config, **kwargs)
    except Exception as exc:  # safetensors/pickle/transformers raise many types for a damaged file
        raise ModelLoadError(
            f"Could not load the weights in {str(folder)!r} ({', '.join(sorted(weights))}) as {auto_class}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


def _load_processor(folder: Path, tokenizer_kwargs: dict[str, Any]) -> Any:
    """AutoProcessor: a tokenizer for text models, a multimodal processor for CLIP, CLAP, VLMs..."""
    from transformers import AutoProcessor

    try:
        return AutoProcessor.from_pretrained(str(folder), **tokenizer_kwargs)
    except Exception as exc:
        raise ModelLoadError(
            f"Could not load a tokenizer/processor from {str(folder)!r} (looked for tokenizer.json, "
            f"tokenizer_config.json, preprocessor_config.json, vocab files): {type(exc).__name__}: {exc}"
        ) from None


def _add_lowercase(tokenizer: Any) -> None:
    from tokenizers import normalizers

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelLoadError("do_lower_case=True needs a fast (tokenizers-backed) tokenizer.")
    current = backend.normalizer
    if "Lowercase" in repr(current) or "lowercase=True" in repr(current):
        return
    parts = [normalizers.Lowercase()] + ([current] if current is not None else [])
    backend.normalizer = normalizers.Sequence(parts)
