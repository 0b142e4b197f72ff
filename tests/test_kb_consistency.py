"""The manifest and the vector store never drift apart silently: a space's model replaced by another of the same
dimension, the store's data deleted, and manifest.sqlite lost are each repaired on the next run, with a message."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from omnivec.cli import main
from omnivec.kb.ingest.sample import write_pdf
from omnivec.kb.stores.uri import open_store
from tests.fixtures.checkpoints import build_bert

NOTES = {f"note{i}.md": f"# Note {i}\n\nThe lamp number {i} charges phones.\n\n## Care\n\nDust it weekly, lamp {i}.\n"
         for i in range(3)}


@pytest.fixture(scope="module")
def other_bert(tmp_path_factory) -> str:
    """A second tiny BERT, same dimension (32) as ``bert_dir``, other weights."""
    return str(build_bert(tmp_path_factory.mktemp("bert-seed-1"), seed=1))


def _docs(folder: Path) -> Path:
    folder.mkdir()
    for name, text in NOTES.items():
        (folder / name).write_text(text, encoding="utf-8")
    write_pdf(folder / "report.pdf", [["Quarterly report", "Revenue grew."], ["Outlook", "Stable."]])
    return folder


def _index(docs: Path, kb: Path, model: str) -> str:
    config = kb.parent / f"{kb.name}.toml"
    config.write_text(f'overlap_tokens = 8\n[spaces]\ntext = "{model}"\n', encoding="utf-8")
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    return summary.getvalue()


def _store(kb: Path) -> tuple[set[str], int]:
    store = open_store(str(kb / "vectors"))
    try:
        return store.files("text"), store.count("text")
    finally:
        store.close()


def test_a_changed_model_re_embeds_its_space(tmp_path, bert_dir, other_bert, monkeypatch):
    import pypdfium2

    renders = [0]
    render = pypdfium2.PdfPage.render
    monkeypatch.setattr(pypdfium2.PdfPage, "render",
                        lambda self, *a, **k: renders.__setitem__(0, renders[0] + 1) or render(self, *a, **k))
    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    assert "4 indexed" in _index(docs, kb, bert_dir)
    assert renders[0] == 0  # no image space: no PDF page is rendered
    before = _store(kb)
    summary = _index(docs, kb, other_bert)
    assert f"the text space's model changed ({bert_dir!r} -> {other_bert!r})" in summary
    assert "its 4 files are re-embedded" in summary and "4 indexed, 0 unchanged" in summary
    assert _store(kb) == before
    import omnivec
    from omnivec.kb.ingest.chunking import embedder_text

    model = omnivec.Embedder(other_bert, device="cpu")
    store = open_store(str(kb / "vectors"))
    try:  # every stored vector is the new model's
        for path in (docs / "note0.md", docs / "report.pdf"):
            hits = store.search("text", np.ones(32, np.float32), 50)
            texts = [embedder_text(h.payload["text"], h.payload["heading"]) for h in hits]
            vectors = model.encode(texts, normalize_embeddings=True)
            again = [store.search("text", v, 1)[0] for v in vectors]
            assert all(hit.score == pytest.approx(1.0, abs=1e-4) for hit in again), path
    finally:
        store.close()
    assert "0 indexed, 4 unchanged" in (quiet := _index(docs, kb, other_bert)) and "repaired" not in quiet


def test_a_deleted_store_is_refilled(tmp_path, bert_dir):
    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)
    before = _store(kb)
    shutil.rmtree(kb / "vectors")
    summary = _index(docs, kb, bert_dir)
    assert "4 indexed files have missing or incomplete vectors in the store" in summary and "4 indexed" in summary
    assert _store(kb) == before and before[1] > 0
    assert "repaired" not in _index(docs, kb, bert_dir)


def test_a_lost_manifest_leaves_no_orphan_vectors(tmp_path, bert_dir):
    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)
    gone = docs / "note1.md"
    gone.unlink()
    for name in ("manifest.sqlite", "manifest.sqlite-wal", "manifest.sqlite-shm"):
        (kb / name).unlink(missing_ok=True)
    summary = _index(docs, kb, bert_dir)
    assert "vectors of 4 files the manifest does not know (manifest.sqlite lost or replaced?)" in summary
    files, count = _store(kb)
    assert str(gone.resolve()) not in files and len(files) == 3
    clean = tmp_path / "clean"
    _index(docs, clean, bert_dir)
    assert _store(clean) == (files, count)
    assert "repaired" not in _index(docs, kb, bert_dir)


def test_a_manifest_from_before_the_counts_is_taken_over_without_work(tmp_path, bert_dir):
    import sqlite3

    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:  # the schema before this release
        db.execute("ALTER TABLE files DROP COLUMN records")
        db.execute("DROP TABLE spaces")
    summary = _index(docs, kb, bert_dir)
    assert "0 indexed, 4 unchanged" in summary and "repaired" not in summary
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        assert all(records != "" for (records,) in db.execute("SELECT records FROM files"))
        assert sorted(name for (name,) in db.execute("SELECT name FROM spaces")) == ["lexical", "text"]


def test_files_left_pending_outside_the_paths_given_are_redone(tmp_path, bert_dir):
    """A repair marks files of the whole KB for re-indexing; a run on one folder used to redo only that folder's,
    leaving the others pending (unsearchable) for ever. They are redone while they exist, else named."""
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    for name in ("a/note0.md", "b/note1.md", "b/gone.md"):
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(NOTES["note0.md"].replace("0", name[-4]), encoding="utf-8")
    assert "3 indexed" in _index(docs, kb, bert_dir)
    shutil.rmtree(kb / "vectors")  # every file is marked for re-indexing by the next run, whatever its paths
    gone = (docs / "b/gone.md").resolve()
    gone.unlink()
    summary = _index(docs / "a", kb, bert_dir)
    assert "3 indexed files have missing or incomplete vectors" in summary and "2 indexed" in summary
    assert (f"{gone}: left to re-index by an earlier run, but not indexable now (No such file or directory): "
            "index it, or the folder it was in, again") in summary
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        states = dict(db.execute("SELECT path, state FROM files"))
    assert states == {str((docs / "a/note0.md").resolve()): "done", str((docs / "b/note1.md").resolve()): "done",
                      str(gone): "pending"}
    files, count = _store(kb)
    assert files == {str((docs / "a/note0.md").resolve()), str((docs / "b/note1.md").resolve())} and count > 0
    summary = _index(docs, kb, bert_dir)  # the folder it was in: gone, removed
    assert "0 indexed, 2 unchanged, 1 removed" in summary and "repaired" not in summary


def test_search_does_not_read_the_model_files(tmp_path, bert_dir, monkeypatch, capsys):
    """Every search and server start used to hash 2 MiB of every model file (and crash where one could not be
    read); the model identity is an index run's check only."""
    import omnivec.kb.consistency as consistency

    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)

    def refuse(source):
        raise AssertionError(f"model_identity({source!r}) called by a search")

    monkeypatch.setattr(consistency, "model_identity", refuse)
    capsys.readouterr()
    assert main(["search", "lamp", "--kb", str(kb), "--config", str(kb.parent / "kb.toml"), "--json",
                 "--rerank", "none"]) == 0
    assert json.loads(capsys.readouterr().out)


