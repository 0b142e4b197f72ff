"""Videos: a few frames per fixed-length segment, grabbed by seeking (never the whole video in memory), and
the sound track in audio windows."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from omnivec.errors import InputError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest import media
from omnivec.kb.ingest.media import decoder_source, reason, sound_chunks, warn_cut
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.thumbnail import thumbnail
from omnivec.kb.location import Location
from omnivec.printing import printable  # file names may hold terminal escapes

SEEK_GAP_S = 3.0  # seek when the next frame wanted is this far ahead; closer ones are cheaper to decode through
MAX_SEGMENTS = 2000  # segments per video (5.5 hours at 10 s); past it the rest is left out, with a warning
EPS = 1e-6


def ingest_video(path: Path, options: IngestOptions) -> Iterator[Chunk]:
    """Per segment of ``options.video_segment_s`` seconds, ``frames_per_segment`` "frame" image chunks (start/end:
    the segment; ``extra["time"]``: the frame's own time), then the sound track as "audio" windows, each yielded
    as it is decoded (a segment's frames, or one audio window, in memory at a time).

    Segments follow the frames actually decoded, never the duration a header claims (a crafted tag can say
    277,777 hours), and stop at ``MAX_SEGMENTS``. Frames past the image pixel limit are refused before decoding;
    large ones are converted reduced for ``options.image_side``. Frames are decoded only when ``options`` wants
    "image" chunks, the sound track only when it wants "audio" (or transcripts)."""
    from omnivec.inputs.audio import _require_av

    wants_frames = options.wants("image")
    wants_sound = options.wants("audio") or (options.transcribe_model is not None and options.wants("text"))
    if not wants_frames and not wants_sound:
        return  # no space of this KB embeds anything of a video: nothing is decoded
    try:
        av = _require_av()
    except InputError as exc:
        raise IngestError(str(path), str(exc)) from None
    source = decoder_source(path)
    has_video, has_audio = _streams(path, av, source)
    if not has_video:  # an .mp4/.webm holding only sound (a podcast, a voice note): index it as a recording
        from omnivec.kb.ingest.media import ingest_audio

        yield from ingest_audio(path, options)
        return
    if wants_frames:
        yield from _frames(path, av, source, options)
    if has_audio and wants_sound:
        yield from _sound_track(path, source, options)


def _streams(path: Path, av: Any, source: Any) -> tuple[bool, bool]:
    """Whether the file has a video stream and an audio stream (``IngestError`` when it has neither)."""
    try:
        with av.open(source) as container:
            has_video, has_audio = bool(container.streams.video), bool(container.streams.audio)
    except Exception as exc:  # av.error.* for damaged containers
        raise IngestError(str(path), f"cannot decode as video: {exc}") from None
    if not has_video and not has_audio:
        raise IngestError(str(path), "the file has no video or audio stream")
    return has_video, has_audio


def _frames(path: Path, av: Any, source: Any, options: IngestOptions) -> Iterator[Chunk]:
    """The "frame" chunks by segment (see ``segment_frames``), as they decode."""
    from omnivec.inputs.video import _duration, check_frame_size, frame_image

    any_frame = False
    try:
        with av.open(source) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            check_frame_size(stream.codec_context.width, stream.codec_context.height, 0, source)
            frames = segment_frames(path, container, stream, _duration(container, stream), options,
                                    lambda frame: frame_image(frame, options.image_side, 0, source))
            for start, end, image, time in frames:
                any_frame = True
                yield Chunk(Location(str(path), start=start, end=end), modality="image", kind="frame",
                            content=image, thumbnail=thumbnail(image, options.thumbnail_px), extra={"time": time})
    except IngestError:
        raise
    except InputError as exc:  # frames past the pixel limit
        raise IngestError(str(path), reason(exc, source)) from None
    except Exception as exc:  # av.error.* for damaged containers and streams
        raise IngestError(str(path), f"cannot decode as video: {exc}") from None
    if not any_frame:
        raise IngestError(str(path), "the video stream holds no decodable frame")


def _sound_track(path: Path, source: Any, options: IngestOptions) -> Iterator[Chunk]:
    """The sound track's audio windows (and transcripts), decoded and resampled block by block. One that cannot
    be read is skipped with a warning (the pictures are still worth indexing without their sound); one that
    breaks half-way keeps the windows read before the break."""
    from omnivec.inputs import audio

    track = audio.AudioStream(source, index=0, sampling_rate=options.audio_rate, described=source,
                              max_seconds=media.MAX_RECORDING_SECONDS, cut=True, track=True)
    def blocks() -> Iterator[np.ndarray]:
        try:
            yield from track
        except Exception as exc:
            why = reason(exc, source) if isinstance(exc, InputError) else f"cannot read the video's audio track: {exc}"
            warnings.warn(printable(f"{path}: sound track skipped: {why}"), stacklevel=2)

    yield from sound_chunks(str(path), blocks(), options,
                            after=lambda: warn_cut(path, "sound track") if track.cut else None)


def segment_frames(path: Path, container: Any, stream: Any, duration: float, options: IngestOptions,
                   to_image: Callable[[Any], Any]) -> Iterator[tuple[float, float, Any, float]]:
    """``(segment start, segment end, frame image, frame time)``: the frames on screen at evenly spaced times in
    each segment, made images by ``to_image``, segment by segment as they decode. Segments are cut as frames
    decode: planning stops where the stream ends (whatever ``duration`` says) or at ``MAX_SEGMENTS``; a duration
    that is unknown or not finite is read as "until the frames end"."""
    segment_s, per_segment = options.video_segment_s, options.frames_per_segment
    if not math.isfinite(duration) or duration <= 0:
        duration = math.inf
    count = max(1, math.ceil(duration / segment_s - EPS)) if math.isfinite(duration) else math.inf
    grabber = _FrameGrabber(container, stream, to_image)
    k = 0
    while k < count:
        start = k * segment_s
        if k == MAX_SEGMENTS:
            warnings.warn(printable(f"{path}: only the first {MAX_SEGMENTS} segments of {segment_s:g} s are indexed "
                                    f"(MAX_SEGMENTS); the rest of the video is left out"), stacklevel=3)
            break
        end = min((k + 1) * segment_s, duration)
        picked: list[tuple[Any, float]] = []
        for j in range(per_segment):
            shown = grabber.at(start + (end - start) * (j + 0.5) / per_segment)
            if shown is None:
                break
            picked.append(shown)
        if not picked or (grabber.ended and start >= grabber.end_time - EPS):
            break  # no frame this late: the duration overstated the stream
        picked += picked[-1:] * (per_segment - len(picked))  # the last frame stays on screen
        if grabber.ended and start < grabber.end_time < end:
            end = grabber.end_time  # the stream ends before the duration said
        yield from ((start, end, image, time) for image, time in picked)
        k += 1


class _FrameGrabber:
    """Frames on screen at ascending times: decodes forward, seeking to the keyframe before a far target."""

    def __init__(self, container: Any, stream: Any, to_image: Callable[[Any], Any]) -> None:
        self.container, self.stream, self.to_image = container, stream, to_image
        # Times are relative to the stream's first timestamp, as the segment times are.
        self.origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        self.frame_s = 1 / float(stream.average_rate) if stream.average_rate else 0.0
        self.can_seek = True
        self.landed = 0.0  # time of the first frame after the last seek
        self.frames: Iterator[Any] | None = None
        self.previous = self.ahead = None  # the last frame at or before the last target; the first one after it
        self.ended = False  # the decoder ran out of frames
        self.last_time = 0.0  # the latest frame time decoded (relative to the origin)

    @property
    def end_time(self) -> float:
        """Where the decoded stream ends: its last frame's time plus one frame."""
        return self.last_time + self.frame_s

    def at(self, target: float) -> tuple[Any, float] | None:
        """The frame on screen at ``target`` seconds and its own time; None when nothing decodes there."""
        at = target + self.origin
        position = self.ahead if self.ahead is not None else self.previous
        if self.frames is None or (position is not None and at - position.time > SEEK_GAP_S):
            sought = self._seek(at)
            if sought is not None:
                if position is not None and self.landed <= position.time:
                    # Keyframes are further apart than the targets: seeking only re-decodes, so stop seeking.
                    self.can_seek = False
                self.frames, self.previous, self.ahead = sought, None, None
            elif self.frames is None:  # cannot seek: decode through from the start
                self.frames = self._decode()
        while True:
            if self.ahead is None:
                self.ahead = next(self.frames, None)
                if self.ahead is None:  # end of stream: the last frame stays on screen
                    self.ended = True
                    break
            if self.ahead.time > at + EPS:
                break
            self.previous, self.ahead = self.ahead, None
        shown = self.previous if self.previous is not None else self.ahead
        if shown is None:  # nothing decodes past here
            return None
        return self.to_image(shown), float(shown.time) - self.origin

    def _decode(self) -> Iterator[Any]:
        for frame in self.container.decode(self.stream):
            if frame.time is not None:
                self.last_time = max(self.last_time, float(frame.time) - self.origin)
                yield frame

    def _seek(self, at: float) -> Iterator[Any] | None:
        """Frames from the keyframe at or before ``at``; a seek that lands after ``at`` (inexact indexes) is
        retried further back. None where the file cannot seek: the caller decodes on."""
        if not self.can_seek:
            return None
        back = 0.0
        while True:
            point = max(self.origin, at - back)
            try:
                self.container.seek(int(point / self.stream.time_base), stream=self.stream, backward=True)
            except Exception:  # av.error.* from formats without an index: decode through instead
                self.can_seek = False
                return None
            frames = self._decode()
            first = next(frames, None)
            if (first is not None and first.time <= at + EPS) or point <= self.origin:
                self.landed = first.time if first is not None else at
                return chain([first] if first is not None else [], frames)
            back = max(1.0, 2 * back)
