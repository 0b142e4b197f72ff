"""Videos: a few frames per fixed-length segment, grabbed by seeking (never the whole video in memory), and
the sound track in audio windows."""

from __future__ import annotations

import math
import warnings
from itertools import chain
from pathlib import Path
from typing import Any, Iterator

from omnivec.errors import InputError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.ingest.media import decoder_source, reason, sound_chunks
from omnivec.kb.ingest.options import IngestOptions
from omnivec.kb.ingest.thumbnail import thumbnail

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov")
SEEK_GAP_S = 3.0  # seek when the next frame wanted is this far ahead; closer ones are cheaper to decode through
EPS = 1e-6


def ingest_video(path: Path, options: IngestOptions) -> list[Chunk]:
    """Per segment of ``options.video_segment_s`` seconds, ``frames_per_segment`` "frame" image chunks (start/end:
    the segment; ``extra["time"]``: the frame's own time), then the sound track as "audio" windows."""
    from omnivec.inputs.audio import _require_av, resample
    from omnivec.inputs.video import _duration, video_audio

    try:
        av = _require_av()
    except InputError as exc:
        raise IngestError(str(path), str(exc)) from None
    source = decoder_source(path)
    sound_only = False
    try:
        with av.open(source) as container:
            if not container.streams.video:
                if not container.streams.audio:
                    raise IngestError(str(path), "the file has no video or audio stream")
                sound_only = True
            else:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                duration = _duration(container, stream)
                has_audio = bool(container.streams.audio)
                segments = video_segments(duration, options.video_segment_s)
                wanted = [(segment, start + (end - start) * (j + 0.5) / options.frames_per_segment)
                          for segment, (start, end) in enumerate(segments)
                          for j in range(options.frames_per_segment)]
                frames = _FrameGrabber(container, stream).frames_at([t for _, t in wanted])
    except IngestError:
        raise
    except Exception as exc:  # av.error.* for damaged containers and streams
        raise IngestError(str(path), f"cannot decode as video: {exc}") from None
    if sound_only:  # an .mp4/.webm holding only sound (a podcast, a voice note): index it as a recording
        from omnivec.kb.ingest.media import ingest_audio

        return ingest_audio(path, options)
    if not frames:
        raise IngestError(str(path), "the video stream holds no decodable frame")
    chunks = []
    for (segment, _), (image, time) in zip(wanted, frames):
        start, end = segments[segment]
        chunks.append(Chunk(file=str(path), modality="image", kind="frame", content=image, start=start, end=end,
                            thumbnail=thumbnail(image, options.thumbnail_px), extra={"time": time}))
    if has_audio:
        try:
            waveform, rate = video_audio(source, index=0)
        except InputError as exc:  # the pictures are still worth indexing without their sound
            warnings.warn(f"{path}: sound track skipped: {reason(exc, source)}", stacklevel=2)
        else:
            if waveform.size:
                chunks.extend(sound_chunks(str(path), resample(waveform, rate, options.audio_rate), options))
    return chunks


def video_segments(duration: float, segment_s: float) -> list[tuple[float, float]]:
    """Consecutive ``(start, end)`` seconds covering ``duration``; the last one ends with the video."""
    count = max(1, math.ceil(duration / segment_s - EPS))
    return [(k * segment_s, min((k + 1) * segment_s, duration)) for k in range(count)]


class _FrameGrabber:
    """Frames on screen at ascending times: decodes forward, seeking to the keyframe before a far target."""

    def __init__(self, container: Any, stream: Any) -> None:
        self.container, self.stream = container, stream
        # Times are relative to the stream's first timestamp, as the segment times are.
        self.origin = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        self.can_seek = True
        self.landed = 0.0  # time of the first frame after the last seek

    def frames_at(self, targets: list[float]) -> list[tuple[Any, float]]:
        out: list[tuple[Any, float]] = []
        frames: Iterator[Any] | None = None
        previous = ahead = None  # the last frame at or before the current target; the first one after it
        for target in targets:
            at = target + self.origin
            position = ahead if ahead is not None else previous
            if frames is None or (position is not None and at - position.time > SEEK_GAP_S):
                sought = self._seek(at)
                if sought is not None:
                    if position is not None and self.landed <= position.time:
                        # Keyframes are further apart than the targets: seeking only re-decodes, so stop seeking.
                        self.can_seek = False
                    frames, previous, ahead = sought, None, None
                elif frames is None:  # cannot seek: decode through from the start
                    frames = self._decode()
            while True:
                if ahead is None:
                    ahead = next(frames, None)
                    if ahead is None:  # end of stream: the last frame stays on screen
                        break
                if ahead.time > at + EPS:
                    break
                previous, ahead = ahead, None
            shown = previous if previous is not None else ahead
            if shown is None:  # nothing decodes past here (a duration that overstates the stream)
                if not out:
                    break
                out.append(out[-1])
                continue
            out.append((shown.to_image(), float(shown.time) - self.origin))
        return out

    def _decode(self) -> Iterator[Any]:
        return (frame for frame in self.container.decode(self.stream) if frame.time is not None)

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
