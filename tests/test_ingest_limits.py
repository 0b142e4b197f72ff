"""Hostile files stay bounded: a video whose duration tag lies, media no space embeds, and text of pathological
shapes (no whitespace, heading-like lines, one huge line, many tiny lines, deep nesting, a large file)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from omnivec.kb.ingest import IngestOptions, ingest_file
from omnivec.kb.ingest.sample import write_pdf
from tests.fixtures.media import write_video

LIE = b"277777:00:00.00000"  # 10^9 seconds, as long as the real "00:00:03.000000000" tag it replaces


def _lying_video(path: Path) -> Path:
    """A 3 s Matroska video (with sound) whose track DURATION tag says 277,777 hours."""
    write_video(path, seconds=3.0, fps=10, with_audio=True)
    data = path.read_bytes()
    assert data.count(b"00:00:03.000000000") == 1
    path.write_bytes(data.replace(b"00:00:03.000000000", LIE))
    return path


def _run_bounded(code: str, *args: str, timeout: float = 60) -> dict:
    """Run ``code`` in a fresh interpreter with its address space capped at 3 GiB; it prints one JSON line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    prelude = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
    done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code), *args], capture_output=True,
                          text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_lying_video_duration_is_bounded_by_the_decoded_frames(tmp_path):
    video = _lying_video(tmp_path / "liar.mkv")
    got = _run_bounded("""
        import json, sys, time
        from omnivec.inputs.video import _duration
        import av
        from omnivec.kb.ingest import IngestOptions, ingest_file
        with av.open(sys.argv[1]) as c:
            claimed = _duration(c, c.streams.video[0])
        started = time.perf_counter()
        chunks = ingest_file(sys.argv[1], IngestOptions(video_segment_s=1.0, audio_rate=16000))
        spent = time.perf_counter() - started
        peak = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) // 1024
        print(json.dumps({"claimed": claimed, "seconds": spent, "peak_mib": peak,
                          "frames": [(c.start, c.end) for c in chunks if c.kind == "frame"],
                          "audio": len([c for c in chunks if c.kind == "audio"])}))
    """, str(video))
    assert got["claimed"] == 277777 * 3600  # the tag is read as it lies
    assert [tuple(s) for s in got["frames"]] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert got["audio"] == 1 and got["seconds"] < 10 and got["peak_mib"] < 1024  # bounds: 10 s, 1 GiB peak


def test_segments_stop_at_max_segments_with_a_warning(tmp_path, monkeypatch):
    from omnivec.kb.ingest import video

    path = write_video(tmp_path / "clip.mp4", seconds=3.0, fps=10)
    monkeypatch.setattr(video, "MAX_SEGMENTS", 2)
    with pytest.warns(UserWarning, match=r"only the first 2 segments of 1 s are indexed \(MAX_SEGMENTS\)"):
        chunks = ingest_file(path, IngestOptions(video_segment_s=1.0))
    assert [(c.start, c.end) for c in chunks] == [(0.0, 1.0), (1.0, 2.0)]
    monkeypatch.setattr(video, "MAX_SEGMENTS", 3)  # exactly at the limit: everything, no warning
    with warnings_as_errors():
        assert len(ingest_file(path, IngestOptions(video_segment_s=1.0))) == 3


def warnings_as_errors():
    import warnings

    manager = warnings.catch_warnings()
    manager.__enter__()
    warnings.simplefilter("error")

    class _Exit:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            manager.__exit__(*exc)

    return _Exit()


def test_media_no_space_embeds_is_not_decoded(tmp_path, monkeypatch):
    import av
    import pypdfium2

    video = write_video(tmp_path / "clip.mkv", seconds=3.0, fps=10, with_audio=True)
    pdf = write_pdf(tmp_path / "long.pdf", [[f"Page {n} of a long report."] for n in range(40)])
    renders, opens = [0], [0]
    render, open_ = pypdfium2.PdfPage.render, av.open

    def counted_render(self, *args, **kwargs):
        renders[0] += 1
        return render(self, *args, **kwargs)

    def counted_open(*args, **kwargs):
        opens[0] += 1
        return open_(*args, **kwargs)

    monkeypatch.setattr(pypdfium2.PdfPage, "render", counted_render)
    monkeypatch.setattr(av, "open", counted_open)
    text_only = IngestOptions(modalities={"text"}, audio_rate=16000)
    chunks = ingest_file(pdf, text_only)
    assert renders[0] == 0 and [c.page for c in chunks] == list(range(1, 41)) and {c.kind for c in chunks} == {"text"}
    assert ingest_file(video, text_only) == [] and opens[0] == 0
    assert ingest_file(tmp_path / "long.pdf", IngestOptions(modalities={"image"}))[0].kind == "page"
    assert renders[0] == 40
    sound = ingest_file(video, IngestOptions(modalities={"audio"}, audio_rate=16000))
    assert [c.kind for c in sound] == ["audio"]
    pictures = ingest_file(video, IngestOptions(modalities={"image"}, video_segment_s=1.0))
    assert [c.kind for c in pictures] == ["frame"] * 3
    with pytest.raises(ValueError, match="modalities must be among"):
        IngestOptions(modalities={"video"})
