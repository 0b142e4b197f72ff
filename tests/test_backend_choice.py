"""Backend names beyond the three runtimes: ``auto`` loads what ``bench-backends`` measured best on this CPU (torch,
with a warning, before any measurement); kb.toml, index/search/serve ``--backend`` and ``--threads`` reach the
models; ``bench-backends`` prints and keeps its measurement."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import omnivec
from omnivec.cli import main
from omnivec.errors import ConfigError
from omnivec.kb.config import KBConfig, load_config
from omnivec.loading.options import LoadOptions
from omnivec.models.backend_bench import AgreementBar, measure_backends, spearman
from omnivec.models.backend_choice import choice_file, load_choice, save_choice
from omnivec.models.cache import ModelCache
from omnivec.models.exports import int8_file_name
from omnivec.runtime.cpu import cpu_info

TEXTS = ["a cat sat on the mat", "dogs chase cats", "the stock market fell", "rain is expected tomorrow",
         "a kitten sleeps", "shares dropped sharply today"]


@pytest.fixture(autouse=True)
def choice_cache(tmp_path, monkeypatch) -> Path:
    """Measurements go to a folder of this test, never the user's cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("OMNIVEC_CACHE_DIR", str(folder))
    return folder


@pytest.fixture
def bert_copy(bert_dir, tmp_path) -> Path:
    folder = tmp_path / "bert"
    shutil.copytree(bert_dir, folder)
    return folder


@pytest.fixture
def bert_onnx_copy(bert_onnx_dir, tmp_path) -> Path:
    """A copy of the tiny BERT with its ONNX export already made (once per session, tests/fixtures/backend_exports.py):
    for the tests of what runs on ONNX, not of the export on first use."""
    folder = tmp_path / "bert"
    shutil.copytree(bert_onnx_dir, folder)
    return folder


def test_backend_names_split_into_runtime_and_precision():
    assert [(LoadOptions(backend=b).runtime, LoadOptions(backend=b).int8) for b in
            ("torch", "onnx", "openvino-int8", "onnx-int8", "auto")] == [
        ("torch", False), ("onnx", False), ("openvino", True), ("onnx", True), ("torch", False)]
    with pytest.raises(ConfigError, match=r"backend 'onnx-fp8' is not supported; choose one of \['torch'"):
        LoadOptions(backend="onnx-fp8")  # type: ignore[arg-type]
    assert int8_file_name("onnx") == {"avx2": "model_quint8_avx2.onnx"}.get(
        cpu_info().int8_isa, f"model_qint8_{cpu_info().int8_isa}.onnx")
    assert int8_file_name("openvino") == "openvino_model_qint8_quantized.xml"
    with pytest.raises(ConfigError, match="has no int8 export"):
        int8_file_name("torch")


def test_cpu_info_names_an_int8_isa():
    info = cpu_info()
    assert info.int8_isa in ("avx512_vnni", "avx512", "avx2", "arm64")
    assert info.cores >= 1 and info.name in info.summary and info.int8_isa in info.key


def test_auto_without_a_measurement_is_torch_with_a_warning(bert_copy, caplog):
    with caplog.at_level(logging.WARNING, logger="omnivec.models.backend_choice"):
        model = omnivec.Embedder(str(bert_copy), backend="auto")
    assert model[0].backend == "torch"
    assert "was not measured on this CPU yet" in caplog.text and "omnivec bench-backends" in caplog.text


@pytest.mark.slow  # exports ONNX
def test_auto_loads_the_saved_choice_and_on_an_accelerator_torch(bert_copy):
    save_choice(bert_copy, "embedder", {"choice": "onnx", "rows": []})
    assert load_choice(bert_copy, "embedder") == "onnx"
    assert load_choice(bert_copy, "cross-encoder") is None  # kinds are measured apart
    model = omnivec.Embedder(str(bert_copy), backend="auto")
    assert model[0].backend == "onnx" and (bert_copy / "onnx" / "model.onnx").is_file()
    reference = omnivec.Embedder(str(bert_copy), device="cpu").encode(TEXTS)
    np.testing.assert_allclose(model.encode(TEXTS), reference, atol=1e-4)
    # A damaged record is ignored with a warning, not trusted.
    choice_file(bert_copy, "embedder").write_text(json.dumps({"choice": "cuda-fp4"}), encoding="utf-8")
    assert load_choice(bert_copy, "embedder") is None


def test_a_file_name_with_an_int8_backend_is_refused(bert_copy):
    with pytest.raises(ConfigError, match=r"model_kwargs\['file_name'\].*pass backend='onnx' with it"):
        omnivec.Embedder(str(bert_copy), backend="onnx-int8", model_kwargs={"file_name": "model_O3.onnx"})


