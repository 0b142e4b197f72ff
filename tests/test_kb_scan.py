"""What indexing reads: regular files only. Symlinks (to files or folders, inside or outside the indexed folders),
FIFOs and devices are skipped and reported; a file that cannot be read fails alone; a folder that cannot be
listed keeps what was indexed from it. The tests run as root, which reads a chmod 000 file and lists a chmod 000
folder anyway, so those runs drop root's permission override first (see ``UNPRIVILEGED``)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from omnivec.cli import main

RUN_TIMEOUT_S = 180  # an index run of a few small files takes ~10 s here; a hang ends the test at this bound

# ``python -c UNPRIVILEGED ARGS...`` runs ``python ARGS...`` held to file permissions: as root it first drops
# CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its bounding set (prctl PR_CAPBSET_DROP, Linux), which the exec'd
# program then lacks, so chmod 000 stops it as it stops any other user. As another user there is nothing to drop.
UNPRIVILEGED = """
import ctypes, os, sys
if os.geteuid() == 0:
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            sys.exit(f"cannot drop capability {capability}: errno {ctypes.get_errno()}")
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def _unprivileged(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", UNPRIVILEGED, *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, env=ENV)


def _config(folder: Path, minilm_dir: str) -> Path:
    config = folder / "kb.toml"
    config.write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    return config


def _states(kb: Path) -> dict[str, str]:
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        return dict(db.execute("SELECT path, state FROM files"))


def _index(docs: Path, kb: Path, config: Path) -> str:
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    return summary.getvalue()


@pytest.mark.slow  # `omnivec index` in a subprocess as an unprivileged user
def test_odd_files_are_reported_and_skipped_and_the_run_finishes(tmp_path, minilm_dir):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "lamp.md").write_text("# Lamp\n\nThe lamp charges phones on its base.\n", encoding="utf-8")
    (docs / "notes.txt").write_text("Deliveries take three days.\n", encoding="utf-8")
    odd = {"fifo.txt": "not a regular file (FIFO)", "zero.txt": "symlink, not followed",
           "dangling.txt": "symlink, not followed", "loop.txt": "symlink, not followed"}
    os.mkfifo(docs / "fifo.txt")  # reading it would block forever
    (docs / "zero.txt").symlink_to("/dev/zero")  # reading it would never end
    (docs / "dangling.txt").symlink_to(tmp_path / "nowhere.txt")
    (docs / "loop.txt").symlink_to(docs / "loop.txt")
    locked = docs / "locked.txt"
    locked.write_text("You may not read this.\n", encoding="utf-8")
    locked.chmod(0)
    assert "PermissionError" in _unprivileged("-c", f"open({str(locked)!r})").stderr  # the premise
    started = time.monotonic()
    run = _unprivileged("-m", "omnivec.cli", "index", str(docs), "--kb", str(kb), "--config",
                        str(_config(tmp_path, minilm_dir)))
    assert run.returncode == 0, run.stderr
    assert time.monotonic() - started < RUN_TIMEOUT_S
    summary = run.stderr
    assert "3 files: 2 indexed, 0 unchanged, 0 removed, 1 failed, 4 skipped" in summary, summary
    for name, reason in odd.items():
        assert f"{docs / name}: {reason}" in summary, name
    assert f"{locked}: cannot read the file: Permission denied" in summary
    assert _states(kb) == {str(docs / "lamp.md"): "done", str(docs / "notes.txt"): "done"}


