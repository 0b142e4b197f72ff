"""The knowledge base end to end: a folder of every file type (some corrupt) indexed through the command line,
searched with text and images; incremental re-indexing; a run killed with SIGKILL and resumed."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnivec.cli import main
from omnivec.kb.config import load_config
from omnivec.kb.ingest.sample import sample_folder
from omnivec.kb.stores.uri import open_store

CORRUPT = {"broken.pdf": b"%PDF-1.4\n1 0 obj <<", "noise.jpg": os.urandom(2048), "empty.wav": b"",
           "garbage.mp4": os.urandom(4096), "notes.xyz": b"what is this"}


def _kb_config(folder: Path, minilm_dir: str, clip_dir: str, clap_dir: str, **extra) -> Path:
    lines = ["[spaces]", f'text = "{minilm_dir}"', f'image = "{clip_dir}"', f'audio = "{clap_dir}"']
    head = [f"{key} = {json.dumps(value)}" for key, value in extra.items()]
    path = folder / "kb.toml"
    path.write_text("\n".join(head + lines) + "\n", encoding="utf-8")
    return path


def _counts(kb: Path, uri: str | None = None) -> dict[str, int]:
    store = open_store(uri or str(kb / "vectors"))
    try:
        return {name: store.count(name) for name in store.collections()}
    finally:
        store.close()


def _states(kb: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        return {path: (state, chunks) for path, state, chunks in db.execute("SELECT path, state, chunks FROM files")}


@pytest.fixture(scope="module")
def library(tmp_path_factory, minilm_dir, clip_dir, clap_dir):
    """A sample folder with one file of each kind plus corrupt ones, indexed once."""
    root = tmp_path_factory.mktemp("kb-e2e")
    docs = root / "docs"
    sample_folder(docs)
    for name, data in CORRUPT.items():
        (docs / name).write_bytes(data)
    config = _kb_config(root, minilm_dir, clip_dir, clap_dir)
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        assert main(["index", str(docs), "--kb", str(root / "kb"), "--config", str(config)]) == 0
    return root, docs, root / "kb", config, summary.getvalue()


def test_index_reports_bad_files_and_indexes_the_rest(library):
    root, docs, kb, config, summary = library
    for name in CORRUPT:
        assert str(docs / name) in summary, name
    assert "unsupported file type '.xyz'" in summary
    states = _states(kb)
    done = {Path(p).suffix for p, (state, chunks) in states.items() if state == "done" and chunks > 0}
    assert {".md", ".pdf", ".png", ".wav", ".mp4"} <= done
    assert all(state == "failed" for p, (state, _) in states.items() if Path(p).name in CORRUPT)
    counts = _counts(kb)
    assert counts["text"] > 0 and counts["image"] > 0 and counts["audio"] > 0
    # every text chunk is also in the lexical space
    assert counts["lexical"] == counts["text"]
    assert sum(chunks for state, chunks in states.values() if state == "done") == sum(counts.values()) - counts["lexical"]


def test_search_text_and_image_with_locations_and_filters(library, capsys):
    root, docs, kb, config, _ = library
    capsys.readouterr()
    assert main(["search", "How much did revenue grow in the third quarter?", "--kb", str(kb), "--config",
                 str(config), "--json", "--rerank", "none", "--modality", "text"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results and all({"score", "file", "modality", "kind"} <= r.keys() for r in results)
    assert (Path(results[0]["file"]).name, results[0]["page"]) == ("report.pdf", 1)
    assert main(["search", "charge a phone on the base", "--kb", str(kb), "--config", str(config), "--json",
                 "--rerank", "none", "--modality", "text"]) == 0
    best = json.loads(capsys.readouterr().out)[0]
    assert (Path(best["file"]).name, best["heading"]) == ("manual.md", "Aurora Desk Lamp Manual > Operation")
    photo = next(docs.glob("*.png"))
    assert main(["search", "--image", str(photo), "--kb", str(kb), "--config", str(config), "--json", "-k", "3",
                 "--modality", "image", "--rerank", "none"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["file"] == str(photo.resolve()) and hits[0]["similarity"] == pytest.approx(1.0, abs=1e-4)
    assert main(["search", "manual", "--kb", str(kb), "--config", str(config), "--json", "--file-type", "md",
                 "--rerank", "none"]) == 0
    assert {Path(r["file"]).suffix for r in json.loads(capsys.readouterr().out)} == {".md"}


def test_reindex_is_incremental(tmp_path, minilm_dir, clip_dir, clap_dir, capsys):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    files = sample_folder(docs)
    config = _kb_config(tmp_path, minilm_dir, clip_dir, clap_dir)
    run = ["index", str(docs), "--kb", str(kb), "--config", str(config)]
    assert main(run) == 0
    first = _counts(kb)
    capsys.readouterr()
    assert main(run) == 0
    assert f"{len(files)} files: 0 indexed, {len(files)} unchanged" in capsys.readouterr().err
    assert _counts(kb) == first
    markdown = next(f for f in files if f.suffix == ".md")
    markdown.write_text(markdown.read_text() + "\n\n## Appendix\n\nA new section about batteries.\n")
    os.utime(markdown, (time.time() + 5, time.time() + 5))
    removed = next(f for f in files if f.suffix == ".wav")
    removed.unlink()
    assert main(run) == 0
    assert "1 indexed" in (summary := capsys.readouterr().err) and "1 removed" in summary
    after = _counts(kb)
    assert after["audio"] < first["audio"] and after["text"] >= first["text"]
    assert str(removed.resolve()) not in _states(kb)


@pytest.mark.slow  # four `omnivec index` subprocess runs, each loading the models
@pytest.mark.parametrize("store", [None, "qdrant://qdrant"], ids=["lancedb", "qdrant"])
def test_killed_run_resumes_to_the_same_index(tmp_path, minilm_dir, clip_dir, clap_dir, store):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(40):
        (docs / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n" + f"Paragraph {i} about topic {i % 7}. " * 40)
    config = _kb_config(tmp_path, minilm_dir, clip_dir, clap_dir, flush_chunks=8, **({"store": store} if store else {}))

    def uri(kb: Path) -> str:  # a relative store path in kb.toml is taken from each KB's folder
        return load_config(kb, config).store_uri(kb)

    command = [sys.executable, "-m", "omnivec.cli", "index", str(docs), "--config", str(config)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    killed_kb = tmp_path / "killed"
    for delay_done in (1, 5, 12):  # kill once some files are done, at a different point each time
        process = subprocess.Popen(command + ["--kb", str(killed_kb)], env=env, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and process.poll() is None:
            try:
                states = _states(killed_kb) if (killed_kb / "manifest.sqlite").is_file() else {}
            except sqlite3.OperationalError:  # the file exists a moment before its table does
                states = {}
            if sum(state == "done" for state, _ in states.values()) >= delay_done:
                break
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        states = _states(killed_kb)
        counts = _counts(killed_kb, uri(killed_kb))  # the KB opens and the finished files are all there
        assert counts.get("text", 0) >= sum(chunks for state, chunks in states.values() if state == "done")
    assert subprocess.run(command + ["--kb", str(killed_kb)], env=env, capture_output=True).returncode == 0
    clean_kb = tmp_path / "clean"  # in this process: a clean run needs no subprocess, and imports cost seconds
    assert main(["index", str(docs), "--config", str(config), "--kb", str(clean_kb)]) == 0
    assert _states(killed_kb) == _states(clean_kb) and all(s == "done" for s, _ in _states(clean_kb).values())
    counts = _counts(clean_kb, uri(clean_kb))
    assert _counts(killed_kb, uri(killed_kb)) == counts and counts["lexical"] == counts["text"]
    assert _lexical_ranking(uri(killed_kb)) == _lexical_ranking(uri(clean_kb))


def _lexical_ranking(uri: str) -> list[list[str]]:
    """The lexical space's full answer to a few queries, ties in id order (their order is the store's)."""
    store = open_store(uri)
    try:
        return [[hit.id for hit in sorted(store.search_text("lexical", query, 1000),
                                          key=lambda h: (-round(h.score, 3), h.id))]
                for query in ("topic 3", "paragraph 12 about topic", "note 7")]
    finally:
        store.close()


def test_offline_missing_model_is_named_and_the_rest_indexed(tmp_path, minilm_dir, capsys):
    docs = tmp_path / "docs"
    sample_folder(docs)
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\nimage = "nobody/no-such-clip-model"\n', encoding="utf-8")
    assert main(["index", str(docs), "--kb", str(tmp_path / "kb"), "--config", str(config)]) == 0
    summary = capsys.readouterr().err
    assert "nobody/no-such-clip-model" in summary and "images, PDF page images and video frames" in summary
    assert _counts(tmp_path / "kb")["text"] > 0


def test_kb_config_errors_are_named(tmp_path):
    (tmp_path / "kb.toml").write_text("chunk_size = 3\n", encoding="utf-8")
    with pytest.raises(Exception, match="unknown key"):
        load_config(tmp_path)


@pytest.mark.slow  # `omnivec demo` end to end in a subprocess
def test_demo_indexes_a_sample_folder_and_searches_it(tmp_path, minilm_dir):
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "omnivec.cli", "demo", "--out", str(tmp_path / "demo"), "--config",
                          str(config)], capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "8 indexed" in out.stderr
    charge = out.stdout.split("How do I charge my phone?")[1]
    assert charge.splitlines()[1].endswith("manual.md (Aurora Desk Lamp Manual > Operation)")
    assert "(image search unavailable: No space of this KB takes image queries" in out.stdout


def test_rerank_orders_text_results_by_the_cross_encoder(library, tmp_path, bert_dir, capsys):
    import omnivec

    root, docs, kb, config, _ = library
    reranker_dir = tmp_path / "reranker"
    omnivec.CrossEncoder(bert_dir, num_labels=1, device="cpu").save(str(reranker_dir))
    query = "how long does delivery take"
    assert main(["search", query, "--kb", str(kb), "--config", str(config), "--json", "-k", "8",
                 "--rerank", str(reranker_dir)]) == 0
    results = json.loads(capsys.readouterr().out)
    texts = [r for r in results if r["text"]]
    assert len(texts) >= 3 and all(r["rerank_score"] is not None for r in texts)
    assert [r["rerank_score"] for r in texts] == sorted((r["rerank_score"] for r in texts), reverse=True)
    expected = omnivec.CrossEncoder(str(reranker_dir), device="cpu").predict([(query, r["text"]) for r in texts])
    assert [r["rerank_score"] for r in texts] == pytest.approx(list(expected), abs=1e-5)


def test_a_vision_language_reranker_also_reads_image_results(library, qwen2_vl_dir, tmp_path, capsys):
    import omnivec

    root, docs, kb, config, _ = library
    template = omnivec.RerankTemplate.from_string(
        "<|im_start|>user\nQuery: {query}\nDocument: {document}\nRelevant (1 or 0)?<|im_end|>\n<|im_start|>assistant\n",
        true_token="1", false_token="0", activation="identity")
    omnivec.CrossEncoder(qwen2_vl_dir, template=template, device="cpu").save(str(tmp_path / "vl-reranker"))
    qwen2_vl_dir = str(tmp_path / "vl-reranker")
    assert main(["search", "a red circle", "--kb", str(kb), "--config", str(config), "--json", "-k", "20",
                 "--rerank", qwen2_vl_dir]) == 0
    results = json.loads(capsys.readouterr().out)
    pictures = [r for r in results if r["kind"] in ("image", "frame")]
    assert pictures and all(r["rerank_score"] is not None for r in pictures)
    photo = next(r for r in pictures if r["kind"] == "image")
    expected = omnivec.CrossEncoder(qwen2_vl_dir, device="cpu").predict([("a red circle", photo["file"])])
    assert photo["rerank_score"] == pytest.approx(float(expected[0]), abs=1e-5)
    scored = [r["rerank_score"] for r in results if r["rerank_score"] is not None]
    assert scored == sorted(scored, reverse=True)


def test_an_index_run_without_any_model_stops_and_keeps_the_vectors(tmp_path, minilm_dir):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "note.md").write_text("# Lamp\n\nThe lamp charges phones.\n", encoding="utf-8")
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    bad.write_text(f'[spaces]\ntext = "{tmp_path / "no-such-model"}"\n', encoding="utf-8")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(good)]) == 0
    before = (_counts(kb), _states(kb))
    message = io.StringIO()
    with contextlib.redirect_stderr(message):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(bad)]) != 0
    assert "No model of this KB could be loaded" in message.getvalue() and "no-such-model" in message.getvalue()
    assert (_counts(kb), _states(kb)) == before and before[0]["text"] > 0


def test_search_with_a_mistyped_image_path_is_an_error_naming_it(sample_kb, capsys):
    docs, kb, config = sample_kb
    capsys.readouterr()
    for query in ([], ["a red circle"]):
        missing = str(docs / "red_circel.png")
        assert main(["search", *query, "--image", missing, "--kb", str(kb), "--config", str(config)]) == 2
        out = capsys.readouterr()
        assert out.out == "" and out.err == f"omnivec search: The image query {missing!r} does not exist: give an " \
                                            "image file, an http(s) URL or a data: URI.\n"
    assert main(["search", "a red circle", "--image", str(docs / "red_circle.png"), "--kb", str(kb), "--config",
                 str(config), "--json", "--rerank", "none", "-k", "3"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["file"].endswith("red_circle.png") and all(r["spaces"] == ["image"] for r in results)


def test_a_kb_named_by_a_qdrant_uri_is_found_from_any_directory(tmp_path, minilm_dir, monkeypatch, capsys):
    """Its manifest lives in one folder per store under $XDG_DATA_HOME/omnivec/kb, not under the working
    directory; a relative store path in a KB folder's kb.toml is taken from the KB folder."""
    from omnivec.kb.state_dir import kb_location, state_root

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    docs, here, there = tmp_path / "docs", tmp_path / "here", tmp_path / "there"
    for folder in (docs, here, there):
        folder.mkdir()
    (docs / "note.md").write_text("# Lamp\n\nThe lamp charges phones on its base.\n", encoding="utf-8")
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    monkeypatch.chdir(here)
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", "qdrant://vectors", "--config", str(config)]) == 0
    assert not (here / ".omnivec").exists() and (here / "vectors").is_dir()
    state = kb_location(f"qdrant://{here}/vectors")[0]
    assert state.parent == state_root() and (state / "manifest.sqlite").is_file()
    monkeypatch.chdir(there)
    capsys.readouterr()
    for uri in (f"qdrant://{here}/vectors", f"QDRANT://{here}//vectors"):  # one store, however it is spelled
        assert main(["search", "charge a phone", "--kb", uri, "--config", str(config), "--json", "--rerank",
                     "none"]) == 0
        assert Path(json.loads(capsys.readouterr().out)[0]["file"]).name == "note.md"
    assert main(["search", "charge a phone", "--kb", "qdrant://vectors", "--config", str(config)]) == 2
    err = capsys.readouterr().err  # here "vectors" is another (empty) store: the advice names what was given
    assert "'qdrant://vectors' is not a knowledge base yet" in err and "--kb qdrant://vectors`" in err
    assert str(state_root()) in err and ".omnivec" not in err

    kb = tmp_path / "kb"  # a KB folder whose kb.toml puts the vectors in Qdrant, by a relative path
    kb.mkdir()
    (kb / "kb.toml").write_text(f'store = "qdrant://q"\n[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    monkeypatch.chdir(here)
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb)]) == 0
    assert (kb / "q").is_dir() and not (here / "q").exists()
    monkeypatch.chdir(there)
    assert main(["search", "charge a phone", "--kb", str(kb), "--json", "--rerank", "none"]) == 0
    assert Path(json.loads(capsys.readouterr().out)[0]["file"]).name == "note.md"


