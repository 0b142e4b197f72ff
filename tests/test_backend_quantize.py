"""Export and quantize without optimum: sentence-transformers' functions and file names, files that load with
``model_kwargs={"file_name": ...}``, int8 graphs that really hold int8 ops and keep the vectors close to fp32, bad
settings named, and ``omnivec export`` on the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import omnivec
from omnivec import (
    OnnxOptimizationConfig,
    OnnxQuantizationConfig,
    OpenVINOQuantizationConfig,
    export_dynamic_quantized_onnx_model,
    export_optimized_onnx_model,
    export_static_quantized_openvino_model,
)
from omnivec.errors import ConfigError
from omnivec.loading.options import Backend
from omnivec.models.exports import cpu_quantization_target, int8_file_name, quantize_for
from omnivec.models.exports.calibration import builtin_calibration_texts
from tests.fixtures.checkpoints import TEXTS

# Slow lane: every test exports (and quantizes) a graph.
pytestmark = pytest.mark.slow

PAIRS = [("what is the capital of france", "Paris is the capital of France."),
         ("what is the capital of france", "Berlin is a city in Germany."),
         ("how do cells divide", "Cells divide by mitosis; the protein binds to the receptor.")]
# Measured on the tiny random checkpoints (fixtures/checkpoints.py): int8 keeps mean cosine 0.9999+ (min 0.9998) to
# fp32 on SENTENCES, ONNX and OpenVINO alike; all-MiniLM-L6-v2: ONNX 0.993 / 0.981, OpenVINO 0.997 / 0.982.
TINY_MEAN_COSINE = 0.99
TARGET_FILES = {"arm64": "model_qint8_arm64.onnx", "avx2": "model_quint8_avx2.onnx",
                "avx512": "model_qint8_avx512.onnx", "avx512_vnni": "model_qint8_avx512_vnni.onnx"}
SENTENCES = [text for text in builtin_calibration_texts() + TEXTS if text.strip()]


def _cosines(a, b) -> np.ndarray:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _onnx_ops(path: Path) -> Counter:
    import onnx

    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def _copy(source: Path, tmp_path: Path, name: str = "model") -> Path:
    folder = tmp_path / name
    shutil.copytree(source, folder)
    return folder


@pytest.fixture(scope="module")
def st_folders(onnx_st_folder, onnx_ce_folder) -> dict[str, Path]:
    """ST-layout folders of tiny BERT and XLM-R embedders and a 1-label BERT CrossEncoder, with fp32 ONNX exports
    (tests/fixtures/backend_exports.py: made once per session, shared with tests/test_backend_onnx.py; read-only
    templates: each test works on its own copy)."""
    return {"bert": onnx_st_folder("bert"), "xlmr": onnx_st_folder("xlmr"), "ce": onnx_ce_folder(1)}


# -- ONNX: optimized ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["O1", "O2", "O3"])
def test_optimized_onnx_writes_st_name_and_keeps_fp32_vectors(level, st_folders, tmp_path):
    folder = _copy(st_folders["bert"], tmp_path)
    fp32 = omnivec.Embedder(str(folder), backend="onnx")
    path = export_optimized_onnx_model(fp32, level)
    assert path == folder / "onnx" / f"model_{level}.onnx" and path.is_file()
    optimized = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": path.name})
    diff = np.abs(np.asarray(optimized.encode(SENTENCES)) - np.asarray(fp32.encode(SENTENCES))).max()
    # O3 approximates Gelu (tanh form, as optimum's O3 does): measured ~4e-4 on MiniLM.
    assert diff <= (1e-4 if level != "O3" else 2e-3), diff
    if level != "O1":
        ops = _onnx_ops(path)
        assert ops["SkipLayerNormalization"] > 0, ops  # the transformer fusions ran


def test_optimized_onnx_with_a_config_object_and_another_folder(st_folders, tmp_path):
    folder = _copy(st_folders["xlmr"], tmp_path)
    model = omnivec.Embedder(str(folder), device="cpu")  # torch: exported from the weights in memory
    out = tmp_path / "elsewhere"
    path = export_optimized_onnx_model(model, OnnxOptimizationConfig(optimization_level=2), out)
    assert path == out / "onnx" / "model_optimized.onnx" and path.is_file()
    assert not (folder / "onnx" / "model_optimized.onnx").exists()
    # The file name: from the folder's ONNX graph (the torch model's export from memory ran above).
    named = export_optimized_onnx_model(omnivec.Embedder(str(folder), backend="onnx"), "O2", out, file_suffix="fused")
    assert named.name == "model_fused.onnx"


def test_o4_is_fp16_for_gpus_and_named_on_a_cpu_install(st_folders, tmp_path):
    import onnxruntime

    folder = _copy(st_folders["bert"], tmp_path)
    model = omnivec.Embedder(str(folder), backend="onnx")
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed: O4 is allowed here")
    with pytest.raises(ConfigError, match=r"'O4'.*onnxruntime-gpu.*'O3'"):
        export_optimized_onnx_model(model, "O4")
    assert not list((folder / "onnx").glob("model_O4*"))


# -- ONNX: dynamic int8 -------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", list(TARGET_FILES))
def test_dynamic_int8_each_target(target, st_folders, tmp_path):
    folder = _copy(st_folders["bert"], tmp_path)
    fp32 = omnivec.Embedder(str(folder), backend="onnx")
    path = export_dynamic_quantized_onnx_model(fp32, target)
    assert path == folder / "onnx" / TARGET_FILES[target]
    ops = _onnx_ops(path)
    assert ops["MatMulInteger"] >= 6 and ops["DynamicQuantizeLinear"] > 0, ops  # int8 weights, uint8 activations
    assert ops["SkipLayerNormalization"] > 0, ops  # fused before quantizing
    int8 = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": path.name})
    cosines = _cosines(int8.encode(SENTENCES), fp32.encode(SENTENCES))
    assert cosines.mean() > TINY_MEAN_COSINE, (cosines.mean(), cosines.min())
    with pytest.raises(ConfigError, match="already quantized"):
        export_dynamic_quantized_onnx_model(int8, target)


def test_dynamic_int8_xlmr_from_an_openvino_loaded_model(st_folders, tmp_path):
    folder = _copy(st_folders["xlmr"], tmp_path)
    shutil.rmtree(folder / "onnx")
    model = omnivec.Embedder(str(folder), backend="openvino")  # no ONNX graph: exported from the folder's weights
    path = export_dynamic_quantized_onnx_model(model, OnnxQuantizationConfig(per_channel=False))
    assert path.name == "model_qint8_quantized.onnx" and (folder / "onnx" / "model.onnx").is_file()
    assert _onnx_ops(path)["MatMulInteger"] > 0
    int8 = omnivec.Embedder(str(folder), backend="onnx", model_kwargs={"file_name": path.name})
    cosines = _cosines(int8.encode(SENTENCES), model.encode(SENTENCES))
    assert cosines.mean() > TINY_MEAN_COSINE, (cosines.mean(), cosines.min())


# -- OpenVINO: static int8 ----------------------------------------------------------------------------------
def _int8_constants(xml: Path) -> tuple[int, int]:
    text = xml.read_text(encoding="utf-8")
    return text.count('type="FakeQuantize"'), len(re.findall(r'element_type="[iu]8"', text))


def test_static_int8_openvino_default_sample(st_folders, tmp_path):
    folder = _copy(st_folders["bert"], tmp_path)
    fp32 = omnivec.Embedder(str(folder), backend="openvino")
    path = export_static_quantized_openvino_model(fp32)
    assert path == folder / "openvino" / "openvino_model_qint8_quantized.xml"
    assert path.with_suffix(".bin").is_file()
    fake_quantize, int8_constants = _int8_constants(path)
    assert fake_quantize > 0 and int8_constants > 0, (fake_quantize, int8_constants)
    int8 = omnivec.Embedder(str(folder), backend="openvino", model_kwargs={"file_name": path.name})
    cosines = _cosines(int8.encode(SENTENCES), fp32.encode(SENTENCES))
    assert cosines.mean() > TINY_MEAN_COSINE, (cosines.mean(), cosines.min())
    with pytest.raises(ConfigError, match="already quantized"):
        export_static_quantized_openvino_model(int8)


def test_static_int8_openvino_own_texts_dict_config_and_suffix(st_folders, tmp_path):
    folder = _copy(st_folders["xlmr"], tmp_path)
    model = omnivec.Embedder(str(folder), backend="onnx")  # OpenVINO converts the folder's ONNX graph
    path = export_static_quantized_openvino_model(model, {"num_samples": 20, "batch_size": 4, "preset": "performance"},
                                                  dataset=SENTENCES, file_suffix="mine")
    assert path.name == "openvino_model_mine.xml" and _int8_constants(path)[0] > 0
    int8 = omnivec.Embedder(str(folder), backend="openvino", model_kwargs={"file_name": path.name})
    assert _cosines(int8.encode(SENTENCES), model.encode(SENTENCES)).mean() > TINY_MEAN_COSINE


# -- CrossEncoder -------------------------------------------------------------------------------------------
def test_cross_encoder_int8_exports_score(st_folders, tmp_path):
    folder = _copy(st_folders["ce"], tmp_path)
    model = omnivec.CrossEncoder(str(folder), device="cpu")
    expected = np.asarray(model.predict(PAIRS))
    onnx_path = export_dynamic_quantized_onnx_model(model, "avx512_vnni")  # torch: exported from memory
    # ONNX-loaded: OpenVINO converts the folder's fp32 graph (one export of the model in this test, not two).
    ov_path = export_static_quantized_openvino_model(omnivec.CrossEncoder(str(folder), backend="onnx"),
                                                     OpenVINOQuantizationConfig(num_samples=30),
                                                     dataset=PAIRS * 10)  # pairs: tokenized as the model scores them
    exports: list[tuple[Backend, Path]] = [("onnx", onnx_path), ("openvino", ov_path)]
    for backend, path in exports:
        int8 = omnivec.CrossEncoder(str(folder), backend=backend, model_kwargs={"file_name": path.name})
        scores = np.asarray(int8.predict(PAIRS))
        assert scores.shape == expected.shape and np.isfinite(scores).all()
        assert np.abs(scores - expected).max() < 0.1, (backend, scores, expected)


# -- settings -----------------------------------------------------------------------------------------------
def test_bad_settings_are_named(st_folders, tmp_path):
    folder = _copy(st_folders["bert"], tmp_path)
    model = omnivec.Embedder(str(folder), backend="onnx")
    with pytest.raises(ConfigError, match=r"'avx3'.*arm64, avx2, avx512, avx512_vnni"):
        export_dynamic_quantized_onnx_model(model, "avx3")  # type: ignore[arg-type]  # the wrong name under test
    with pytest.raises(ConfigError, match=r"'O7'.*O1, O2, O3, O4"):
        export_optimized_onnx_model(model, "O7")  # type: ignore[arg-type]  # the wrong name under test
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['bits'\].*num_samples"):
        export_static_quantized_openvino_model(model, {"bits": 8})
    with pytest.raises(ConfigError, match="dataset is empty"):
        export_static_quantized_openvino_model(model, dataset=[])
    with pytest.raises(ConfigError, match=r"dataset\[1\] must be a string"):
        export_static_quantized_openvino_model(model, dataset=["ok", 3])  # type: ignore[list-item]  # the wrong type under test
    with pytest.raises(ConfigError, match=r"dataset\[1\] must be a \(query, document\) pair"):
        export_static_quantized_openvino_model(model, dataset=[("q", "d"), "text"])  # type: ignore[list-item]  # mixed kinds under test
    with pytest.raises(ConfigError, match="Hub dataset.*dataset="):
        export_static_quantized_openvino_model(model, None, None, "nyu-mll/glue", "sst2", "train", "sentence")
    with pytest.raises(ConfigError, match="push_to_hub"):
        export_dynamic_quantized_onnx_model(model, "avx2", push_to_hub=True)
    with pytest.raises(ConfigError, match=r"OpenVINOQuantizationConfig.preset.*\['mixed', 'performance'\]"):
        OpenVINOQuantizationConfig(preset="fast")
    with pytest.raises(ConfigError, match="OpenVINOQuantizationConfig.num_samples"):
        OpenVINOQuantizationConfig(num_samples=0)
    with pytest.raises(ConfigError, match=r"OnnxQuantizationConfig.weights_dtype.*\['qint8', 'quint8'\]"):
        OnnxQuantizationConfig(weights_dtype="int4")
    with pytest.raises(ConfigError, match="OnnxOptimizationConfig.optimization_level"):
        OnnxOptimizationConfig(optimization_level=3)
    with pytest.raises(ConfigError, match="Embedder or CrossEncoder"):
        export_optimized_onnx_model(object(), "O1")
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model.onnx"]  # nothing written by a refusal


def test_cpu_target_and_file_names():
    vnni = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
    assert cpu_quantization_target(vnni) == "avx512_vnni"
    assert cpu_quantization_target("flags : sse avx2 avx512f\n") == "avx512"
    assert cpu_quantization_target("flags : sse avx avx2\n") == "avx2"
    assert cpu_quantization_target("") == "avx2"
    assert int8_file_name("onnx") == TARGET_FILES[cpu_quantization_target()]
    assert int8_file_name("openvino") == "openvino_model_qint8_quantized.xml"
    with pytest.raises(ConfigError, match="'tensorrt'"):
        int8_file_name("tensorrt")


def test_quantize_for_this_machine(st_folders, tmp_path):
    folder = _copy(st_folders["bert"], tmp_path)
    model = omnivec.Embedder(str(folder), backend="onnx")
    for backend in ("onnx", "openvino"):
        path = quantize_for(model, backend, calibration_texts=SENTENCES[:40])
        assert path.name == int8_file_name(backend) and path.is_file()
        omnivec.Embedder(str(folder), backend=backend, model_kwargs={"file_name": path.name}).encode(["ok"])


def test_public_names_stay_lazy():
    code = ("import sys, omnivec; from omnivec import export_dynamic_quantized_onnx_model; "
            "print(sorted(m for m in ('onnxruntime', 'openvino', 'nncf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- command line -------------------------------------------------------------------------------------------
def test_cli_export_writes_the_files(st_folders, tmp_path, capsys):
    from omnivec.cli import main

    folder = _copy(st_folders["bert"], tmp_path)
    assert main(["export", str(folder), "--backend", "onnx", "--int8", "--optimize", "O2"]) == 0
    out = capsys.readouterr().out
    assert (folder / "onnx" / "model_O2.onnx").is_file() and (folder / "onnx" / int8_file_name("onnx")).is_file()
    assert f"model_kwargs={{'file_name': '{int8_file_name('onnx')}'}}" in out and "Embedder(" in out

    calibration = tmp_path / "texts.txt"
    calibration.write_text("\n".join(SENTENCES[:30]), encoding="utf-8")
    out_dir = tmp_path / "saved"
    ce = _copy(st_folders["ce"], tmp_path, "ce")
    assert main(["export", str(ce), "--backend", "openvino", "--int8", "--calibration", str(calibration),
                 "--output", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert (out_dir / "openvino" / "openvino_model_qint8_quantized.xml").is_file() and "CrossEncoder(" in out
    assert not (ce / "openvino" / "openvino_model_qint8_quantized.xml").exists()
    scores = omnivec.CrossEncoder(str(out_dir), backend="openvino",
                                  model_kwargs={"file_name": "openvino_model_qint8_quantized.xml"}).predict(PAIRS)
    assert np.isfinite(np.asarray(scores)).all()


def test_cli_export_bad_flags_exit_2(st_folders, tmp_path, capsys):
    from omnivec.cli import main

    folder = _copy(st_folders["bert"], tmp_path)
    assert main(["export", str(folder), "--backend", "openvino", "--optimize", "O2"]) == 2
    assert "--optimize applies to --backend onnx" in capsys.readouterr().err
    assert main(["export", str(folder), "--backend", "onnx", "--calibration", "x.txt"]) == 2
    assert "--calibration is for --backend openvino --int8" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["export", str(folder), "--backend", "openvino", "--int8", "--calibration", str(empty)]) == 2
    assert "has no texts" in capsys.readouterr().err


# -- real model ---------------------------------------------------------------------------------------------
def test_minilm_int8_paths_keep_cosine_to_fp32(minilm_fp32_exports, tmp_path):
    """all-MiniLM-L6-v2: every int8 path keeps mean cosine >= 0.98 to fp32 on held-out texts (calibration on the
    other half of the built-in sample)."""
    folder = _copy(minilm_fp32_exports, tmp_path)  # its fp32 ONNX and OpenVINO graphs made once per session
    sample = builtin_calibration_texts()
    calibration, held_out = sample[::2], sample[1::2][:100]
    fp32 = omnivec.Embedder(str(folder), backend="onnx")
    expected = fp32.encode(held_out)
    onnx_int8 = export_dynamic_quantized_onnx_model(fp32, cpu_quantization_target())
    ov_int8 = export_static_quantized_openvino_model(fp32, dataset=calibration)
    exports: list[tuple[Backend, Path]] = [("onnx", onnx_int8), ("openvino", ov_int8)]
    for backend, path in exports:
        int8 = omnivec.Embedder(str(folder), backend=backend, model_kwargs={"file_name": path.name})
        cosines = _cosines(int8.encode(held_out), expected)
        assert cosines.mean() >= 0.98 and cosines.min() >= 0.95, (backend, cosines.mean(), cosines.min())
