"""Embedder: inputs -> vectors. A drop-in for sentence-transformers' SentenceTransformer."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch

from omnivec import similarity as sim
from omnivec.errors import ConfigError, InputError
from omnivec.inputs.modality import as_batch, tag_inputs
from omnivec.inputs.video import VideoSampling
from omnivec.loading.hub import HubOptions
from omnivec.loading.options import BackendName, LoadOptions
from omnivec.models import extensions
from omnivec.models.base_model import BaseModel
from omnivec.models.model_card_data import SentenceTransformerModelCardData, checked_card_data
from omnivec.models.multi_process import EncodeMultiProcess, encode_in_pool, pool_or_place
from omnivec.models.st_methods import EmbedderMethods
from omnivec.modules.base import Module
from omnivec.modules.pooling import Pooling
from omnivec.modules.renamed_args import renamed_kwargs
from omnivec.modules.router import Router
from omnivec.modules.transformer import Transformer
from omnivec.runtime.batching import default_token_budget
from omnivec.runtime.execute import RunOptions, embed_units, forward_units
from omnivec.runtime.precision import PRECISIONS, Precision, as_requested
from omnivec.runtime.process_pool import ProcessPool
from omnivec.runtime.units import DecodeOptions, PreparedInputs, combine_units, decode, expand, supported_modalities

logger = logging.getLogger(__name__)

OutputValue = Literal["sentence_embedding", "token_embeddings"]


class Embedder(EmbedderMethods, EncodeMultiProcess, BaseModel):
    """Embeds inputs into vectors; loads and saves sentence-transformers model folders.

    Args:
        model_name_or_path: a local folder or Hub id (sentence-transformers layout, or a plain Hugging
            Face checkpoint, which gets mean pooling, or last-token pooling for causal LMs).
        modules: build a model from modules instead of loading one.
        device: ``"cpu"``, ``"cuda"``, ... (default: the fastest available).
        prompts / default_prompt_name: named prompts prepended to inputs; they override the saved ones.
        similarity_fn_name: ``cosine`` (default), ``dot``, ``euclidean`` or ``manhattan``.
        truncate_dim: keep only the first dimensions of each embedding (Matryoshka models).
        dtype: ``float32``, ``float16``, ``bfloat16`` or ``auto`` (the checkpoint's own).
        cache_folder / revision / token / local_files_only: Hub options (``HF_HUB_OFFLINE`` is honoured).
        model_kwargs / processor_kwargs / config_kwargs: passed to transformers' ``from_pretrained``.
        backend: ``torch``, ``onnx`` (ONNX Runtime; ``model_kwargs`` ``file_name``/``provider``/``export`` as in
            sentence-transformers; the export is made on first use) or ``openvino``; non-torch backends run on CPU.
            ``onnx-int8`` / ``openvino-int8``: the int8 export for this CPU, made on first use (see
            ``omnivec.export_dynamic_quantized_onnx_model`` / ``export_static_quantized_openvino_model``); ``auto``:
            the variant ``omnivec bench-backends`` measured best on this machine (torch, with a warning, until then).
    """

    model_type = "SentenceTransformer"
    default_huggingface_organization = "sentence-transformers"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        modules: Sequence[Module] | None = None,
        *,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        similarity_fn_name: str | None = None,
        truncate_dim: int | None = None,
        dtype: str | torch.dtype | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        token: bool | str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: BackendName = "torch",
        model_card_data: SentenceTransformerModelCardData | None = None,
    ) -> None:
        if model_name_or_path is not None and modules is not None:
            raise ConfigError("Pass either model_name_or_path or modules, not both.")
        options = LoadOptions(
            dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=model_kwargs or {},
            tokenizer_kwargs={**(tokenizer_kwargs or {}), **(processor_kwargs or {})}, config_kwargs=config_kwargs or {},
            hub=HubOptions(revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_files_only),
            backend=backend,
        )
        super().__init__(model_name_or_path, modules, options, device=device, prompts=prompts,
                         default_prompt_name=default_prompt_name,
                         config={"similarity_fn_name": similarity_fn_name, "truncate_dim": truncate_dim})
        self.model_card_data = checked_card_data(model_card_data, SentenceTransformerModelCardData)

    @classmethod
    def _default_modules(cls, folder: Path, options: LoadOptions,
                         config: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        """A plain Hugging Face checkpoint: Transformer + mean pooling (last-token pooling for causal LMs)."""
        transformer = Transformer.from_options(folder, options)
        if transformer.module_output_name != "token_embeddings":  # dual encoders emit pooled vectors themselves
            return [transformer], {}
        architectures = getattr(transformer.config, "architectures", None) or []
        causal = bool(architectures) and architectures[0].endswith("ForCausalLM") and getattr(transformer.config,
                                                                                              "is_causal", True)
        return [transformer, Pooling(transformer.get_embedding_dimension(), "lasttoken" if causal else "mean")], {}

    def _configure(self, config: Mapping[str, Any]) -> None:
        self.similarity_fn_name = config.get("similarity_fn_name") or "cosine"
        self.truncate_dim = _check_truncate_dim(config.get("truncate_dim"))
        self.video_sampling = VideoSampling()
        # Decode big JPEG files at reduced scale (>= 2x the model's input side). Off: full decode, the
        # numbers sentence-transformers gets from the same file paths.
        self.fast_image_decode = True

    def _model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.truncate_dim is not None:
            config["truncate_dim"] = self.truncate_dim
        return config

    # -- properties -------------------------------------------------------------------------------
    @property
    def similarity_fn_name(self) -> str:
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, name: str) -> None:
        self._similarity_fn_name = sim.checked_name(name)  # a plain str, also for a SimilarityFunction member

    def _input_modules(self) -> list[Transformer]:
        first = self[0]
        chains = list(first.chains.values()) if isinstance(first, Router) else [[first]]
        return [chain[0] for chain in chains if isinstance(chain[0], Transformer)]

    @property
    def modalities(self) -> list[str]:
        """Input modalities ``encode`` accepts: text, image, audio, video, multimodal (dicts)."""
        return supported_modalities(self._model_modalities())

    def _model_modalities(self) -> list[str]:
        found: list[str] = []
        for module in self._input_modules():
            found.extend(m for m in module.modalities if m not in found)
        return found

    def _stages(self, modality: str, task: str | None) -> tuple[Transformer, list[Module]]:
        """The module that prepares ``modality`` and the modules its features then run through."""
        first, *rest = cast(list[Module], list(self))
        chain = first.route(task, modality) if isinstance(first, Router) else [first]
        if not isinstance(chain[0], Transformer):
            raise TypeError(f"The modules that take {modality} inputs do not start with a Transformer module.")
        return chain[0], [*chain, *rest]

    def _decode_options(self) -> DecodeOptions:
        processors = [m.processor for m in self._input_modules()]
        side = next((s for s in map(_image_side, processors) if s), None)
        rate = next((r for r in map(_sampling_rate, processors) if r), None)
        return DecodeOptions(image_side=side if self.fast_image_decode else None, sampling_rate=rate,
                             video=self.video_sampling)

    @property
    def sampling_rate(self) -> int | None:
        """The audio rate (Hz) the model's processor expects; None for a model without an audio tower."""
        return self._decode_options().sampling_rate

    @property
    def image_side(self) -> int | None:
        """The input size (pixels) images are decoded for: ``load_image(min_side=...)`` of every image this model
        decodes from a file (None: full size, as for a model without an image tower or with fast decoding off)."""
        return self._decode_options().image_side

    def supports(self, modality: str) -> bool:
        return modality in self.modalities

    def get_sentence_embedding_dimension(self) -> int | None:
        """Length of the vectors ``encode`` returns (after ``truncate_dim``)."""
        dim = None
        for module in reversed(list(self)):
            dimension = getattr(module, "get_embedding_dimension", None)
            if callable(dimension):
                dim = cast("int | None", dimension())  # the modules' own get_embedding_dimension
                break
        if self.truncate_dim is not None:
            return self.truncate_dim if dim is None else min(dim, self.truncate_dim)
        return dim

    get_embedding_dimension = get_sentence_embedding_dimension

    # -- encoding ---------------------------------------------------------------------------------
    @renamed_kwargs(sentences="inputs")
    def encode(  # noqa: C901 (sentence-transformers' encode signature: each of its options is checked here)
        self,
        inputs: Any,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        output_value: OutputValue | None = "sentence_embedding",
        precision: Precision | None = "float32",
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        truncate_dim: int | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        device: str | torch.device | list[str | torch.device] | None = None,
        modality: str | None = None,
        task: str | None = None,
        max_tokens_per_batch: int | None = None,
        pool: ProcessPool | None = None,
        chunk_size: int | None = None,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor] | Any:
        """Embed one input or a list of inputs of any modalities the model accepts, in any order.

        Inputs: ``str`` text; images (PIL, path, URL, ``data:`` URI, bytes, HxWxC uint8 array); audio
        (path, bytes, ``{"array", "sampling_rate"}``); video (path, bytes, ``{"frames", "fps"}``); or a dict
        with ``text``/``image``/``audio``/``video`` keys for one multimodal input. ``modality=`` forces how
        every input is read; ``task`` ("query" / "document") picks a Router's route. Mixed lists are grouped
        by modality, batched, and returned in input order.

        Returns an array of shape (n, dim) (a single vector for a single input), a tensor with
        ``convert_to_tensor``, a list of tensors with neither, or for ``output_value="token_embeddings"``
        a list of (tokens, hidden) tensors; ``output_value=None``: one dict per input of every output (token ids,
        mask, token and sentence embeddings, trimmed to the input's own tokens). A list is one batch; so are a tuple,
        a 1-D NumPy array of strings, a pandas Series and a ``datasets`` Column. ``max_tokens_per_batch`` also bounds
        each text batch's padded size (default: 2,048 on CPU, where smaller batches run faster; none on GPU). ``pool``
        (from ``start_multi_process_pool``) or a list of devices (``device=["cpu", "cpu"]``: a pool for this call)
        encodes in worker processes, ``chunk_size`` inputs at a time (``models/multi_process.py``).
        """
        if output_value not in ("sentence_embedding", "token_embeddings", None):
            raise InputError(f"output_value {output_value!r} must be 'sentence_embedding', 'token_embeddings' or "
                             "None (every output, one dict per input).")
        precision = precision or "float32"  # None: sentence-transformers' evaluators pass it for "no quantization"
        if precision not in PRECISIONS:
            raise InputError(f"precision {precision!r} is not one of {PRECISIONS}.")
        if batch_size <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size}.")
        batch, single = as_batch(inputs)
        items = tag_inputs(batch, modality)
        prompt = self._resolve_prompt(prompt, prompt_name)
        truncate_dim = _check_truncate_dim(truncate_dim if truncate_dim is not None else self.truncate_dim)
        request = pool_or_place(self, pool, device, chunk_size)
        if not items:
            return self._empty(output_value, precision, convert_to_numpy, convert_to_tensor, truncate_dim)

        decode_options = self._decode_options()
        units, rules = expand(items, self._model_modalities(), decode_options)
        if request is not None:  # the inputs were checked here; workers encode chunks of them
            chunk_kwargs = {"batch_size": batch_size, "output_value": output_value, "normalize_embeddings":
                            normalize_embeddings, "truncate_dim": truncate_dim, "prompt": prompt, "modality": modality,
                            "task": task, "max_tokens_per_batch": max_tokens_per_batch}
            return encode_in_pool(self, request, list(batch), single=single,
                                  chunk_kwargs=chunk_kwargs, precision=precision, convert_to_numpy=convert_to_numpy,
                                  convert_to_tensor=convert_to_tensor, show_progress_bar=show_progress_bar)
        budget = max_tokens_per_batch if max_tokens_per_batch is not None else default_token_budget(self.device)
        options = RunOptions(prompt=prompt, batch_size=batch_size, max_tokens=budget,
                             show_progress_bar=show_progress_bar, output_value=output_value, device=self.device,
                             decode=decode_options)
        with torch.inference_mode():
            vectors = embed_units(units, items, lambda modality_: self._stages(modality_, task), options)
        if output_value != "sentence_embedding":
            first: dict[int, int] = {}
            for position, unit in enumerate(units):
                first.setdefault(unit.item, position)
            rows: list[Any] = [vectors[first[item]] for item in range(len(items))]
            if output_value is None and truncate_dim is not None:
                for row in rows:
                    row["sentence_embedding"] = row["sentence_embedding"][:truncate_dim]
            return rows[0] if single else rows

        embeddings = combine_units(units, vectors, rules)
        if truncate_dim is not None:
            embeddings = embeddings[:, :truncate_dim]
        if normalize_embeddings:
            embeddings = torch.nn.functional.normalize(embeddings, p=2, dim=1)
        return as_requested(embeddings, precision, convert_to_numpy, convert_to_tensor, single)

    # -- training --------------------------------------------------------------------------------------
    def prepare(self, inputs: Sequence[Any], *, prompt: str | None = None, task: str | None = None,
                modality: str | None = None) -> PreparedInputs:
        """Decode a column of inputs into units for ``embed`` (the CPU half of a training step)."""
        items = tag_inputs(list(inputs), modality)
        options = self._decode_options()
        units, rules = expand(items, self._model_modalities(), options)
        for unit in units:
            unit.value = decode(unit, items[unit.item].index, options)
        return PreparedInputs(units, rules, prompt, task)

    def embed(self, inputs: PreparedInputs | Sequence[Any]) -> torch.Tensor:
        """Embeddings of one column, shape (n, dim), with gradients: what training losses call.

        Unlike ``encode`` there is no batching, no inference mode and no truncation or normalisation beyond
        the model's own modules."""
        prepared = inputs if isinstance(inputs, PreparedInputs) else self.prepare(inputs)
        if not prepared.units:
            return torch.zeros((0, self.get_sentence_embedding_dimension() or 0), device=self.device)
        vectors = forward_units(prepared.units, lambda m: self._stages(m, prepared.task), prepared.prompt, self.device)
        return combine_units(prepared.units, vectors, prepared.rules)

    def encode_query(self, inputs: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                     **encode_kwargs: Any) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
        """``encode`` with the model's "query" prompt (when it has one and no other prompt is given)."""
        if prompt is None and prompt_name is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt=prompt, prompt_name=prompt_name, task="query", **encode_kwargs)

    def encode_document(self, inputs: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                        **encode_kwargs: Any) -> np.ndarray | torch.Tensor | list[torch.Tensor]:
        """``encode`` with the model's "document" prompt (also found as "passage" or "corpus")."""
        if prompt is None and prompt_name is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(inputs, prompt=prompt, prompt_name=prompt_name, task="document", **encode_kwargs)

    def _empty(self, output_value: str | None, precision: str, to_numpy: bool, to_tensor: bool, truncate_dim: int | None):
        if output_value != "sentence_embedding":
            return []
        dim = self.get_sentence_embedding_dimension() or 0
        if truncate_dim is not None:
            dim = min(dim, truncate_dim)
        dtype = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8, "binary": np.int8, "ubinary": np.uint8}[precision]
        width = (dim + 7) // 8 if precision.endswith("binary") else dim
        empty = np.zeros((0, width), dtype=dtype)
        if to_tensor:
            return torch.from_numpy(empty)
        return empty if to_numpy else []

    # -- similarity -------------------------------------------------------------------------------
    def similarity(self, a: Any, b: Any) -> torch.Tensor:
        """Matrix of ``similarity_fn_name`` scores between every row of ``a`` and every row of ``b``."""
        return sim.get(self.similarity_fn_name)(a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> torch.Tensor:
        """Score of ``a[i]`` against ``b[i]`` for each i."""
        return sim.get(self.similarity_fn_name, pairwise=True)(a, b)

    def fit(self, train_objectives: Sequence[tuple[Any, torch.nn.Module]], **kwargs: Any) -> None:
        """sentence-transformers' pre-v3 training entry point (``train_objectives=[(dataloader, loss)]``,
        ``epochs``, ``warmup_steps``, ``evaluator``, ``output_path``...), run on omnivec's trainer; see
        ``omnivec.train.fit``."""
        extensions.call("fit", self, train_objectives, **kwargs)


def _image_side(processor: Any) -> int | None:
    """The side length a model's image processor resizes to (for reduced-scale JPEG decoding)."""
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None:
        return None
    for attribute in ("crop_size", "size"):
        size = getattr(image_processor, attribute, None)
        if isinstance(size, int):
            return size
        # A dict, or (transformers 5) a SizeDict, whose keys are attributes and which is no dict.
        get = size.get if isinstance(size, dict) else lambda key, size=size: getattr(size, key, None)
        side = get("shortest_edge") or get("height")
        if side:
            return int(side)
    return None


def _sampling_rate(processor: Any) -> int | None:
    extractor = getattr(processor, "feature_extractor", processor)
    rate = getattr(extractor, "sampling_rate", None)
    return int(rate) if rate else None



def _check_truncate_dim(truncate_dim: Any) -> int | None:
    """None (keep every dimension) or a positive number of leading dimensions: 0 would give empty vectors and a
    negative number would drop dimensions from the end."""
    if truncate_dim is not None and (isinstance(truncate_dim, bool) or not isinstance(truncate_dim, int)
                                     or truncate_dim < 1):
        raise InputError(f"truncate_dim must be None or a positive integer (the leading dimensions to keep), "
                         f"got {truncate_dim!r}.")
    return truncate_dim
