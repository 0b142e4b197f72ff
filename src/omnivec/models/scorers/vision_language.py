"""Vision-language rerankers: a query or document may be an image.

The reranker's prompt (template, or its chat template with query/document messages) is filled with text,
and an image slot gets the processor's image placeholder (e.g. ``<|vision_start|><|image_pad|><|vision_end|>``
for Qwen2-VL); the processor then expands the placeholders and prepares the pixels. Image pairs are scored
without prefix sharing and without truncation (cutting a prompt could split an image's tokens); a call whose
pairs are all text is the causal-LM scorer's (templates, truncation, prefix-shared ``rank``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from omnivec.errors import InputError, ModelLoadError
from omnivec.inputs.image import load_image
from omnivec.inputs.modality import tag_inputs
from omnivec.models.scorers.base import Pair, Scorer, ScoringModel
from omnivec.models.scorers.causal_lm import CausalLMScorer
from omnivec.models.templates import RerankTemplate, fill_slots
from omnivec.runtime.batching import fixed_batches
from omnivec.runtime.execute import run_batches, to_device

_MARKS = ("\x00OMNIVEC_BEFORE\x00", "\x00OMNIVEC_AFTER\x00")


class VisionLanguageScorer(Scorer):
    """Pairs with images through the processor, in the caller's order, ``batch_size`` at a time; text-only calls
    through ``text`` (the same model as a causal-LM reranker)."""

    takes_images = True

    def __init__(self, model: ScoringModel, text: CausalLMScorer) -> None:
        super().__init__(model)
        self.text = text
        self._placeholder: str | None = None  # rendered from the processor's chat template on first use

    def score(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
              max_tokens: int | None) -> torch.Tensor:
        if not any(pair_has_image(p) for p in pairs):
            return self.text.score(pairs, prompt, batch_size, show_progress_bar, max_tokens)

        def run(indices: list[int]) -> list[torch.Tensor]:
            start = int(indices[0])
            features = self.features(pairs[start : start + len(indices)], prompt, start)
            return list(self.model(features)["scores"].float().cpu())

        return torch.stack(run_batches(fixed_batches(len(pairs), batch_size), show_progress_bar, "Scoring", run))

    def rank_scores(self, pairs: Sequence[Pair], prompt: str | None, batch_size: int, show_progress_bar: bool | None,
                    max_tokens: int | None) -> torch.Tensor:
        if not any(pair_has_image(p) for p in pairs):
            return self.text.rank_scores(pairs, prompt, batch_size, show_progress_bar, max_tokens)
        return self.score(pairs, prompt, batch_size, show_progress_bar, max_tokens)

    def logits(self, pairs: Sequence[Pair], prompt: str | None) -> torch.Tensor:
        if not any(pair_has_image(p) for p in pairs):
            return self.text.logits(pairs, prompt)
        return self.model(self.features(pairs, prompt, 0))["scores"]

    def features(self, pairs: Sequence[Pair], prompt: str | None, start: int) -> dict[str, Any]:
        """Processor features of pairs ``start``.. (on the model's device): filled prompts and their images."""
        text = self.text
        template = text.template or text.chat_template(prompt)
        if self._placeholder is None:
            self._placeholder = image_placeholder(self.model.transformer.processor)
        texts, images = prompts_with_images(template, pairs, prompt, self._placeholder, start)
        features = dict(self.model.transformer.processor(text=texts, images=images or None, padding=True,
                                                         return_tensors="pt"))
        max_length = self.model.transformer.max_seq_length
        if features["input_ids"].shape[1] > max_length:
            raise InputError(f"Pairs at index {start}..{start + len(texts) - 1}: a prompt with images takes "
                             f"{features['input_ids'].shape[1]} tokens, more than max_length={max_length} "
                             "(image prompts are not truncated).")
        return to_device(features, self.model.device)


def pair_has_image(pair: Sequence[Any]) -> bool:
    return any(not isinstance(x, str) for x in pair) or any(item.modality == "image" for item in tag_inputs(list(pair)))


def image_placeholder(processor: Any) -> str:
    """What the processor's chat template writes for one image."""
    content = [{"type": "text", "text": _MARKS[0]}, {"type": "image"}, {"type": "text", "text": _MARKS[1]}]
    try:
        rendered = processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False)
    except Exception as exc:
        raise ModelLoadError(f"This reranker's processor cannot render an image in its chat template: {exc}") from None
    start, end = rendered.find(_MARKS[0]), rendered.find(_MARKS[1])
    if start < 0 or end < 0:
        raise ModelLoadError("This reranker's chat template does not show where an image goes.")
    return rendered[start + len(_MARKS[0]) : end]


def prompts_with_images(template: RerankTemplate, pairs: Sequence[Sequence[Any]], instruction: str | None,
                        placeholder: str, first_index: int) -> tuple[list[str], list[Any]]:
    """The filled prompt text of each pair and the images it shows, in order of appearance."""
    texts, images = [], []
    for offset, (query, document) in enumerate(pairs):
        index = first_index + offset
        values, shown = {"instruction": instruction or template.instruction or ""}, {}
        for slot, value in (("query", query), ("document", document)):
            if isinstance(value, str) and tag_inputs([value])[0].modality == "text":
                values[slot] = value
            else:
                values[slot] = placeholder
                shown[slot] = load_image(value, index=index)
        text = ""
        for segment in template.segments:
            if segment == "{bos}":
                raise InputError(f"Pair at index {index}: templates with {{bos}} are not supported with images.")
            filled, spans = fill_slots(segment, values)
            text += filled
            images.extend(shown[slot] for _, _, slot in spans if slot in shown)
        texts.append(text)
    return texts, images
