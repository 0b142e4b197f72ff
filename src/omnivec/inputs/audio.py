"""Decode audio: soundfile for wav/flac/ogg, PyAV for compressed formats; mono mix-down; resampling. Decoding is
streamed (mono mix-down and resampling block by block) and stops at ``MAX_AUDIO_SECONDS``; ``stream_audio`` hands
the blocks out as they decode, so a long recording is never whole in memory."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import numpy as np

from omnivec.errors import DecodeError, InputError
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy, SourceError, open_source

# Audio sampling rates accepted (Hz), for in-memory arrays and decoded files. 1 kHz keeps the upsampling to a
# model's rate (48 kHz for CLAP) within 48x; 384 kHz is the highest rate audio interfaces record at.
MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
# Seconds of audio one input may hold. 16 MiB of Opus at 6 kbit/s is 6 hours, 3-4 GB as float32: longer audio is
# refused from its header before decoding, and decoding stops past the limit whatever the header says. An hour at
# 48 kHz (CLAP) is 691 MB of float32 samples.
MAX_AUDIO_SECONDS = 3600
_BLOCK_S = 10  # soundfile reads this many seconds at a time, so a multi-channel file is never whole in memory
_RESERVE = 1 << 26  # output samples reserved at first when the header gives no duration (256 MB of float32)


class AudioTooLong(InputError):
    """Audio longer than ``MAX_AUDIO_SECONDS`` (its header says so, or decoding went past the limit)."""


def _require_av() -> Any:
    try:
        import av
    except ImportError:
        raise InputError("Decoding compressed audio/video and resampling need PyAV: pip install 'omnivec[audio]' "
                         "(or 'omnivec[video]')") from None
    return av


def load_audio(value: Any, *, index: int, sampling_rate: int, policy: FetchPolicy = DEFAULT_POLICY) -> np.ndarray:
    """Mono float32 samples at ``sampling_rate`` from an ``{"array", "sampling_rate"}`` dict, path, URL or bytes.
    Audio longer than ``MAX_AUDIO_SECONDS`` is refused (``AudioTooLong``)."""
    return read_audio(value, index=index, sampling_rate=sampling_rate, policy=policy)[0]


def read_audio(value: Any, *, index: int, sampling_rate: int, policy: FetchPolicy = DEFAULT_POLICY,
               max_seconds: float = MAX_AUDIO_SECONDS, cut: bool = False) -> tuple[np.ndarray, bool]:
    """``load_audio``, with the duration limit as a parameter: past ``max_seconds`` the audio is refused, or with
    ``cut`` only its first ``max_seconds`` are returned; and whether it was cut."""
    if isinstance(value, dict):
        source_rate = check_sampling_rate(value["sampling_rate"], index, "audio 'sampling_rate'")
        try:
            array = np.asarray(value["array"], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Input at index {index}: audio 'array' must hold numbers (float samples), "
                             f"got {type(value['array']).__name__} ({exc}).") from None
        waveform = _as_mono(array, index)
        described = "audio 'array'"
        limit = int(max_seconds * source_rate)
        if waveform.size > limit and not cut:
            raise too_long(index, described, f"{waveform.size / source_rate:.0f} s long", max_seconds)
        was_cut, waveform = waveform.size > limit, waveform[:limit]
    else:
        try:
            source, described = open_source(value, policy)
        except SourceError as exc:
            raise DecodeError(f"Input at index {index}: {exc}") from None
        collector = _Collector(index, described, sampling_rate, max_seconds, cut)
        for _ in _decode(source, described, collector):
            pass
        waveform, was_cut = collector.finish(), collector.cut
        if waveform.size == 0:
            raise DecodeError(f"Input at index {index} ({described}): cannot decode as audio: no samples decoded "
                             "(damaged or empty file).")
        return waveform, was_cut  # already checked and resampled block by block
    if waveform.size == 0:
        raise InputError(f"Input at index {index}: the audio array holds no samples.")
    if not np.isfinite(waveform).all():  # NaN or inf would silently turn every embedding into NaN
        first = int(np.flatnonzero(~np.isfinite(waveform))[0])
        raise non_finite(index, described, first)
    return resample(waveform, source_rate, sampling_rate), was_cut


def too_long(index: int, described: str, length: str, max_seconds: float) -> AudioTooLong:
    return AudioTooLong(f"Input at index {index} ({described}): the audio is {length}, more than the limit of "
                        f"{max_seconds:g} s (MAX_AUDIO_SECONDS).")


def non_finite(index: int, described: str, first: int) -> InputError:
    return InputError(f"Input at index {index}: {described} holds NaN or infinite samples (the first at sample "
                      f"{first}); expected finite samples, e.g. in [-1, 1].")


def check_sampling_rate(rate: Any, index: int, field: str) -> int:
    """``rate`` as an int number of Hz, or an InputError naming ``field`` and the allowed range."""
    allowed = f"an integer number of Hz in {MIN_SAMPLING_RATE}..{MAX_SAMPLING_RATE} (MIN/MAX_SAMPLING_RATE)"
    try:
        value = float(rate)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"Input at index {index}: {field} must be {allowed}, got {rate!r}.") from None
    if isinstance(rate, bool) or not value.is_integer() or not MIN_SAMPLING_RATE <= value <= MAX_SAMPLING_RATE:
        raise InputError(f"Input at index {index}: {field} must be {allowed}, got {rate!r}.")
    return int(value)


class AudioStream:
    """Mono float32 blocks at ``sampling_rate`` as a file decodes (iterate once), checked as ``read_audio`` checks
    them; once iterated, ``cut`` tells whether decoding stopped at ``max_seconds`` and ``samples`` how many came.
    Holds one block at a time. ``track``: the first audio stream of a media file, through PyAV only (a video's
    sound track), where no samples is no error."""

    def __init__(self, value: Any, *, index: int, sampling_rate: int, policy: FetchPolicy = DEFAULT_POLICY,
                 max_seconds: float = MAX_AUDIO_SECONDS, cut: bool = False, track: bool = False,
                 described: str | None = None) -> None:
        self.value, self.index, self.sampling_rate, self.policy = value, index, sampling_rate, policy
        self.max_seconds, self.may_cut, self.track, self.described = max_seconds, cut, track, described
        self.cut, self.samples = False, 0

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            source, described = open_source(self.value, self.policy)
        except SourceError as exc:
            raise DecodeError(f"Input at index {self.index}: {exc}") from None
        described = self.described or described
        collector = _Collector(self.index, described, self.sampling_rate, self.max_seconds, self.may_cut,
                               stream=True)
        steps = _decode_track(source, collector) if self.track else _decode(source, described, collector)
        for _ in steps:
            for block in collector.take():
                self.samples += block.size
                yield block
        if collector.rate:  # started: flush the resampler
            collector.finish()
        for block in collector.take():
            self.samples += block.size
            yield block
        self.cut = collector.cut
        if self.samples == 0 and not self.track:
            raise DecodeError(f"Input at index {self.index} ({described}): cannot decode as audio: no samples "
                              "decoded (damaged or empty file).")


class _Collector:
    """Mono float32 blocks at the source rate in, checked (finite, within the duration limit) and resampled to the
    target rate as they come (None: kept at the source rate), so only the output is ever whole in memory; with
    ``stream`` not even that: the output blocks wait in ``take()`` for the caller."""

    def __init__(self, index: int, described: str, target_rate: int | None, max_seconds: float, cut: bool,
                 stream: bool = False) -> None:
        self.index, self.described, self.target_rate = index, described, target_rate
        self.max_seconds, self.may_cut, self.stream = max_seconds, cut, stream
        self.rate = self.limit = 0
        self.taken, self.cut, self.resampler, self.out, self.filled = 0, False, None, np.zeros(0, np.float32), 0
        self.pending: list[np.ndarray] = []

    def start(self, rate: Any, claimed_s: float | None) -> None:
        """The source rate (checked before decoding) and the duration its header claims, if any."""
        self.rate = check_sampling_rate(rate, self.index, f"the sampling rate of {self.described}")
        self.limit = int(self.max_seconds * self.rate)
        if claimed_s is not None and claimed_s > self.max_seconds and not self.may_cut:
            raise too_long(self.index, self.described, f"{claimed_s:.0f} s long (its header says)", self.max_seconds)
        self.resampler = None
        if self.target_rate is not None and self.target_rate != self.rate:
            av = _require_av()
            self.resampler = av.AudioResampler(format="flt", layout="mono", rate=self.target_rate)
        # Room for the output the header announces (else the limit allows, up to 256 MB), reserved but untouched
        # (the OS backs only the pages written): the samples are not held twice, as blocks and their concatenation.
        rate = self.target_rate or self.rate
        self.most = int(self.max_seconds * rate) + rate  # output samples at the limit, resampler rounding included
        expect = min(self.most, _RESERVE) if claimed_s is None else min(int((claimed_s + 1) * rate), self.most)
        self.out, self.filled = np.empty(0 if self.stream else expect, np.float32), 0
        self.taken, self.cut, self.pending = 0, False, []

    def add(self, mono: np.ndarray) -> bool:
        """Take a block; False once past the limit (decoding stops)."""
        room = self.limit - self.taken
        if mono.size > room:
            if not self.may_cut:
                raise too_long(self.index, self.described, f"longer than {self.max_seconds:g} s (decoding stopped "
                               "there)", self.max_seconds)
            mono, self.cut = mono[:room], True
        if not np.isfinite(mono).all():  # NaN or inf would silently turn every embedding into NaN
            raise non_finite(self.index, self.described, self.taken + int(np.flatnonzero(~np.isfinite(mono))[0]))
        if mono.size:
            self._emit(np.ascontiguousarray(mono, dtype=np.float32))
        self.taken += mono.size
        return not self.cut

    def _emit(self, mono: np.ndarray) -> None:
        if self.resampler is None:
            self._put(mono)
            return
        av = _require_av()
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.taken, Fraction(1, self.rate)
        for out in self.resampler.resample(frame):
            self._put(out.to_ndarray().reshape(-1))

    def _put(self, samples: np.ndarray) -> None:
        if self.stream:
            self.pending.append(samples)
            return
        end = self.filled + samples.size
        if end > self.out.size:
            size = max(end, min(2 * self.out.size, self.most))  # the header understated the length
            self.out = np.concatenate([self.out[:self.filled], np.empty(size - self.filled, np.float32)])
        self.out[self.filled:end] = samples
        self.filled = end

    def finish(self) -> np.ndarray:
        if self.resampler is not None:
            for out in self.resampler.resample(None):
                self._put(out.to_ndarray().reshape(-1))
        return self.out[:self.filled]

    def take(self) -> list[np.ndarray]:
        """The output blocks made since the last call (``stream`` only)."""
        blocks, self.pending = self.pending, []
        return blocks


def _decode(source: Any, described: str, collector: _Collector) -> Iterator[None]:
    """Decode ``source`` into ``collector``, yielding after each block (a streaming caller takes the output)."""
    errors = []
    fed = False
    try:
        import soundfile

        with soundfile.SoundFile(source) as file:
            collector.start(file.samplerate, file.frames / file.samplerate if file.frames > 0 else None)
            for block in file.blocks(blocksize=_BLOCK_S * collector.rate, dtype="float32", always_2d=True):
                more = collector.add(block.mean(axis=1))
                fed = True
                yield
                if not more:
                    break
        return
    except ImportError:
        errors.append("soundfile is not installed")
    except InputError:  # a sampling rate out of range, too long, NaN samples: named already
        raise
    except Exception as exc:  # libsndfile cannot read mp3-in-mp4, m4a, opus...: PyAV can
        if fed and collector.stream:  # blocks already handed out: decoding again from the start would repeat them
            raise DecodeError(f"Input at index {collector.index} ({described}): cannot decode as audio past "
                              f"{collector.taken / collector.rate:.1f} s (soundfile: {exc}).") from None
        errors.append(f"soundfile: {exc}")
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        yield from _decode_track(source, collector)
        return
    except InputError:
        raise
    except Exception as exc:
        errors.append(f"PyAV: {exc}")
    raise DecodeError(f"Input at index {collector.index} ({described}): cannot decode as audio "
                     f"({'; '.join(errors)}).")


def decode_audio_track(source: Any, *, index: int = 0, described: str = "the audio track",
                       max_seconds: float = MAX_AUDIO_SECONDS, cut: bool = False) -> tuple[np.ndarray, int, bool]:
    """The first audio stream of a media file as mono float32 at its own sampling rate, the rate, and whether it
    was cut at ``max_seconds`` (``cut``; else longer audio raises ``AudioTooLong``)."""
    collector = _Collector(index, described, None, max_seconds, cut)
    for _ in _decode_track(source, collector):
        pass
    return collector.finish(), collector.rate, collector.cut


def _decode_track(source: Any, collector: _Collector) -> Iterator[None]:
    """Decode the first audio stream into ``collector``, yielding after each frame."""
    av = _require_av()
    with av.open(source) as container:
        if not container.streams.audio:
            raise ValueError("the file has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        claimed = (float(stream.duration * stream.time_base) if stream.duration and stream.time_base
                   else container.duration / 1_000_000 if container.duration else None)
        collector.start(rate, claimed)
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=collector.rate)
        for frame in container.decode(stream):
            more = all(collector.add(out.to_ndarray().reshape(-1)) for out in to_mono.resample(frame))
            yield
            if not more:
                return
        for out in to_mono.resample(None):
            collector.add(out.to_ndarray().reshape(-1))
        yield


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resample mono float32 audio with libswresample (PyAV); a no-op when the rates match."""
    if source_rate == target_rate:
        return waveform
    av = _require_av()
    resampler = av.AudioResampler(format="flt", layout="mono", rate=target_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(waveform, dtype=np.float32).reshape(1, -1),
                                       format="flt", layout="mono")
    frame.sample_rate = source_rate
    frame.pts = 0
    frame.time_base = Fraction(1, source_rate)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _as_mono(array: np.ndarray, index: int) -> np.ndarray:
    if array.ndim == 1:
        return array
    if array.ndim == 2:
        channel_axis = 0 if array.shape[0] < array.shape[1] else 1  # (channels, n) or (n, channels)
        return array.mean(axis=channel_axis).astype(np.float32)
    raise InputError(f"Input at index {index}: audio 'array' must be 1-D (mono) or 2-D (channels), "
                     f"got shape {array.shape}.")
