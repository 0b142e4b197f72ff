"""Pictures and recordings: one image chunk per picture, fixed-length windows of a recording."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from omnivec.errors import InputError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.thumbnail import thumbnail
from omnivec.kb.location import Location

MIN_WINDOW_S = 1.0  # a shorter tail window carries too little sound to embed (a short clip is still kept whole)


def decoder_source(path: Path) -> str:
    """The path as the shared decoders take it: absolute, so no file name is mistaken for a URL or data: URI."""
    return str(Path(path).resolve())


def reason(exc: InputError, source: str) -> str:
    """An InputError's message without its "Input at index 0 (...)" prefix: the IngestError names the file."""
    return re.sub(r"^Input at index \d+(?: \(" + re.escape(source) + r"\))?: ", "", str(exc))


def ingest_image(path: Path, options: IngestOptions) -> list[Chunk]:
    """One "image" chunk (an animated GIF's first frame), EXIF orientation applied, with a thumbnail; decoded
    reduced for ``options.image_side`` as the library decodes it (its vector is the one ``encode(path)`` gives)."""
    from PIL import Image

    from omnivec.inputs.image import load_image

    if not options.wants("image"):
        return []  # no image space: not decoded
    source = decoder_source(path)
    try:
        image = load_image(source, index=0, min_side=options.image_side)  # as Embedder.encode decodes the file
    except InputError as exc:
        raise IngestError(str(path), reason(exc, source)) from None
    except Image.DecompressionBombError as exc:  # Pillow's guard against huge pixel counts
        raise IngestError(str(path), f"image too large to decode safely: {exc}") from None
    return [Chunk(Location(str(path)), modality="image", kind="image", content=image,
                  thumbnail=thumbnail(image, options.thumbnail_px),
                  extra={"width": image.width, "height": image.height})]


def ingest_audio(path: Path, options: IngestOptions) -> list[Chunk]:
    """"audio" windows of the recording (mono, resampled to ``options.audio_rate``) with start/end seconds;
    "transcript" passages too when ``options.transcribe_model`` is set. Only the first ``MAX_AUDIO_SECONDS`` are
    decoded and indexed (with a warning): the whole recording is in memory until its chunks are embedded."""
    from omnivec.inputs import audio

    if not options.wants("audio") and not (options.transcribe_model and options.wants("text")):
        return []  # neither sound nor transcripts are embedded: not decoded
    source = decoder_source(path)
    try:
        waveform, cut = audio.read_audio(source, index=0, sampling_rate=options.audio_rate,
                                         max_seconds=audio.MAX_AUDIO_SECONDS, cut=True)
    except InputError as exc:
        raise IngestError(str(path), reason(exc, source)) from None
    if cut:
        warn_cut(path, "recording")
    return sound_chunks(str(path), waveform, options)


def warn_cut(path: Path, what: str) -> None:
    """The warning for a recording (or sound track) cut at ``MAX_AUDIO_SECONDS``."""
    from omnivec.inputs.audio import MAX_AUDIO_SECONDS
    from omnivec.printing import printable

    warnings.warn(printable(f"{path}: only the first {MAX_AUDIO_SECONDS:g} s of the {what} are indexed "
                            "(MAX_AUDIO_SECONDS); the rest is left out"), stacklevel=3)


def sound_chunks(file: str, waveform: np.ndarray, options: IngestOptions) -> list[Chunk]:
    """Audio-window chunks (and transcript chunks, if asked for) of mono samples at ``options.audio_rate``."""
    rate = options.audio_rate
    windows = audio_windows(waveform, rate, options.audio_window_s, options.audio_hop_s) if options.wants(
        "audio") else []
    chunks = [Chunk(Location(file, start=start, end=end), modality="audio", kind="audio",
                    content={"array": window, "sampling_rate": rate}) for start, end, window in windows]
    if options.transcribe_model and options.wants("text"):
        from omnivec.kb.ingest.transcribe import transcript_chunks

        chunks.extend(transcript_chunks(file, waveform, rate, options))
    return chunks


def audio_windows(waveform: np.ndarray, rate: int, window_s: float,
                  hop_s: float) -> list[tuple[float, float, np.ndarray]]:
    """``(start_s, end_s, samples)`` every ``hop_s`` seconds, ``window_s`` long; the last window ends with the
    recording and is kept if at least ``MIN_WINDOW_S`` long (or if it is the only one). Samples are views."""
    size, hop = max(1, round(window_s * rate)), max(1, round(hop_s * rate))
    out: list[tuple[float, float, np.ndarray]] = []
    start = 0
    while start < waveform.size:
        stop = min(start + size, waveform.size)
        if stop - start >= MIN_WINDOW_S * rate or start == 0:
            out.append((start / rate, stop / rate, waveform[start:stop]))
        if start + size >= waveform.size:
            break
        start += hop
    return out
