"""Ingestion: files in, chunks out -- heading paths, token budgets, PDF pages, audio windows, video frames, errors."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from itertools import pairwise

import numpy as np
import pytest
from PIL import Image

from omnivec.kb.chunk import IngestError
from omnivec.kb.ingest import SUPPORTED, IngestOptions, ingest_file
from omnivec.kb.ingest.chunking import chunk_text
from omnivec.kb.ingest.sample import PDF_PAGES, sample_folder, write_pdf
from omnivec.kb.ingest.transcribe import transcribe
from tests.fixtures.media import corrupt_copy, frame_index_from_pixels, sine, video_frame, write_audio, write_video


@pytest.fixture(scope="module")
def tok(minilm_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


def token_options(tok, **kw) -> IngestOptions:
    return IngestOptions(count_tokens=lambda s: len(tok(s)["input_ids"]),
                         tokenize_offsets=lambda s: tok(s, add_special_tokens=False,
                                                        return_offsets_mapping=True)["offset_mapping"], **kw)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return {p.name: p for p in sample_folder(tmp_path_factory.mktemp("sample"))}


def test_markdown_heading_paths(sample, tmp_path):
    chunks = ingest_file(sample["manual.md"], IngestOptions())
    top = "Aurora Desk Lamp Manual"
    assert [c.location.heading for c in chunks] == [top, f"{top} > Setup", f"{top} > Setup > Wiring",
                                           f"{top} > Setup > Mounting", f"{top} > Operation", f"{top} > Maintenance"]
    wiring = chunks[2]
    assert wiring.text.startswith("Plug the 12 V adapter") and "#" not in wiring.text
    assert wiring.content == f"{wiring.location.heading}\n\n{wiring.text}" and wiring.kind == wiring.modality == "text"
    faq = ingest_file(sample["faq.md"])  # setext headings
    assert [c.location.heading for c in faq] == ["Frequently Asked Questions > Shipping",
                                                  "Frequently Asked Questions > Returns"]
    doc = tmp_path / "code.markdown"
    doc.write_text("Intro.\n\n# A\ntext a\n```sh\n# not a heading\n```\n## B ##\ntext b\n- item\n---\n# C\ntext c\n")
    got = [(c.location.heading, c.text) for c in ingest_file(doc)]
    assert got == [("", "Intro."), ("A", "text a\n```sh\n# not a heading\n```"), ("A > B", "text b\n- item\n---"),
                   ("C", "text c")]
    from omnivec.kb.ingest.text import _atx_heading

    # A title of only '#' is the closing sequence of an empty heading (CommonMark: "### ###" is an empty h3).
    assert [_atx_heading(line) for line in ("# ##", "### ###", "## #\t", "# # #", "# a #b", "#5 #")] == [
        (1, ""), (3, ""), (2, ""), (1, "#"), (1, "a #b"), None]


def test_chunks_fit_the_token_budget_and_overlap(tok):
    rng = np.random.default_rng(0)
    vocab = "lamp cable socket adapter brightness charging embedding tokenizer warranty".split()
    paragraphs = [" ".join(" ".join(rng.choice(vocab, rng.integers(4, 20))).capitalize() + "."
                           for _ in range(rng.integers(1, 7))) for _ in range(30)]
    paragraphs.insert(10, " ".join(rng.choice(vocab, 400)))  # one sentence far over the budget
    paragraphs.insert(20, "x" * 3000)  # one "word" far over the budget
    text = "\n\n".join(paragraphs)
    options = token_options(tok, chunk_tokens=64, overlap_tokens=16)
    passages = chunk_text(text, options, [(0, "Guide"), (text.index(paragraphs[15]), "Guide > Part two")])
    assert len(passages) > 20
    covered = np.zeros(len(text), bool)
    for body, heading, start, end in passages:
        assert text[start:end] == body and body == body.strip()
        assert options.token_count(f"{heading}\n\n{body}") <= 64
        covered[start:end] = True
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    overlaps = [options.token_count(text[b[2]:a[3]]) - 2 for a, b in pairwise(passages)
                if a[1] == b[1] and b[2] < a[3]]
    assert len(overlaps) >= len(passages) - 5 and all(4 <= n <= 16 for n in overlaps)
    ends = [p[0][-1] for p in passages if "x" * 50 not in p[0] and "." in p[0]]
    assert sum(e == "." for e in ends) >= 0.7 * len(ends)  # cut at sentence ends where possible
    words = chunk_text(text, IngestOptions(chunk_tokens=50, overlap_tokens=10))  # whitespace-word fallback
    assert all(len(p[0].split()) <= 50 for p in words) and len(words) > 10


def test_html_readable_text_and_headings(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>T</title><style>p {color: red}</style></head><body>"
                    "<nav><a href='/'>Home</a> | About</nav><h1>Caf&eacute; guide</h1><p>Open <b>daily</b>&nbsp;"
                    "&amp; late.</p><script>var secret = 1;</script><h2>Menu</h2><ul><li>Tea</li><li>Cake</li>"
                    "</ul></body></html>", encoding="utf-8")
    chunks = ingest_file(page)
    assert [(c.location.heading, c.text) for c in chunks] == [("Café guide", "Open daily & late."),
                                                     ("Café guide > Menu", "Tea\n\nCake")]
    assert not any(word in c.content for c in chunks for word in ("secret", "color", "Home", "About"))


def test_text_encodings(tmp_path):
    legacy = tmp_path / "legacy.txt"
    legacy.write_bytes("Crème brûlée – 5 €".encode("cp1252"))
    [chunk] = ingest_file(legacy)
    assert chunk.text == "Crème brûlée – 5 €" and chunk.extra["encoding"] == "cp1252"
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbfline one\r\nline two")
    assert ingest_file(bom)[0].text == "line one\nline two"


def test_jsonl_records(tmp_path):
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"_id": "d1", "title": "Lamps", "text": "LED lamps last long."}, {"id": 7, "text": "No title here."}]
    corpus.write_text("\n".join(map(json.dumps, rows)) + "\n\n")
    chunks = ingest_file(corpus)
    assert [(c.extra["record_id"], c.location.heading, c.content) for c in chunks] == [
        ("d1", "Lamps", "Lamps\n\nLED lamps last long."), ("7", "", "No title here.")]
    corpus.write_text(json.dumps(rows[0]) + "\n" + json.dumps(rows[1]) + "\n{broken\n")
    with pytest.raises(IngestError, match="line 3: not valid JSON"):
        ingest_file(corpus)
    corpus.write_text('{"title": "no text"}\n')
    with pytest.raises(IngestError, match='line 1: expected a JSON object with a "text"'):
        ingest_file(corpus)


def test_pdf_pages_text_and_renderings(sample, tmp_path):
    chunks = ingest_file(sample["report.pdf"], IngestOptions(thumbnail_px=64))
    texts = [c for c in chunks if c.kind == "text"]
    pages = [c for c in chunks if c.kind == "page"]
    assert [(c.location.page, c.text) for c in texts] == [(n + 1, "\n".join(lines))
                                                          for n, lines in enumerate(PDF_PAGES)]
    assert [c.location.page for c in pages] == [1, 2, 3] and all(c.modality == "image" for c in pages)
    assert pages[1].text == "\n".join(PDF_PAGES[1]) and Image.open(io.BytesIO(pages[0].content)).size == (612, 792)
    thumb = Image.open(io.BytesIO(pages[0].thumbnail))
    assert thumb.format == "JPEG" and max(thumb.size) == 64
    landscape = write_pdf(tmp_path / "wide.pdf", [["Wide page"]], size=(800, 400))
    [text, page] = ingest_file(landscape, IngestOptions(page_dpi=144))
    rendered = Image.open(io.BytesIO(page.content))  # pages are kept as PNG bytes until embedded
    assert text.text == "Wide page" and rendered.size == (1600, 800) and rendered.format == "PNG"
    assert np.asarray(rendered).min() < 100  # the text is drawn, not a blank page


def test_pictures(sample, tmp_path):
    [circle] = ingest_file(sample["red_circle.png"])
    assert circle.kind == circle.modality == "image" and circle.content.size == (320, 240)
    assert circle.content.getpixel((160, 120)) == (220, 30, 30) and circle.content.getpixel((5, 5)) == (255, 255, 255)
    gif = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (32, 32), color) for color in ("red", "blue")]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    [first] = ingest_file(gif)
    assert first.content.getpixel((16, 16))[0] > 200  # the first (red) frame


def test_audio_windows_cover_the_recording(tmp_path):
    wav = write_audio(tmp_path / "tone.wav", sine(25.0, 16000), 16000)
    chunks = ingest_file(wav, IngestOptions(audio_rate=48000))
    assert [(c.location.start, c.location.end) for c in chunks] == [(0.0, 10.0), (10.0, 20.0), (20.0, 25.0)]
    assert all(c.kind == c.modality == "audio" and c.content["sampling_rate"] == 48000 for c in chunks)
    assert [c.content["array"].size for c in chunks] == [480000, 480000, 240000]
    short_tail = write_audio(tmp_path / "tail.flac", sine(20.5, 16000), 16000)
    assert [c.location.end for c in ingest_file(short_tail, IngestOptions(audio_rate=16000))] == [10.0, 20.0]
    overlapping = ingest_file(wav, IngestOptions(audio_rate=16000, audio_window_s=10, audio_hop_s=5))
    assert [(c.location.start, c.location.end) for c in overlapping] == [(0, 10), (5, 15), (10, 20), (15, 25)]
    voice = tmp_path / "voice.mp4"  # sound only, in a video container: indexed as a recording
    voice.write_bytes(write_audio(tmp_path / "voice.m4a", sine(3.0, 16000), 16000).read_bytes())
    assert [c.kind for c in ingest_file(voice)] == ["audio"]


def _gop_video(path, frames: int, fps: int, gop: int):
    """A video with a keyframe every ``gop`` frames, so that seeking lands mid-file."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps, options={"g": str(gop), "bf": "0", "qscale": "3"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(video_frame(i), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("name", ["clip.mp4", "clip.mkv", "clip.webm", "gop.mov"])
