"""``omnivec index --ray``: a folder of every file type (some corrupt) indexed on a local Ray instance equals the
single-process index of it (manifest, record ids, payloads, vectors to 1e-6, the failures reported); a driver
killed mid-run resumes to the same result; the Ray settings are checked before anything runs."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from omnivec.cli import main
from omnivec.errors import ConfigError
from omnivec.kb.ingest.sample import sample_folder
from omnivec.kb.ray_index import RaySettings

CORRUPT = {"broken.pdf": b"%PDF-1.4\n1 0 obj <<", "noise.jpg": os.urandom(2048), "empty.wav": b""}


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray instance for the module; its GCS address is what ``--ray ADDRESS`` joins. Four logical CPUs:
    three one-CPU actor pools (text, image, audio) and the reading tasks."""
    import ray

    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, minilm_dir, clip_dir, clap_dir) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("kb-ray")
    docs = root / "docs"
    sample_folder(docs)
    for name, data in CORRUPT.items():
        (docs / name).write_bytes(data)
    for i in range(12):  # enough files that the kill lands mid-run
        (docs / f"note-{i:02d}.md").write_text(f"# Note {i}\n\n" + f"Paragraph {i} about topic {i % 5}. " * 30)
    # Two-second audio windows: the tiny CLAP crops longer ones at random, which no two runs would share.
    # Four chunks a batch, so files span batches and batches span files.
    config = root / "kb.toml"
    config.write_text(f'flush_chunks = 4\naudio_window_s = 2.0\n[spaces]\ntext = "{minilm_dir}"\n'
                      f'image = "{clip_dir}"\naudio = "{clap_dir}"\n', encoding="utf-8")
    return docs, config


def _index(docs: Path, kb: Path, config: Path, *extra: str) -> str:
    summary = io.StringIO()
    with contextlib.redirect_stderr(summary):
        assert main(["index", str(docs), "--kb", str(kb), "--config", str(config), *extra]) == 0
    return summary.getvalue()


def _manifest(kb: Path) -> list[tuple]:
    with sqlite3.connect(str(kb / "manifest.sqlite")) as db:
        return sorted(db.execute("SELECT path, hash, size, mtime, state, chunks, error, spaces, records FROM files"))


def _records(kb: Path) -> dict[str, dict[str, dict]]:
    import lancedb

    db = lancedb.connect(str(kb / "vectors"))
    return {name: {row["id"]: row for row in db.open_table(name).to_arrow().to_pylist()}
            for name in db.list_tables().tables}


def _failures(summary: str) -> list[str]:
    return sorted(line.strip() for line in summary.split("Files not indexed:")[1].splitlines() if line.strip())


def _assert_same_index(kb: Path, expected: Path) -> None:
    assert _manifest(kb) == _manifest(expected)
    got, want = _records(kb), _records(expected)
    assert got.keys() == want.keys() == {"text", "image", "audio", "lexical"}
    for name, rows in want.items():
        assert got[name].keys() == rows.keys(), name
        for rid, row in rows.items():
            other = got[name][rid]
            assert {k: v for k, v in other.items() if k != "vector"} == {k: v for k, v in row.items() if k != "vector"}
            if "vector" in row:
                np.testing.assert_allclose(other["vector"], row["vector"], atol=1e-6, rtol=0, err_msg=f"{name} {rid}")
    assert sorted(p.name for p in (kb / "thumbs").iterdir()) == sorted(p.name for p in (expected / "thumbs").iterdir())


@pytest.mark.slow  # a Ray instance, actors loading three models, a killed driver subprocess (~1-2 min)
def test_a_ray_run_equals_the_single_process_index_and_a_killed_driver_resumes(ray_cluster, folder, tmp_path):
    docs, config = folder
    single = _index(docs, tmp_path / "single", config)
    assert "3 failed" in single

    killed = tmp_path / "ray"
    command = [sys.executable, "-m", "omnivec.cli", "index", str(docs), "--kb", str(killed), "--config", str(config),
               "--ray", ray_cluster]
    process = subprocess.Popen(command, env={**os.environ, "HF_HUB_OFFLINE": "1"}, stderr=subprocess.DEVNULL)
    deadline, done = time.time() + 300, 0
    while time.time() < deadline and process.poll() is None and done < 3:
        with contextlib.suppress(sqlite3.Error):  # the file exists a moment before its table does
            done = sum(state == "done" for *_, state, _, _, _, _ in _manifest(killed))
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    states = [row[4] for row in _manifest(killed)]
    assert process.returncode == -signal.SIGKILL and "pending" in states, states  # killed mid-run

    resumed = _index(docs, killed, config, "--ray", ray_cluster, "--ray-batch-size", "text=3")
    _assert_same_index(killed, tmp_path / "single")
    # the corrupt files, reported the same way (those the killed run had reached are now "unchanged")
    assert [line.replace(" (unchanged since the last run)", "") for line in _failures(resumed)] == _failures(single)
    assert "ray read + embed" in resumed


@pytest.mark.parametrize("settings, message", [
    ({"actors": 0}, "--ray-actors 0"), ({"cpus_per_actor": 0}, "--ray-cpus-per-actor 0"),
    ({"gpus_per_actor": -1}, "--ray-gpus-per-actor -1"), ({"batch_sizes": {"text": 0}}, "--ray-batch-size text=0"),
    ({"address": " "}, "--ray: the address is empty")])
def test_ray_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        RaySettings(**settings)


def test_a_batch_size_for_a_space_the_kb_lacks_is_named(tmp_path, minilm_dir, capsys):
    (tmp_path / "a.md").write_text("# A\n\nsome text", encoding="utf-8")
    (tmp_path / "kb.toml").write_text(f'[spaces]\ntext = "{minilm_dir}"\n', encoding="utf-8")
    code = main(["index", str(tmp_path / "a.md"), "--kb", str(tmp_path / "kb"), "--config", str(tmp_path / "kb.toml"),
                 "--ray", "--ray-batch-size", "image=8"])
    assert code == 2
    assert "--ray-batch-size: no space 'image' in this KB; its spaces with a model: text" in capsys.readouterr().err


@pytest.mark.parametrize("argument", ["--ray-batch-size=text", "--ray-batch-size=text=0", "--ray-actors=0",
                                      "--ray-cpus-per-actor=0", "--ray-gpus-per-actor=-0.5"])
def test_bad_ray_options_exit_2_naming_them(argument, capsys):
    assert main(["index", "x", argument]) == 2
    assert f"argument {argument.split('=')[0]}: " in capsys.readouterr().err


def test_without_ray_the_option_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what an interpreter without Ray imports
    assert main(["index", str(tmp_path), "--kb", str(tmp_path / "kb"), "--ray"]) == 2
    assert "--ray needs Ray Data: pip install 'omnivec[ray]'" in capsys.readouterr().err
