"""Split tagged inputs into the units a model embeds, and combine unit vectors back into one per input.

A unit is what one model call sees: a text, an image, an audio clip, or a chat conversation. Most inputs
are one unit. For a dual encoder (CLIP, SigLIP, CLAP), which has one tower per modality and no fused
input, a video becomes its sampled frames (their embeddings averaged), a video given to an audio-only
model becomes its audio track, and a multimodal dict becomes its parts (the L2-normalised mean of the
parts' L2-normalised embeddings). A model that reads chat conversations (a VLM) gets every input as one
conversation, so a multimodal dict yields one fused embedding.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from omnivec.errors import InputError
from omnivec.inputs.audio import load_audio
from omnivec.inputs.image import load_image
from omnivec.inputs.modality import Item
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy
from omnivec.inputs.video import VideoSampling, load_video, video_audio

Combine = Literal["single", "mean", "normalized_mean"]


@dataclass
class Unit:
    item: int  # position of the input it belongs to
    modality: str  # text | image | audio | message
    value: Any


@dataclass
class DecodeOptions:
    """How media are decoded for one model."""

    image_side: int | None = None  # the model's input size: big JPEGs decode at reduced scale
    sampling_rate: int | None = None  # the audio processor's rate
    video: VideoSampling = VideoSampling()
    policy: FetchPolicy = DEFAULT_POLICY


@dataclass
class PreparedInputs:
    """A column of inputs split into decoded units, ready for a forward pass with gradients (training).

    ``prompt`` and ``task`` travel with the column, so each training column keeps its own prompt and route.
    """

    units: list[Unit]
    rules: list[Combine]
    prompt: str | None = None
    task: str | None = None

    def __len__(self) -> int:
        return len(self.rules)

    def select(self, start: int, stop: int) -> PreparedInputs:
        """Inputs ``start:stop`` (for mini-batches), units renumbered from 0."""
        # Units are in item order, so the range is found by bisection, not by a scan per mini-batch.
        lo = bisect.bisect_left(self.units, start, key=lambda u: u.item)
        hi = bisect.bisect_left(self.units, stop, lo=lo, key=lambda u: u.item)
        units = [Unit(u.item - start, u.modality, u.value) for u in self.units[lo:hi]]
        return PreparedInputs(units, self.rules[start:stop], self.prompt, self.task)


def concat_prepared(columns: Sequence[PreparedInputs]) -> PreparedInputs:
    """Columns sharing a prompt and task, joined into one (one forward pass for all of them)."""
    units: list[Unit] = []
    rules: list[Combine] = []
    for column in columns:
        units.extend(Unit(u.item + len(rules), u.modality, u.value) for u in column.units)
        rules.extend(column.rules)
    return PreparedInputs(units, rules, columns[0].prompt, columns[0].task)


def combine_units(units: Sequence[Unit], vectors: Sequence[torch.Tensor], rules: Sequence[Combine]) -> torch.Tensor:
    """One vector per input, from its units' vectors (stacked, in input order)."""
    per_item: list[list[torch.Tensor]] = [[] for _ in rules]
    for unit, vector in zip(units, vectors, strict=True):
        per_item[unit.item].append(vector)
    return torch.stack([combine_vectors(parts, rule) for parts, rule in zip(per_item, rules, strict=True)])


def supported_modalities(model_modalities: Sequence[str]) -> list[str]:
    """Input modalities a model accepts, given the modalities its towers or chat template handle."""
    got = set(model_modalities)
    if "message" in got:
        return ["text", "image", "video", "multimodal"] if "image" in got else ["text", "multimodal"]
    out = [m for m in ("text", "image", "audio") if m in got]
    if "video" in got or "image" in got or "audio" in got:
        out.append("video")
    if len(out) > 1:
        out.append("multimodal")
    return out


