"""``export_optimized_onnx_model``: ONNX Runtime's graph optimizations and transformer fusions (SkipLayerNorm,
BiasGelu, Attention where the pattern matches), written as ``onnx/model_<suffix>.onnx`` as sentence-transformers
names it, with the O1-O4 levels optimum defines, and without optimum."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from omnivec.errors import ConfigError
from omnivec.models.exports.source import ONNX_FOLDER, export_source, fp32_onnx, write_atomically

logger = logging.getLogger(__name__)

OptimizationLevel = Literal["O1", "O2", "O3", "O4"]
ORT_GRAPH_LEVELS = (0, 1, 2, 99)

# Hugging Face model_type -> the graph family ONNX Runtime's transformer optimizer fuses (its MODEL_TYPES).
# Encoders built like BERT share its fusions; a model type missing here gets ONNX Runtime's general optimizations.
ORT_MODEL_TYPES = {
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "camembert", "distilbert", "electra", "albert", "mpnet",
                     "deberta", "deberta-v2", "big_bird", "mobilebert", "xlm", "flaubert", "ernie", "nomic_bert"),
                    "bert"),
    **dict.fromkeys(("gpt2", "gpt_neo", "gptj", "codegen"), "gpt2"),
    **{name: name for name in ("gpt_neox", "phi", "qwen3", "clip", "vit", "swin", "t5", "bart")},
    "mt5": "t5", "mbart": "bart",
}
# A dual encoder's towers (model_type, modality) -> ONNX Runtime's model type: the text transformers fuse as CLIP's
# text encoder, the vision transformers as ViT. A tower missing here (CLAP's) gets the general optimizations only.
ORT_TOWER_TYPES = {("clip", "text"): "clip", ("clip", "image"): "vit", ("siglip", "text"): "clip",
                   ("siglip", "image"): "vit"}
# The sub-config that sizes each tower's attention (heads, hidden size).
TOWER_CONFIGS = {"text": "text_config", "image": "vision_config", "audio": "audio_config"}


@dataclass(frozen=True)
class OnnxOptimizationConfig:
    """What ``export_optimized_onnx_model`` does to the graph (optimum's ``OptimizationConfig``, the parts that
    matter here).

    Attributes:
        optimization_level: ONNX Runtime's graph optimization level (0, 1, 2 or 99) applied before saving.
        transformer_fusions: apply ONNX Runtime's transformer-specific fusions (LayerNorm, Gelu, Attention...).
        gelu_approximation: replace Gelu by the faster tanh approximation (FastGelu): vectors move by ~1e-3.
        fp16: convert the weights and operators to float16 (inputs and outputs stay float32); for GPUs.
    """

    optimization_level: int = 1
    transformer_fusions: bool = True
    gelu_approximation: bool = False
    fp16: bool = False

    def __post_init__(self) -> None:
        if self.optimization_level not in ORT_GRAPH_LEVELS:
            raise ConfigError(f"OnnxOptimizationConfig.optimization_level must be one of {list(ORT_GRAPH_LEVELS)}; "
                              f"got {self.optimization_level!r}.")
        for field in fields(self)[1:]:
            if not isinstance(getattr(self, field.name), bool):
                raise ConfigError(f"OnnxOptimizationConfig.{field.name} must be True or False; "
                                  f"got {getattr(self, field.name)!r}.")

    @classmethod
    def from_level(cls, level: str) -> OnnxOptimizationConfig:
        """optimum's levels: O1 basic graph optimizations; O2 extended ones and the transformer fusions; O3 O2 with
        the Gelu approximation; O4 O3 in float16 (GPU only)."""
        if level not in OPTIMIZATION_LEVELS:
            raise ConfigError(f"optimization_config {level!r} is not an optimization level; choose one of "
                              f"{', '.join(OPTIMIZATION_LEVELS)} or pass an OnnxOptimizationConfig.")
        return OPTIMIZATION_LEVELS[level]


OPTIMIZATION_LEVELS: dict[str, OnnxOptimizationConfig] = {
    "O1": OnnxOptimizationConfig(optimization_level=1, transformer_fusions=False),
    "O2": OnnxOptimizationConfig(optimization_level=2),
    "O3": OnnxOptimizationConfig(optimization_level=2, gelu_approximation=True),
    "O4": OnnxOptimizationConfig(optimization_level=2, gelu_approximation=True, fp16=True),
}


def export_optimized_onnx_model(
    model: Any,
    optimization_config: OnnxOptimizationConfig | OptimizationLevel,
    model_name_or_path: str | os.PathLike | None = None,
    push_to_hub: bool = False,
    create_pr: bool = False,
    file_suffix: str | None = None,
) -> Path:
    """Write an optimized ONNX graph of an Embedder or CrossEncoder (any backend) as ``onnx/model_<suffix>.onnx``.

    Args:
        model: an omnivec Embedder or CrossEncoder; its fp32 graph is exported first when its folder has none.
        optimization_config: ``"O1"``, ``"O2"``, ``"O3"``, ``"O4"`` (optimum's levels; O4 is float16 and needs
            onnxruntime-gpu: on a CPU-only install it raises ``ConfigError``) or an ``OnnxOptimizationConfig``.
        model_name_or_path: the folder to write into (``<folder>/onnx/``); default: the model's own folder.
        push_to_hub, create_pr: not supported here (raise ``ConfigError``); upload the folder yourself.
        file_suffix: default: the level (``model_O3.onnx``), or ``optimized`` for a config object.

    Returns:
        The written file. Load it with ``Embedder(folder, backend="onnx", model_kwargs={"file_name": path.name})``.
        A dual encoder (CLIP, SigLIP, CLAP) gets one optimized graph per tower (``onnx/text_model_O3.onnx``,
        ``onnx/image_model_O3.onnx``, each from its fp32 tower); the text tower's file is returned, the others lie
        beside it and load with the same ``file_name``. CLIP's and SigLIP's text towers fuse as ONNX Runtime's
        ``clip`` type and their image towers as ``vit``; CLAP's towers get the general optimizations only.
    """
    source = export_source(model, model_name_or_path, push_to_hub, create_pr, "export_optimized_onnx_model")
    if isinstance(optimization_config, str):
        settings = OnnxOptimizationConfig.from_level(optimization_config)
        file_suffix = file_suffix or optimization_config
    elif isinstance(optimization_config, OnnxOptimizationConfig):
        settings = optimization_config
    else:
        raise ConfigError(f"optimization_config must be one of {', '.join(OPTIMIZATION_LEVELS)} or an "
                          f"OnnxOptimizationConfig; got {type(optimization_config).__name__}.")
    if settings.fp16:
        _require_gpu_runtime()
    name = f"model_{file_suffix or 'optimized'}.onnx"
    towers = source.towers
    for tower in towers or [None]:
        path = source.target / ONNX_FOLDER / (name if tower is None else tower.file_name(name))
        modality = None if tower is None else tower.modality
        with fp32_onnx(source, tower=tower) as fp32:
            write_atomically(path, lambda staged, fp32=fp32, modality=modality:
                             optimize_graph(fp32, staged, source.config, settings, modality))
        logger.info("Wrote the optimized ONNX model %s.", path)
    return source.target / ONNX_FOLDER / (name if towers is None else towers[0].file_name(name))


def optimize_graph(source: Path, target: Path, hf_config: Any, settings: OnnxOptimizationConfig,
                   modality: str | None = None) -> None:
    """Optimize the ONNX file ``source`` into ``target`` with ONNX Runtime's transformer optimizer (``modality``:
    the graph is that tower of a dual encoder)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = str(getattr(hf_config, "model_type", ""))
    ort_type = ort_model_type(hf_config, modality)
    fusions = settings.transformer_fusions and ort_type is not None
    if settings.transformer_fusions and ort_type is None:
        logger.info("ONNX Runtime has no transformer fusions for model_type %r%s; applying its general graph "
                    "optimizations only.", model_type, "" if modality is None else f" ({modality} tower)")
    options = FusionOptions(ort_type or "bert")
    options.enable_embed_layer_norm = False  # its fused embedding op cannot be quantized (optimum's default too)
    options.enable_gelu_approximation = settings.gelu_approximation
    sub_config = getattr(hf_config, TOWER_CONFIGS.get(modality or "text", "text_config"), None) or hf_config
    heads, hidden = _size(sub_config, "num_attention_heads"), _size(sub_config, "hidden_size")
    if not (heads and hidden and hidden % heads == 0):
        heads = hidden = 0  # the optimizer reads them from the graph
    optimized = optimize_model(
        str(source), model_type=ort_type or "bert", num_heads=heads, hidden_size=hidden, optimization_options=options,
        opt_level=settings.optimization_level, use_gpu=settings.fp16, only_onnxruntime=not fusions)
    if settings.fp16:
        optimized.convert_float_to_float16(keep_io_types=True)
    optimized.save_model_to_file(str(target))


def ort_model_type(hf_config: Any, modality: str | None = None) -> str | None:
    """ONNX Runtime's transformer optimizer type for the model's graph (``modality``: that tower's), or None when it
    has none (general graph optimizations only)."""
    model_type = str(getattr(hf_config, "model_type", ""))
    return ORT_MODEL_TYPES.get(model_type) if modality is None else ORT_TOWER_TYPES.get((model_type, modality))


def _size(config: Any, name: str) -> int:
    """An attention size of the config, or 0 (the optimizer then reads it from the graph): also where the config
    has one per stage (CLAP's audio tower, a list)."""
    value = getattr(config, name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _require_gpu_runtime() -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise ConfigError("optimization_config 'O4' (fp16=True) makes a float16 graph for GPUs and needs "
                          "onnxruntime-gpu (CUDAExecutionProvider), which this install lacks; on a CPU use 'O3' "
                          "(or export_dynamic_quantized_onnx_model for int8).")
