"""OpenVINO backend: runs a text Transformer's Hugging Face model as a compiled OpenVINO graph on the CPU.

sentence-transformers' layout: ``<folder>/openvino/openvino_model.xml`` (+ ``.bin``), or the file named by
``model_kwargs={"file_name": ...}`` at the folder's root or under ``openvino/``. A missing default export is made on
first use from the torch model (or from ``onnx/model.onnx`` when the folder has one), saved there in fp32 and reused.
A dual encoder's towers are one graph each, named by ``base.tower_file_name`` (``openvino/image_openvino_model.xml``).
Only the graph runs here; tokenization, collation, pooling and heads stay the Transformer's and the model's.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput

from omnivec.errors import ConfigError, ModelLoadError
from omnivec.modules.backends.base import (
    BACKEND_TASKS,
    TOKEN_INPUTS,
    BackendOutput,
    SingleOutput,
    has_torch_weights,
    tower_file_name,
)
from omnivec.modules.backends.towers import Tower, TowerOutput, tower_inputs

logger = logging.getLogger(__name__)

EXPORT_DIR = "openvino"
DEFAULT_FILE = "openvino_model.xml"
# A folder without torch weights is exported from its ONNX graph. With weights, the torch model is traced: OpenVINO's
# PyTorch frontend makes a faster graph than the dynamo ONNX export converts to (all-MiniLM-L6-v2, int8, 2 threads:
# 112-122 vs 91-94 texts/s) and one that quantizes more faithfully (mean cosine to fp32 0.9965 vs 0.9944).
ONNX_SOURCE = Path("onnx") / "model.onnx"
DEVICE = "CPU"



class OpenVINOModel(torch.nn.Module):
    """A compiled OpenVINO graph called like the Hugging Face model it was exported from: token tensors in,
    ``last_hidden_state`` (feature extraction) or ``logits`` (classification) out, float32 on the CPU.

    A ``torch.nn.Module`` without parameters, so it can stand where the torch model stood (``.eval()``,
    ``.to("cpu")`` are no-ops; the model's device reads as the CPU)."""

    def __init__(self, compiled: Any, config: Any, task: str, path: Path, *, tower: Tower | None = None) -> None:
        super().__init__()
        self.config = config
        self.task = task
        self.path = path
        self.tower = tower  # a dual encoder's one modality: called with its features, returns BackendOutput.embeds
        self.compiled = compiled  # the OpenVINO CompiledModel (its properties: compiled.get_property)
        self._field = BACKEND_TASKS[task] if tower is None else tower.output_name
        self._output = _output_port(compiled, self._field, path)
        self.input_names = [port.get_any_name() for port in compiled.inputs]
        self._dtypes = {port.get_any_name(): port.get_element_type().to_dtype() for port in compiled.inputs}
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()  # one infer request, reused: calls from several threads take turns

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, return_dict: bool = True,
                **inputs: Any) -> BaseModelOutput | SequenceClassifierOutput | BackendOutput:
        """Run the graph on the inputs it declares; ``attention_mask`` (ones), ``token_type_ids`` (zeros) and
        ``position_ids`` (0, 1, ...: the torch model's default) may be left out. Other keyword arguments (``return_dict``, inputs the graph does not take) are ignored."""
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids, **inputs}
        feed = self._feed({k: v for k, v in given.items() if isinstance(v, torch.Tensor)})
        with self._lock:
            results = self._request.infer(feed, share_inputs=False, share_outputs=False)
            values = results[self._output]
        output = torch.from_numpy(values).to(torch.float32)
        if self.tower is not None:
            return BackendOutput(embeds=output)
        if self.task == "sequence-classification":
            return SequenceClassifierOutput(logits=output)
        return BaseModelOutput(last_hidden_state=output)

    def _feed(self, given: Mapping[str, torch.Tensor]) -> dict[str, Any]:
        if "input_ids" not in given and "input_ids" in self.input_names:
            raise ModelLoadError(f"The OpenVINO model {str(self.path)!r} needs input_ids; got {sorted(given)}.")
        shape = given["input_ids"].shape if "input_ids" in given else None
        feed: dict[str, Any] = {}
        for name in self.input_names:
            tensor = given.get(name)
            if tensor is None and shape is not None and name == "attention_mask":
                tensor = torch.ones(shape, dtype=torch.long)
            elif tensor is None and shape is not None and name == "token_type_ids":
                tensor = torch.zeros(shape, dtype=torch.long)
            elif tensor is None and shape is not None and name == "position_ids":  # the torch model's default
                tensor = torch.arange(shape[-1], dtype=torch.long).expand(shape)
            elif tensor is None:
                raise ModelLoadError(f"The OpenVINO model {str(self.path)!r} takes an input {name!r} that the "
                                     f"features do not give (they give {sorted(given)}).")
            # The dtype the graph declares: int64 tokens (int32 in a graph made elsewhere), float32 features.
            feed[name] = tensor.detach().cpu().numpy().astype(self._dtypes[name], copy=False)
        return feed

    def __repr__(self) -> str:
        return f"OpenVINOModel({self.path.name}, task={self.task}, inputs={self.input_names})"


