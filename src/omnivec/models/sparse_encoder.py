"""SparseEncoder: texts -> sparse vectors: vocabulary-sized (SPLADE; inference-free SPLADE with a static query side)
or a sparse autoencoder's latents over a dense embedding (CSR). A drop-in for sentence-transformers' SparseEncoder:
the same API and the same model folders, both ways."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from omnivec import similarity as sim
from omnivec.errors import InputError, ModelLoadError
from omnivec.inputs.modality import as_batch, require_valid_unicode, tag_inputs
from omnivec.loading.hub import HubOptions
from omnivec.loading.options import BackendName, LoadOptions
from omnivec.models import sparse_tensors
from omnivec.models.base_model import BaseModel
from omnivec.models.model_card_data import SparseEncoderModelCardData, checked_card_data
from omnivec.models.multi_process import encode_chunks_in_pool, pool_or_place
from omnivec.modules.base import Module
from omnivec.modules.router import Router
from omnivec.modules.sparse_auto_encoder import SparseAutoEncoder
from omnivec.modules.sparse_static_embedding import SparseStaticEmbedding
from omnivec.modules.splade_pooling import SpladePooling
from omnivec.modules.transformer import Transformer
from omnivec.runtime.batching import default_token_budget
from omnivec.runtime.execute import forward_units, run_token_batches, text_features, to_device
from omnivec.runtime.units import DecodeOptions, PreparedInputs, combine_units, decode, expand

InputHead = Transformer | SparseStaticEmbedding  # the modules that turn text into features


class SparseEncoder(BaseModel):
    """Encodes texts into sparse vectors over the vocabulary; loads and saves sentence-transformers folders.

    Args:
        model_name_or_path: a local folder or Hub id: a sentence-transformers SparseEncoder folder, or a plain
            ``*ForMaskedLM`` checkpoint (which gets ``SpladePooling("max")``, as in sentence-transformers).
        modules: build a model from modules (``MLMTransformer`` + ``SpladePooling``, a ``Router`` with a
            ``SparseStaticEmbedding`` query side, or CSR: ``Transformer`` + ``Pooling`` + ``SparseAutoEncoder``)
            instead of loading one.
        similarity_fn_name: ``dot`` (default), ``cosine``, ``euclidean`` or ``manhattan``.
        max_active_dims: keep at most this many non-zero dimensions per embedding (saved with the model; ``encode``
            can override it per call; default for a CSR model: its autoencoder's ``k``).
        The other arguments are ``Embedder``'s (device, prompts, Hub options, kwargs for ``from_pretrained``).
    """

    model_type = "SparseEncoder"
    model_kind = "sparse_encoder"
    default_huggingface_organization = "sparse-encoder"

    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        modules: Sequence[Module] | None = None,
        device: str | torch.device | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        cache_folder: str | None = None,
        trust_remote_code: bool = False,
        revision: str | None = None,
        local_files_only: bool = False,
        token: bool | str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        model_card_data: SparseEncoderModelCardData | None = None,
        backend: BackendName = "torch",
        similarity_fn_name: str | None = None,
        max_active_dims: int | None = None,
        dtype: str | torch.dtype | None = None,
    ) -> None:
        if model_name_or_path is not None and modules is not None:
            raise InputError("Pass either model_name_or_path or modules, not both.")
        sparse_tensors.check_max_active_dims(max_active_dims)  # before anything loads
        if similarity_fn_name is not None:
            sim.checked_name(similarity_fn_name)
        options = LoadOptions(
            dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=model_kwargs or {},
            tokenizer_kwargs={**(tokenizer_kwargs or {}), **(processor_kwargs or {})}, config_kwargs=config_kwargs or {},
            hub=HubOptions(revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_files_only),
            backend=backend,
        )
        super().__init__(model_name_or_path, modules, options, device=device, prompts=prompts,
                         default_prompt_name=default_prompt_name,
                         config={"similarity_fn_name": similarity_fn_name, "max_active_dims": max_active_dims})
        self.model_card_data = checked_card_data(model_card_data, SparseEncoderModelCardData)

    # -- BaseModel hooks ------------------------------------------------------------------------------------------
    @classmethod
    def _default_modules(cls, folder: Path, options: LoadOptions,
                         config: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        """A plain masked-LM checkpoint: its logits through max SPLADE pooling."""
        try:
            checkpoint = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            architectures = checkpoint.get("architectures") or []
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise ModelLoadError(f"config.json in {str(folder)!r} could not be read: {exc}") from None
        if not any(str(name).endswith("ForMaskedLM") for name in architectures):
            # sentence-transformers puts an untrained autoencoder on such a checkpoint; omnivec makes up no weights
            # silently: a CSR model is built from modules, where its size is chosen
            dim = checkpoint.get("hidden_size") or "dim"
            raise ModelLoadError(
                f"{str(folder)!r} is a {', '.join(map(str, architectures)) or 'model of unknown architecture'}, not a "
                "*ForMaskedLM checkpoint, and has no modules.json: omnivec builds SPLADE from masked-LM heads only. "
                "For a CSR model (to train, e.g. with CSRLoss), build it from modules, as sentence-transformers does: "
                f"SparseEncoder(modules=[Transformer(path), Pooling({dim}, 'mean'), SparseAutoEncoder({dim}, "
                f"hidden_dim=4 * {dim}, k=256, k_aux=512)]).")
        transformer = Transformer.from_options(folder, options, transformer_task="fill-mask")
        return [transformer, SpladePooling("max")], {}

    @classmethod
    def _read_folder(cls, name_or_path: str | os.PathLike, options: LoadOptions,
                     given: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        modules, config = super()._read_folder(name_or_path, options, given)
        sparse = (SparseAutoEncoder, SpladePooling, SparseStaticEmbedding, Router)
        dense = config.get("model_type", "SentenceTransformer") == "SentenceTransformer"  # unnamed: an old ST folder
        if dense and not any(isinstance(m, sparse) for m in modules):
            # sentence-transformers appends an untrained autoencoder to a dense model; omnivec makes up no weights
            # silently (nor passes dense vectors off as sparse ones): the message says how to build that model
            sizes = [getattr(m, "get_embedding_dimension", None) for m in modules]
            dims = [size() for size in sizes if callable(size)]
            dim = dims[-1] if dims else "dim"
            raise ModelLoadError(
                f"{str(name_or_path)!r} is a dense SentenceTransformer model, not a SparseEncoder. For a CSR model on "
                "top of it (to train, e.g. with CSRLoss), build it from modules, as sentence-transformers does: "
                f"SparseEncoder(modules=[*SentenceTransformer(path), SparseAutoEncoder({dim}, hidden_dim=4 * {dim}, "
                f"k={dim} // 4, k_aux={dim} // 2)]).")
        return modules, config

    def _assemble(self, modules: Sequence[Module], config: Mapping[str, Any]) -> list[Module]:
        # SpladePooling learns its size from the first batch in sentence-transformers; here it is the
        # masked-LM's vocabulary from the start, so get_sentence_embedding_dimension() is known before encoding.
        chains = [list(modules)]
        for module in modules:
            if isinstance(module, Router):
                chains += [[*chain, *modules[1:]] for chain in module.chains.values()]
        for chain in chains:
            for before, module in zip(chain, chain[1:], strict=False):
                if isinstance(module, SpladePooling) and module.embedding_dimension is None \
                        and isinstance(before, Transformer) and getattr(before.config, "vocab_size", None):
                    module.embedding_dimension = int(before.config.vocab_size)
        return list(modules)

    def _configure(self, config: Mapping[str, Any]) -> None:
        self.similarity_fn_name = config.get("similarity_fn_name") or "dot"
        limit = config.get("max_active_dims")
        if limit is None:  # a CSR model keeps its autoencoder's k, as in sentence-transformers
            limit = next((module.k for module in self if isinstance(module, SparseAutoEncoder)), None)
        self.max_active_dims = sparse_tensors.check_max_active_dims(limit)

    def _model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"similarity_fn_name": self.similarity_fn_name}
        if self.max_active_dims is not None:
            config["max_active_dims"] = self.max_active_dims
        return config

    # -- properties -----------------------------------------------------------------------------------------------
    @property
    def similarity_fn_name(self) -> str:
        return self._similarity_fn_name

    @similarity_fn_name.setter
    def similarity_fn_name(self, name: str) -> None:
        self._similarity_fn_name = sim.checked_name(name)

    @property
    def modalities(self) -> list[str]:
        return ["text"]

    def supports(self, modality: str) -> bool:
        return modality == "text"

    @property
    def tokenizer(self) -> Any:
        """The tokenizer whose vocabulary the dimensions are (the default route's input module's)."""
        return self._stages(None)[0].tokenizer

    def get_sentence_embedding_dimension(self) -> int | None:
        """Length of the vectors ``encode`` returns: the vocabulary size."""
        for module in reversed(list(self)):
            dimension = getattr(module, "get_embedding_dimension", None)
            if callable(dimension):
                return cast("int | None", dimension())
        return None

    get_embedding_dimension = get_sentence_embedding_dimension

    @property
    def splade_pooling_chunk_size(self) -> int | None:
        """``chunk_size`` of the SpladePooling module(s): tokens pooled at a time (None: all)."""
        pooling = self._splade_poolings()
        return pooling[0].chunk_size if pooling else None

    @splade_pooling_chunk_size.setter
    def splade_pooling_chunk_size(self, value: int | None) -> None:
        for pooling in self._splade_poolings():
            pooling.chunk_size = value

    def _splade_poolings(self) -> list[SpladePooling]:
        return [m for m in self.modules() if isinstance(m, SpladePooling)]

    def _stages(self, task: str | None) -> tuple[InputHead, list[Module]]:
        """The module that turns text into features for ``task``, and the modules then run in order."""
        first, *rest = cast(list[Module], list(self))
        chain = first.route(task, "text") if isinstance(first, Router) else [first]
        if not isinstance(chain[0], Transformer | SparseStaticEmbedding):
            raise TypeError(f"This SparseEncoder's modules start with {type(chain[0]).__name__}, not a Transformer or "
                            "SparseStaticEmbedding: it cannot read text.")
        return chain[0], [*chain, *rest]

    # -- encoding -------------------------------------------------------------------------------------------------
    def encode(
        self,
        inputs: str | Sequence[str],
        prompt_name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        convert_to_tensor: bool = True,
        convert_to_sparse_tensor: bool = True,
        save_to_cpu: bool = False,
        device: str | torch.device | None = None,
        max_active_dims: int | None = None,
        pool: Any = None,
        chunk_size: int | None = None,
        *,
        task: str | None = None,
        max_tokens_per_batch: int | None = None,
    ) -> torch.Tensor | list[torch.Tensor]:
        """Sparse embeddings of one text or a list of texts: a sparse COO tensor (n, V) (one text: (V,)); a dense
        tensor with ``convert_to_sparse_tensor=False``; a list of row tensors with ``convert_to_tensor=False``.
        ``max_active_dims`` keeps each row's largest values (default: the model's setting); ``task`` ("query" /
        "document") picks a Router's route. Batches are length-sorted and bounded by ``max_tokens_per_batch`` padded
        tokens (default: 2,048 on CPU); each batch is made sparse as soon as it is computed. ``pool`` (from
        ``start_multi_process_pool``) or a list of devices encodes in worker processes, ``chunk_size`` texts at a
        time."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}.")
        limit = sparse_tensors.check_max_active_dims(max_active_dims if max_active_dims is not None
                                                     else self.max_active_dims)
        batch, single = as_batch(inputs)
        for index, text in enumerate(batch):
            if not isinstance(text, str):
                raise InputError(f"inputs[{index}] is a {type(text).__name__}: a SparseEncoder encodes text (str).")
            require_valid_unicode(text, f"inputs[{index}]")
        request = pool_or_place(self, pool, device, chunk_size)  # a single device: the model moves there
        prompt = self._resolve_prompt(prompt, prompt_name)
        if not batch:
            return self._empty(convert_to_tensor, convert_to_sparse_tensor)
        if request is not None:  # worker processes encode chunks (pool=, or a list of devices)
            chunk_kwargs = {"prompt": prompt, "batch_size": batch_size, "show_progress_bar": False,
                            "convert_to_tensor": False, "convert_to_sparse_tensor": convert_to_sparse_tensor,
                            "save_to_cpu": True, "max_active_dims": limit, "task": task,
                            "max_tokens_per_batch": max_tokens_per_batch}
            parts = encode_chunks_in_pool(self, request, batch, chunk_kwargs, show_progress_bar)
            return self._finished([row for part in parts for row in part], single, convert_to_tensor)
        head, modules = self._stages(task)
        # prepare: tokenize every text once (exact lengths make tight batches)
        encoded = head.tokenize_unpadded([prompt + text for text in batch] if prompt else batch)
        prompt_length = head.prompt_length(prompt) if prompt else None
        self.eval()

        def run(indices: list[int]) -> list[torch.Tensor]:
            features: dict[str, Any] = to_device(head.collate(encoded, indices), self.device)  # (b, T) ids and mask
            features["modality"] = "text"
            if prompt_length is not None:
                features["prompt_length"] = prompt_length
            with torch.inference_mode():
                for module in modules:  # forward; an autoencoder keeps only the limit's latents
                    features = module(features, max_active_dims=limit) if isinstance(module, SparseAutoEncoder) \
                        else module(features)
                embeddings = sparse_tensors.keep_top_dims(features["sentence_embedding"], limit)  # (b, V) dense
            # finish, outside inference mode (its tensors refuse later in-place use, such as coalescing): sparse per
            # batch, so n dense rows never exist at once
            if convert_to_sparse_tensor:
                embeddings = embeddings.to_sparse()
            else:
                embeddings = embeddings.clone()
            return list(embeddings.cpu() if save_to_cpu else embeddings)

        budget = max_tokens_per_batch if max_tokens_per_batch is not None else default_token_budget(self.device)
        rows = run_token_batches(encoded["input_ids"], batch_size, budget, show_progress_bar, "Encoding", run)
        return self._finished(rows, single, convert_to_tensor)

    @staticmethod
    def _finished(rows: list[torch.Tensor], single: bool, convert_to_tensor: bool) -> torch.Tensor | list[torch.Tensor]:
        if not convert_to_tensor:
            return rows[0] if single else rows
        stacked = torch.stack(rows)  # (n, V)
        return stacked[0] if single else stacked

    def _empty(self, convert_to_tensor: bool, convert_to_sparse_tensor: bool) -> torch.Tensor | list[torch.Tensor]:
        """No inputs: an empty list, or a (0, V) tensor (sentence-transformers gives a 1-D empty tensor; (0, V)
        keeps the shape of every other output)."""
        if not convert_to_tensor:
            return []
        empty = torch.zeros((0, self.get_sentence_embedding_dimension() or 0), device=self.device)
        return empty.to_sparse() if convert_to_sparse_tensor else empty

    def encode_query(self, inputs: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                     **encode_kwargs: Any) -> torch.Tensor | list[torch.Tensor]:
        """``encode`` through the "query" route, with the model's "query" prompt (when it has one and no other
        prompt is given)."""
        if prompt is None and prompt_name is None and "query" in self.prompts:
            prompt_name = "query"
        return self.encode(inputs, prompt_name, prompt, task="query", **encode_kwargs)

    def encode_document(self, inputs: str | Sequence[str], prompt_name: str | None = None, prompt: str | None = None,
                        **encode_kwargs: Any) -> torch.Tensor | list[torch.Tensor]:
        """``encode`` through the "document" route, with the model's "document" prompt (or "passage", "corpus")."""
        if prompt is None and prompt_name is None:
            prompt_name = next((n for n in ("document", "passage", "corpus") if n in self.prompts), None)
        return self.encode(inputs, prompt_name, prompt, task="document", **encode_kwargs)

    # -- training -------------------------------------------------------------------------------------------------
    def prepare(self, inputs: Sequence[Any], *, prompt: str | None = None, task: str | None = None,
                modality: str | None = None) -> PreparedInputs:
        """A column of texts ready for ``embed`` (the CPU half of a training step)."""
        items = tag_inputs(list(inputs), modality)
        options = DecodeOptions()
        units, rules = expand(items, self.modalities, options)
        for unit in units:
            unit.value = decode(unit, items[unit.item].index, options)
        return PreparedInputs(units, rules, prompt, task)

    def embed(self, inputs: PreparedInputs | Sequence[Any]) -> torch.Tensor:
        """Dense embeddings (n, V) of one column, with gradients (what training losses call); no pruning to
        ``max_active_dims``."""
        prepared = inputs if isinstance(inputs, PreparedInputs) else self.prepare(inputs)
        if not prepared.units:
            return torch.zeros((0, self.get_sentence_embedding_dimension() or 0), device=self.device)
        vectors = forward_units(prepared.units, lambda _modality: self._stages(prepared.task), prepared.prompt,
                                self.device)
        return combine_units(prepared.units, vectors, prepared.rules)

    def embed_features(self, inputs: PreparedInputs | Sequence[str]) -> dict[str, Any]:
        """Every output of one forward pass over a column of texts, with gradients: ``sentence_embedding`` (n, dim)
        and what the modules add (a SparseAutoEncoder's reconstructions, which the CSR losses read)."""
        prepared = inputs if isinstance(inputs, PreparedInputs) else self.prepare(inputs)
        if len(prepared.units) != len(prepared) or any(unit.modality != "text" for unit in prepared.units):
            raise InputError("embed_features takes a column of texts (a SparseEncoder encodes text).")
        head, modules = self._stages(prepared.task)
        return text_features(head, modules, [unit.value for unit in prepared.units], prepared.prompt, self.device)

    # -- scores and inspection ------------------------------------------------------------------------------------
    def similarity(self, a: Any, b: Any) -> torch.Tensor:
        """Matrix of ``similarity_fn_name`` scores (dot by default) between every row of ``a`` and of ``b``."""
        return sparse_tensors.similarity(self.similarity_fn_name, a, b)

    def similarity_pairwise(self, a: Any, b: Any) -> torch.Tensor:
        """Score of ``a[i]`` against ``b[i]`` for each i."""
        return sparse_tensors.similarity_pairwise(self.similarity_fn_name, a, b)

    def decode(self, embeddings: torch.Tensor, top_k: int | None = None
               ) -> list[tuple[str, float]] | list[list[tuple[str, float]]]:
        """(token, weight) pairs of each embedding, heaviest first: a list for one embedding, a list of lists
        for a batch."""
        return sparse_tensors.decode(self.tokenizer, embeddings, top_k)

    @staticmethod
    def intersection(embeddings_1: torch.Tensor, embeddings_2: torch.Tensor) -> torch.Tensor:
        """The dimensions active in both embeddings, weighted by the product (sparse; shaped like ``embeddings_2``)."""
        return sparse_tensors.intersection(embeddings_1, embeddings_2)

    @staticmethod
    def sparsity(embeddings: torch.Tensor) -> dict[str, float]:
        """``{"active_dims": mean non-zeros per row, "sparsity_ratio": mean share of zeros}``."""
        return sparse_tensors.sparsity(embeddings)
