"""Decode video with PyAV: uniform frame sampling (a frame count or a rate) streamed, never the whole file
in memory, frames checked against the image pixel limit before decoding and converted reduced for the model's
input size; the audio track is there for audio models."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from omnivec.errors import DecodeError, InputError
from omnivec.inputs.audio import _require_av, decode_audio_track
from omnivec.inputs.image import DRAFT_MARGIN, MAX_IMAGE_PIXELS, load_image
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy, SourceError, open_source


@dataclass(frozen=True)
class VideoSampling:
    """Which frames of a video are embedded: ``num_frames`` spread evenly, or one every ``1/fps`` seconds
    (capped at ``max_frames``)."""

    num_frames: int = 8
    fps: float | None = None
    max_frames: int = 64

    def __post_init__(self) -> None:
        for name in ("num_frames", "max_frames"):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise InputError(f"VideoSampling.{name} must be a positive integer, got {count!r}.")
        if self.fps is not None and (not isinstance(self.fps, (int, float)) or _rate(self.fps) is None):
            raise InputError(f"VideoSampling.fps must be None or a finite rate above 0 (frames per second), "
                             f"got {self.fps!r}.")

    def timestamps(self, duration: float) -> list[float]:
        if self.fps:
            count = max(1, min(self.max_frames, int(duration * self.fps)))
            return [(i + 0.5) / self.fps for i in range(count)]
        count = max(1, self.num_frames)
        return [duration * (i + 0.5) / count for i in range(count)]


@dataclass
class Video:
    """Sampled frames (PIL RGB) with their times in seconds."""

    frames: list[Any]
    times: list[float]
    duration: float


def load_video(value: Any, *, index: int, sampling: VideoSampling, policy: FetchPolicy = DEFAULT_POLICY,
               min_side: int | None = None) -> Video:
    """Sample frames from a path/URL/bytes, or from ``{"frames": [...], "fps": f}`` already in memory.

    A stream whose frames have more than ``MAX_IMAGE_PIXELS`` pixels is refused before any frame is decoded.
    ``min_side``: the model's input size; frames much larger are converted reduced (as ``load_image`` decodes)."""
    if isinstance(value, dict):
        return _from_frames(value, index, sampling)
    if isinstance(value, (list, tuple)):
        return _from_frames({"frames": value}, index, sampling)
    try:
        source, described = open_source(value, policy)
    except SourceError as exc:
        raise DecodeError(f"Input at index {index}: {exc}") from None
    av = _require_av()
    try:
        with av.open(source) as container:
            if not container.streams.video:
                raise DecodeError(f"Input at index {index} ({described}): the file has no video stream.")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            check_frame_size(stream.codec_context.width, stream.codec_context.height, index, described)
            duration = _duration(container, stream)
            targets = sampling.timestamps(duration)
            frames, times = _pick_frames(container, stream, targets,
                                         lambda frame: frame_image(frame, min_side, index, described))
    except InputError:
        raise
    except Exception as exc:  # av.error.* for damaged containers and streams
        raise DecodeError(f"Input at index {index} ({described}): cannot decode as video: {exc}") from None
    if not frames:
        raise DecodeError(f"Input at index {index} ({described}): the video stream holds no decodable frame.")
    return Video(frames, times, duration)


def video_audio(video_value: Any, *, index: int, policy: FetchPolicy = DEFAULT_POLICY) -> tuple[np.ndarray, int]:
    """The audio track of a video file, mono, with its rate; longer than ``MAX_AUDIO_SECONDS``: ``AudioTooLong``."""
    try:
        source, described = open_source(video_value, policy)
        waveform, rate, _ = decode_audio_track(source, index=index, described=described)
        return waveform, rate
    except InputError:  # a sampling rate out of range, too long, NaN samples: named already
        raise
    except SourceError as exc:
        raise DecodeError(f"Input at index {index}: {exc}") from None
    except Exception as exc:
        raise DecodeError(f"Input at index {index}: cannot read the video's audio track: {exc}") from None


