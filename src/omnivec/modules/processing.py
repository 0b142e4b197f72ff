"""Decoded media -> model features through a Hugging Face processor; which model method serves a modality."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# transformers' processor argument for each modality.
PROCESSOR_ARG = {"text": "text", "image": "images", "audio": "audio", "video": "videos"}
# The per-modality call options sentence-transformers uses, so that features (and numbers) match it.
CALL_OPTIONS: dict[str, dict[str, Any]] = {
    "text": {"padding": True, "truncation": "longest_first"},
    "image": {},
    "audio": {"padding": True},
    "video": {},
}


def processor_modalities(processor: Any) -> list[str]:
    """Modalities a processor (or bare tokenizer / feature extractor / image processor) can prepare."""
    from transformers import FeatureExtractionMixin, ImageProcessingMixin, PreTrainedTokenizerBase, ProcessorMixin

    if isinstance(processor, ProcessorMixin):
        get_attributes = getattr(processor, "get_attributes", None)  # transformers 5; 4.x has the class attribute
        attributes: Any = get_attributes() if callable(get_attributes) else getattr(processor, "attributes", [])
        names = {"tokenizer": "text", "image_processor": "image", "feature_extractor": "audio",
                 "video_processor": "video"}
        return [modality for attribute, modality in names.items() if attribute in attributes]
    for modality, cls in (("text", PreTrainedTokenizerBase), ("audio", FeatureExtractionMixin),
                          ("image", ImageProcessingMixin)):
        if isinstance(processor, cls):
            return [modality]
    return []


def infer_modality_config(model: Any, processor: Any, output_field: str) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Which model method embeds each modality, as sentence-transformers infers it.

    A model whose ``forward`` returns ``output_field`` (e.g. ``last_hidden_state``) uses it for every
    modality; a dual encoder (CLIP, SigLIP, CLAP) uses ``get_<modality>_features`` and yields sentence
    embeddings directly. A processor with a chat template adds the ``message`` modality.
    Returns ``(modality_config, module_output_name or None for the task default)``.
    """
    modalities = processor_modalities(processor)
    has_chat = getattr(processor, "chat_template", None) is not None and len(modalities) > 1
    fields = _output_fields(model.forward)
    if fields is None or output_field in fields:
        config = {m: {"method": "forward", "method_output_name": output_field} for m in modalities}
        if has_chat:
            config["message"] = {"method": "forward", "method_output_name": output_field}
        return config, None
    config = {}
    for modality in modalities:
        method = getattr(model, f"get_{modality}_features", None)
        if method is not None:
            pooled = "pooler_output" in (_output_fields(method) or [])
            config[modality] = {"method": f"get_{modality}_features", "method_output_name": "pooler_output" if pooled else None}
    return config, "sentence_embedding"


def _output_fields(method: Any) -> list[str] | None:
    import dataclasses
    import typing

    from transformers.utils.generic import ModelOutput

    try:
        annotation = typing.get_type_hints(method).get("return")
    except Exception:
        return None
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, ModelOutput):
            return [f.name for f in dataclasses.fields(typing.cast(Any, candidate))]  # ModelOutputs are dataclasses
    return None


def call_processor(processor: Any, modality: str, values: Sequence[Any]) -> dict[str, Any]:
    """Run the processor on one modality's decoded values; returns tensors."""
    from transformers import ProcessorMixin

    options = dict(CALL_OPTIONS[modality])  # a copy: the processor may fill in its defaults
    if modality == "audio":
        # Audio arrives resampled to the feature extractor's own rate; saying so silences transformers' warning
        # on every call that the rate was not given (and makes it check the rate).
        rate = getattr(getattr(processor, "feature_extractor", processor), "sampling_rate", None)
        if rate:
            options["sampling_rate"] = rate
    if isinstance(processor, ProcessorMixin):
        arg = PROCESSOR_ARG[modality]
        return dict(processor(**{arg: list(values), f"{arg}_kwargs": options}, common_kwargs={"return_tensors": "pt"}))
    return dict(processor(list(values), **options, return_tensors="pt"))


def chat_features(processor: Any, conversations: Sequence[list[dict[str, Any]]], max_length: int | None) -> dict[str, Any]:
    """Render chat conversations with the processor's template and process text and images together."""
    texts = [processor.apply_chat_template(c, tokenize=False, add_generation_prompt=False) for c in conversations]
    images = [part["image"] for c in conversations for message in c for part in _parts(message) if part.get("type") == "image"]
    kwargs: dict[str, Any] = {"text": texts, "padding": True, "return_tensors": "pt"}
    if images:
        kwargs["images"] = images
    if max_length is not None and not images:
        kwargs.update(truncation=True, max_length=max_length)  # never cut image tokens apart from their pixels
    return dict(processor(**kwargs))


def _parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    return content if isinstance(content, list) else []