def expand(items: Sequence[Item], model_modalities: Sequence[str], options: DecodeOptions) -> tuple[list[Unit], list[Combine]]:
    """Units for every input, and how each input's unit vectors combine."""
    accepted = supported_modalities(model_modalities)
    units: list[Unit] = []
    combine: list[Combine] = []
    chat = "message" in model_modalities
    for position, item in enumerate(items):
        kind = "multimodal" if isinstance(item.modality, tuple) else item.modality
        if kind not in accepted:
            raise InputError(f"Input at index {item.index} is {_describe(item)}, which this model does not accept; "
                             f"it accepts: {', '.join(accepted)}.")
        if chat:
            units.append(Unit(position, "message", _conversation(item)))
            combine.append("single")
        elif kind == "multimodal":
            for part, value in item.value.items():
                units.extend(_single_units(position, part, value, item.index, model_modalities, options))
            combine.append("normalized_mean")
        else:
            parts = _single_units(position, kind, item.value, item.index, model_modalities, options)
            units.extend(parts)
            combine.append("mean" if len(parts) > 1 else "single")
    return units, combine


def _single_units(position: int, kind: str, value: Any, index: int, model_modalities: Sequence[str],
                  options: DecodeOptions) -> list[Unit]:
    if kind == "video" and "video" not in model_modalities:
        if "image" in model_modalities:
            video = load_video(value, index=index, sampling=options.video, policy=options.policy,
                               min_side=options.image_side)  # frames converted reduced, as image files decode
            return [Unit(position, "image", frame) for frame in video.frames]
        if isinstance(value, dict):
            raise InputError(f"Input at index {index}: frames have no audio track for this audio model.")
        waveform, rate = video_audio(value, index=index, policy=options.policy)
        return [Unit(position, "audio", {"array": waveform, "sampling_rate": rate})]
    if kind not in model_modalities:
        raise InputError(f"Input at index {index}: its {kind} part is not accepted by this model "
                         f"(it embeds: {', '.join(model_modalities)}).")
    return [Unit(position, kind, value)]


def decode(unit: Unit, index: int, options: DecodeOptions) -> Any:
    """The unit's value ready for the processor: PIL RGB image, float32 audio at the model's rate, text."""
    if unit.modality == "image":
        return load_image(unit.value, index=index, min_side=options.image_side, policy=options.policy)
    if unit.modality == "audio":
        if options.sampling_rate is None:
            raise InputError(f"Input at index {index}: the model's processor has no audio sampling rate.")
        return load_audio(unit.value, index=index, sampling_rate=options.sampling_rate, policy=options.policy)
    if unit.modality == "message":
        return [{**turn, "content": _decoded_content(turn["content"], index, options)} for turn in unit.value]
    return unit.value


def combine_vectors(vectors: list[torch.Tensor], rule: Combine) -> torch.Tensor:
    if rule == "single":
        return vectors[0]
    stacked = torch.stack([v.float() for v in vectors])
    if rule == "normalized_mean":
        stacked = torch.nn.functional.normalize(stacked, dim=-1)
        return torch.nn.functional.normalize(stacked.mean(dim=0), dim=-1).to(vectors[0].dtype)
    return stacked.mean(dim=0).to(vectors[0].dtype)


def _conversation(item: Item) -> list[dict[str, Any]]:
    """A one-turn user conversation holding the input's images and videos (first) and text, not yet decoded."""
    parts = item.value if isinstance(item.modality, tuple) else {item.modality: item.value}
    content = [{"type": kind, kind: parts[kind]} for kind in ("image", "video") if kind in parts]
    if "text" in parts:
        content.append({"type": "text", "text": parts["text"]})
    return [{"role": "user", "content": content}]


def _decoded_content(content: list[dict[str, Any]], index: int, options: DecodeOptions) -> list[dict[str, Any]]:
    """Images decoded, a video replaced by its sampled frames (as images)."""
    out: list[dict[str, Any]] = []
    for part in content:
        if part["type"] == "image":
            out.append({"type": "image", "image": load_image(part["image"], index=index, policy=options.policy)})
        elif part["type"] == "video":
            video = load_video(part["video"], index=index, sampling=options.video, policy=options.policy)
            out.extend({"type": "image", "image": frame} for frame in video.frames)
        else:
            out.append(part)
    return out


def _describe(item: Item) -> str:
    if isinstance(item.modality, tuple):
        return f"a multimodal input ({' + '.join(item.modality)})"
    return f"{'an' if item.modality[0] in 'aeiou' else 'a'} {item.modality} input ({type(item.value).__name__})"

