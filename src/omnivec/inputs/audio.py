"""Decode audio: soundfile for wav/flac/ogg, PyAV for compressed formats; mono mix-down; resampling."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from omnivec.errors import InputError
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy, SourceError, open_source

# Audio sampling rates accepted (Hz), for in-memory arrays and decoded files. 1 kHz keeps the upsampling to a
# model's rate (48 kHz for CLAP) within 48x; 384 kHz is the highest rate audio interfaces record at.
MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000


def _require_av() -> Any:
    try:
        import av
    except ImportError:
        raise InputError("Decoding compressed audio/video and resampling need PyAV: pip install 'omnivec[audio]' "
                         "(or 'omnivec[video]')") from None
    return av


def load_audio(value: Any, *, index: int, sampling_rate: int, policy: FetchPolicy = DEFAULT_POLICY) -> np.ndarray:
    """Mono float32 samples at ``sampling_rate`` from an ``{"array", "sampling_rate"}`` dict, path, URL or bytes."""
    if isinstance(value, dict):
        source_rate = check_sampling_rate(value["sampling_rate"], index, "audio 'sampling_rate'")
        try:
            array = np.asarray(value["array"], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputError(f"Input at index {index}: audio 'array' must hold numbers (float samples), "
                             f"got {type(value['array']).__name__} ({exc}).") from None
        waveform = _as_mono(array, index)
        described = "audio 'array'"
    else:
        try:
            source, described = open_source(value, policy)
        except SourceError as exc:
            raise InputError(f"Input at index {index}: {exc}") from None
        waveform, source_rate = _decode(source, described, index)
        if waveform.size == 0:
            raise InputError(f"Input at index {index} ({described}): cannot decode as audio: no samples decoded "
                             "(damaged or empty file).")
        check_sampling_rate(source_rate, index, f"the sampling rate of {described}")
    if waveform.size == 0:
        raise InputError(f"Input at index {index}: the audio array holds no samples.")
    if not np.isfinite(waveform).all():  # NaN or inf would silently turn every embedding into NaN
        first = int(np.flatnonzero(~np.isfinite(waveform))[0])
        raise InputError(f"Input at index {index}: {described} holds NaN or infinite samples (the first at "
                         f"sample {first}); expected finite samples, e.g. in [-1, 1].")
    return resample(waveform, source_rate, sampling_rate)


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


def _decode(source: Any, described: str, index: int) -> tuple[np.ndarray, int]:
    errors = []
    try:
        import soundfile

        data, rate = soundfile.read(source, dtype="float32", always_2d=True)
        return data.mean(axis=1).astype(np.float32), int(rate)
    except ImportError:
        errors.append("soundfile is not installed")
    except Exception as exc:  # libsndfile cannot read mp3-in-mp4, m4a, opus...: PyAV can
        errors.append(f"soundfile: {exc}")
    if hasattr(source, "seek"):
        source.seek(0)
    try:
        return decode_audio_track(source)
    except InputError:
        raise
    except Exception as exc:
        errors.append(f"PyAV: {exc}")
    raise InputError(f"Input at index {index} ({described}): cannot decode as audio ({'; '.join(errors)}).")


def decode_audio_track(source: Any) -> tuple[np.ndarray, int]:
    """The first audio stream of a media file as mono float32, with its sampling rate."""
    av = _require_av()
    with av.open(source) as container:
        if not container.streams.audio:
            raise ValueError("the file has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.rate or stream.codec_context.sample_rate
        to_mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = []
        for frame in container.decode(stream):
            for out in to_mono.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in to_mono.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.float32)).astype(np.float32), int(rate)


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