def test_state_kept_under_the_working_directory_by_earlier_releases_moves_once(tmp_path, monkeypatch, caplog):
    from omnivec.kb.state_dir import kb_location, state_root

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    legacy = tmp_path / ".omnivec" / "http_qdrant.example_6333"
    legacy.mkdir(parents=True)
    (legacy / "manifest.sqlite").write_bytes(b"manifest")
    with caplog.at_level("WARNING", logger="omnivec.kb.state_dir"):
        folder, uri = kb_location("http://qdrant.example:6333")
    assert uri == "http://qdrant.example:6333" and folder.parent == state_root()
    assert (folder / "manifest.sqlite").read_bytes() == b"manifest" and not legacy.exists()
    assert str(folder) in caplog.text and str(legacy) in caplog.text
    assert kb_location("HTTP://Qdrant.Example:6333/") == (folder, uri)
    assert "user:secret" not in str(kb_location("https://user:secret@host:6333")[0])


def test_every_media_extension_the_library_decodes_is_indexed(tmp_path, minilm_dir, clip_dir, clap_dir):
    from omnivec.inputs.modality import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS
    from omnivec.kb.ingest import SUPPORTED
    from tests.fixtures import media

    assert {".avi", ".m4v", ".opus", ".aac"} <= set(SUPPORTED)
    assert set(AUDIO_EXTENSIONS + VIDEO_EXTENSIONS) <= set(SUPPORTED)
    docs = tmp_path / "docs"
    docs.mkdir()
    for ext in (".opus", ".aac"):
        media.write_audio(docs / f"tone{ext}", media.sine(2.0, 16000), 16000)
    for ext in (".avi", ".m4v"):
        media.write_video(docs / f"clip{ext}", seconds=2.0, fps=10, with_audio=True)
    config = _kb_config(tmp_path, minilm_dir, clip_dir, clap_dir)
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        assert main(["index", str(docs), "--kb", str(tmp_path / "kb"), "--config", str(config)]) == 0
    assert "4 files: 4 indexed" in summary.getvalue() and "0 failed" in summary.getvalue(), summary.getvalue()
    states = {Path(p).name: value for p, value in _states(tmp_path / "kb").items()}
    assert {name: state for name, (state, chunks) in states.items() if chunks > 0} == dict.fromkeys(
        ["tone.opus", "tone.aac", "clip.avi", "clip.m4v"], "done")
    from omnivec.kb.search import Searcher

    searcher = Searcher(tmp_path / "kb", load_config(tmp_path, config), device="cpu")
    try:  # a text query reaches all three spaces: every chunk of these files is among 50 results
        kinds = {(Path(r.location.file).name, r.kind) for r in searcher.search("a sound", k=50, rerank=False)}
    finally:
        searcher.close()
    assert {("tone.opus", "audio"), ("tone.aac", "audio"), ("clip.avi", "frame"), ("clip.m4v", "frame"),
            ("clip.avi", "audio"), ("clip.m4v", "audio")} <= kinds