def test_a_model_that_becomes_resolvable_is_not_re_embedded(tmp_path, bert_dir):
    """Vectors recorded with a name-only identity (the model was not a local folder then) and a model now found
    locally (a fingerprint): unknown, not another model, so nothing is re-embedded; the fingerprint is recorded."""
    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        (fingerprint,) = db.execute("SELECT identity FROM spaces WHERE name = 'text'").fetchone()
        db.execute("UPDATE spaces SET identity = ? WHERE name = 'text'", (f"name:{bert_dir}",))
    summary = _index(docs, kb, bert_dir)
    assert "0 indexed, 4 unchanged" in summary and "repaired" not in summary
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        assert db.execute("SELECT identity FROM spaces WHERE name = 'text'").fetchone() == (fingerprint,)


def test_unreadable_model_files_are_a_note_not_a_crash(tmp_path, bert_dir, monkeypatch):
    """An OSError reading a model file used to end the run (and every search) with a traceback; the model is then
    judged by its name, with a note, and nothing is re-embedded."""
    import omnivec.kb.consistency as consistency

    docs, kb = _docs(tmp_path / "docs"), tmp_path / "kb"
    _index(docs, kb, bert_dir)

    def unreadable(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(consistency, "open", unreadable, raising=False)  # the module's reads only
    summary = _index(docs, kb, bert_dir)
    assert "note: the text space's model files could not be read ([Errno 13] Permission denied:" in summary
    assert f"judged by its name, {bert_dir!r}" in summary
    assert "0 indexed, 4 unchanged" in summary and "repaired" not in summary