def test_video_frames_at_segment_times(tmp_path, name):
    if name.startswith("gop"):
        path = _gop_video(tmp_path / name, 240, 10, gop=10)
    else:
        path = write_video(tmp_path / name, seconds=24.0, fps=10, with_audio=True)
    for per_segment in (1, 2):  # 1: targets 5 s apart (seeking); 2: 2.5 s apart (decoding through)
        options = IngestOptions(video_segment_s=5.0, frames_per_segment=per_segment, audio_rate=16000)
        chunks = ingest_file(path, options)
        frames = [c for c in chunks if c.kind == "frame"]
        segments = [(5.0 * k, min(5.0 * k + 5, 24.0)) for k in range(5)]
        assert [(c.location.start, c.location.end) for c in frames] == [s for s in segments for _ in range(per_segment)]
        for n, chunk in enumerate(frames):
            start, end = chunk.location.start, chunk.location.end
            target = start + (end - start) * (n % per_segment + 0.5) / per_segment
            assert frame_index_from_pixels(chunk.content) == int(target * 10 + 1e-6), (name, per_segment, target)
            assert chunk.extra["time"] == pytest.approx(int(target * 10 + 1e-6) / 10, abs=1e-3)
        sound = [c for c in chunks if c.kind == "audio"]
        if name.startswith("clip"):
            assert [(c.location.start, c.location.end) for c in sound][:2] == [(0.0, 10.0), (10.0, 20.0)]
            assert sound[-1].location.start == 20.0 and sound[-1].location.end == pytest.approx(24.0, abs=0.1)
        else:
            assert sound == []


