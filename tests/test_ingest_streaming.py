"""Streaming ingestion: ``iter_chunks`` yields exactly the chunks the whole-file path makes, checks a file up front
and wraps failures found half-way, and holds one window / page / block at a time (peak RSS measured in a
subprocess on a 3-hour recording and a 1,000-page PDF)."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest

from omnivec.kb.chunk import IngestError
from omnivec.kb.ingest import IngestOptions, ingest_file, iter_chunks
from omnivec.kb.ingest.sample import write_pdf
from tests.fixtures.media import sine, write_audio, write_long_wav, write_video

WORDS = "the lamp cable fits. socket adapter! charging base? holds the phone well; Wiring setup".split()


def _key(chunk) -> tuple:
    """Everything a chunk holds, comparable (audio arrays by value and dtype)."""
    content = chunk.content
    if isinstance(content, dict):
        content = (content["array"].dtype.str, content["array"].tobytes(), content["sampling_rate"])
    elif not isinstance(content, (str, bytes)):
        content = (content.mode, content.size, content.tobytes())
    return (chunk.location, chunk.modality, chunk.kind, content, chunk.text, chunk.thumbnail,
            sorted(chunk.extra.items()))


def _prose(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 2,000 characters read 333 at a time: a 60 KB file takes the paths a 100 MB one takes."""
    from omnivec.kb.ingest import chunking, text_stream

    monkeypatch.setattr(chunking, "BLOCK_CHARS", 2000)
    monkeypatch.setattr(text_stream, "BLOCK_CHARS", 2000)
    monkeypatch.setattr(text_stream, "READ_CHARS", 333)


@pytest.mark.parametrize("name", ["notes.txt", "guide.md", "corpus.jsonl", "legacy.txt"])
def test_streamed_text_equals_the_whole_text_chunked(tmp_path, small_blocks, name):
    from omnivec.kb.ingest.chunking import chunk_text
    from omnivec.kb.ingest.text import _chunk, _records, decode_text, markdown_sections

    rng = random.Random(7)
    if name == "guide.md":  # headings of both kinds, fences, lists, consecutive and trailing headings
        parts = []
        for i in range(150):
            parts.append(rng.choice([f"## Part {i}", f"Title {i}\n====", "```\n# code\n```", "- item\n- item\n---",
                                     "### A\n# B", _prose(rng, rng.randint(5, 300))]))
        body = "\r\n\r\n".join(parts) + "\n\n# Trailing\n"
    elif name == "corpus.jsonl":
        body = "\n".join(json.dumps({"_id": i, "title": f"T{i}", "text": _prose(rng, rng.randint(0, 120))})
                         for i in range(300)) + "\n"
    else:  # paragraphs (CRLF, so some line ends split across reads), and one 9,000-character unbroken run
        body = "\r\n\r\n".join(_prose(rng, rng.randint(3, 400)) for _ in range(80)) + " " + "x" * 9000
    path = tmp_path / name
    path.write_bytes(body.encode("cp1252" if name == "legacy.txt" else "utf-8") + (b"\xe9" if name ==
                     "legacy.txt" else b""))
    options = IngestOptions(chunk_tokens=40, overlap_tokens=8)
    text, encoding = decode_text(path.read_bytes(), path)  # the whole file, as the list-returning reader read it
    if name == "corpus.jsonl":
        whole = [_key(c) for c in _records(path, text.split("\n"), options)]
    else:
        body_text, headings = markdown_sections(text) if name.endswith(".md") else (text, [])
        extra = {} if encoding == "utf-8" else {"encoding": encoding}
        whole = [_key(_chunk(path, passage, heading, extra))
                 for passage, heading, _, _ in chunk_text(body_text, options, headings)]
    streamed = [_key(c) for c in iter_chunks(path, options)]
    assert len(streamed) > 30 and streamed == whole
    assert name != "legacy.txt" or dict(streamed[0][-1])["encoding"] == "cp1252"


def _windows(waveform, rate, window_s, hop_s):
    from omnivec.kb.ingest.media import audio_windows

    return [(start, end, window.tobytes()) for start, end, window in audio_windows(waveform, rate, window_s, hop_s)]


@pytest.mark.parametrize(("name", "window_s", "hop_s"), [("talk.wav", 3.0, 2.0), ("stereo.flac", 2.5, 3.0),
                                                         ("voice.m4a", 1.5, 0.4)])
def test_streamed_audio_windows_equal_the_whole_recording_cut(tmp_path, monkeypatch, name, window_s, hop_s):
    """Decoded in 1-second blocks and resampled block by block, the windows equal those cut from the whole
    decoded recording (the overlap kept, a hop longer than the window skipping samples, the short tail)."""
    from omnivec.inputs import audio

    monkeypatch.setattr(audio, "_BLOCK_S", 1)
    source_rate = 44100 if name.endswith(".flac") else 16000
    path = write_audio(tmp_path / name, sine(9.3, source_rate, channels=2 if "stereo" in name else 1), source_rate)
    options = IngestOptions(audio_rate=22050, audio_window_s=window_s, audio_hop_s=hop_s)
    waveform = audio.load_audio(str(path), index=0, sampling_rate=22050)
    streamed = [(c.location.start, c.location.end, c.content["array"].tobytes()) for c in iter_chunks(path, options)]
    assert len(streamed) >= 3 and streamed == _windows(waveform, 22050, window_s, hop_s)


