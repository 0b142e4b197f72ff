"""Pictures and recordings: one image chunk per picture, fixed-length windows of a recording."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from omnivec.errors import InputError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.thumbnail import thumbnail
from omnivec.kb.location import Location

MIN_WINDOW_S = 1.0  # a shorter tail window carries too little sound to embed (a short clip is still kept whole)
# An index run reads a recording (or a video's sound track) window by window, so its length no longer costs memory:
# one day of it is indexed, past that the rest is left out with a warning. Transcripts need the recording whole
# (Whisper), so they cover its first MAX_AUDIO_SECONDS (an hour: ~230 MB of 16 kHz float32), with a warning.
MAX_RECORDING_SECONDS = 24 * 3600


def decoder_source(path: Path) -> str:
    """The path as the shared decoders take it: absolute, so no file name is mistaken for a URL or data: URI."""
    return str(Path(path).resolve())


def reason(exc: InputError, source: str) -> str:
    """An InputError's message without its "Input at index 0 (...)" prefix: the IngestError names the file."""
    return re.sub(r"^Input at index \d+(?: \(" + re.escape(source) + r"\))?: ", "", str(exc))


def ingest_image(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    """One "image" chunk (an animated GIF's first frame), EXIF orientation applied, with a thumbnail; decoded
    reduced for ``options.image_side`` as the library decodes it (its vector is the one ``encode(path)`` gives)."""
    from PIL import Image

    from omnivec.inputs.image import load_image

    if not options.wants("image"):
        return  # no image space: not decoded
    source = decoder_source(path)
    try:
        image = load_image(source, index=0, min_side=options.image_side)  # as Embedder.encode decodes the file
    except InputError as exc:
        raise IngestError(str(path), reason(exc, source)) from None
    except Image.DecompressionBombError as exc:  # Pillow's guard against huge pixel counts
        raise IngestError(str(path), f"image too large to decode safely: {exc}") from None
    yield Chunk(Location(str(path)), modality="image", kind="image", content=image,
                thumbnail=thumbnail(image, options.thumbnail_px), extra={"width": image.width, "height": image.height})


def ingest_audio(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    """"audio" windows of the recording (mono, resampled to ``options.audio_rate``) with start/end seconds, each
    as soon as it is decoded (one window and one decoded block in memory); then "transcript" passages when
    ``options.transcribe_model`` is set (Whisper reads the recording whole: only then is it kept, up to
    ``MAX_AUDIO_SECONDS``). Only the first ``MAX_RECORDING_SECONDS`` are decoded and indexed (with a warning)."""
    from omnivec.inputs import audio

    if not options.wants("audio") and not (options.transcribe_model and options.wants("text")):
        return  # neither sound nor transcripts are embedded: not decoded
    source = decoder_source(path)
    stream = audio.AudioStream(source, index=0, sampling_rate=options.audio_rate,
                               max_seconds=MAX_RECORDING_SECONDS, cut=True)
    try:
        yield from sound_chunks(str(path), stream, options,
                                after=lambda: warn_cut(path, "recording") if stream.cut else None)
    except InputError as exc:
        raise IngestError(str(path), reason(exc, source)) from None


def warn_cut(path: Path | str, what: str, *, transcript: bool = False) -> None:
    """The warning for a recording (or sound track) cut at ``MAX_RECORDING_SECONDS``, or its transcript at
    ``MAX_AUDIO_SECONDS``."""
    from omnivec.inputs.audio import MAX_AUDIO_SECONDS
    from omnivec.printing import printable

    seconds, limit, done = (MAX_AUDIO_SECONDS, "MAX_AUDIO_SECONDS", "transcribed") if transcript \
        else (MAX_RECORDING_SECONDS, "MAX_RECORDING_SECONDS", "indexed")
    warnings.warn(printable(f"{path}: only the first {seconds:g} s of the {what} are {done} "
                            f"({limit}); the rest is left out"), stacklevel=3)


def sound_chunks(file: str, blocks: Iterable[np.ndarray], options: IngestOptions,
                 after: Callable[[], None] | None = None) -> Iterator[Chunk]:
    """Audio-window chunks as ``blocks`` (mono samples at ``options.audio_rate``) come, then transcript chunks if
    asked for. ``after`` is called once the blocks have all come (to warn about a recording cut at its limit)."""
    rate = options.audio_rate
    windows = WindowCutter(rate, options.audio_window_s, options.audio_hop_s) if options.wants("audio") else None
    transcribe = bool(options.transcribe_model and options.wants("text"))
    kept: list[np.ndarray] = []  # the recording, for Whisper, only when transcripts are wanted

    def chunk(start: float, end: float, window: np.ndarray) -> Chunk:
        return Chunk(Location(file, start=start, end=end), modality="audio", kind="audio",
                     content={"array": window, "sampling_rate": rate})

    from omnivec.inputs.audio import MAX_AUDIO_SECONDS

    room = int(MAX_AUDIO_SECONDS * rate) if transcribe else 0  # samples Whisper may still be given
    cut = False  # the transcript is of the first MAX_AUDIO_SECONDS only
    for block in blocks:
        if transcribe:
            cut = cut or len(block) > room
            kept.append(block[:room])
            room -= len(kept[-1])
            if cut and windows is None:  # only transcripts are wanted, and they are full
                break
        if windows is not None:
            yield from (chunk(*window) for window in windows.add(block))
    if windows is not None:
        yield from (chunk(*window) for window in windows.finish())
    if after is not None:
        after()
    if transcribe and kept:  # no samples (an empty sound track): nothing to transcribe
        from omnivec.kb.ingest.transcribe import transcript_chunks

        if cut:
            warn_cut(file, "recording", transcript=True)
        waveform = np.concatenate(kept)
        kept.clear()
        yield from transcript_chunks(file, waveform, rate, options)


class WindowCutter:
    """``(start_s, end_s, samples)`` every ``hop_s`` seconds, ``window_s`` long, from samples fed block by block:
    each window as soon as its last sample has come, keeping only what the next windows need. The last window
    ends with the recording and is kept if at least ``MIN_WINDOW_S`` long (or if it is the only one): the windows
    ``audio_windows`` cuts from the whole recording."""

    def __init__(self, rate: int, window_s: float, hop_s: float) -> None:
        self.rate, self.size, self.hop = rate, max(1, round(window_s * rate)), max(1, round(hop_s * rate))
        self.start = 0  # the next window's first sample
        self.offset = 0  # the sample number of buffer[0]
        self.buffer = np.zeros(0, np.float32)

    def add(self, block: np.ndarray) -> list[tuple[float, float, np.ndarray]]:
        """The windows ``block`` completes. One ending exactly where the samples so far end waits for the next
        block or ``finish``: it may be the last one."""
        self.buffer = np.concatenate([self.buffer, block]) if self.buffer.size else block
        self._trim()
        out = []
        while self.offset + self.buffer.size > self.start + self.size:
            if self.size >= MIN_WINDOW_S * self.rate or self.start == 0:
                out.append(self._window(self.start + self.size))
            self.start += self.hop
            self._trim()
        return out

    def finish(self) -> list[tuple[float, float, np.ndarray]]:
        """The windows left once every sample has come."""
        total, out = self.offset + self.buffer.size, []
        while self.start < total:
            stop = min(self.start + self.size, total)
            if stop - self.start >= MIN_WINDOW_S * self.rate or self.start == 0:
                out.append(self._window(stop))
            if self.start + self.size >= total:
                break
            self.start += self.hop
        self.buffer = np.zeros(0, np.float32)
        return out

    def _window(self, stop: int) -> tuple[float, float, np.ndarray]:
        samples = self.buffer[self.start - self.offset:stop - self.offset].copy()  # a copy: the buffer moves on
        return self.start / self.rate, stop / self.rate, samples

    def _trim(self) -> None:
        """Drop the samples before the next window (all of them when a hop longer than the window skips some)."""
        drop = min(self.start - self.offset, self.buffer.size)
        if drop > 0:
            self.buffer = self.buffer[drop:]
            self.offset += drop


def audio_windows(waveform: np.ndarray, rate: int, window_s: float,
                  hop_s: float) -> list[tuple[float, float, np.ndarray]]:
    """The windows ``WindowCutter`` cuts, from a whole waveform at once (samples are views): what the readers cut
    before they streamed, kept as the reference the streamed windows are tested against."""
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
