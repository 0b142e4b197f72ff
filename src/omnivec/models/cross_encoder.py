"""CrossEncoder: scores (query, document) pairs. A drop-in for sentence-transformers' CrossEncoder that also
runs generative (LLM yes/no-logit) rerankers, with the query prefix computed once per ``rank`` call."""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnivec.errors import InputError, ModelLoadError
from omnivec.models.hub import HubOptions
from omnivec.models.pipeline import Pipeline, default_device, load_options
from omnivec.models.templates import RerankTemplate, resolve_template
from omnivec.models.text_cut import PairCutter
from omnivec.models.vision_pairs import image_placeholder, pair_has_image, prompts_with_images
from omnivec.modules.base import Module
from omnivec.modules.dense import activation_from_path, activation_path
from omnivec.modules.logit_score import LogitScore, token_id
from omnivec.modules.transformer import Transformer
from omnivec.runtime.batching import default_token_budget, plan_batches, progress, restore_order
from omnivec.runtime.execute import to_device
from omnivec.runtime.prefix_cache import common_prefix_length, last_token_logits_with_prefix

Pair = Sequence[str]


class CrossEncoder(Pipeline):
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
    """

    model_type = "CrossEncoder"

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
    ) -> None:
        if (model_name_or_path is None) == (modules is None):
            raise ValueError("Pass exactly one of model_name_or_path or modules.")
        model_config: dict[str, Any] = {}
        if model_name_or_path is not None:
            hub = HubOptions(revision=revision, token=token, cache_folder=cache_folder, local_files_only=local_files_only)
            config_kwargs = {**(config_kwargs or {}), **({"num_labels": num_labels} if num_labels else {})}
            options = load_options(dtype=dtype, trust_remote_code=trust_remote_code, model_kwargs=model_kwargs,
                                   tokenizer_kwargs=processor_kwargs, config_kwargs=config_kwargs)
            options["max_seq_length"] = max_length
            folder, loaded, model_config = self.read_folder(model_name_or_path, hub, options)
            template = resolve_template(template if template is not None else model_config.get("rerank_template"))
            if loaded is None:
                loaded, model_config = _default_modules(folder, options, max_length, template)
            modules = loaded
        super().__init__(*modules)
        self.name_or_path = str(model_name_or_path) if model_name_or_path is not None else None
        if max_length is not None:
            self.transformer.max_seq_length = max_length
        self._set_prompts(model_config, prompts, default_prompt_name)
        self.template = resolve_template(template)
        self._chat_templates: dict[str | None, RerankTemplate] = {}
        self._image_placeholder: str | None = None  # rendered from the processor's chat template on first use
        if self.template is not None:
            self._check_template_tokens(self.template)
        self.activation_fn = activation_fn or self._default_activation(model_config.get("activation_fn"))
        self.to(device or default_device())
        self.eval()

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
            if getattr(module, "module_output_name", None) == "scores":
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
        return self.transformer.transformer_task == "any-to-any"

    @property
    def logit_score(self) -> LogitScore | None:
        return next(self.modules_of(LogitScore), None)  # type: ignore[arg-type]

    def _default_activation(self, saved: str | None) -> Callable[[torch.Tensor], torch.Tensor]:
        if saved is not None:
            return activation_from_path(saved, "The CrossEncoder config")
        if self.template is not None and self.template.activation == "identity":
            return torch.nn.Identity()
        return torch.nn.Sigmoid() if self.num_labels == 1 else torch.nn.Identity()

    def _check_template_tokens(self, template: RerankTemplate) -> None:
        head = self.logit_score
        if head is None:
            raise ModelLoadError(f"Template {template.name!r} needs a LogitScore head (a causal LM reranker).")
        head.true_token_id = token_id(self.tokenizer, template.true_token)
        head.false_token_id = None if template.false_token is None else token_id(self.tokenizer, template.false_token)

    # -- scoring ----------------------------------------------------------------------------------
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
    ) -> np.ndarray | torch.Tensor | list[torch.Tensor] | float:
        """Scores of (query, document) pairs: one per pair (or ``num_labels`` per pair), in input order.

        A batch holds at most ``batch_size`` pairs and ``max_tokens_per_batch`` padded tokens (default: 2,048
        on CPU, where smaller batches run faster; none on GPU)."""
        if not isinstance(pairs, (list, tuple)):
            raise InputError(f"pairs must be a (query, document) pair or a list of pairs, got {type(pairs).__name__}.")
        single = len(pairs) == 2 and not any(isinstance(p, (list, tuple)) for p in pairs)
        checked = self._cut_pairs(_check_pairs([pairs] if single else pairs, self.takes_images))
        prompt = self._resolve_prompt(prompt, prompt_name)
        scores = self._score(checked, batch_size, prompt, show_progress_bar, False, max_tokens_per_batch)
        scores = self._finish(scores, activation_fn, apply_softmax)
        if convert_to_tensor:
            result: Any = scores
        elif convert_to_numpy:
            result = scores.numpy()
        else:
            result = list(scores)
        return result[0] if single else result

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
    ) -> list[dict[str, Any]]:
        """``[{"corpus_id", "score", "text"?}]`` sorted by score, best first (a generative reranker computes
        the shared instruction + query prefix once). ``top_k``: how many to return (None: all)."""
        if self.num_labels != 1:
            raise InputError("rank() needs a model with one label; use predict() for multi-label models.")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 0):
            raise InputError(f"top_k must be a whole number >= 0 or None (all documents), got {top_k!r}.")
        pairs = self._cut_pairs(_check_pairs([(query, d) for d in documents], self.takes_images)) if documents else []
        prompt = self._resolve_prompt(prompt, prompt_name)
        scores = self._score(pairs, batch_size, prompt, show_progress_bar, True, max_tokens_per_batch)
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
    def _score(self, pairs: list[tuple[str, str]], batch_size: int, prompt: str | None,
               show_progress_bar: bool | None, share_prefix: bool, max_tokens: int | None) -> torch.Tensor:
        if not pairs:
            return torch.zeros((0, self.num_labels))
        if batch_size <= 0:
            raise InputError(f"batch_size must be a positive integer, got {batch_size}.")
        if self.takes_images and any(pair_has_image(p) for p in pairs):
            return self._score_with_images(pairs, batch_size, prompt, show_progress_bar)
        encoded = self._encode_pairs(pairs, prompt)
        budget = max_tokens if max_tokens is not None else default_token_budget(self.device)
        head = self.logit_score
        if share_prefix and head is not None and len(pairs) > 1:
            prefix = common_prefix_length(encoded["input_ids"])
            if prefix > 0:
                ids = [head.true_token_id] + ([head.false_token_id] if head.false_token_id is not None else [])
                logits = last_token_logits_with_prefix(self.transformer.model, encoded["input_ids"], prefix, batch_size,
                                                       ids, self.tokenizer.pad_token_id or 0, budget)
                return (logits[:, :1] - logits[:, 1:2]) if len(ids) == 2 else logits[:, :1]
        batches = plan_batches([len(r) for r in encoded["input_ids"]], batch_size, budget)
        out: list[torch.Tensor] = []
        for indices in progress(batches, len(batches), show_progress_bar, "Scoring"):
            features = to_device(self.transformer.collate(encoded, indices), self.device)
            out.extend(self(features)["scores"].float().cpu())
        return torch.stack(restore_order(batches, out))

    def _score_with_images(self, pairs: list[tuple[Any, Any]], batch_size: int, prompt: str | None,
                           show_progress_bar: bool | None) -> torch.Tensor:
        starts = range(0, len(pairs), batch_size)
        scores: list[torch.Tensor] = []
        for start in progress(starts, len(starts), show_progress_bar, "Scoring"):
            features = self._image_pair_features(pairs[start : start + batch_size], prompt, start)
            scores.extend(self(features)["scores"].float().cpu())
        return torch.stack(scores)

    def _image_pair_features(self, pairs: Sequence[tuple[Any, Any]], prompt: str | None, start: int) -> dict[str, Any]:
        template = self.template or self._chat_as_template(prompt)
        if self._image_placeholder is None:
            self._image_placeholder = image_placeholder(self.transformer.processor)
        placeholder = self._image_placeholder
        texts, images = prompts_with_images(template, pairs, prompt, placeholder, start)
        features = dict(self.transformer.processor(text=texts, images=images or None, padding=True, return_tensors="pt"))
        if features["input_ids"].shape[1] > self.max_length:
            raise InputError(f"Pairs at index {start}..{start + len(texts) - 1}: a prompt with images takes "
                             f"{features['input_ids'].shape[1]} tokens, more than max_length={self.max_length} "
                             "(image prompts are not truncated).")
        return to_device(features, self.device)

    def logits(self, pairs: Sequence[Pair], prompt: str | None = None) -> torch.Tensor:
        """Raw scores of (query, document) pairs, shape (n, num_labels), in one forward pass with gradients:
        what training losses call. No activation is applied (a LogitScore head gives logit(yes) - logit(no)).
        ``prompt`` defaults to the model's default prompt, as in ``predict``."""
        checked = self._cut_pairs(_check_pairs(pairs, self.takes_images))
        prompt = self._resolve_prompt(prompt, None)
        if not checked:
            return torch.zeros((0, self.num_labels), device=self.device)
        if self.takes_images and any(pair_has_image(p) for p in checked):
            features = self._image_pair_features(checked, prompt, 0)
        else:
            encoded = self._encode_pairs(checked, prompt)
            features = to_device(self.transformer.collate(encoded, range(len(checked))), self.device)
        return self(features)["scores"]

    def _prompt_template(self, prompt: str | None) -> RerankTemplate | None:
        """The template a generative reranker fills: its own, or its chat template (None: plain text pairs)."""
        if self.template is not None:
            return self.template
        if self.logit_score is not None and getattr(self.tokenizer, "chat_template", None):
            return self._chat_as_template(prompt)
        return None

    def _encode_pairs(self, pairs: list[tuple[str, str]], prompt: str | None) -> dict[str, list[list[int]]]:
        transformer = self.transformer
        template = self._prompt_template(prompt)
        if template is None:
            pairs = [(prompt + q, d) for q, d in pairs] if prompt else pairs
            return transformer.tokenize_unpadded(pairs)
        # A chat template has the prompt rendered in already; a template's {instruction} slot takes it.
        instruction = prompt if template is self.template else None
        rows = [template.encode(self.tokenizer, q, d, instruction, transformer.max_seq_length, i)
                for i, (q, d) in enumerate(pairs)]
        return {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}

    def _chat_as_template(self, prompt: str | None) -> RerankTemplate:
        """The tokenizer's chat template, rendered once with query/document messages (and the prompt as a system
        message), as a one-segment template: truncation can then spare its fixed parts."""
        if prompt not in self._chat_templates:
            marks = {"query": "\x00OMNIVEC_QUERY\x00", "document": "\x00OMNIVEC_DOCUMENT\x00"}
            messages = ([{"role": "system", "content": prompt}] if prompt else []) + [
                {"role": "query", "content": marks["query"]}, {"role": "document", "content": marks["document"]}]
            rendered = self.tokenizer.apply_chat_template(messages, tokenize=False)
            for slot, mark in marks.items():
                if rendered.count(mark) != 1:
                    raise ModelLoadError(f"The tokenizer's chat template does not place the {slot} message exactly once; "
                                         "pass template= to describe the reranker's prompt.")
                rendered = rendered.replace(mark, "{" + slot + "}")
            self._chat_templates[prompt] = RerankTemplate.from_string(rendered, name="chat template")
        return self._chat_templates[prompt]

    # -- saving -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Save in the sentence-transformers layout (plus the reranker template, which it ignores)."""
        config: dict[str, Any] = {"prompts": self.prompts, "default_prompt_name": self.default_prompt_name,
                                  "activation_fn": activation_path(self.activation_fn)}
        if self.template is not None:
            config["rerank_template"] = self.template.to_config()
        self.save_modules(path, config)

    save_pretrained = save


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
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as exc:  # a lone surrogate: no tokenizer can take it
                    raise InputError(f"Pair at index {index} holds text that is not valid Unicode ({exc.reason} at "
                                     f"character {exc.start}).") from None
        checked.append((pair[0], pair[1]))
    return checked


