"""CrossEncoder: scores (query, document) pairs. A drop-in for sentence-transformers' CrossEncoder that also
runs generative (LLM yes/no-logit) rerankers, with the query prefix computed once per ``rank`` call."""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnivec.errors import ConfigError, InputError
from omnivec.inputs.modality import require_valid_unicode
from omnivec.loading.hub import HubOptions
from omnivec.loading.options import BackendName, LoadOptions
from omnivec.models import extensions
from omnivec.models.base_model import BaseModel
from omnivec.models.model_card_data import CrossEncoderModelCardData, checked_card_data
from omnivec.models.multi_process import PoolRequest, pool_or_place, scores_in_pool
from omnivec.models.scorers import Scorer, build_scorer, with_template_head
from omnivec.models.templates import RerankTemplate, resolve_template
from omnivec.models.text_cut import PairCutter
from omnivec.modules.base import Module
from omnivec.modules.dense import Dense, activation_from_path, activation_path
from omnivec.modules.logit_score import LogitScore
from omnivec.modules.renamed_args import legacy_positionals, renamed_kwargs
from omnivec.modules.transformer import Transformer
from omnivec.runtime.process_pool import ProcessPool

Pair = Sequence[str]


class CrossEncoder(BaseModel):
    """Scores pairs with a ``*ForSequenceClassification`` model, or a causal LM through a ``LogitScore`` head.

    Args:
        model_name_or_path: folder or Hub id: a sentence-transformers CrossEncoder (either layout), a plain
            sequence-classification checkpoint, or a causal LM (loaded as a yes/no LogitScore reranker).
        modules: build from modules instead (e.g. ``[Transformer(..., transformer_task="text-generation"),
            LogitScore(...)]``).
        template: for causal LMs: a preset name (``qwen3-reranker``, ``bge-reranker-v2-gemma``,
            ``mxbai-rerank-v2``), a ``RerankTemplate`` or a string with ``{query}`` and ``{document}``;
            without one, the tokenizer's chat template gets ``query``/``document`` messages.
        num_labels / max_length / activation_fn: as in sentence-transformers (activation default: Sigmoid for
            one label, Identity otherwise; a template's own activation for generative rerankers).
        prompts / default_prompt_name: for generative rerankers the prompt fills ``{instruction}``.
        backend: ``torch``, ``onnx`` or ``openvino`` (classifier rerankers only; CPU, float32; ``model_kwargs``
            ``file_name``/``provider``/``export`` as in sentence-transformers); ``onnx-int8``, ``openvino-int8`` and
            ``auto`` as for ``Embedder``.
    """

    model_type = "CrossEncoder"
    model_kind = "cross-encoder"
    default_huggingface_organization = "cross-encoder"

    @renamed_kwargs("CrossEncoder", model_name="model_name_or_path", automodel_args="model_kwargs",
                    tokenizer_args="processor_kwargs", tokenizer_kwargs="processor_kwargs", config_args="config_kwargs",
                    cache_dir="cache_folder", default_activation_function="activation_fn")
    @legacy_positionals("CrossEncoder", 2, ("num_labels", "max_length", "activation_fn", "device"))
    def __init__(
        self,
        model_name_or_path: str | os.PathLike | None = None,
        *,
        modules: Sequence[Module] | None = None,
        template: RerankTemplate | str | None = None,
        device: str | torch.device | None = None,
        num_labels: int | None = None,
        max_length: int | None = None,
        activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        prompts: dict[str, str] | None = None,
        default_prompt_name: str | None = None,
        dtype: str | torch.dtype | None = None,
        cache_folder: str | None = None,
        revision: str | None = None,
        token: bool | str | None = None,
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        processor_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: BackendName = "torch",
        model_card_data: CrossEncoderModelCardData | None = None,
    ) -> None:
        if (model_name_or_path is None) == (modules is None):
            raise ConfigError("Pass exactly one of model_name_or_path or modules.")
        options = LoadOptions(
            dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=model_kwargs or {},
            tokenizer_kwargs=processor_kwargs or {}, max_seq_length=max_length,
            config_kwargs={**(config_kwargs or {}), **({"num_labels": num_labels} if num_labels else {})},
            hub=HubOptions(revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_files_only),
            backend=backend,
        )
        super().__init__(model_name_or_path, modules, options, device=device, prompts=prompts,
                         default_prompt_name=default_prompt_name,
                         config={"rerank_template": template, "activation_fn": activation_fn})
        self.model_card_data = checked_card_data(model_card_data, CrossEncoderModelCardData)

    @classmethod
    def _default_modules(cls, folder: Path, options: LoadOptions,
                         config: Mapping[str, Any]) -> tuple[list[Module], dict[str, Any]]:
        """A plain checkpoint: sequence classification, or a causal LM as a yes/no LogitScore reranker. An old
        sentence-transformers CrossEncoder keeps its activation under config.json's "sentence_transformers" key."""
        hf_config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        architectures = hf_config.get("architectures") or []
        vision_lm = (bool(architectures) and architectures[0].endswith("ForConditionalGeneration")
                     and "vision_config" in hf_config)
        if architectures and (architectures[0].endswith("ForCausalLM") or vision_lm):
            transformer = Transformer.from_options(folder, options,
                                                   transformer_task="any-to-any" if vision_lm else "text-generation")
            template = resolve_template(config.get("rerank_template"))
            tokens = (template.true_token, template.false_token) if template is not None else ("yes", "no")
            return [transformer, LogitScore.from_tokens(transformer.tokenizer, *tokens)], {}
        if not any(a.endswith("ForSequenceClassification") for a in architectures):
            options = replace(options, config_kwargs={"num_labels": 1, **options.config_kwargs})
        transformer = Transformer.from_options(folder, options, transformer_task="sequence-classification")
        saved = (hf_config.get("sentence_transformers", {}).get("activation_fn")
                 or hf_config.get("sbert_ce_default_activation_function"))
        return [transformer], ({"activation_fn": saved} if saved else {})

    def _assemble(self, modules: Sequence[Module], config: Mapping[str, Any]) -> list[Module]:
        """The LogitScore head for the template (a new head when the loaded one scores other tokens)."""
        return with_template_head(modules, resolve_template(config.get("rerank_template")))

    def _configure(self, config: Mapping[str, Any]) -> None:
        self.template = resolve_template(config.get("rerank_template"))
        self.activation_fn = self._default_activation(config.get("activation_fn"))
        self.scorer: Scorer = build_scorer(self, self.logit_score, self.template)

    def _model_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"activation_fn": activation_path(self.activation_fn)}
        if self.template is not None:
            config["rerank_template"] = self.template.to_config()
        return config

    # -- properties -------------------------------------------------------------------------------
    @property
    def max_length(self) -> int:
        """Pairs are truncated to this many tokens (sentence-transformers' name for max_seq_length)."""
        return self.max_seq_length

    @max_length.setter
    def max_length(self, value: int) -> None:
        self.max_seq_length = value

    @property
    def num_labels(self) -> int:
        for module in reversed(list(self)):
            if isinstance(module, LogitScore):
                return 1
            if isinstance(module, Transformer):
                return int(module.config.num_labels)
            if isinstance(module, Dense) and module.module_output_name == "scores":
                return int(module.get_embedding_dimension())
        return 1

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "activation_fn":  # a torch module, but no pipeline step: keep it out of the Sequential
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    @property
    def takes_images(self) -> bool:
        """Whether pairs may hold images (a vision-language reranker)."""
        return self.scorer.takes_images

    @property
    def logit_score(self) -> LogitScore | None:
        return next(self.modules_of(LogitScore), None)  # type: ignore[arg-type]

    def _default_activation(self, chosen: str | Callable[[torch.Tensor], torch.Tensor] | None
                            ) -> Callable[[torch.Tensor], torch.Tensor]:
        """The caller's activation, else the saved one (a class path), else the default for this head."""
        if callable(chosen):
            return chosen
        if chosen is not None:
            return activation_from_path(chosen, "The CrossEncoder config")
        if self.template is not None and self.template.activation == "identity":
            return torch.nn.Identity()
        return torch.nn.Sigmoid() if self.num_labels == 1 else torch.nn.Identity()

    @property
    def model(self) -> Any:
        """The Hugging Face model that scores the pairs (sentence-transformers' ``CrossEncoder.model``)."""
        return self.transformer.model

    @property
    def config(self) -> Any:
        """The Hugging Face config of that model (``num_labels``, ``id2label``...)."""
        return self.transformer.config

    @property
    def default_activation_function(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The older name of ``activation_fn``."""
        return self.activation_fn

    # -- scoring ----------------------------------------------------------------------------------
    @renamed_kwargs(same={"inputs": "pairs"}, no_effect=("num_workers",), sentences="pairs",
                    activation_fct="activation_fn")
    def predict(
        self,
        pairs: Pair | Sequence[Pair],
        batch_size: int = 32,
        activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        apply_softmax: bool = False,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        show_progress_bar: bool | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        max_tokens_per_batch: int | None = None,
        device: str | torch.device | list[str | torch.device] | None = None,
        pool: ProcessPool | None = None,
        chunk_size: int | None = None,
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor] | float:
        """Scores of (query, document) pairs: one per pair (or ``num_labels`` per pair), in input order.

        A batch holds at most ``batch_size`` pairs and ``max_tokens_per_batch`` padded tokens (default: 2,048
        on CPU, where smaller batches run faster; none on GPU). ``pool`` (from ``start_multi_process_pool``) or a
        list of devices (a pool for this call) scores in worker processes, ``chunk_size`` pairs at a time."""
        if not isinstance(pairs, (list, tuple)):
            raise InputError(f"pairs must be a (query, document) pair or a list of pairs, got {type(pairs).__name__}.")
        single = len(pairs) == 2 and not any(isinstance(p, (list, tuple)) for p in pairs)
        checked = self._cut_pairs(_check_pairs([pairs] if single else pairs, self.takes_images))
        prompt = self._resolve_prompt(prompt, prompt_name)
        request = pool_or_place(self, pool, device, chunk_size)
        scores = self._run(self.scorer.score, checked, batch_size, prompt, show_progress_bar, max_tokens_per_batch,
                           request)
        scores = self._finish(scores, activation_fn, apply_softmax)
        if convert_to_tensor:
            result: Any = scores
        elif convert_to_numpy:
            result = scores.numpy()
        else:
            result = list(scores)
        return result[0] if single else result

    @renamed_kwargs(no_effect=("num_workers", "apply_softmax", "convert_to_numpy", "convert_to_tensor"),
                    activation_fct="activation_fn")
    def rank(
        self,
        query: str,
        documents: Sequence[str],
        top_k: int | None = None,
        return_documents: bool = False,
        batch_size: int = 32,
        show_progress_bar: bool | None = None,
        activation_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
        prompt: str | None = None,
        prompt_name: str | None = None,
        max_tokens_per_batch: int | None = None,
        device: str | torch.device | list[str | torch.device] | None = None,
        pool: ProcessPool | None = None,
        chunk_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """``[{"corpus_id", "score", "text"?}]`` sorted by score, best first (a generative reranker computes
        the shared instruction + query prefix once, per chunk with a ``pool``). ``top_k``: how many to return
        (None: all). ``device`` / ``pool`` / ``chunk_size``: as for ``predict``."""
        if self.num_labels != 1:
            raise InputError("rank() needs a model with one label; use predict() for multi-label models.")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0):
            raise InputError(f"top_k must be a whole number >= 0 or None (all documents), got {top_k!r}.")
        pairs = self._cut_pairs(_check_pairs([(query, d) for d in documents], self.takes_images)) if documents else []
        prompt = self._resolve_prompt(prompt, prompt_name)
        request = pool_or_place(self, pool, device, chunk_size)
        scores = self._run(self.scorer.rank_scores, pairs, batch_size, prompt, show_progress_bar, max_tokens_per_batch,
                           request)
        scores = self._finish(scores, activation_fn, False)
        results = [{"corpus_id": i, "score": float(s)} for i, s in enumerate(scores.tolist())]
        if return_documents:
            for result in results:
                result["text"] = documents[result["corpus_id"]]
        results.sort(key=lambda r: r["score"], reverse=True)
        return results[:top_k] if top_k is not None else results

    def _cut_pairs(self, pairs: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
        """Each text cut to about ``max_length`` tokens before it is paired (``text_cut``): what the pair's own
        truncation keeps is unchanged, but a huge query no longer costs memory per document."""
        cut = PairCutter(self.tokenizer, self.max_length)
        return [cut(q, d) for q, d in pairs]

    def _finish(self, scores: torch.Tensor, activation_fn: Any, apply_softmax: bool) -> torch.Tensor:
        scores = (activation_fn or self.activation_fn)(scores.float())
        if scores.ndim > 1 and scores.shape[1] == 1:
            scores = scores.squeeze(1)
        if apply_softmax and scores.ndim > 1:
            scores = torch.nn.functional.softmax(scores, dim=1)
        return scores

    @torch.inference_mode()
    def _run(self, scorer_method: Callable[..., torch.Tensor], pairs: list[tuple[Any, Any]], batch_size: int,
             prompt: str | None, show_progress_bar: bool | None, max_tokens: int | None,
             request: PoolRequest | None = None) -> torch.Tensor:
        """Raw scores from ``scorer_method`` (the scorer's ``score`` or ``rank_scores``), no activation; in worker
        processes for a ``request`` (``models/multi_process.py``)."""
        if not pairs:
            return torch.zeros((0, self.num_labels))
        if batch_size <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size}.")
        if request is not None:
            return scores_in_pool(self, request, scorer_method.__name__, pairs, batch_size=batch_size, prompt=prompt,
                                  max_tokens=max_tokens, show_progress_bar=show_progress_bar)
        return scorer_method(pairs, prompt, batch_size, show_progress_bar, max_tokens)

    def logits(self, pairs: Sequence[Pair], prompt: str | None = None) -> torch.Tensor:
        """Raw scores of (query, document) pairs, shape (n, num_labels), in one forward pass with gradients:
        what training losses call. No activation is applied (a LogitScore head gives logit(yes) - logit(no)).
        ``prompt`` defaults to the model's default prompt, as in ``predict``."""
        checked = self._cut_pairs(_check_pairs(pairs, self.takes_images))
        prompt = self._resolve_prompt(prompt, None)
        if not checked:
            return torch.zeros((0, self.num_labels), device=self.device)
        return self.scorer.logits(checked, prompt)

    def fit(self, train_dataloader: Any, **kwargs: Any) -> None:
        """sentence-transformers' pre-v4 training entry point (``train_dataloader`` of InputExample pairs, ``epochs``,
        ``loss_fct``, ``warmup_steps``, ``evaluator``, ``output_path``...), run on omnivec's trainer; see
        ``omnivec.train.fit.fit_cross_encoder``."""
        extensions.call("cross_encoder_fit", self, train_dataloader, **kwargs)


def _check_pairs(pairs: Sequence[Any], allow_images: bool) -> list[tuple[Any, Any]]:
    checked = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            size = len(pair) if isinstance(pair, (list, tuple)) else type(pair).__name__
            raise InputError(f"Pair at index {index} must be a (query, document) pair of 2 texts, got {size!r}.")
        if not allow_images and not all(isinstance(x, str) for x in pair):
            raise InputError(f"Pair at index {index} must hold two str, got ({type(pair[0]).__name__}, "
                             f"{type(pair[1]).__name__}); only vision-language rerankers take images.")
        for value in pair:
            if isinstance(value, str):
                require_valid_unicode(value, f"Pair at index {index}")
        checked.append((pair[0], pair[1]))
    return checked