@pytest.mark.slow  # runs ONNX
def test_measure_backends_recommends_a_passing_backend_and_keeps_it(bert_onnx_copy):
    result = measure_backends(str(bert_onnx_copy), TEXTS * 4, backends=["onnx", "torch"], batch_size=8)
    assert [row.backend for row in result.rows] == ["torch", "onnx"]  # torch first: the reference
    torch_row, onnx_row = result.rows
    assert torch_row.mean_cosine == pytest.approx(1.0) and torch_row.spearman == pytest.approx(1.0)
    assert onnx_row.mean_cosine is not None and onnx_row.mean_cosine > 0.99999 and onnx_row.passes
    assert all(row.per_second and row.per_second > 0 for row in result.rows)
    assert result.choice in ("torch", "onnx") and result.choice == max(
        result.rows, key=lambda row: row.per_second or 0).backend
    assert load_choice(bert_onnx_copy, "embedder") == result.choice
    assert str(cpu_info().name) in result.cpu and result.threads == torch.get_num_threads()


@pytest.mark.slow  # runs ONNX
def test_a_backend_that_fails_the_bar_is_not_recommended(bert_onnx_copy):
    strict = AgreementBar(min_mean_cosine=1.0, min_cosine=1.0, min_spearman=1.0)
    result = measure_backends(str(bert_onnx_copy), TEXTS, backends=["onnx"], batch_size=4, bar=strict, save=False)
    assert result.choice == "torch" and not result.rows[1].passes
    assert load_choice(bert_onnx_copy, "embedder") is None  # save=False
    with pytest.raises(ConfigError, match=r"AgreementBar.min_spearman must be a number from -1 to 1"):
        AgreementBar(min_spearman=2)
    with pytest.raises(ConfigError, match=r"backends \['tensorrt'\]: choose from"):
        measure_backends(str(bert_onnx_copy), TEXTS, backends=["tensorrt"])


def test_spearman_matches_scipy():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(size=300)
    b = a + 0.5 * b
    assert spearman(a, b) == pytest.approx(float(spearmanr(a, b).statistic), abs=1e-12)


@pytest.mark.slow  # runs ONNX
def test_cross_encoder_bench_compares_scores(onnx_ce_folder, tmp_path):
    folder = tmp_path / "ce"
    shutil.copytree(onnx_ce_folder(1), folder)  # a saved 1-label BERT CrossEncoder with its ONNX export
    result = measure_backends(str(folder), TEXTS, kind="cross-encoder", backends=["onnx"], batch_size=4)
    assert result.rows[1].spearman == pytest.approx(1.0) and result.rows[1].mean_cosine is None
    assert load_choice(folder, "cross-encoder") == result.choice


