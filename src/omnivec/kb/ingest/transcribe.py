"""Speech to timestamped text with a Whisper-family model (transformers' speech-recognition pipeline), grouped
into "transcript" passages that fit the text embedder."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from omnivec.errors import OmnivecError
from omnivec.kb.chunk import Chunk
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.location import Location

_PIPELINES: dict[tuple[str, str | None], Any] = {}  # loading a speech model takes seconds: once per process and model
_WARNED: set[str] = set()


class TranscriptionUnavailable(OmnivecError):
    """The speech-recognition model cannot be loaded; recordings are indexed without transcripts."""


def transcribe(audio_array: np.ndarray, rate: int, model_id: str,
               device: str | None = None) -> list[tuple[float, float, str]]:
    """``(start_s, end_s, text)`` segments of mono ``audio_array`` at ``rate``, by ``model_id`` (a Hub id or a
    folder) on ``device`` (CPU by default). Recordings longer than 30 s are transcribed window after window by
    Whisper's long-form decoding. Raises ``TranscriptionUnavailable`` when the model cannot be loaded."""
    from omnivec.inputs.audio import resample

    asr = _pipeline(model_id, device)
    model_rate = int(asr.feature_extractor.sampling_rate)
    # The pipeline would resample with torchaudio, which omnivec does not require: resample here instead.
    samples = resample(np.ascontiguousarray(audio_array, dtype=np.float32), int(rate), model_rate)
    duration = samples.size / model_rate
    if samples.size == 0:
        return []
    result = asr({"raw": samples, "sampling_rate": model_rate}, return_timestamps=True)
    segments = []
    for piece in result.get("chunks") or []:
        start, end = piece.get("timestamp") or (None, None)
        text = (piece.get("text") or "").strip()
        if not text:
            continue
        start = 0.0 if start is None else min(float(start), duration)
        end = duration if end is None else min(max(float(end), start), duration)  # the last segment may be open
        segments.append((start, end, text))
    return segments


def transcript_chunks(file: str, waveform: np.ndarray, rate: int, options: IngestOptions) -> list[Chunk]:
    """"transcript" text chunks: consecutive segments joined up to ``options.chunk_tokens`` tokens, with the start
    of their first and the end of their last segment. A model that cannot be loaded is warned about once, and
    recordings are then indexed without transcripts."""
    model_id = options.transcribe_model or ""
    try:
        segments = transcribe(waveform, rate, model_id)
    except TranscriptionUnavailable as exc:
        if model_id not in _WARNED:
            _WARNED.add(model_id)
            warnings.warn(str(exc), stacklevel=2)
        return []
    chunks: list[Chunk] = []
    group: list[tuple[float, float, str]] = []
    for segment in segments:
        if group and options.token_count(" ".join(t for _, _, t in [*group, segment])) > options.chunk_tokens:
            chunks.append(_chunk(file, group))
            group = []
        group.append(segment)
    if group:
        chunks.append(_chunk(file, group))
    return chunks


def _chunk(file: str, group: list[tuple[float, float, str]]) -> Chunk:
    text = " ".join(t for _, _, t in group)
    return Chunk(Location(file, start=group[0][0], end=group[-1][1]), modality="text", kind="transcript",
                 content=text, text=text)


def _pipeline(model_id: str, device: str | None) -> Any:
    if (model_id, device) not in _PIPELINES:
        try:
            from transformers import pipeline

            _PIPELINES[model_id, device] = pipeline("automatic-speech-recognition", model=model_id, device=device)
        except Exception as exc:  # missing folder, no network, not a speech model: all mean "no transcripts"
            raise TranscriptionUnavailable(
                f"cannot load the speech-recognition model {model_id!r} ({type(exc).__name__}: {exc}); "
                "transcripts will be skipped") from None
    return _PIPELINES[model_id, device]
