"""What indexing reads: regular files only. Symlinks (to files or folders, inside or outside the indexed folders),
FIFOs and devices are skipped and reported; a file that cannot be read fails alone; a folder that cannot be
listed keeps what was indexed from it. Tests run as root, which reads any file and lists any folder, so the
unreadable file and folder are simulated (stated at each test)."""

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

from omnivec.cli import main

RUN_TIMEOUT_S = 180  # an index run of a few small files takes ~10 s here; a hang ends the test at this bound

# Runs ``omnivec`` with ``sys.argv[2:]``; the file ``sys.argv[1]`` is unreadable. As root (which a chmod 000 does
# not stop) opening it is refused the way the kernel refuses anyone else: PermissionError from os.open and open.
UNREADABLE_RUNNER = """
import builtins, os, sys
locked = os.path.realpath(sys.argv[1])
if os.geteuid() == 0:
    real_os_open, real_open = os.open, builtins.open
    def refuse(path):
        if isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)) == locked:
            raise PermissionError(13, "Permission denied", locked)
    def os_open(path, *args, **kwargs):
        refuse(path)
        return real_os_open(path, *args, **kwargs)
    def open_(file, *args, **kwargs):
        refuse(file)
        return real_open(file, *args, **kwargs)
    os.open, builtins.open = os_open, open_
from omnivec.cli import main
sys.exit(main(sys.argv[2:]))
"""


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
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-c", UNREADABLE_RUNNER, str(locked), "index", str(docs), "--kb", str(kb),
                          "--config", str(_config(tmp_path, minilm_dir))],
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env={**os.environ, "HF_HUB_OFFLINE": "1"})
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


def test_a_folder_that_cannot_be_listed_keeps_its_files(tmp_path, minilm_dir, monkeypatch, capsys):
    docs, kb = tmp_path / "docs", tmp_path / "kb"
    sub = docs / "sub"
    sub.mkdir(parents=True)
    (docs / "a.md").write_text("# Lamp\n\nThe lamp charges phones.\n", encoding="utf-8")
    (sub / "b.md").write_text("# Battery\n\nThe battery lasts a week of evenings.\n", encoding="utf-8")
    config = _config(tmp_path, minilm_dir)
    _index(docs, kb, config)
    before = _states(kb)
    assert before == {str(docs / "a.md"): "done", str(sub / "b.md"): "done"}
    real_scandir = os.scandir

    def scandir(path=".", *args, **kwargs):  # what `chmod 000 sub` does to anyone but root
        if isinstance(path, (str, os.PathLike)) and os.fspath(path) == str(sub):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path, *args, **kwargs)

    monkeypatch.setattr(os, "scandir", scandir)
    summary = _index(docs, kb, config)
    assert "0 removed" in summary and f"{sub}: folder cannot be listed (Permission denied)" in summary, summary
    assert _states(kb) == before
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["search", "how long does the battery last", "--kb", str(kb), "--config", str(config), "--json",
                 "--rerank", "none"]) == 0
    assert str(sub / "b.md") in {r["file"] for r in json.loads(capsys.readouterr().out)}
