"""is_sentence_transformer_model: whether a folder or Hub repository holds a sentence-transformers model."""

from __future__ import annotations

from pathlib import Path


def is_sentence_transformer_model(
    model_name_or_path: str,
    token: bool | str | None = None,
    cache_folder: str | None = None,
    revision: str | None = None,
    local_files_only: bool = False,
) -> bool:
    """True when ``model_name_or_path`` (a folder, or a Hub id) has a ``modules.json``.

    A local folder is answered from the disk. For a Hub id, "no such file / repository / cached copy" is False;
    other Hub errors (authentication, rate limits, the network) propagate, so a flaky Hub is not taken for "no".
    """
    folder = Path(model_name_or_path)
    if (folder / "modules.json").is_file():
        return True
    if folder.is_dir():
        return False
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError

    try:
        hf_hub_download(model_name_or_path, "modules.json", revision=revision, library_name="omnivec", token=token,
                        cache_dir=cache_folder, local_files_only=local_files_only)
    except (EntryNotFoundError, HFValidationError, LocalEntryNotFoundError):
        return False
    return True
