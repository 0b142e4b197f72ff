"""ONNX Runtime backend: a Transformer's network as ``onnx/model.onnx`` (sentence-transformers' layout), exported
with ``torch.onnx.export(dynamo=True)`` on first use when the folder has none."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from omnivec.errors import ModelLoadError
from omnivec.modules.backends.base import (
    BACKEND_TASKS,
    BackendOutput,
    BackendSettings,
    ModelLoader,
    SingleOutput,
    export_inputs,
)
from omnivec.modules.backends.towers import Tower, TowerOutput, tower_inputs

logger = logging.getLogger(__name__)

SUBFOLDER = "onnx"
DEFAULT_FILE = "model.onnx"
DEFAULT_PROVIDER = "CPUExecutionProvider"
# ONNX Runtime's input types -> the numpy dtype fed (token ids, pixels and audio features, CLAP's is_longer flags).
_INPUT_DTYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
                 "tensor(bool)": np.bool_}


def onnx_path(folder: Path, file_name: str | None) -> Path:
    """Where the ONNX file of a model folder is: ``onnx/<file_name>`` (``onnx/model.onnx`` by default)."""
    name = file_name or DEFAULT_FILE
    if name.startswith(f"{SUBFOLDER}/"):  # sentence-transformers accepts the name with its folder
        name = name[len(SUBFOLDER) + 1:]
    return folder / SUBFOLDER / name


class OnnxModel:
    """An ONNX Runtime session with the call a Transformer makes: feature tensors in (those the graph declares), a
    ``BackendOutput`` out (``embeds`` for a tower, else the task's field)."""

    def __init__(self, path: Path, config: Any, task: str, provider: str | None, *, tower: Tower | None = None) -> None:
        import onnxruntime as ort

        self.config = config
        self.path = path
        self._field = "embeds" if tower is not None else BACKEND_TASKS[task]
        options = ort.SessionOptions()
        # The process's torch thread count: collation and pooling share the cores, never oversubscribed.
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=[provider or DEFAULT_PROVIDER])
        except Exception as exc:  # onnxruntime raises its own types for a bad file or provider
            raise ModelLoadError(f"ONNX Runtime could not load {str(path)!r}: {type(exc).__name__}: {exc}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self._dtypes = {i.name: _INPUT_DTYPES.get(i.type, np.int64) for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        wanted = tower.output_name if tower is not None else self._field
        self._output_name = wanted if wanted in outputs else outputs[0]

    def __call__(self, **inputs: torch.Tensor) -> BackendOutput:
        feed: dict[str, np.ndarray] = {}
        for name in self.input_names:
            if name in inputs:
                feed[name] = inputs[name].detach().cpu().numpy().astype(self._dtypes[name], copy=False)
            elif name == "token_type_ids" and "input_ids" in inputs:  # exported with type ids, called without
                feed[name] = np.zeros_like(inputs["input_ids"].cpu().numpy(), dtype=np.int64)
            else:
                raise ModelLoadError(f"The ONNX model {str(self.path)!r} needs input {name!r}, which the features "
                                     f"do not give (they give {', '.join(sorted(inputs))}).")
        (result,) = self.session.run([self._output_name], feed)
        tensor = torch.from_numpy(np.asarray(result, dtype=np.float32))
        return BackendOutput(**{self._field: tensor})

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name})"


def load_onnx(folder: Path, model_loader: ModelLoader, config: Any, task: str, tokenizer: Any,
              settings: BackendSettings, *, tower: Tower | None = None) -> OnnxModel:
    """The ONNX model of ``folder`` (of one ``tower`` of a dual encoder: ``onnx/<modality>_<file_name>``), exported
    from ``model_loader()`` first when the file is missing (or ``settings.export``). An explicitly named file that
    is missing is an error, not an export."""
    name = settings.file_name or DEFAULT_FILE
    path = onnx_path(folder, name if tower is None else tower.file_name(name))
    if settings.export or not path.is_file():
        if settings.file_name is not None and not settings.export:
            present = sorted(p.name for p in (folder / SUBFOLDER).glob("*.onnx"))
            raise ModelLoadError(f"model_kwargs file_name {settings.file_name!r}: no {str(path)!r}; the folder's "
                                 f"ONNX files are {present or 'none'} (pass export=True to export it).")
        model = model_loader()
        inputs = export_inputs(tokenizer) if tower is None else tower_inputs(model, tower)
        export_onnx(model, inputs, task, path, tower=tower)
        logger.info("Exported %s to %s (reused next time).", folder, path)
    return OnnxModel(path, config, task, settings.provider, tower=tower)


def export_onnx(model: torch.nn.Module, inputs: dict[str, torch.Tensor], task: str, path: Path, *,
                tower: Tower | None = None) -> None:
    """Export ``model`` (float32, CPU) to ``path`` with dynamic batch and sequence axes; with ``tower``, the graph of
    that one modality (its method on ``inputs``, output ``<modality>_embeds``)."""
    model = model.float().cpu().eval()
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dims = {"batch": batch, "sequence": sequence}
    if tower is None:
        field = BACKEND_TASKS[task]
        wrapper: torch.nn.Module = SingleOutput(model, field).eval()
        args: tuple[Any, ...] = ()
        kwargs: dict[str, torch.Tensor] | None = inputs
        shapes: Any = {name: {0: batch, 1: sequence} for name in inputs}
        what = type(model).__name__
    else:
        field = tower.output_name
        wrapper = TowerOutput(model, tower, list(inputs)).eval()
        args, kwargs = tuple(inputs.values()), None
        axes = {axis: dims[label] for axis, label in tower.dynamic_axes().items()}
        shapes = (tuple({a: d for a, d in axes.items() if a < t.dim()} for t in inputs.values()),)
        what = tower.describe(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with torch.no_grad(), _quiet_exporter():
            program = torch.onnx.export(wrapper, args, kwargs=kwargs, dynamo=True, dynamic_shapes=shapes,
                                        input_names=list(inputs), output_names=[field], verbose=False)
    except Exception as exc:  # the exporter raises many types for an unsupported operation
        raise ModelLoadError(f"Could not export {what} to ONNX: {type(exc).__name__}: {exc}") from None
    if program is None:
        raise ModelLoadError(f"torch.onnx.export returned no program for {what}.")
    program.save(str(path), external_data=False)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter's warnings (absent torchvision ops, axis renames, deprecations) say nothing about this export;
    its errors still raise. The one INFO line of ``load_onnx`` reports it."""
    exporter_logger = logging.getLogger("torch.onnx")
    level = exporter_logger.level
    exporter_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        exporter_logger.setLevel(level)
