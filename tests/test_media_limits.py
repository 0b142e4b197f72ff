"""Media past the pixel and duration limits: video frames checked against the image pixel limit before decoding
and converted reduced for the model; audio longer than the limit refused from its header and while decoding."""

from __future__ import annotations

import time

import pytest

from omnivec.errors import InputError
from omnivec.inputs import video as video_input
from omnivec.inputs.video import VideoSampling, load_video
from omnivec.kb.ingest import IngestError, IngestOptions, ingest_file
from tests.fixtures.media import write_video


def test_video_frames_past_the_pixel_limit_are_refused_before_decoding(tmp_path, monkeypatch):
    from omnivec.kb.ingest import video as video_ingest

    path = write_video(tmp_path / "clip.mp4", seconds=1.0, fps=10, size=(64, 48))

    def no_decoding(*args, **kwargs):
        raise AssertionError("frames were decoded")

    monkeypatch.setattr(video_input, "MAX_IMAGE_PIXELS", 64 * 48 - 1)  # the 89 MP limit, brought down to the clip
    monkeypatch.setattr(video_input, "_pick_frames", no_decoding)
    monkeypatch.setattr(video_ingest, "segment_frames", no_decoding)
    limit = r"64x48 frames have 3,072 pixels each, more than the limit of 3,071 \(MAX_IMAGE_PIXELS\)"
    with pytest.raises(InputError, match=r"^Input at index 3 \(.*clip\.mp4\): the video's " + limit):
        load_video(str(path), index=3, sampling=VideoSampling(num_frames=2))
    with pytest.raises(IngestError, match=r"clip\.mp4: the video's " + limit):
        ingest_file(path, IngestOptions(modalities={"image"}))
    monkeypatch.undo()
    monkeypatch.setattr(video_input, "MAX_IMAGE_PIXELS", 64 * 48)  # exactly at the limit: decoded
    assert len(load_video(str(path), index=3, sampling=VideoSampling(num_frames=2)).frames) == 2
    assert len(ingest_file(path, IngestOptions(modalities={"image"}))) == 1


def test_large_video_frames_are_converted_reduced_for_the_model(tmp_path):
    """A 12 MP frame is 36 MB as an RGB image; reduced for a 224-pixel model (short side >= 448) it is 1 MB."""
    path = write_video(tmp_path / "large.mp4", seconds=0.2, fps=10, size=(4000, 3000))
    full = load_video(str(path), index=0, sampling=VideoSampling(num_frames=1))
    reduced = load_video(str(path), index=0, sampling=VideoSampling(num_frames=2), min_side=224)
    assert full.frames[0].size == (4000, 3000)
    assert [frame.size for frame in reduced.frames] == [(666, 500)] * 2  # 1/6: the short side stays >= 2 x 224
    [frame] = ingest_file(path, IngestOptions(image_side=224, modalities={"image"}))
    assert frame.kind == "frame" and frame.content.size == (666, 500)