def test_symlinks_to_files_and_folders_are_not_followed(tmp_path, minilm_dir):
    docs, outside, kb = tmp_path / "docs", tmp_path / "outside", tmp_path / "kb"
    (outside / "folder").mkdir(parents=True)
    docs.mkdir()
    (docs / "lamp.md").write_text("# Lamp\n\nThe lamp charges phones.\n", encoding="utf-8")
    (outside / "secret.md").write_text("# Secret\n\nThe vault code is 1234.\n", encoding="utf-8")
    (outside / "folder" / "more.md").write_text("# More\n\nMore secrets.\n", encoding="utf-8")
    (docs / "secret.md").symlink_to(outside / "secret.md")
    (docs / "linked").symlink_to(outside / "folder")
    (docs / "again.md").symlink_to(docs / "lamp.md")  # inside the indexed folder: not followed either
    summary = _index(docs, kb, _config(tmp_path, minilm_dir))
    assert "1 files: 1 indexed" in summary and "3 skipped" in summary, summary
    for name in ("secret.md", "linked", "again.md"):
        assert f"{docs / name}: symlink, not followed" in summary, name
    assert _states(kb) == {str(docs / "lamp.md"): "done"}


@pytest.mark.slow  # `omnivec index` in a subprocess as an unprivileged user
def test_a_folder_that_cannot_be_listed_keeps_its_files(tmp_path, minilm_dir, capsys):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    sub = docs / "sub"
    sub.mkdir(parents=True)
    (docs / "a.md").write_text("# Lamp\n\nThe lamp charges phones.\n", encoding="utf-8")
    (sub / "b.md").write_text("# Battery\n\nThe battery lasts a week of evenings.\n", encoding="utf-8")
    config = _config(tmp_path, minilm_dir)
    _index(docs, kb, config)
    before = _states(kb)
    assert before == {str(docs / "a.md"): "done", str(sub / "b.md"): "done"}
    sub.chmod(0)
    try:
        assert "PermissionError" in _unprivileged("-c", f"import os; os.listdir({str(sub)!r})").stderr
        run = _unprivileged("-m", "omnivec.cli", "index", str(docs), "--kb", str(kb), "--config", str(config))
    finally:
        sub.chmod(0o755)
    assert run.returncode == 0, run.stderr
    summary = run.stderr
    assert "0 removed" in summary and f"{sub}: folder cannot be listed (Permission denied)" in summary, summary
    assert _states(kb) == before
    capsys.readouterr()
    assert main(["search", "how long does the battery last", "--kb", str(kb), "--config", str(config), "--json",
                 "--rerank", "none"]) == 0
    assert str(sub / "b.md") in {r["file"] for r in json.loads(capsys.readouterr().out)}


def test_a_file_name_that_is_not_utf8_is_reported_and_the_rest_indexed(tmp_path, minilm_dir):
    """A Latin-1 name (byte 0xe9) cannot be stored as text in the manifest: it used to crash the run with a
    UnicodeEncodeError traceback; it is now skipped and named (escaped), and its neighbours are indexed."""
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "fine.md").write_text("# Fine\n\nA plain note.\n", encoding="utf-8")
    with open(os.path.join(os.fsencode(docs), b"caf\xe9.md"), "wb") as f:
        f.write(b"# Cafe\n\nA note with a Latin-1 name.\n")
    summary = _index(docs, kb, _config(tmp_path, minilm_dir))
    assert "1 indexed" in summary and "1 skipped" in summary
    assert "caf\\udce9.md: name is not valid UTF-8 (rename it to index it)" in summary
    assert _states(kb) == {str((docs / "fine.md").resolve()): "done"}


def test_a_passage_that_names_a_file_is_embedded_as_text(tmp_path, minilm_dir, monkeypatch):
    """A text chunk "photo.png" read while an image of that name sits in the working directory used to be read
    as that image (the file failed: a text model takes no images); passages are always text."""
    import numpy as np
    from PIL import Image

    from omnivec import Embedder
    from omnivec.kb.stores.uri import open_store

    docs, kb = tmp_path / "docs", tmp_path / "kb"
    docs.mkdir()
    (docs / "names.txt").write_text("photo.png", encoding="utf-8")  # a passage that is also a path
    Image.new("RGB", (8, 8), "red").save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, minilm_dir)
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    expected = Embedder(minilm_dir, device="cpu").encode(["photo.png"], modality="text", normalize_embeddings=True)
    store = open_store(str(kb / "vectors"))
    try:
        hits = store.search("text", expected[0], 1, None)
    finally:
        store.close()
    assert hits and np.isclose(hits[0].score, 1.0, atol=1e-4), hits


