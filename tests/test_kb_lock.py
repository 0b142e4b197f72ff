"""One ``omnivec index`` run per KB at a time: a second run exits with status 2 naming the holder, or waits with
``--wait-lock`` and then finds nothing to do; searching is never blocked by the lock."""

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
from omnivec.kb.lock import INFO_NAME, index_lock
from omnivec.kb.stores.uri import open_store

STEP_TIMEOUT_S = 120  # each wait below is bounded; a run here takes ~10-20 s on two busy cores
NOTES = 12


def _kb_setup(tmp_path: Path, minilm_dir: str) -> tuple[Path, Path, Path]:
    docs, kb, config = tmp_path / "docs", tmp_path / "kb", tmp_path / "kb.toml"
    docs.mkdir()
    for i in range(NOTES):
        (docs / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n" + f"Paragraph {i} about topic {i % 7}. " * 10)
    config.write_text(f'flush_chunks = 8\n[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    return docs, kb, config


def _wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _holder_pid(kb: Path) -> int | None:
    try:
        return json.loads((kb / INFO_NAME).read_text(encoding="utf-8"))["pid"]
    except (OSError, ValueError, KeyError):
        return None


@pytest.mark.slow  # three `omnivec index` subprocess runs
def test_a_second_run_names_the_holder_or_waits_for_it(tmp_path, minilm_dir):
    docs, kb, config = _kb_setup(tmp_path, minilm_dir)
    command = [sys.executable, "-m", "omnivec.cli", "index", str(docs), "--kb", str(kb), "--config", str(config)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    waiting = None
    try:
        _wait_for(lambda: _holder_pid(kb) == first.pid or first.poll() is not None, "the first run's lock")
        os.kill(first.pid, signal.SIGSTOP)  # holds the lock, deterministically, while the others try
        try:
            second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
            assert second.returncode == 2, second.stderr
            assert f"omnivec index: Another index run (pid {first.pid} on " in second.stderr
            assert "Traceback" not in second.stderr
            log = tmp_path / "waiting.log"
            with open(log, "w") as sink:
                waiting = subprocess.Popen(command + ["--wait-lock", str(STEP_TIMEOUT_S)], env=env, stderr=sink)
            _wait_for(lambda: "waiting up to" in log.read_text(), "the waiting run's notice")
            assert f"pid {first.pid}" in log.read_text() and waiting.poll() is None
        finally:
            os.kill(first.pid, signal.SIGCONT)
        _, first_err = first.communicate(timeout=STEP_TIMEOUT_S)
        assert first.returncode == 0, first_err
        assert f"{NOTES} files: {NOTES} indexed" in first_err
        assert waiting.wait(timeout=STEP_TIMEOUT_S) == 0, log.read_text()
        assert f"{NOTES} files: 0 indexed, {NOTES} unchanged" in log.read_text()  # no work redone
    finally:
        for process in (first, waiting):
            if process is not None and process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
                process.kill()
                process.wait()
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        rows = db.execute("SELECT state, chunks FROM files").fetchall()
    store = open_store(str(kb / "vectors"))
    try:
        assert len(rows) == NOTES and {state for state, _ in rows} == {"done"}
        assert store.count("text") == sum(chunks for _, chunks in rows)
    finally:
        store.close()
    assert not (kb / INFO_NAME).exists()


def test_search_is_not_blocked_by_an_index_run(tmp_path, minilm_dir, capsys):
    docs, kb, config = _kb_setup(tmp_path, minilm_dir)
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config)]) == 0
    capsys.readouterr()
    with index_lock(kb):  # as an index run holds it
        assert main(["search", "topic 3", "--kb", str(kb), "--config", str(config), "--json", "--rerank",
                     "none"]) == 0
        assert json.loads(capsys.readouterr().out)


def test_wait_lock_must_be_a_number_of_seconds(tmp_path, capsys):
    for bad in ("-1", "nan"):
        assert main(["index", str(tmp_path), "--kb", str(tmp_path / "kb"), "--wait-lock", bad]) == 2
        assert "--wait-lock must be a number of seconds >= 0" in capsys.readouterr().err
