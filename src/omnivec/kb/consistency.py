"""Keeping the manifest and the vector store in step, checked at the start of every index run: a space whose model
changed is re-embedded (old and new vectors never mix), files whose vectors went missing (the store's data deleted)
are re-indexed, and vectors of files the manifest does not know (manifest.sqlite lost) are deleted. Each repair is
reported in one message."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from omnivec.kb.manifest import Manifest, record_counts

logger = logging.getLogger(__name__)

SAMPLE_BYTES = 1 << 20  # of each model file's head and tail, hashed into the model's identity
EXPORT_FOLDERS = ("onnx", "openvino")


def model_identity(source: str) -> str:
    """A fingerprint of the model at ``source`` (a folder, or a Hub id in the local cache): each file's name and
    size, and a hash of its first and last MiB. Another checkpoint (retrained, another revision) differs in these;
    the same files moved or copied elsewhere do not. ``name:<source>`` where it is not a local folder (the files
    are unknown). Raises ``OSError`` where a file cannot be listed or read."""
    from omnivec.loading.hub import HubOptions, resolve_model_dir
    from omnivec.modules.backends.base import has_torch_weights

    try:
        folder = Path(resolve_model_dir(source, HubOptions(local_files_only=True)))
    except Exception:  # loaded another way (a package's copy): the name is all there is
        return f"{NAME_ONLY}{source}"
    digest = hashlib.blake2b(digest_size=16)
    # ONNX/OpenVINO exports made from the torch weights (on first use of a backend) say nothing new about the model;
    # only a folder without torch weights is identified by them.
    derived = EXPORT_FOLDERS if has_torch_weights(folder) else ()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or relative.parts[0] in derived:
            continue
        size = path.stat().st_size
        digest.update(f"{relative.as_posix()}\0{size}\0".encode())
        with open(path, "rb") as f:
            digest.update(f.read(SAMPLE_BYTES))
            if size > SAMPLE_BYTES:
                f.seek(max(SAMPLE_BYTES, size - SAMPLE_BYTES))
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()


NAME_ONLY = "name:"  # an identity that knows the model's name, not its files


def _known(identity: str) -> bool:
    """Whether ``identity`` fingerprints files ("" where they could not be read; a name where not local)."""
    return bool(identity) and not identity.startswith(NAME_ONLY)


def _changed(before: tuple[str, str], space: Any, identity: str) -> bool:
    """Whether the model that made a space's vectors (``before``: as configured, identity) is not ``space``'s.
    Files against files where both are known; where either is not, the model's name decides: a model that became
    resolvable locally (a name before, a fingerprint now) is not taken for another."""
    if _known(before[1]) and _known(identity):
        return before[1] != identity
    if before[1].startswith(NAME_ONLY):
        return before[1] != f"{NAME_ONLY}{space.source}"
    return before[0] != space.model_id


def check_models(manifest: Manifest, store: Any, spaces: list[Any]) -> tuple[list[str], list[str]]:
    """Re-embed every space whose model is not the one its vectors were made with: its collection is dropped (the
    new model may have another dimension) and the files that had vectors in it are marked for re-indexing.
    Returns the repairs made and notes (a model whose files could not be read, judged by its name)."""
    recorded = manifest.space_models()
    messages, notes = [], []
    for space in spaces:
        try:  # here only, not when loading spaces: search and the server never hash model files
            identity = space.identity()
        except OSError as exc:
            identity = ""
            notes.append(f"the {space.name} space's model files could not be read ({exc}): whether its model "
                         f"changed is judged by its name, {space.model_id!r}.")
        before = recorded.get(space.name)
        if before is not None and _changed(before, space, identity):
            entries = manifest.entries()
            files = [path for path, entry in entries.items()
                     if entry.state == "done" and (record_counts(entry) or {space.name: 1}).get(space.name, 0) > 0]
            store.drop_collection(space.name)  # first: a run killed after it still sees the old identity
            messages.append(f"the {space.name} space's model changed ({before[0]!r} -> {space.model_id!r}): its "
                            f"vectors were deleted and its {len(files)} files are re-embedded.")
            manifest.set_space_model(space.name, space.model_id, identity, pending=files)
        elif before is None:
            manifest.set_space_model(space.name, space.model_id, identity)
        else:  # the same model, perhaps under another name or better known now: what is known is kept
            best = identity if _known(identity) or (identity and not _known(before[1])) else before[1]
            if (space.model_id, best) != before:
                manifest.set_space_model(space.name, space.model_id, best)
    return messages, notes


def check_store(manifest: Manifest, store: Any, spaces: list[Any], kb_dir: Path) -> list[str]:
    """Compare, per space, the vectors the manifest's done files should have with the store's count; where they
    differ, look file by file: vectors of files the manifest does not know are deleted, done files whose vectors
    are missing or incomplete are marked for re-indexing."""
    from omnivec.kb.record_ids import file_key

    entries = manifest.entries()
    unknown = [path for path, entry in entries.items() if entry.state == "done" and record_counts(entry) is None]
    if unknown:  # a manifest from before per-space counts: take them from the store, once
        per_space = {space.name: store.file_counts(space.name) for space in spaces}
        manifest.set_records({path: {name: counts[path] for name, counts in per_space.items() if path in counts}
                              for path in unknown})
        entries = manifest.entries()
    orphans: set[str] = set()
    missing: set[str] = set()
    for space in spaces:
        expected = {path: n for path, entry in entries.items() if entry.state == "done"
                    and (n := (record_counts(entry) or {}).get(space.name, 0)) > 0}
        if store.count(space.name) == sum(expected.values()):  # the cheap check, every run
            continue
        stored = store.file_counts(space.name)
        orphans.update(path for path in stored if path not in entries)
        missing.update(path for path, n in expected.items() if stored.get(path, 0) != n)
    messages = []
    if orphans:
        for name in store.collections():
            store.delete_files(name, sorted(orphans))
        keys = {file_key(path) for path in orphans}
        for thumbnail in (kb_dir / "thumbs").iterdir():
            if thumbnail.name.split("-", 1)[0] in keys:
                thumbnail.unlink(missing_ok=True)
        messages.append(f"the vector store held vectors of {len(orphans)} files the manifest does not know "
                        "(manifest.sqlite lost or replaced?): deleted; those still present are indexed again.")
    if missing:
        manifest.mark_pending(sorted(missing))
        messages.append(f"{len(missing)} indexed files have missing or incomplete vectors in the store (its data "
                        "deleted or damaged?): they are indexed again.")
    return messages

