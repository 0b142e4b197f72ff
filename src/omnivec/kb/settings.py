"""A KB named on the command line (``--kb``, ``--config``) resolved to its folder and its settings: what
``omnivec index``, ``omnivec search`` and ``omnivec serve --kb`` all start from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from omnivec.errors import InputError
from omnivec.kb.state_dir import DEFAULT_KB, kb_location

if TYPE_CHECKING:
    from omnivec.kb.config import KBConfig
    from omnivec.loading.options import BackendName


def kb_settings(kb: str | None, config_path: str | None, existing: bool = False,
                backend: BackendName | None = None) -> tuple[Path, KBConfig]:
    """The KB folder and its config (``--config``, else ``<kb>/kb.toml``), the store set by a URI ``kb``.
    ``existing``: the KB must have been indexed (a search), else an error says how to index it. ``backend``: every
    model on it, whatever the config says (``--backend``)."""
    from omnivec.kb.config import load_config

    kb_dir, uri = kb_location(kb)
    if existing and not (kb_dir / "manifest.sqlite").is_file():
        name = kb or DEFAULT_KB
        where = f" (its local state would be in {kb_dir})" if uri else ""
        raise InputError(f"{name!r} is not a knowledge base yet{where}: run `omnivec index PATH --kb {name}`.")
    config = load_config(kb_dir, config_path)
    if uri:
        config.store = uri
    if backend is not None:
        config = config.with_backend(backend)
    return kb_dir, config