def test_a_path_given_that_is_not_utf8_is_an_error_naming_it(tmp_path, minilm_dir, capsys, monkeypatch):
    """A folder named on the command line with a Latin-1 name (or inside such a folder) used to crash the run with a
    UnicodeEncodeError traceback from SQLite; it is now one line naming the path, escaped, and exit status 2."""
    folder = os.path.join(os.fsencode(tmp_path), b"caf\xe9")
    os.mkdir(folder)
    with open(os.path.join(folder, b"a.txt"), "wb") as f:
        f.write(b"A note in a folder with a Latin-1 name.\n")
    config, kb = _config(tmp_path, minilm_dir), tmp_path / "kb"
    for given, cwd in ((os.fsdecode(folder), None), (os.fsdecode(os.path.join(folder, b"a.txt")), None),
                       (".", folder)):  # the folder, a file in it, and "." inside it
        if cwd is not None:
            monkeypatch.chdir(os.fsdecode(cwd))
        capsys.readouterr()
        assert main(["index", given, "--kb", str(kb), "--config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("omnivec index: ") and "caf\\udce9" in err[0], err
        assert "not valid UTF-8" in err[0]
    assert _states(kb) == {}


def _three_notes(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in (("a.md", "The lamp charges phones."), ("b.md", "POISON in this note."),
                       ("c.md", "The kettle boils water.")):
        (docs / name).write_text(f"# {name}\n\n{text}\n", encoding="utf-8")
    return docs


def test_a_chunk_the_model_refuses_fails_its_file_alone(tmp_path, minilm_dir, monkeypatch):
    """An embedding error on one chunk used to stop the run with a traceback, its whole batch left pending; the
    batch is now embedded file by file, the refused file fails with the model's reason, the others are done."""
    from omnivec.kb.spaces import Space
    from omnivec.kb.stores.uri import open_store

    embed = Space.embed

    def refuse_poison(self, inputs, *args, **kwargs):
        if any("POISON" in str(text) for text in inputs):
            raise ValueError("this chunk cannot be embedded")
        return embed(self, inputs, *args, **kwargs)

    monkeypatch.setattr(Space, "embed", refuse_poison)
    docs, kb = _three_notes(tmp_path), tmp_path / "kb"
    summary = _index(docs, kb, _config(tmp_path, minilm_dir))
    assert "2 indexed, 0 unchanged, 0 removed, 1 failed" in summary, summary
    b = str((docs / "b.md").resolve())
    assert f"{b}: the text model could not embed it: ValueError: this chunk cannot be embedded" in summary
    assert _states(kb) == {str((docs / "a.md").resolve()): "done", b: "failed",
                           str((docs / "c.md").resolve()): "done"}
    store = open_store(str(kb / "vectors"))
    try:
        assert store.files("text") == {str((docs / n).resolve()) for n in ("a.md", "c.md")}
    finally:
        store.close()


def test_a_store_that_refuses_a_write_stops_the_run_with_one_message(tmp_path, minilm_dir, monkeypatch, capsys):
    """A failing store is no file's fault: the run stops with one line (no traceback), the files left pending, and
    the next run indexes them."""
    from omnivec.kb.stores.lancedb_store import LanceDBStore

    def full(self, name, records):
        raise OSError(28, "No space left on device")

    docs, kb, config = _three_notes(tmp_path), tmp_path / "kb", _config(tmp_path, minilm_dir)
    with monkeypatch.context() as patch:
        patch.setattr(LanceDBStore, "upsert", full)
        capsys.readouterr()
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
    assert err == ["omnivec index: Writing vectors to the text collection failed (OSError: [Errno 28] No space "
                   "left on device). The run stopped: the 3 files being written are left pending and are indexed "
                   "again by the next run."], err
    assert set(_states(kb).values()) == {"pending"}
    assert "3 indexed" in _index(docs, kb, config) and set(_states(kb).values()) == {"done"}
