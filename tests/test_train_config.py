"""``omnivec train CONFIG.yaml``: a run described in a file trains, evaluates and saves; a bad file is named."""

from __future__ import annotations

import json

import pytest

import omnivec
from omnivec.cli import main
from omnivec.errors import InputError
from omnivec.train.data_files import read_rows

STS_LINES = [("fox dog lazy", "the lazy brown dog", "4.5"), ("guitar stage", "a man playing guitar", "4.0"),
             ("protein cells", "paris france", "0.2"), ("mouse receptor", "the capital tower", "0.0"),
             ("brown fox", "quick brown fox", "4.8"), ("stage man", "cells receptor", "0.5")] * 3


@pytest.fixture
def sts_files(tmp_path):
    """A tab-separated file in the STS-benchmark layout: no header, unquoted text, a source field on some lines."""
    lines = [f"genre\tfile\t2012\t{i:04d}\t{score}\t{a}\t{b}" + ("\tsource \"quoted\"" if i % 4 == 0 else "")
             for i, (a, b, score) in enumerate(STS_LINES)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path


def _config(folder, model_dir, **overrides) -> str:
    config = {
        "model": model_dir,
        "data": {"train": "train.csv",
                 "format": {"delimiter": "\t", "quoting": "none", "header": False, "extra_fields": "ignore",
                            "column_names": ["genre", "file", "year", "id", "score", "sentence1", "sentence2"]},
                 "columns": ["sentence1", "sentence2"], "label": "score"},
        "loss": {"name": "CoSENTLoss", "args": {"scale": 10.0}},
        "matryoshka_dims": [32, 16],
        "evaluator": {"type": "sts", "name": "dev", "data": "train.csv"},
        "args": {"output_dir": str(folder / "run"), "max_steps": 3, "per_device_train_batch_size": 6,
                 "learning_rate": "1e-3", "report_to": "none", "save_strategy": "no", "disable_tqdm": True},
        "output": str(folder / "model"),
    }
    config.update(overrides)
    path = folder / "train.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return str(path)


def test_train_command_runs_a_config(sts_files, bert_dir, capsys):
    assert main(["train", _config(sts_files, bert_dir)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"before_dev_spearman_cosine", "eval_dev_spearman_cosine"} <= result.keys()
    model = omnivec.Embedder(result["output"], device="cpu")
    assert model.encode(["fox"]).shape == (1, 32)
    card = (sts_files / "model" / "README.md").read_text()
    assert "MatryoshkaLoss" in card and "eval_dev_spearman_cosine" in card and "18 training rows" in card


def test_csv_reader_keeps_quotes_and_names_bad_lines(sts_files):
    rows = read_rows(sts_files / "train.csv", delimiter="\t", quoting="none", header=False, extra_fields="ignore",
                     column_names=["genre", "file", "year", "id", "score", "s1", "s2"])
    assert len(rows) == len(STS_LINES) and rows[0]["s1"] == "fox dog lazy"
    with pytest.raises(InputError, match=r"line 1: 8 fields, expected 7"):
        read_rows(sts_files / "train.csv", delimiter="\t", quoting="none", header=False,
                  column_names=["genre", "file", "year", "id", "score", "s1", "s2"])
    (sts_files / "bad.jsonl").write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.jsonl' line 2: not valid JSON"):
        read_rows(sts_files / "bad.jsonl")


@pytest.mark.parametrize("override, needle", [
    ({"epochs": 3}, "unknown key(s) ['epochs'] in the config"),
    ({"loss": "NoSuchLoss"}, "loss 'NoSuchLoss' is not an Embedder loss"),
    ({"loss": {"name": "CoSENTLoss", "args": {"temperature": 2}}}, "bad arguments for CoSENTLoss"),
    ({"args": {"output_dir": "x", "num_epochs": 1}}, "TrainingArguments does not take"),
    ({"args": {"output_dir": "x", "learning_rate": "fast"}}, "args.learning_rate must be a number, got 'fast'"),
    ({"model_args": {"num_labels": 2}}, "CrossEncoder arguments"),
    ({"evaluator": {"type": "sts"}}, "needs a 'data' file"),
])
def test_bad_configs_are_named(sts_files, bert_dir, capsys, override, needle):
    assert main(["train", _config(sts_files, bert_dir, **override)]) == 2
    assert needle in capsys.readouterr().err


def test_bad_label_in_a_data_file_names_the_row(sts_files, bert_dir, capsys):
    text = (sts_files / "train.csv").read_text().replace("\t0.2\t", "\thigh\t")
    (sts_files / "train.csv").write_text(text, encoding="utf-8")
    assert main(["train", _config(sts_files, bert_dir)]) == 2
    assert "row 2: label 'score' is 'high', not a number" in capsys.readouterr().err