def test_sample_video_has_frames_and_sound(sample):
    chunks = ingest_file(sample["ball.mp4"], IngestOptions(video_segment_s=2.0, audio_window_s=2.0,
                                                             audio_hop_s=2.0))
    assert [(c.kind, c.location.start, c.location.end) for c in chunks] == [("frame", 0.0, 2.0), ("frame", 2.0, 4.0),
                                                          ("audio", 0.0, 2.0), ("audio", 2.0, 4.0)]
    assert chunks[0].content.size == (160, 120) and chunks[0].thumbnail[:2] == b"\xff\xd8"


def test_broken_files_raise_ingest_error(sample, tmp_path):
    cases = {
        corrupt_copy(sample["report.pdf"], tmp_path / "cut.pdf", "truncate"): "PDF",
        corrupt_copy(sample["report.pdf"], tmp_path / "noise.pdf", "garbage"): "PDF",
        corrupt_copy(sample["blue_square.jpg"], tmp_path / "noise.jpg", "garbage"): "image",
        corrupt_copy(sample["beeps.wav"], tmp_path / "noise.wav", "garbage"): "audio",
        corrupt_copy(sample["ball.mp4"], tmp_path / "noise.mp4", "garbage"): "video",
        corrupt_copy(sample["ball.mp4"], tmp_path / "cut.mp4", "truncate"): "video",
        corrupt_copy(sample["beeps.wav"], tmp_path / "binary.txt", "garbage"): "not a text file",
        tmp_path / "notes.xyz": r"unsupported file type \.xyz; supported: .*\.md",
        tmp_path / "empty.md": "empty file",
        tmp_path / "missing.png": "cannot read the file",
    }
    (tmp_path / "notes.xyz").write_text("hello")
    (tmp_path / "empty.md").write_bytes(b"")
    for path, reason in cases.items():
        with pytest.raises(IngestError, match=reason) as caught:
            ingest_file(str(path))
        assert caught.value.path == str(path) and str(path) in str(caught.value)
    with pytest.raises(IngestError, match="over the 0.0 MiB limit"):
        ingest_file(sample["faq.md"], IngestOptions(max_file_bytes=10))
    assert set(SUPPORTED.values()) == {"text", "pdf", "image", "audio", "video"} and SUPPORTED[".jsonl"] == "text"


