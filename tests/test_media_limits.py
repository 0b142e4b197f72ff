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


def _long_wav(path, seconds: float, rate: int = 1000):
    """8-bit mono WAV: an hour at 1 kHz is 3.6 MB, and 691 MB once upsampled to CLAP's 48 kHz as float32."""
    import numpy as np
    import soundfile

    samples = np.sin(np.arange(int(seconds * rate), dtype=np.float32) * 0.3) * 0.5
    soundfile.write(str(path), samples, rate, subtype="PCM_U8")
    return path


def _bounded(code: str, *args: str) -> dict:
    from tests.test_ingest_limits import _run_bounded

    return _run_bounded(code, *args)


MEASURE = """
    import json, sys, time
    from omnivec.inputs.audio import load_audio
    status = lambda key: int(open("/proc/self/status").read().split(key)[1].split()[0]) // 1024
    before, started = status("VmRSS:"), time.perf_counter()
    try:
        load_audio(sys.argv[1], index=2, sampling_rate=int(sys.argv[2]))
        error = None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"error": error, "seconds": time.perf_counter() - started,
                      "grown_mib": status("VmHWM:") - before}))
"""


def test_audio_past_the_duration_limit_is_refused_from_its_header(tmp_path):
    from omnivec.inputs.audio import MAX_AUDIO_SECONDS

    assert MAX_AUDIO_SECONDS == 3600
    path = _long_wav(tmp_path / "long.wav", MAX_AUDIO_SECONDS + 100)
    got = _bounded(MEASURE, str(path), "48000")
    assert got["error"].startswith("AudioTooLong: Input at index 2 (") and got["error"].endswith(
        "long.wav): the audio is 3700 s long (its header says), more than the limit of 3600 s (MAX_AUDIO_SECONDS).")
    # Bounds: 2 s and 32 MiB (decoded and upsampled: 710 MB).
    assert got["seconds"] < 2 and got["grown_mib"] < 32, got


def _lying_m4a(path, seconds: float, says: float):
    """AAC in MP4 whose movie and track headers say ``says`` seconds; its sample table holds ``seconds``."""
    import struct

    from tests.fixtures.media import sine, write_audio

    write_audio(path, sine(seconds, 16000), 16000)
    data = bytearray(path.read_bytes())
    for box in (b"mvhd", b"mdhd"):
        at = data.find(box)
        assert at > 0 and data[at + 4] == 0  # version 0: 32-bit timescale and duration
        scale = struct.unpack(">I", data[at + 16:at + 20])[0]
        data[at + 20:at + 24] = struct.pack(">I", int(says * scale))
    path.write_bytes(bytes(data))
    return path


def test_audio_whose_header_lies_stops_decoding_at_the_limit(tmp_path):
    import av

    from omnivec.inputs.audio import AudioTooLong, load_audio, read_audio

    path = _lying_m4a(tmp_path / "liar.m4a", 12.0, says=1.0)
    with av.open(str(path)) as container:
        assert container.duration == 1_000_000  # the header lies: 1 s
    started = time.perf_counter()
    with pytest.raises(AudioTooLong, match=r"index 4 .*liar\.m4a\): the audio is longer than 10 s \(decoding "
                                           r"stopped there\), more than the limit of 10 s \(MAX_AUDIO_SECONDS\)"):
        read_audio(str(path), index=4, sampling_rate=16000, max_seconds=10)
    assert time.perf_counter() - started < 2
    waveform, cut = read_audio(str(path), index=4, sampling_rate=8000, max_seconds=10, cut=True)
    assert cut and waveform.size == 80000  # the first 10 s, at the asked rate
    assert 12.0 <= load_audio(str(path), index=0, sampling_rate=16000).size / 16000 < 12.1  # under the real limit
    array = {"array": waveform, "sampling_rate": 8000}
    with pytest.raises(AudioTooLong, match=r"index 1 \(audio 'array'\): the audio is 10 s long, more than the "
                                           r"limit of 9 s"):
        read_audio(array, index=1, sampling_rate=8000, max_seconds=9)
    assert read_audio(array, index=1, sampling_rate=8000, max_seconds=10)[0].size == 80000  # at the limit


def test_the_kb_indexes_a_day_of_a_recording_and_transcribes_its_first_hour(tmp_path, monkeypatch):
    """An index run streams a recording, so it reads MAX_RECORDING_SECONDS (a day) of it, not the hour a decoded
    input is limited to; Whisper is given its first MAX_AUDIO_SECONDS. Both limits brought down to the test's
    scale."""
    from omnivec.inputs import audio
    from omnivec.kb.ingest import media, transcribe

    assert media.MAX_RECORDING_SECONDS == 24 * 3600 and audio.MAX_AUDIO_SECONDS == 3600
    monkeypatch.setattr(media, "MAX_RECORDING_SECONDS", 5)
    monkeypatch.setattr(audio, "MAX_AUDIO_SECONDS", 3)
    path = _long_wav(tmp_path / "talk.wav", 8.0)
    with pytest.warns(UserWarning, match=r"talk\.wav: only the first 5 s of the recording are indexed "
                                         r"\(MAX_RECORDING_SECONDS\)"):
        chunks = ingest_file(path, IngestOptions(audio_rate=16000, audio_window_s=2.0, audio_hop_s=2.0,
                                                 modalities={"audio"}))
    assert [(c.location.start, c.location.end) for c in chunks] == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    heard = []
    monkeypatch.setattr(transcribe, "transcript_chunks", lambda file, waveform, rate, options: heard.append(
        waveform.size / rate) or [])
    for modalities in ({"audio", "text"}, {"text"}):  # with audio windows, and for transcripts alone
        with pytest.warns(UserWarning, match=r"talk\.wav: only the first 3 s of the recording are transcribed "
                                             r"\(MAX_AUDIO_SECONDS\)"):
            ingest_file(path, IngestOptions(audio_rate=16000, audio_window_s=2.0, audio_hop_s=2.0,
                                            transcribe_model="whisper", modalities=modalities))
    assert heard == [3.0, 3.0]
    clip = write_video(tmp_path / "clip.mkv", seconds=3.0, fps=10, with_audio=True)
    monkeypatch.setattr(media, "MAX_RECORDING_SECONDS", 2)
    with pytest.warns(UserWarning, match=r"clip\.mkv: only the first 2 s of the sound track are indexed"):
        chunks = ingest_file(clip, IngestOptions(audio_rate=16000, audio_window_s=1.0, audio_hop_s=1.0,
                                                 modalities={"audio"}))
    assert [(c.location.start, c.location.end) for c in chunks] == [(0.0, 1.0), (1.0, 2.0)]