@pytest.mark.slow  # runs ONNX
def test_bench_backends_command_prints_the_table(bert_onnx_copy, tmp_path, capsys):
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    before = torch.get_num_threads()
    try:
        assert main(["bench-backends", str(bert_onnx_copy), "--texts", str(texts), "--backends", "torch,onnx",
                     "--batch-size", "4", "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(before)
    out = capsys.readouterr().out
    assert "CPU: " in out and "threads: 1" in out and "recommended: backend=" in out
    assert out.count("x ") >= 1 and "onnx" in out
    assert load_choice(bert_onnx_copy, "embedder") is not None


def test_bench_backends_bad_inputs_are_named(bert_copy, tmp_path, capsys):
    one = tmp_path / "one.txt"
    one.write_text("only one line\n", encoding="utf-8")
    assert main(["bench-backends", str(bert_copy), "--texts", str(one)]) == 2
    assert "has 1 non-empty line(s); at least 2" in capsys.readouterr().err
    assert main(["bench-backends", str(bert_copy), "--texts", str(tmp_path / "nope.txt")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["bench-backends", str(bert_copy), "--threads", str(cpu_info().cores + 1)]) == 2
    assert "more threads than cores" in capsys.readouterr().err


@pytest.mark.slow  # runs ONNX
def test_threads_reach_torch_and_the_backends(bert_onnx_copy, tmp_path):
    before = torch.get_num_threads()
    try:
        assert main(["encode", "hello", "--model", str(bert_onnx_copy), "--backend", "onnx", "--threads", "1",
                     "-o", str(tmp_path / "v.npy")]) == 0
        assert torch.get_num_threads() == 1
        model = omnivec.Embedder(str(bert_onnx_copy), backend="onnx")
        assert model[0].model.session.get_session_options().intra_op_num_threads == 1
    finally:
        torch.set_num_threads(before)
    vectors = np.load(tmp_path / "v.npy")
    np.testing.assert_allclose(vectors, omnivec.Embedder(str(bert_onnx_copy), device="cpu").encode(["hello"]), atol=1e-4)


def test_kb_config_backend_for_all_and_per_space(tmp_path):
    (tmp_path / "kb.toml").write_text('backend = "openvino-int8"\n[backends]\nimage = "torch"\nreranker = "onnx"\n',
                                      encoding="utf-8")
    config = load_config(tmp_path)
    assert [config.backend_for(n) for n in ("text", "image", "audio", "reranker")] == [
        "openvino-int8", "torch", "openvino-int8", "onnx"]
    assert {config.with_backend("auto").backend_for(n) for n in ("text", "image", "reranker")} == {"auto"}
    assert KBConfig().backend_for("text") == "torch"
    for text, message in (('backend = "gpu"', "backend = 'gpu': must be one of"),
                          ('[backends]\nvideo = "onnx"', "backends.video: unknown; keys are"),
                          ('[backends]\ntext = "fast"', "backends.text = 'fast': must be one of")):
        (tmp_path / "kb.toml").write_text(text + "\n", encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_config(tmp_path)


def test_model_cache_keeps_backends_apart():
    cache, loads = ModelCache(), []

    def load(tag: str):
        loads.append(tag)
        return tag

    assert cache.get("embedder", "m", lambda: load("torch")) == "torch"
    assert cache.get("embedder", "m", lambda: load("onnx"), "onnx") == "onnx"
    assert cache.get("embedder", "m", lambda: load("again")) == "torch"
    assert loads == ["torch", "onnx"]


@pytest.mark.slow  # runs ONNX
def test_kb_spaces_load_on_the_configured_backend(bert_onnx_copy, tmp_path):
    from omnivec.kb.spaces import load_spaces

    config = KBConfig(spaces={"text": str(bert_onnx_copy)}, backend="onnx")
    spaces, problems = load_spaces(config)
    assert not problems and spaces[0].model[0].backend == "onnx"
    spaces, _ = load_spaces(config.with_backend("torch"))
    assert spaces[0].model[0].backend == "torch"


def test_backend_exports_do_not_change_a_models_identity(tmp_path):
    from omnivec.kb.consistency import model_identity

    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"weights")
    before = model_identity(str(folder))
    (folder / "onnx").mkdir()
    (folder / "onnx" / "model_qint8_avx2.onnx").write_bytes(b"graph")  # made by backend="onnx-int8" on first use
    assert model_identity(str(folder)) == before
    (folder / "model.safetensors").write_bytes(b"retrained")
    assert model_identity(str(folder)) != before
    (folder / "model.safetensors").unlink()  # an export-only model: the export is the model
    exported_only = model_identity(str(folder))
    (folder / "onnx" / "model_qint8_avx2.onnx").write_bytes(b"another graph")
    assert model_identity(str(folder)) != exported_only


def test_auto_falls_back_to_torch_only_when_its_choice_cannot_run_the_model(qwen3_lm, caplog):
    from omnivec.errors import ModelLoadError

    save_choice(Path(qwen3_lm), "cross-encoder", {"choice": "onnx"})
    with caplog.at_level(logging.WARNING, logger="omnivec.models.base_model"):
        model = omnivec.CrossEncoder(qwen3_lm, backend="auto")
    assert model[0].backend == "torch"
    assert "backend='auto'" in caplog.text and "cannot run on onnx" in caplog.text
    with pytest.raises(ModelLoadError, match="backend 'onnx' cannot run this model"):
        omnivec.CrossEncoder(qwen3_lm, backend="onnx")  # asked for by name: an error, never a fallback


@pytest.mark.slow  # exports ONNX
def test_index_search_and_serve_run_their_models_on_the_backend_asked(bert_copy, tmp_path, capsys):
    from omnivec.serve.command import load_models

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"{i}.txt").write_text(text, encoding="utf-8")
    config = tmp_path / "kb.toml"
    config.write_text(f'chunk_tokens = 32\noverlap_tokens = 4\n[spaces]\ntext = "{bert_copy}"\n', encoding="utf-8")
    kb = tmp_path / "kb"
    assert main(["index", str(docs), "--kb", str(kb), "--config", str(config), "--backend", "onnx"]) == 0
    assert (bert_copy / "onnx" / "model.onnx").is_file()  # the text space ran on ONNX Runtime
    assert main(["search", "kitten", "--kb", str(kb), "--config", str(config), "--backend", "onnx", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == len(TEXTS)
    embedders, rerankers, searcher = load_models([f"m={bert_copy}"], [], str(kb), str(config), backend="onnx")
    assert embedders["m"][0].backend == "onnx" and not rerankers
    assert searcher.spaces[0].model is embedders["m"]  # one model for the server and the KB: same source, backend
    searcher.close()