def test_streamed_video_equals_frames_then_the_whole_sound_track(tmp_path):
    from omnivec.inputs.audio import decode_audio_track, resample

    path = write_video(tmp_path / "clip.mkv", seconds=3.0, fps=10, with_audio=True)
    options = IngestOptions(audio_rate=16000, audio_window_s=1.5, audio_hop_s=1.0, video_segment_s=1.0)
    chunks = list(iter_chunks(path, options))
    assert [c.kind for c in chunks] == ["frame"] * 3 + ["audio"] * 3
    assert [(c.location.start, c.location.end) for c in chunks[:3]] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    track, rate, _ = decode_audio_track(str(path))
    sound = [(c.location.start, c.location.end, c.content["array"].tobytes()) for c in chunks[3:]]
    assert sound == _windows(resample(track, rate, 16000), 16000, 1.5, 1.0)


def test_streamed_pdf_and_picture_equal_the_pages_and_picture_read_whole(tmp_path):
    from contextlib import closing

    from PIL import Image

    from omnivec.inputs.image import load_image
    from omnivec.kb.chunk import Chunk
    from omnivec.kb.ingest.chunking import chunk_text, embedder_text
    from omnivec.kb.ingest.pdf import PAGE_TEXT_CHARS, png_bytes
    from omnivec.kb.ingest.pdfium import read_pages
    from omnivec.kb.ingest.thumbnail import thumbnail
    from omnivec.kb.location import Location

    rng = random.Random(3)
    path = write_pdf(tmp_path / "report.pdf", [[f"Page {n}", _prose(rng, 12), _prose(rng, 9)] for n in range(12)],
                     size=(200, 260))
    options = IngestOptions(chunk_tokens=8, overlap_tokens=2)
    whole = []
    with closing(read_pages(path, options.page_dpi)) as pages:
        for number, (text, image) in enumerate(pages, start=1):
            whole += [Chunk(Location(str(path), page=number), "text", "text", embedder_text(p, h), text=p)
                      for p, h, _, _ in chunk_text(text, options)]
            whole.append(Chunk(Location(str(path), page=number), "image", "page", png_bytes(image),
                               text=text.strip()[:PAGE_TEXT_CHARS], thumbnail=thumbnail(image, 256)))
    streamed = list(iter_chunks(path, options))
    assert len(streamed) > 36 and [_key(c) for c in streamed] == [_key(c) for c in whole]
    Image.new("RGB", (900, 700), (200, 30, 30)).save(tmp_path / "red.png")
    [picture] = iter_chunks(tmp_path / "red.png", IngestOptions(image_side=224))
    image = load_image(str((tmp_path / "red.png").resolve()), index=0, min_side=224)
    assert _key(picture) == _key(Chunk(Location(str(tmp_path / "red.png")), "image", "image", image,
                                       thumbnail=thumbnail(image, 256), extra={"width": 900, "height": 700}))


def test_up_front_checks_raise_at_the_call_and_half_way_damage_while_iterating(tmp_path):
    import soundfile

    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "data.bin").write_bytes(b"x")
    for name, reason in [("empty.md", "empty file"), ("data.bin", "unsupported file type .bin"),
                         ("missing.pdf", "cannot read the file")]:
        with pytest.raises(IngestError, match=reason):
            iter_chunks(tmp_path / name)  # before any chunk: at the call, not at the first next()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"text": "one"}\n{"text": "two"}\n{"text": 3}\n{"text": "four"}\n', encoding="utf-8")
    chunks = iter_chunks(str(corpus))
    assert [next(chunks).text, next(chunks).text] == ["one", "two"]
    with pytest.raises(IngestError, match=r'corpus\.jsonl: line 3: expected a JSON object with a "text" string'):
        next(chunks)
    samples = sine(18.0, 8000)
    samples[15 * 8000 + 5] = np.nan  # a float WAV can hold NaN: found when decoding reaches it
    soundfile.write(str(tmp_path / "nan.wav"), samples, 8000, subtype="FLOAT")
    got = []
    with pytest.raises(IngestError) as caught:
        for chunk in iter_chunks(tmp_path / "nan.wav", IngestOptions(audio_rate=8000, audio_window_s=2.0,
                                                                      audio_hop_s=2.0)):
            got.append(chunk.location.start)
    assert got == [0.0, 2.0, 4.0, 6.0]  # the windows decoded before the NaN's block (10 s blocks; 8-10 s waits)
    assert caught.value.path == str(tmp_path / "nan.wav") and "NaN or infinite samples (the first at sample 120005)" \
        in caught.value.reason
    assert ingest_file(tmp_path / "corpus.jsonl", IngestOptions(modalities={"image"})) == []


