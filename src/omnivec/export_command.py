"""``omnivec export MODEL --backend onnx|openvino [--int8] [--optimize O1..O4] [--calibration FILE] [--output DIR]``:
the fp32 export, an optimized ONNX graph and/or this machine's best int8 export, written into the model folder (or
a saved copy of it in ``--output``), and how to load each file. A dual encoder (CLIP, SigLIP, CLAP) gets every
tower's file; its ``--calibration`` file may mix texts with image or audio file paths (one per line, relative to
the current directory), each tower calibrating on its own modality."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnivec.errors import ConfigError

MODEL_TYPES = ("auto", "embedder", "cross-encoder")
FP32_FILES = {"onnx": Path("onnx") / "model.onnx", "openvino": Path("openvino") / "openvino_model.xml"}


@dataclass(frozen=True)
class ExportRequest:
    """What ``omnivec export`` was asked to do (the command line, checked)."""

    model: str
    backend: str
    int8: bool = False
    optimize: str | None = None
    calibration: str | None = None
    output: str | None = None
    model_type: str = "auto"

    def __post_init__(self) -> None:
        if self.backend not in FP32_FILES:
            raise ConfigError(f"--backend must be one of {list(FP32_FILES)}; got {self.backend!r}.")
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"--model-type must be one of {list(MODEL_TYPES)}; got {self.model_type!r}.")
        if self.optimize is not None and self.backend != "onnx":
            raise ConfigError("--optimize applies to --backend onnx (ONNX Runtime's graph optimizations); "
                              "OpenVINO optimizes its graph when it compiles it.")
        if self.calibration is not None and not (self.int8 and self.backend == "openvino"):
            raise ConfigError("--calibration is for --backend openvino --int8 (static quantization calibrates on "
                              "your texts); ONNX's dynamic int8 needs no calibration.")


def run_export(request: ExportRequest) -> int:
    """Write the exports ``request`` asks for, print each file and how to load it; 0 on success."""
    from omnivec.models.exports import OnnxOptimizationConfig, export_optimized_onnx_model, quantize_for
    from omnivec.models.exports.calibration import read_calibration_file
    from omnivec.modules.backends.towers import BackendTowers

    texts = read_calibration_file(request.calibration) if request.calibration is not None else None
    cls = _model_class(request)
    model = cls(request.model, backend=request.backend)  # makes the fp32 export when the folder has none
    if request.output is not None:
        model.save(request.output)  # the whole model, its exports included: a folder that loads as it is
        model = cls(request.output, backend=request.backend)
    folder = Path(model.transformer.source_folder)
    # A dual encoder (CLIP, SigLIP, CLAP) has one file per tower, each named <modality>_<file_name>.
    towers = model.transformer.model.towers if isinstance(model.transformer.model, BackendTowers) else None
    prefixes = [f"{modality}_" for modality in towers or {}] or [""]
    print(f"fp32: {', '.join(str(_with_prefix(folder / FP32_FILES[request.backend], p)) for p in prefixes)}")
    written: list[Path] = []
    if request.optimize is not None:
        level = OnnxOptimizationConfig.from_level(request.optimize)
        written.append(export_optimized_onnx_model(model, level, file_suffix=request.optimize))
    if request.int8:
        written.append(quantize_for(model, request.backend, calibration_texts=texts))
    file_name = FP32_FILES[request.backend].name
    for path in written:
        file_name = path.name.removeprefix(prefixes[0])  # the text tower's file is returned for a dual encoder
        print(f"wrote {', '.join(str(path.with_name(p + file_name)) for p in prefixes)}")
    print(f"load with: {cls.__name__}({str(folder)!r}, backend={request.backend!r}, "
          f"model_kwargs={{'file_name': {file_name!r}}})")
    return 0


def _with_prefix(path: Path, prefix: str) -> Path:
    return path.with_name(prefix + path.name)


def _model_class(request: ExportRequest) -> Any:
    """Embedder or CrossEncoder: as asked, else a local folder saved as a CrossEncoder (its
    config_sentence_transformers.json) or a plain sequence-classification checkpoint is a CrossEncoder."""
    from omnivec.models.cross_encoder import CrossEncoder
    from omnivec.models.embedder import Embedder

    if request.model_type != "auto":
        return CrossEncoder if request.model_type == "cross-encoder" else Embedder
    folder = Path(request.model)
    saved = _read_json(folder / "config_sentence_transformers.json")
    if saved.get("model_type") == "CrossEncoder":
        return CrossEncoder
    architectures = _read_json(folder / "config.json").get("architectures") or []
    plain = not (folder / "modules.json").is_file()
    if plain and any(str(name).endswith("ForSequenceClassification") for name in architectures):
        return CrossEncoder
    return Embedder


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