def load_openvino(folder: Path, model_loader: Callable[[], torch.nn.Module], config: Any, task: str,
                  file_name: str | None = None, provider: str | None = None, input_names: Sequence[str] | None = None,
                  *, ov_config: Mapping[str, Any] | str | Path | None = None,
                  tower: Tower | None = None) -> OpenVINOModel:
    """The OpenVINO model of a model folder, compiled for the CPU.

    Args:
        folder: the model folder (its ``openvino/`` subfolder holds exports).
        model_loader: builds the Hugging Face torch model; called only when an export must be made.
        config: the transformers config, kept as the returned model's ``config``.
        task: ``feature-extraction`` or ``sequence-classification``.
        file_name: an existing export (``model_kwargs["file_name"]``), at the folder's root or under
            ``openvino/``; default ``openvino_model.xml``, exported on first use when missing.
        provider: unused (ONNX Runtime's execution provider); OpenVINO runs on the CPU.
        input_names: the tokenizer's inputs; an export takes those of them its model accepts
            (default: input_ids, attention_mask, token_type_ids).
        ov_config: OpenVINO properties (a dict, or a JSON file of one) over the defaults: fp32 inference,
            ``torch.get_num_threads()`` threads.
        tower: one modality's graph of a dual encoder: its files are prefixed with the modality
            (``openvino/image_openvino_model.xml``, ``image_<file_name>``), made from ``onnx/image_model.onnx``
            when present, else traced from the tower's method on the processor's example features.
    """
    del provider
    if task not in BACKEND_TASKS:
        raise ConfigError(f"backend 'openvino' runs transformer_task {sorted(BACKEND_TASKS)}; got {task!r}.")
    properties = _compile_properties(ov_config)
    import openvino as ov

    modality = None if tower is None else tower.modality
    path = _find_export(folder, file_name, modality)
    if path is not None:
        model = _read(ov, path)
    else:
        path = folder / EXPORT_DIR / tower_file_name(DEFAULT_FILE, modality)
        model = (_export(ov, folder, model_loader, task, input_names) if tower is None
                 else _export_tower(ov, folder, model_loader, tower))
        _save(ov, model, path)
    try:
        compiled = ov.Core().compile_model(model, DEVICE, properties)
    except RuntimeError as exc:
        raise ModelLoadError(f"OpenVINO could not compile {str(path)!r} for the {DEVICE}: {exc}") from None
    return OpenVINOModel(compiled, config, task, path, tower=tower)