def check_frame_size(width: int | None, height: int | None, index: int, described: str) -> None:
    """An InputError when frames are larger than ``MAX_IMAGE_PIXELS`` (the image limit): a 100 KB stream can declare
    16000x16000 frames, 768 MB each as RGB."""
    pixels = (width or 0) * (height or 0)
    if pixels > MAX_IMAGE_PIXELS:
        raise InputError(f"Input at index {index} ({described}): the video's {width}x{height} frames have "
                         f"{pixels:,} pixels each, more than the limit of {MAX_IMAGE_PIXELS:,} (MAX_IMAGE_PIXELS).")


def frame_image(frame: Any, min_side: int | None, index: int, described: str) -> Any:
    """A decoded frame as a PIL RGB image: its size checked (a stream can change size midway), and reduced by an
    integer factor where its short side is at least twice ``DRAFT_MARGIN * min_side`` (as ``load_image``), so the
    full-size RGB copy is never made."""
    width, height = frame.width, frame.height
    check_frame_size(width, height, index, described)
    want = DRAFT_MARGIN * min_side if min_side else None
    if want and min(width, height) >= 2 * want:
        factor = min(width, height) // want
        return frame.to_image(width=max(1, width // factor), height=max(1, height // factor), interpolation="AREA")
    return frame.to_image()


def _duration(container: Any, stream: Any) -> float:
    """The video stream's own duration (the container's may include a longer audio track)."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    tag = (stream.metadata or {}).get("DURATION")  # Matroska/WebM keep it as a per-track tag
    if isinstance(tag, str):
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            pass
    if container.duration is not None:
        return container.duration / 1_000_000
    if stream.frames and stream.average_rate:
        return float(stream.frames / stream.average_rate)
    return 0.0


def _pick_frames(container: Any, stream: Any, targets: list[float],
                 to_image: Callable[[Any], Any]) -> tuple[list[Any], list[float]]:
    """For each target time, the frame on screen then (the last one starting at or before it), made an image by
    ``to_image``. Frames are decoded in order and only the picked ones are kept in memory."""
    frames, times = [], []
    pending = list(targets)
    previous = None
    for frame in container.decode(stream):
        if frame.time is None:
            continue
        while pending and frame.time > pending[0] + 1e-6:
            shown = previous if previous is not None else frame
            frames.append(to_image(shown))
            times.append(float(shown.time))
            pending.pop(0)
        if not pending:
            break
        previous = frame
    if pending and previous is not None:  # targets past the last frame's start: the last frame is on screen
        image = to_image(previous)
        frames.extend(image for _ in pending)
        times.extend(float(previous.time) for _ in pending)
    return frames, times


def _from_frames(value: dict, index: int, sampling: VideoSampling) -> Video:
    raw = list(value["frames"])
    fps = _check_fps(1.0 if value.get("fps") is None else value["fps"], index)  # no rate given: 1 frame a second
    duration = len(raw) / fps
    targets = sampling.timestamps(duration)
    picks = [min(len(raw) - 1, int(t * fps)) for t in targets]
    frames = [load_image(raw[i], index=index) for i in picks]
    return Video(frames, [i / fps for i in picks], duration)


def _check_fps(fps: Any, index: int) -> float:
    """A frames dict's rate: a finite number of frames per second above 0 (it turns frame numbers into times)."""
    value = _rate(fps)
    if value is None:
        raise InputError(f"Input at index {index}: video 'fps' must be a finite number of frames per second "
                         f"above 0, got {fps!r}.")
    return value


def _rate(value: Any) -> float | None:
    """``value`` as a finite rate above 0, or None when it is not one (a bool, NaN, inf, 0 or below, not a number)."""
    if isinstance(value, bool):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return rate if math.isfinite(rate) and rate > 0 else None