def _default_modules(folder: Path, options: dict[str, Any], max_length: int | None,
                     template: RerankTemplate | None) -> tuple[list[Module], dict[str, Any]]:
    """A plain checkpoint: sequence classification, or a causal LM as a yes/no LogitScore reranker. An old
    sentence-transformers CrossEncoder keeps its activation under config.json's "sentence_transformers" key."""
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    architectures = config.get("architectures") or []
    kwargs = dict(dtype=options["dtype"], model_kwargs=options["model_kwargs"], tokenizer_kwargs=options["tokenizer_kwargs"],
                  config_kwargs=options["config_kwargs"], max_seq_length=max_length)
    vision_lm = bool(architectures) and architectures[0].endswith("ForConditionalGeneration") and "vision_config" in config
    if architectures and (architectures[0].endswith("ForCausalLM") or vision_lm):
        task = "any-to-any" if vision_lm else "text-generation"
        transformer = Transformer(folder, transformer_task=task, **kwargs)
        tokens = (template.true_token, template.false_token) if template is not None else ("yes", "no")
        return [transformer, LogitScore.from_tokens(transformer.tokenizer, *tokens)], {}
    kwargs["config_kwargs"] = {"num_labels": 1, **kwargs["config_kwargs"]} if not any(
        a.endswith("ForSequenceClassification") for a in architectures) else kwargs["config_kwargs"]
    transformer = Transformer(folder, transformer_task="sequence-classification", **kwargs)
    saved = config.get("sentence_transformers", {}).get("activation_fn") or config.get("sbert_ce_default_activation_function")
    return [transformer], ({"activation_fn": saved} if saved else {})
