"""Every command, given a bad setting, prints one line naming the setting and what is allowed, and exits with
status 2: no traceback, and no model loaded before the setting is checked (except where the model itself decides,
as for ``--prompt-name``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from omnivec.cli import main

ROOT = Path(__file__).resolve().parents[1]

# (id, command line with {kb}/{toml}/{yaml}/{model} placeholders, kb.toml text or None, training config or None,
#  what the message must name)
KB_ROWS = [
    ("index-chunk_tokens", "index {docs} --kb {kb}", "chunk_tokens = 4\n", "chunk_tokens = 4"),
    ("index-unknown-key", "index {docs} --kb {kb}", "chunk_size = 3\n", "chunk_size"),
    ("index-store-uri", "index {docs} --kb {kb}", 'store = "s3://bucket/kb"\n', "store"),
    ("index-overlap", "index {docs} --kb {kb}", "chunk_tokens = 64\noverlap_tokens = 40\n", "overlap_tokens"),
    ("index-space", "index {docs} --kb {kb}", '[spaces]\nsmell = "some/model"\n', "smell"),
    ("index-audio-window", "index {docs} --kb {kb}", "audio_window_s = 0\n", "audio_window_s"),
    ("index-batch-size-type", "index {docs} --kb {kb}", 'batch_size = "big"\n', "batch_size"),
    ("index-bad-toml", "index {docs} --kb {kb}", "chunk_tokens = \n", "kb.toml"),
    ("index-missing-config", "index {docs} --kb {kb} --config {kb}/nope.toml", None, "--config"),
    ("index-wait-lock", "index {docs} --kb {kb} --wait-lock -1", None, "--wait-lock"),
    ("index-wait-lock-text", "index {docs} --kb {kb} --wait-lock soon", None, "--wait-lock"),
    ("index-wait-lock-nan", "index {docs} --kb {kb} --wait-lock nan", None, "--wait-lock"),
    ("index-kb-uri", "index {docs} --kb s3://bucket/kb", None, "--kb"),
    ("search-k-zero", "search q --kb {kb} -k 0", None, "-k"),
    ("search-k-text", "search q --kb {kb} -k abc", None, "-k"),
    ("search-fusion", "search q --kb {kb} --fusion max", None, "--fusion"),
    ("search-modality", "search q --kb {kb} --modality smell", None, "--modality"),
    ("search-store-uri", "search q --kb {kb}", 'store = "ftp://host/kb"\n', "store"),
    ("search-chunk_tokens", "search q --kb {kb}", "chunk_tokens = -3\n", "chunk_tokens"),
    ("search-kb-uri", "search q --kb s3://bucket/kb", None, "--kb"),
    ("serve-max-connections", "serve --max-connections 0", None, "--max-connections"),
    ("serve-body-timeout", "serve --body-timeout -1", None, "--body-timeout"),
    ("serve-header-timeout", "serve --header-timeout 0", None, "--header-timeout"),
    ("serve-model-syntax", "serve --model =some/model", None, "--model"),
    ("serve-reranker-syntax", "serve --reranker rr=", None, "--reranker"),
    ("serve-model-twice", "serve --model a=x/one --reranker a=x/two", None, "--reranker"),
    ("serve-port", "serve --port 70000", None, "--port"),
    ("serve-max-batch-size", "serve --max-batch-size 0", None, "--max-batch-size"),
    ("serve-max-wait", "serve --max-wait-ms -5", None, "--max-wait-ms"),
    ("serve-kb-config", "serve --model {model} --kb {kb}", "flush_chunks = 0\n", "flush_chunks"),
    ("encode-batch-size", "encode x --batch-size 0", None, "--batch-size"),
    ("encode-batch-size-text", "encode x --batch-size many", None, "--batch-size"),
    ("encode-precision", "encode x --precision float8", None, "--precision"),
    ("demo-config", "demo --out {kb}/demo --config {kb}/kb.toml", "frames_per_segment = 0\n", "frames_per_segment"),
]

TRAIN_ROWS = [  # (id, changes to a valid config (None deletes the key), what the message must name)
    ("train-unknown-loss", {"loss": "NoSuchLoss"}, "loss 'NoSuchLoss'"),
    ("train-missing-model", {"model": None}, "'model'"),
    ("train-learning-rate-text", {"args": {"learning_rate": "fast"}}, "args.learning_rate"),
    ("train-learning-rate-negative", {"args": {"learning_rate": -0.1}}, "args.learning_rate"),
    ("train-unknown-column", {"data": {"columns": ["sentence1", "sentence3"]}}, "data.columns"),
    ("train-unknown-label", {"data": {"label": "rating"}}, "data.label"),
    ("train-unknown-key", {"epochs": 3}, "'epochs'"),
    ("train-model-type", {"model_type": "ranker"}, "model_type"),
    ("train-missing-data-file", {"data": {"train": "nope.csv"}}, "data.train"),
    ("train-loss-args", {"loss": {"name": "MultipleNegativesRankingLoss", "args": {"scale": -1}}}, "scale"),
    ("train-matryoshka-dims", {"matryoshka_dims": [64, 0]}, "matryoshka_dims"),
    ("train-evaluator-type", {"evaluator": {"type": "bleu", "data": "train.csv"}}, "evaluator type"),
    ("train-model-args", {"model_args": {"num_labels": 2}}, "model_args"),
    ("train-strategy", {"args": {"eval_strategy": "sometimes"}}, "eval_strategy"),
]


def _train_config(folder: Path, changes: dict) -> Path:
    (folder / "train.csv").write_text("sentence1,sentence2,score\na cat,a kitten,0.9\na car,a tree,0.1\n",
                                      encoding="utf-8")
    config = {"model": "some/model", "data": {"train": "train.csv", "columns": ["sentence1", "sentence2"],
                                              "label": "score"},
              "loss": "CoSENTLoss", "args": {"output_dir": str(folder / "run"), "learning_rate": 1e-4}}
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        elif isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = folder / "train.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


@pytest.fixture
def no_model_loads(monkeypatch):
    """A row that would load a model before checking its settings fails loudly."""
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.models.embedder import Embedder

    def refuse(self, *args, **kwargs):
        raise AssertionError("a model was loaded before the bad setting was named")

    monkeypatch.setattr(Embedder, "__init__", refuse)
    monkeypatch.setattr(CrossEncoder, "__init__", refuse)


def _one_line(err: str, command: str, needle: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"omnivec {command}: error: "), lines[0]
    assert needle in lines[0], lines[0]
    return lines[0]


def _argv(template: str, tmp_path: Path) -> list[str]:
    kb, docs = tmp_path / "kb", tmp_path / "docs"
    return [part.format(kb=kb, docs=docs, model="some/model") for part in template.split()]


@pytest.mark.parametrize("row", KB_ROWS, ids=[row[0] for row in KB_ROWS])
def test_bad_cli_setting_is_one_line_and_status_2(row, tmp_path, capsys, no_model_loads):
    _, template, toml, needle = row
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "note.txt").write_text("hello", encoding="utf-8")
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "manifest.sqlite").touch()  # search and serve --kb read an indexed KB: its settings are what is wrong here
    if toml is not None:
        (kb / "kb.toml").write_text(toml, encoding="utf-8")
    argv = _argv(template, tmp_path)
    assert main(argv) == 2
    _one_line(capsys.readouterr().err, argv[0], needle)


@pytest.mark.parametrize("row", TRAIN_ROWS, ids=[row[0] for row in TRAIN_ROWS])
def test_bad_training_setting_is_one_line_and_status_2(row, tmp_path, capsys, no_model_loads):
    _, changes, needle = row
    path = _train_config(tmp_path, changes)
    assert main(["train", str(path)]) == 2
    line = _one_line(capsys.readouterr().err, "train", needle)
    assert str(path) in line  # the file is named with the key


def test_prompt_name_is_checked_against_the_model(bert_dir, capsys):
    assert main(["encode", "x", "--model", bert_dir, "--prompt-name", "query"]) == 2
    _one_line(capsys.readouterr().err, "encode", "--prompt-name 'query'")


@pytest.mark.parametrize("argv, toml, needle", [
    (["index", "{docs}", "--kb", "{kb}"], "chunk_tokens = 4\n", "chunk_tokens = 4"),
    (["serve", "--max-connections", "0"], None, "--max-connections"),
    (["train", "{yaml}"], None, "loss 'NoSuchLoss'"),
])
def test_bad_setting_in_a_real_process(argv, toml, needle, tmp_path):
    """The installed entry point's path: the process's own stderr, its exit status."""
    kb, docs = tmp_path / "kb", tmp_path / "docs"
    kb.mkdir()
    docs.mkdir()
    if toml is not None:
        (kb / "kb.toml").write_text(toml, encoding="utf-8")
    yaml = _train_config(tmp_path, {"loss": "NoSuchLoss"})
    argv = [part.format(kb=kb, docs=docs, yaml=yaml) for part in argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "omnivec.cli", *argv], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2, result.stderr
    _one_line(result.stderr, argv[0], needle)
