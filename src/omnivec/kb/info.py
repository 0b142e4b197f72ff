"""``omnivec kb info``: what a KB holds, read without loading a model or writing anything: its spaces (kind, model,
records, records per payload ``modality``), its store, its files by manifest state, and its size on disk."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from omnivec.kb.config import LEXICAL_SPACE, SPACE_NAMES
from omnivec.kb.manifest import recorded_models, state_counts
from omnivec.kb.settings import kb_settings
from omnivec.kb.stores.uri import open_store, store_scheme
from omnivec.printing import printable

STATE_FILES = ("manifest.sqlite", "manifest.sqlite-wal", "kb.toml", "thumbs")


def kb_info(kb: str | None, config_path: str | None = None) -> dict[str, Any]:
    """The facts ``omnivec kb info --json`` prints, as a dict."""
    kb_dir, config = kb_settings(kb, config_path, existing=True)
    uri = config.store_uri(kb_dir)
    recorded = recorded_models(kb_dir / "manifest.sqlite")
    spaces: dict[str, Any] = {}
    with open_store(uri) as store:
        names = [n for n in SPACE_NAMES if n in config.spaces or n in store.collections()
                 or (n == LEXICAL_SPACE and config.lexical.enabled)]
        for name in names:
            spec = store.spec(name)
            model = f"BM25 ({config.lexical.language})" if name == LEXICAL_SPACE else config.spaces.get(name, "")
            spaces[name] = {
                "kind": spec.kind if spec else None, "dim": spec.dim if spec and spec.kind == "dense" else None,
                "model": model, "indexed_with": recorded.get(name, model if spec else ""),
                "records": store.count(name),
                "modalities": {str(k): v for k, v in sorted(store.value_counts(name, "modality").items())},
            }
    scheme, rest = store_scheme(uri)
    local = scheme not in ("http", "https") and rest != ":memory:"
    return {"kb": str(kb_dir), "store": uri, "spaces": spaces,
            "files": state_counts(kb_dir / "manifest.sqlite"),
            "size": {"store": folder_bytes(Path(os.path.expanduser(rest))) if local else "server",
                     "state": sum(folder_bytes(kb_dir / name) for name in STATE_FILES)}}


def folder_bytes(path: Path) -> int:
    """Bytes of the file at ``path``, or of every file under the folder (0 if missing)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def human(size: int | str) -> str:
    if isinstance(size, str):
        return size
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def run_info(kb: str | None, config_path: str | None, as_json: bool) -> int:
    info = kb_info(kb, config_path)
    if as_json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"KB {printable(info['kb'])}\nstore {printable(info['store'])}\nspaces:")
    for name, space in info["spaces"].items():
        kind = f"{space['dim']}-d" if space["kind"] == "dense" else (space["kind"] or "not in the store")
        modalities = ", ".join(f"{m} {n}" for m, n in space["modalities"].items())
        print(f"  {name:<8} {kind:<8} {space['records']:>9} records  model {printable(space['model'])}"
              + (f"  ({modalities})" if modalities else ""))
    files = info["files"]
    print(f"files: {files['done']} done, {files['failed']} failed, {files['pending']} pending")
    size = info["size"]
    print(f"size: store {human(size['store'])}, manifest and thumbnails {human(size['state'])}")
    return 0
