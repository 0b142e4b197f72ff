"""OpenVINO backend (modules/backends/openvino.py): fp32 vectors and scores equal torch's within 1e-4 on tiny BERT, XLM-R,
Qwen3 (last token) and BERT cross-encoders; exports are made once, saved in sentence-transformers' layout and reused;
exports placed as sentence-transformers names them (or an ONNX file) load without the torch model."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import omnivec
from omnivec.errors import ConfigError, ModelLoadError
from omnivec.modules.backends.openvino import DEFAULT_FILE, EXPORT_DIR, OpenVINOModel, load_openvino
from tests.fixtures.checkpoints import TEXTS

# Slow lane: each test converts or compiles an OpenVINO model (2-7 s); tests/test_backend_onnx.py keeps the shared
# backend wiring in the fast lane, and CI runs these.
pytestmark = pytest.mark.slow

ATOL = 1e-4  # fp32 graph against fp32 torch: only the kernels' summation order differs
PAIRS = [("what is the capital of france", "Paris is the capital of France."), ("", "empty query"),
         ("how do cells divide", " ".join(["cells divide by mitosis"] * 30)), ("Zürich", "München — café 🙂"),
         ("a", "")]


def _copy(source: str | Path, tmp_path: Path) -> Path:
    """A private copy of a session checkpoint: exports are written into the model folder."""
    folder = tmp_path / "model"
    shutil.copytree(source, folder)
    return folder


def _no_torch_model() -> torch.nn.Module:
    raise AssertionError("the torch model was loaded: the export should have been reused")


def _attach(model: Any, folder: Path, loader: Any = None, **model_kwargs: Any) -> OpenVINOModel:
    """Run ``model``'s Transformer through ``load_openvino`` on ``folder`` (what ``Transformer.from_options`` does for
    ``backend="openvino"``)."""
    transformer = model.transformer
    torch_model = transformer.model
    ov_model = load_openvino(folder, loader or (lambda: torch_model), transformer.config, transformer.transformer_task,
                             model_kwargs.get("file_name"), model_kwargs.get("provider"),
                             transformer.tokenizer.model_input_names, ov_config=model_kwargs.get("ov_config"))
    transformer.model = ov_model
    return ov_model


def _via_backend(cls: type, folder: Path, **model_kwargs: Any) -> Any:
    """The model of ``folder`` with its Transformer run by OpenVINO, through the public ``backend=`` setting."""
    return cls(str(folder), device="cpu", backend="openvino", model_kwargs=model_kwargs or None)


def _max_diff(ours: Any, expected: Any) -> float:
    return float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(expected, dtype=np.float64))))


def _encodings(model: Any) -> list[np.ndarray]:
    """Batches of several sizes (1, 3, all) so padded and unpadded rows both run through the dynamic shapes."""
    return [model.encode(TEXTS[:1]), model.encode(TEXTS, batch_size=3), model.encode(TEXTS, batch_size=len(TEXTS))]


# -- parity ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fixture", ["bert_dir", "xlmr_dir", "qwen3_st_dir"])
def test_embeddings_equal_torch_and_the_export_is_reused(fixture, request, tmp_path):
    folder = _copy(request.getfixturevalue(fixture), tmp_path)
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    expected = _encodings(torch_model)

    ours = _via_backend(omnivec.Embedder, folder)
    assert isinstance(ours.transformer.model, OpenVINOModel)
    assert (folder / EXPORT_DIR / DEFAULT_FILE).is_file() and (folder / EXPORT_DIR / "openvino_model.bin").is_file()
    for got, want in zip(_encodings(ours), expected, strict=True):
        assert got.dtype == np.float32 and got.shape == want.shape
        assert _max_diff(got, want) <= ATOL
    if fixture == "qwen3_st_dir":
        assert _max_diff(ours.encode(TEXTS, prompt_name="query"), torch_model.encode(TEXTS, prompt_name="query")) <= ATOL

    # A second load reads the saved graph: the torch model is never asked for.
    again = omnivec.Embedder(str(folder), device="cpu")
    _attach(again, folder, loader=_no_torch_model)
    assert _max_diff(again.encode(TEXTS), expected[2]) <= ATOL


@pytest.mark.parametrize("num_labels", [1, 3])
def test_cross_encoder_scores_equal_torch(num_labels, bert_dir, st, tmp_path):
    folder = tmp_path / "ce"
    st.CrossEncoder(bert_dir, num_labels=num_labels, device="cpu").save(str(folder))
    torch_model = omnivec.CrossEncoder(str(folder), device="cpu")
    ours = _via_backend(omnivec.CrossEncoder, folder)
    assert ours.num_labels == num_labels
    got, want = ours.predict(PAIRS, batch_size=2), torch_model.predict(PAIRS, batch_size=2)
    assert np.asarray(got).shape == np.asarray(want).shape
    assert _max_diff(got, want) <= ATOL
    assert _max_diff(ours.predict(PAIRS[0]), torch_model.predict(PAIRS[0])) <= ATOL
    if num_labels == 3:
        assert _max_diff(ours.predict(PAIRS, apply_softmax=True), torch_model.predict(PAIRS, apply_softmax=True)) <= ATOL
    else:
        ranked = [r["corpus_id"] for r in ours.rank(PAIRS[0][0], [d for _, d in PAIRS])]
        assert ranked == [r["corpus_id"] for r in torch_model.rank(PAIRS[0][0], [d for _, d in PAIRS])]


# -- files -------------------------------------------------------------------------------------------------
def _other_weights(folder: Path, out: Path) -> Path:
    """A copy of the checkpoint in ``folder`` (same tokenizer) with other weights."""
    from transformers import AutoModel

    shutil.copytree(folder, out)
    model = AutoModel.from_pretrained(str(folder))
    torch.manual_seed(7)
    with torch.no_grad():
        for tensor in model.parameters():
            tensor.add_(0.1 * torch.randn_like(tensor))
    model.save_pretrained(str(out))
    return out


def test_file_name_picks_another_export(bert_dir, tmp_path, caplog):
    folder = _copy(bert_dir, tmp_path)
    other = _other_weights(folder, tmp_path / "other")
    with caplog.at_level(logging.INFO, logger="omnivec.modules.backends.openvino"):
        _via_backend(omnivec.Embedder, other)
    assert [r.message for r in caplog.records if "Exported" in r.message] == [
        f"Exported the model to OpenVINO: {other / EXPORT_DIR / DEFAULT_FILE} (reused from now on)."]
    for suffix in (".xml", ".bin"):
        (folder / EXPORT_DIR).mkdir(exist_ok=True)
        shutil.copy(other / EXPORT_DIR / f"openvino_model{suffix}", folder / EXPORT_DIR / f"openvino_model_seed7{suffix}")
    expected = omnivec.Embedder(str(other), device="cpu").encode(TEXTS)
    for file_name in ("openvino_model_seed7.xml", "openvino/openvino_model_seed7.xml"):
        model = omnivec.Embedder(str(folder), device="cpu")
        _attach(model, folder, loader=_no_torch_model, file_name=file_name)
        assert _max_diff(model.encode(TEXTS), expected) <= ATOL
    assert not (folder / EXPORT_DIR / DEFAULT_FILE).exists()  # naming a file never exports the default one

    model = omnivec.Embedder(str(folder), device="cpu")
    with pytest.raises(ModelLoadError, match=r"'openvino_model_int8\.xml'.*openvino/openvino_model_seed7\.xml"):
        _attach(model, folder, loader=_no_torch_model, file_name="openvino_model_int8.xml")


def _export_like_optimum(torch_model: torch.nn.Module, path: Path) -> None:
    """An export as optimum-intel writes one for sentence-transformers: named token inputs in the order
    input_ids, token_type_ids, attention_mask, outputs named by the model output fields, fp32 weights."""
    import openvino as ov

    class Named(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = torch_model

        def forward(self, input_ids, token_type_ids, attention_mask):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return {"last_hidden_state": out.last_hidden_state, "pooler_output": out.pooler_output}

    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    example = {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": (ids != 0).long()}
    with torch.no_grad():
        model = ov.convert_model(Named().eval(), example_input=example)
    for port in model.outputs:
        port.get_tensor().set_names({next(n for n in port.get_names() if not n.isdigit())})
    path.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(path), compress_to_fp16=False)


@pytest.mark.parametrize("where", ["openvino/openvino_model.xml", "openvino_model.xml"])
def test_sentence_transformers_layout_loads_without_the_torch_model(where, bert_dir, tmp_path):
    folder = _copy(bert_dir, tmp_path)
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    _export_like_optimum(torch_model.transformer.model, folder / where)
    model = omnivec.Embedder(str(folder), device="cpu")
    ov_model = _attach(model, folder, loader=_no_torch_model)
    assert ov_model.input_names == ["input_ids", "token_type_ids", "attention_mask"]
    assert _max_diff(model.encode(TEXTS, batch_size=3), torch_model.encode(TEXTS, batch_size=3)) <= ATOL


def test_a_graph_taking_position_ids_gets_the_torch_default(bert_dir, tmp_path):
    """Decoder exports made elsewhere may declare position_ids; omnivec's collation gives none."""
    import openvino as ov

    folder = _copy(bert_dir, tmp_path)
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    hf_model = torch_model.transformer.model

    class WithPositions(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = hf_model

        def forward(self, input_ids, attention_mask, position_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).last_hidden_state

    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    example = {"input_ids": ids, "attention_mask": (ids != 0).long(), "position_ids": torch.arange(5).expand(2, 5)}
    with torch.no_grad():
        graph = ov.convert_model(WithPositions().eval(), example_input=example)
    graph.output(0).get_tensor().set_names({"last_hidden_state"})
    ov.save_model(graph, str(folder / EXPORT_DIR / DEFAULT_FILE), compress_to_fp16=False)
    model = omnivec.Embedder(str(folder), device="cpu")
    assert _attach(model, folder, loader=_no_torch_model).input_names == ["input_ids", "attention_mask", "position_ids"]
    assert _max_diff(model.encode(TEXTS, batch_size=3), torch_model.encode(TEXTS, batch_size=3)) <= ATOL


def test_an_onnx_export_in_a_folder_without_torch_weights_is_converted(bert_dir, tmp_path):
    folder = _copy(bert_dir, tmp_path)
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    hf_model = torch_model.transformer.model
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 13, 3, 0, 0]])
    inputs = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    dims = {name: {0: torch.export.Dim("batch"), 1: torch.export.Dim("sequence")} for name in inputs}
    (folder / "onnx").mkdir()
    torch.onnx.export(hf_model, (), str(folder / "onnx" / "model.onnx"), kwargs=inputs, dynamo=True,
                      input_names=list(inputs), output_names=["last_hidden_state", "pooler_output"],
                      dynamic_shapes=dims, external_data=False, verbose=False)
    model = omnivec.Embedder(str(folder), device="cpu")
    (folder / "model.safetensors").unlink()  # an export-only folder: the ONNX graph is all there is
    _attach(model, folder, loader=_no_torch_model)
    assert (folder / EXPORT_DIR / DEFAULT_FILE).is_file()
    assert _max_diff(model.encode(TEXTS, batch_size=3), torch_model.encode(TEXTS, batch_size=3)) <= ATOL