def _compile_properties(ov_config: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    """fp32 (the CPU plugin would pick bf16 on CPUs that have it) on torch's thread count (torch and OpenVINO in one
    process then share the cores rather than each taking all of them), under the caller's properties."""
    properties: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": torch.get_num_threads()}
    if ov_config is None:
        return properties
    if isinstance(ov_config, (str, Path)):
        try:
            loaded = json.loads(Path(ov_config).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"ov_config {str(ov_config)!r} should be a dict or a JSON file of OpenVINO properties: "
                              f"{exc}") from None
        ov_config = loaded
    if not isinstance(ov_config, Mapping):
        raise ConfigError(f"ov_config should be a dict of OpenVINO properties, got {type(ov_config).__name__}.")
    properties.update({str(k): v for k, v in ov_config.items()})
    return properties


def _find_export(folder: Path, file_name: str | None, modality: str | None = None) -> Path | None:
    """The export to load, where sentence-transformers looks: ``<file_name>``, then ``openvino/<file_name>`` (a
    tower's: ``<modality>_<file_name>``). None when the default file is missing (it is then made); a named file that
    is missing is an error."""
    name = tower_file_name(file_name or DEFAULT_FILE, modality)
    for candidate in (folder / name, folder / EXPORT_DIR / name):
        if candidate.is_file():
            return candidate
    if file_name is None:
        return None
    found = sorted(p.relative_to(folder).as_posix() for p in folder.glob("**/*openvino*.xml"))
    raise ModelLoadError(f"No OpenVINO model {name!r} in {str(folder)!r} (looked at the root and under "
                         f"{EXPORT_DIR}/); OpenVINO files there: {found or 'none'}.")


def _read(ov: Any, path: Path) -> Any:
    if not path.with_suffix(".bin").is_file():
        raise ModelLoadError(f"The OpenVINO model {str(path)!r} has no weights file {path.with_suffix('.bin').name!r} "
                             "next to it.")
    try:
        return ov.Core().read_model(str(path))
    except RuntimeError as exc:
        raise ModelLoadError(f"OpenVINO could not read {str(path)!r}: {exc}") from None


def _export(ov: Any, folder: Path, model_loader: Callable[[], torch.nn.Module], task: str,
            input_names: Sequence[str] | None) -> Any:
    """An OpenVINO model of the torch model, traced on a padded example (so the attention mask is part of the graph)
    with dynamic batch and sequence dimensions; of the folder's ONNX export when it has no torch weights."""
    onnx_file = folder / ONNX_SOURCE
    if onnx_file.is_file() and not has_torch_weights(folder):
        try:
            return ov.convert_model(str(onnx_file))
        except Exception as exc:  # the ONNX frontend raises several types for graphs it cannot read
            raise ModelLoadError(f"OpenVINO could not convert {str(onnx_file)!r}: {type(exc).__name__}: {exc}") from None
    field = BACKEND_TASKS[task]
    torch_model = model_loader().eval()
    wrapper = SingleOutput(torch_model, field)
    example = _example_inputs(torch_model, input_names)
    try:
        model = _trace(ov, wrapper, example)
        if _gives_nan(ov, model, example):
            model = _trace_eager(ov, torch_model, wrapper, example)
    except Exception as exc:  # tracing and the PyTorch frontend raise many types for models they cannot convert
        raise ModelLoadError(f"OpenVINO could not convert the {type(torch_model).__name__} of {str(folder)!r}: "
                             f"{type(exc).__name__}: {exc}") from None
    return model


def _export_tower(ov: Any, folder: Path, model_loader: Callable[[], torch.nn.Module], tower: Tower) -> Any:
    """One tower's OpenVINO model: traced from its method on the processor's example features; of its ONNX export
    (``onnx/<modality>_model.onnx``) when the folder has no torch weights."""
    onnx_file = folder / ONNX_SOURCE.parent / tower.file_name(ONNX_SOURCE.name)
    if onnx_file.is_file() and not has_torch_weights(folder):
        try:
            return ov.convert_model(str(onnx_file))
        except Exception as exc:  # the ONNX frontend raises several types for graphs it cannot read
            raise ModelLoadError(f"OpenVINO could not convert {str(onnx_file)!r} (the {tower.modality} tower's ONNX "
                                 f"export): {type(exc).__name__}: {exc}") from None
    from torch.jit._trace import TracerWarning  # public as torch.jit.TracerWarning, unlisted in its stubs

    torch_model = model_loader().float().eval()
    inputs = tower_inputs(torch_model, tower)
    wrapper = TowerOutput(torch_model, tower, list(inputs))
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The trace fixes Python branches on shapes (CLAP's spectrogram size): fixed by the processor anyway.
            warnings.simplefilter("ignore", TracerWarning)
            model = ov.convert_model(wrapper, example_input=tuple(inputs.values()))
    except Exception as exc:  # tracing and the PyTorch frontend raise many types for models they cannot convert
        raise ModelLoadError(f"OpenVINO could not convert {tower.describe(torch_model)} of {str(folder)!r}: "
                             f"{type(exc).__name__}: {exc}") from None
    for port, name in zip(model.inputs, inputs, strict=True):  # traced positional inputs are named by number
        port.get_tensor().set_names({name})
    model.output(0).get_tensor().set_names({tower.output_name})
    return model


def _trace_eager(ov: Any, torch_model: torch.nn.Module, wrapper: torch.nn.Module, example: dict[str, torch.Tensor]) -> Any:
    """The trace with eager attention. A left-padded row under a causal mask has query positions that attend to
    nothing: torch's SDPA returns zeros there, OpenVINO's NaN, which then reaches every token through the values.
    Eager attention masks with a finite minimum, so such rows stay finite (and no real token reads them)."""
    from transformers import PreTrainedModel

    if not isinstance(torch_model, PreTrainedModel):
        raise ValueError("its graph gives NaN on a left-padded batch, and only a transformers model can switch to "
                         "eager attention")
    previous = torch_model.config._attn_implementation or "sdpa"  # set on every loaded model; None only before
    torch_model.set_attn_implementation("eager")
    try:
        return _trace(ov, wrapper, example)
    finally:
        torch_model.set_attn_implementation(previous)


def _trace(ov: Any, wrapper: torch.nn.Module, example: dict[str, torch.Tensor]) -> Any:
    with torch.no_grad():
        model = ov.convert_model(wrapper, example_input=example)
    model.output(0).get_tensor().set_names({wrapper.field})  # the traced output's name is a node number
    return model


def _gives_nan(ov: Any, model: Any, example: dict[str, torch.Tensor]) -> bool:
    compiled = ov.Core().compile_model(model, DEVICE, {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": 1})
    values = compiled({name: tensor.numpy() for name, tensor in example.items()})[compiled.output(0)]
    return bool(np.isnan(values).any())




def _example_inputs(model: torch.nn.Module, input_names: Sequence[str] | None) -> dict[str, torch.Tensor]:
    """Two rows, padded on the left and on the right: a batch without padding lets transformers skip the mask when
    tracing, and the left padding shows whether the graph keeps rows that attend to nothing finite."""
    import inspect

    accepted = set(inspect.signature(model.forward).parameters)
    wanted = set(input_names) if input_names is not None else set(TOKEN_INPUTS)
    names = [n for n in TOKEN_INPUTS if n in accepted and (n in wanted or n in ("input_ids", "attention_mask"))]
    config = getattr(model, "config", None)
    vocab = int(getattr(config, "vocab_size", 0) or 100)
    pad = getattr(config, "pad_token_id", None)
    pad = 0 if pad is None else int(pad)
    input_ids = (torch.arange(2 * 8, dtype=torch.long).reshape(2, 8) + 3) % vocab
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :3] = 0
    attention_mask[1, 5:] = 0
    input_ids[attention_mask == 0] = pad
    tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": torch.zeros_like(input_ids)}
    return {name: tensors[name] for name in names}


def _save(ov: Any, model: Any, path: Path) -> None:
    """Write the export next to the model (xml and bin moved into place together, the xml last, so a reader never
    finds a half-written pair); a folder that cannot be written keeps the export in memory only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=".export-") as tmp:
            staged = Path(tmp) / path.name
            ov.save_model(model, str(staged), compress_to_fp16=False)  # save_model halves the weights by default
            os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
            os.replace(staged, path)
    except OSError as exc:
        logger.warning("Could not save the OpenVINO export to %s (%s); it is used from memory this time.", path, exc)
        return
    logger.info("Exported the model to OpenVINO: %s (reused from now on).", path)


def _output_port(compiled: Any, field: str, path: Path) -> Any:
    """The graph output named ``field``; a graph with one output and no such name uses that output."""
    outputs = list(compiled.outputs)
    for port in outputs:
        if field in port.get_names():
            return port
    if len(outputs) == 1:
        return outputs[0]
    names = [sorted(port.get_names()) for port in outputs]
    raise ModelLoadError(f"The OpenVINO model {str(path)!r} has no output named {field!r}; its outputs: {names}.")