def _tiny_whisper(folder):
    """A random two-layer Whisper with a byte-level vocabulary, Whisper's special tokens and timestamp tokens."""
    import torch
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    specials = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>",
                "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]
    vocab = {ch: i for i, ch in enumerate(sorted(ByteLevel.alphabet()))}
    ids = {s: len(vocab) + i for i, s in enumerate(specials)}
    tokenizer = WhisperTokenizer(vocab={**vocab, **ids}, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": specials[1:]})
    tokenizer.add_tokens([f"<|{i * 0.02:.2f}|>" for i in range(1501)])  # after <|notimestamps|>, as in Whisper
    eos, sot = ids["<|endoftext|>"], ids["<|startoftranscript|>"]
    config = WhisperConfig(vocab_size=len(tokenizer), num_mel_bins=80, encoder_layers=1, decoder_layers=1, d_model=16,
                           encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                           decoder_ffn_dim=32, max_target_positions=64, pad_token_id=eos, bos_token_id=eos,
                           eos_token_id=eos, decoder_start_token_id=sot)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=sot, eos_token_id=eos, pad_token_id=eos, bos_token_id=eos, max_length=64,
        no_timestamps_token_id=ids["<|notimestamps|>"], prev_sot_token_id=ids["<|startofprev|>"],
        is_multilingual=True, lang_to_id={"<|en|>": ids["<|en|>"]}, max_initial_timestamp_index=50,
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        begin_suppress_tokens=[eos], suppress_tokens=[])
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


@pytest.fixture
def one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a busy machine: thread hand-offs cost more than the maths
    yield
    torch.set_num_threads(threads)


def test_transcripts_with_a_tiny_whisper(tmp_path, one_thread):
    model = _tiny_whisper(tmp_path / "whisper")
    segments = transcribe(sine(5.0, 48000), 48000, model)  # resampled to the model's 16 kHz
    assert segments and all(0.0 <= s <= e <= 5.0 and isinstance(t, str) and t for s, e, t in segments)
    wav = write_audio(tmp_path / "talk.wav", sine(5.0, 16000), 16000)
    chunks = ingest_file(wav, IngestOptions(audio_rate=16000, transcribe_model=model))
    transcript = [c for c in chunks if c.kind == "transcript"]
    assert transcript and all(c.modality == "text" and c.content == c.text and c.location.start <= c.location.end
                              for c in transcript)
    missing = str(tmp_path / "no-such-model")
    with pytest.warns(UserWarning, match=f"'{missing}'.*transcripts will be skipped"):
        chunks = ingest_file(wav, IngestOptions(transcribe_model=missing))
    assert [c.kind for c in chunks] == ["audio"]