def test_with_torch_weights_the_torch_model_is_traced_not_the_onnx_file(bert_onnx_dir, tmp_path):
    folder = _copy(bert_onnx_dir, tmp_path)  # onnx/model.onnx beside the torch weights (made once per session)
    assert (folder / "onnx" / "model.onnx").is_file()
    torch_model = omnivec.Embedder(str(folder), device="cpu")
    traced = []

    def loader() -> torch.nn.Module:
        traced.append(True)
        return torch_model.transformer.model

    model = omnivec.Embedder(str(folder), device="cpu")
    _attach(model, folder, loader=loader)
    assert traced and (folder / EXPORT_DIR / DEFAULT_FILE).is_file()
    assert _max_diff(model.encode(TEXTS), torch_model.encode(TEXTS)) <= ATOL


# -- settings and errors -----------------------------------------------------------------------------------
def test_compile_settings_default_to_fp32_on_torchs_threads_and_ov_config_overrides(bert_dir, tmp_path):
    folder = _copy(bert_dir, tmp_path)
    model = omnivec.Embedder(str(folder), device="cpu")
    compiled = _attach(model, folder).compiled
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) in ("<Type: 'float32'>", "f32")
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == torch.get_num_threads()

    config_file = tmp_path / "ov_config.json"
    config_file.write_text(json.dumps({"INFERENCE_NUM_THREADS": 1}), encoding="utf-8")
    for ov_config in ({"INFERENCE_NUM_THREADS": 1}, str(config_file)):
        compiled = _attach(omnivec.Embedder(str(folder), device="cpu"), folder, ov_config=ov_config).compiled
        assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 1

    with pytest.raises(ConfigError, match="ov_config"):
        _attach(omnivec.Embedder(str(folder), device="cpu"), folder, ov_config=str(tmp_path / "missing.json"))


def test_unsupported_task_and_damaged_export_are_named(bert_dir, tmp_path):
    folder = _copy(bert_dir, tmp_path)
    model = omnivec.Embedder(str(folder), device="cpu")
    with pytest.raises(ConfigError, match="text-generation"):
        load_openvino(folder, _no_torch_model, model.transformer.config, "text-generation", None, None, None)
    _attach(model, folder)
    (folder / EXPORT_DIR / "openvino_model.bin").unlink()
    with pytest.raises(ModelLoadError, match=r"openvino_model\.bin"):
        _attach(omnivec.Embedder(str(folder), device="cpu"), folder, loader=_no_torch_model)