def test_an_abandoned_iteration_closes_the_pdf(tmp_path, monkeypatch):
    import pypdfium2

    path = write_pdf(tmp_path / "report.pdf", [[f"Page {n}", "The lamp."] for n in range(50)], size=(144, 144))
    closed, loaded = [0], [0]
    close, get = pypdfium2.PdfDocument.close, pypdfium2.PdfDocument.__getitem__

    def counted_close(self, *args, **kwargs):
        closed[0] += 1
        return close(self, *args, **kwargs)

    def counted_get(self, index):
        loaded[0] += 1
        return get(self, index)

    monkeypatch.setattr(pypdfium2.PdfDocument, "close", counted_close)
    monkeypatch.setattr(pypdfium2.PdfDocument, "__getitem__", counted_get)
    chunks = iter_chunks(path)
    first = [next(chunks) for _ in range(3)]
    assert [(c.kind, c.location.page) for c in first] == [("text", 1), ("page", 1), ("text", 2)]
    assert loaded[0] == 2 and closed[0] == 0  # two pages of 50 read so far
    chunks.close()
    assert closed[0] == 1


MEASURE = """
    import json, sys, time, warnings
    import av, numpy, pypdfium2, soundfile, PIL.Image
    from omnivec.kb.ingest import IngestOptions, iter_chunks, media, pdf
    hwm = lambda: int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    warnings.simplefilter("ignore")
    if sys.argv[2] == "list":  # a recording's first hour: its whole list (2 GB for 3 h) would not fit the cap
        media.MAX_RECORDING_SECONDS = 3600
    before, started, first, count = hwm(), time.perf_counter(), None, 0
    chunks = iter_chunks(sys.argv[1], IngestOptions())
    if sys.argv[2] == "list":  # what the list-returning readers held: every chunk of the file at once
        chunks = list(chunks)
    for chunk in chunks:
        first = first if first is not None else time.perf_counter() - started
        count += 1
    print(json.dumps({"chunks": count, "first_s": first, "total_s": time.perf_counter() - started,
                      "grown_mib": hwm() - before}))
"""


def _measure(path, mode: str) -> dict:
    from tests.test_ingest_limits import _run_bounded

    return _run_bounded(MEASURE, str(path), mode, timeout=120)


@pytest.mark.slow  # writes 330 MB, decodes it and the first hour again (~20 s)
def test_a_three_hour_recording_streams_in_bounded_memory(tmp_path):
    """A 3-hour 16 kHz WAV (330 MiB of int16) is 1,080 windows of 10 s at 48 kHz, 2 GB of float32 once decoded.
    Streamed, all of it: measured 29.4-29.6 MiB over the baseline (first window after 0.07-0.13 s); the list of
    the first hour's 360 windows alone: 687 MiB. Bound: 100 MiB."""
    path = write_long_wav(tmp_path / "call.wav", minutes=180)
    assert path.stat().st_size > 329 << 20
    streamed, listed = _measure(path, "stream"), _measure(path, "list")
    assert streamed["chunks"] == 1080 and listed["chunks"] == 360
    assert streamed["grown_mib"] < 100 and listed["grown_mib"] > 600, (streamed, listed)
    assert streamed["first_s"] < streamed["total_s"] / 5, streamed  # the first window once one block is decoded


@pytest.mark.slow  # renders 1,000 pages twice (~12 s)
def test_a_thousand_page_pdf_streams_in_bounded_memory(tmp_path):
    """1,000 half-letter pages, each a text passage and a rendered page (PNG + thumbnail). Measured: streamed
    5.6-6.1 MiB over the baseline, first chunk after 0.004-0.011 s of 4.4-6.7 s; the list of all 2,000 chunks
    18.1 MiB.
    Bound: 12 MiB, and below the list."""
    path = write_pdf(tmp_path / "manual.pdf", [[f"Page {n}", f"Line of page {n} about the lamp."]
                                               for n in range(1000)], size=(306, 396))
    streamed, listed = _measure(path, "stream"), _measure(path, "list")
    assert streamed["chunks"] == listed["chunks"] == 2000
    assert streamed["grown_mib"] < 12 and streamed["grown_mib"] < listed["grown_mib"] - 6, (streamed, listed)
    assert streamed["first_s"] < streamed["total_s"] / 20, streamed


def test_warnings_still_come_from_streamed_readers(tmp_path, monkeypatch):
    from omnivec.kb.ingest import media

    monkeypatch.setattr(media, "MAX_RECORDING_SECONDS", 3)
    path = write_audio(tmp_path / "talk.wav", sine(5.0, 8000), 8000)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chunks = list(iter_chunks(path, IngestOptions(audio_rate=8000, audio_window_s=2.0, audio_hop_s=2.0)))
    assert [(c.location.start, c.location.end) for c in chunks] == [(0.0, 2.0), (2.0, 3.0)]
    assert any("only the first 3 s of the recording are indexed" in str(w.message) for w in caught)
