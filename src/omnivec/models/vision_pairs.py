"""Pairs with images for vision-language rerankers: a query or document may be an image.

The reranker's prompt (template, or its chat template with query/document messages) is filled with text,
and an image slot gets the processor's image placeholder (e.g. ``<|vision_start|><|image_pad|><|vision_end|>``
for Qwen2-VL); the processor then expands the placeholders and prepares the pixels. Image pairs are scored
without prefix sharing and without truncation (cutting a prompt could split an image's tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnivec.errors import InputError, ModelLoadError
from omnivec.inputs.image import load_image
from omnivec.inputs.modality import tag_inputs
from omnivec.models.templates import RerankTemplate, fill_slots

_MARKS = ("\x00OMNIVEC_BEFORE\x00", "\x00OMNIVEC_AFTER\x00")


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