def test_control_characters_in_file_names_are_escaped_when_printed(tmp_path, minilm_dir, capsys, monkeypatch):
    from omnivec.errors import InputError

    docs, kb = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "evil\x1b[31mred\nfake.md").write_text("# Lamp\n\nThe lamp \x1b[2J charges phones.\n", encoding="utf-8")
    (docs / "bad\rname\x07\u202egpj.pdf").write_bytes(b"%PDF-1.4\n1 0 obj <<")  # corrupt: named in the summary
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    summary = capsys.readouterr().err
    assert "bad\\rname\\x07\\u202egpj.pdf: " in summary
    assert not {"\x1b", "\r", "\x07", "\u202e"} & set(summary)
    assert main(["search", "charge a phone", "--kb", str(kb), "--config", str(config), "--rerank", "none"]) == 0
    shown = capsys.readouterr().out
    assert "evil\\x1b[31mred\\nfake.md (Lamp)" in shown and "The lamp \\x1b[2J charges phones." in shown
    assert not {"\x1b", "\r", "\x07"} & set(shown)
    assert main(["search", "x", "--kb", str(kb), "--config", str(config), "--queries", str(docs / "q\x1b.txt")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "\x1b" not in error and "q\\x1b.txt" in error

    def fail(*args, **kwargs):  # an error whose message holds raw control characters
        raise InputError("file 'a\x1b[2Jb' is\nbroken")

    monkeypatch.setattr("omnivec.kb.commands.run_index", fail)
    assert main(["index", str(docs)]) == 2
    assert capsys.readouterr().err == "omnivec index: file 'a\\x1b[2Jb' is\nbroken\n"
    from omnivec.printing import printable

    assert printable("latin\udce9 C:\\x\ty.md") == "latin\\udce9 C:\\x\\ty.md"  # undecodable bytes; \ kept
