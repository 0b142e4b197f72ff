"""backend="onnx": ONNX Runtime runs the Transformer module; vectors and scores equal torch's (fp32), the export is
made on first use and reused, sentence-transformers' file layout loads, a saved model keeps its export."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, ModelLoadError
from omnivec.loading.hub import backend_file_patterns
from omnivec.loading.options import LoadOptions
from omnivec.modules.backends import onnx as onnx_backend
from tests.fixtures.checkpoints import TEXTS

# Slow lane: the session fixtures export five models to ONNX (about 25 s; tests/fixtures/backend_exports.py makes
# each once per session); CI runs these.
pytestmark = pytest.mark.slow

ATOL = 1e-4
PAIRS = [("what is the capital of france", "Paris is the capital of France."),
         ("what is the capital of france", "Berlin is a city in Germany."), ("", "empty query"),
         ("how do cells divide", "Cells divide by mitosis; the protein binds to the receptor. " * 3)]


def _max_diff(a: Any, b: Any) -> float:
    return float(np.abs(np.asarray(a) - np.asarray(b)).max())


@pytest.fixture
def no_export(monkeypatch):
    """Fail the test if anything exports: the existing file must be used."""
    def refuse(*args, **kwargs):
        raise AssertionError("export_onnx was called although the ONNX file exists")

    monkeypatch.setattr(onnx_backend, "export_onnx", refuse)


@pytest.fixture(scope="session")
def onnx_embedders(onnx_st_folder) -> dict[str, Path]:
    """ST-layout folders of the tiny text checkpoints, each with its ONNX export made by a first onnx load
    (tests/fixtures/backend_exports.py: made once per session, shared with tests/test_backend_quantize.py)."""
    return {name: onnx_st_folder(name) for name in ("bert", "xlmr", "qwen3")}


@pytest.fixture(scope="session")
def onnx_cross_encoders(onnx_ce_folder) -> dict[int, Path]:
    """ST-layout BERT classifiers with 1 and 3 labels (their random heads saved), exported by a first onnx load."""
    return {labels: onnx_ce_folder(labels) for labels in (1, 3)}


# -- parity ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bert", "xlmr", "qwen3"])
def test_embedder_vectors_equal_torch(name, onnx_embedders, no_export):
    folder = onnx_embedders[name]
    assert (folder / "onnx" / "model.onnx").is_file()
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    onnx_model = omnivec.Embedder(str(folder), backend="onnx")
    if name == "qwen3":
        assert onnx_model[1].pooling_mode == "lasttoken"
    assert type(onnx_model[0].model).__name__ == "OnnxModel"
    expected = torch_model.encode(TEXTS, batch_size=3)
    assert _max_diff(onnx_model.encode(TEXTS, batch_size=3), expected) <= ATOL
    assert _max_diff(onnx_model.encode(TEXTS[:1]), expected[:1]) <= ATOL  # a batch of one: the dynamic axes


@pytest.mark.parametrize("labels", [1, 3])
def test_cross_encoder_scores_equal_torch(labels, onnx_cross_encoders, no_export):
    folder = onnx_cross_encoders[labels]
    torch_model = omnivec.CrossEncoder(str(folder), device="cpu")
    onnx_model = omnivec.CrossEncoder(str(folder), backend="onnx")
    assert onnx_model.num_labels == labels
    expected = torch_model.predict(PAIRS, batch_size=3)
    scores = onnx_model.predict(PAIRS, batch_size=3)
    assert np.asarray(scores).shape == np.asarray(expected).shape
    assert _max_diff(scores, expected) <= ATOL
    if labels == 1:
        ranked = onnx_model.rank(PAIRS[0][0], [p[1] for p in PAIRS])
        assert [r["corpus_id"] for r in ranked] == [r["corpus_id"] for r in torch_model.rank(PAIRS[0][0],
                                                                                               [p[1] for p in PAIRS])]


# -- export, reuse, file choice -------------------------------------------------------------------------------
def test_export_on_first_use_then_reused(onnx_embedders, tmp_path, monkeypatch, caplog):
    folder = tmp_path / "model"
    shutil.copytree(onnx_embedders["bert"], folder)
    shutil.rmtree(folder / "onnx")
    calls = []
    real_export = onnx_backend.export_onnx
    monkeypatch.setattr(onnx_backend, "export_onnx", lambda *a, **k: (calls.append(a), real_export(*a, **k)))
    with caplog.at_level("INFO", logger="omnivec.modules.backends.onnx"):
        first = omnivec.Embedder(str(folder), backend="onnx")
    path = folder / "onnx" / "model.onnx"
    assert path.is_file() and len(calls) == 1
    assert any("Exported" in r.getMessage() and str(path) in r.getMessage() for r in caplog.records)
    mtime = path.stat().st_mtime_ns
    second = omnivec.Embedder(str(folder), backend="onnx")
    assert len(calls) == 1 and path.stat().st_mtime_ns == mtime
    assert _max_diff(first.encode(TEXTS), second.encode(TEXTS)) == 0
    omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"export": True})  # sentence-transformers' export=True
    assert len(calls) == 2


@pytest.mark.parametrize("file_name", ["model_O3.onnx", "onnx/model_O3.onnx"])
def test_file_name_picks_another_file(file_name, onnx_embedders, tmp_path, no_export):
    folder = tmp_path / "model"
    shutil.copytree(onnx_embedders["bert"], folder)
    (folder / "onnx" / "model.onnx").rename(folder / "onnx" / "model_O3.onnx")
    model = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": file_name})
    assert model.transformer.model.path == folder / "onnx" / "model_O3.onnx"
    expected = omnivec.Embedder(str(folder), device="cpu").encode(TEXTS)
    assert _max_diff(model.encode(TEXTS), expected) <= ATOL
    with pytest.raises(ModelLoadError, match=r"model_missing\.onnx.*model_O3\.onnx"):
        omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": "model_missing.onnx"})


def test_saved_backend_model_keeps_its_export(onnx_embedders, tmp_path, no_export):
    source = onnx_embedders["bert"]
    loaded = omnivec.Embedder(str(source), backend="onnx")
    target = tmp_path / "saved"
    loaded.save(target)
    assert (target / "onnx" / "model.onnx").is_file() and (target / "model.safetensors").is_file()
    expected = loaded.encode(TEXTS)
    assert _max_diff(omnivec.Embedder(str(target), backend="onnx").encode(TEXTS), expected) <= ATOL
    assert _max_diff(omnivec.Embedder(str(target), device="cpu").encode(TEXTS), expected) <= ATOL


def test_saved_backend_cross_encoder_round_trips(onnx_cross_encoders, tmp_path, no_export):
    loaded = omnivec.CrossEncoder(str(onnx_cross_encoders[3]), backend="onnx")
    loaded.save(tmp_path)
    expected = loaded.predict(PAIRS)
    assert _max_diff(omnivec.CrossEncoder(str(tmp_path), backend="onnx").predict(PAIRS), expected) <= ATOL
    assert _max_diff(omnivec.CrossEncoder(str(tmp_path), device="cpu").predict(PAIRS), expected) <= ATOL


def test_sentence_transformers_layout_exported_by_hand(bert_dir, tmp_path, no_export):
    """onnx/model.onnx as sentence-transformers (optimum) names it: inputs input_ids/attention_mask/token_type_ids,
    output last_hidden_state; exported here with torch.onnx directly, not by omnivec."""
    from transformers import AutoModel, AutoTokenizer

    torch_model = omnivec.Embedder(bert_dir, device="cpu")
    torch_model.save(tmp_path)
    hf_model = AutoModel.from_pretrained(str(tmp_path)).eval()
    inputs = dict(AutoTokenizer.from_pretrained(str(tmp_path))(["two example", "inputs of other length"],
                                                              padding=True, return_tensors="pt"))

    class Graph(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = hf_model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    (tmp_path / "onnx").mkdir()
    with torch.no_grad():
        program = torch.onnx.export(Graph().eval(), (), kwargs=inputs, dynamo=True,
                                    dynamic_shapes={k: {0: batch, 1: sequence} for k in inputs},
                                    input_names=list(inputs), output_names=["last_hidden_state"])
    assert program is not None
    program.save(str(tmp_path / "onnx" / "model.onnx"))
    onnx_model = omnivec.Embedder(str(tmp_path), backend="onnx")
    assert _max_diff(onnx_model.encode(TEXTS), torch_model.encode(TEXTS)) <= ATOL


# -- errors and wiring ----------------------------------------------------------------------------------------
def test_unsupported_models_are_clear_errors(clip_dir, tower_exports, qwen2_vl_dir, qwen3_lm):
    # CLIP runs now (one graph per tower, exported on first use: tests/test_backend_towers.py); a model whose images
    # go through forward (a vision-language model) is still refused, before anything is exported.
    with pytest.raises(ModelLoadError, match=r"backend 'onnx' cannot run.*non-text.*feature-extraction and "
                                             r"sequence-classification"):
        omnivec.Embedder(qwen2_vl_dir, backend="onnx")
    assert not (Path(qwen2_vl_dir) / "onnx").exists()
    with pytest.raises(ModelLoadError, match=r"'text-generation'.*only text models for feature-extraction"):
        omnivec.CrossEncoder(qwen3_lm, backend="onnx")
    clip = omnivec.Embedder(str(tower_exports("clip")), backend="onnx")  # its towers exported once per session
    assert sorted(p.name for p in (tower_exports("clip") / "onnx").iterdir()) == ["image_model.onnx", "text_model.onnx"]
    expected = omnivec.Embedder(clip_dir, device="cpu").encode(["a photo"])
    assert _max_diff(clip.encode(["a photo"]), expected) <= ATOL


def test_unknown_backend_and_bad_settings(bert_dir):
    with pytest.raises(ConfigError, match=r"backend 'tensorrt'.*\['torch', 'onnx', 'openvino', 'onnx-int8', 'openvino-int8', 'auto'\]"):
        omnivec.Embedder(bert_dir, backend="tensorrt")  # type: ignore[arg-type]  # the bad value is the test
    with pytest.raises(ConfigError, match="runs on the CPU"):
        omnivec.Embedder(bert_dir, backend="onnx", device="cuda")
    with pytest.raises(ConfigError, match="float32"):
        omnivec.Embedder(bert_dir, backend="onnx", dtype="float16")
    with pytest.raises(ConfigError, match=r"model_kwargs\['file_name'\]"):
        omnivec.Embedder(bert_dir, backend="onnx", model_kwargs={"file_name": 3})
    assert not (Path(bert_dir) / "onnx").exists()  # settings are checked before anything is exported


def test_training_a_backend_model_is_refused(onnx_embedders, no_export):
    model = omnivec.Embedder(str(onnx_embedders["bert"]), backend="onnx")
    features = model.transformer.tokenize(["a text"])
    with torch.enable_grad(), pytest.raises(ConfigError, match="train with backend='torch'"):
        model(features)


def test_hub_downloads_fetch_only_the_backends_export(monkeypatch, tmp_path):
    import huggingface_hub

    from omnivec.loading.hub import resolve_model_dir

    calls: list[dict[str, Any]] = []

    def fake_download(repo_id, **kwargs):
        calls.append(kwargs)
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_download)
    options = LoadOptions(backend="onnx", model_kwargs={"file_name": "onnx/model_O3.onnx"})
    assert (options.hub.backend, options.hub.backend_file) == ("onnx", "onnx/model_O3.onnx")
    assert resolve_model_dir("someone/model", options.hub) == tmp_path
    first, second = calls
    assert "onnx/*" in first["ignore_patterns"] and "openvino/*" in first["ignore_patterns"]
    assert second["allow_patterns"] == ["onnx/model_O3.onnx", "onnx/model_O3.onnx_data", "onnx/model_O3.onnx.data"]
    calls.clear()
    resolve_model_dir("someone/model", LoadOptions().hub)
    assert len(calls) == 1 and "onnx/*" in calls[0]["ignore_patterns"]  # torch never fetches exports
    assert backend_file_patterns("onnx", None) == ["onnx/model.onnx", "onnx/model.onnx_data", "onnx/model.onnx.data"]
    assert backend_file_patterns("openvino", None) == ["openvino/openvino_model.xml", "openvino/openvino_model.bin"]
