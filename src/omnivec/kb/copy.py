"""``omnivec kb copy``: a KB moved to another store without re-embedding (LanceDB to Qdrant and back).

Every collection of the KB's spaces is read page by page with its vectors and written at the destination, which
builds its own full-text data for the lexical space (LanceDB's FTS index, Qdrant's BM25 sparse vectors) from the
records' text. Then the thumbnails, a kb.toml whose ``store`` names the destination, a verification (counts per
collection, a sample of records equal at both ends: :mod:`~omnivec.kb.copy_verify`) and, last, the manifest: a
destination with a manifest is complete.

Resumable: the destination keeps ``copy-source.json`` (which KB it is being copied from) until the copy is done; a
re-run after a kill finds it, asks the destination which ids of each page it already has and writes the rest.
A destination that holds another KB, or records of its own, is refused before anything is written."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omnivec.errors import InputError
from omnivec.kb.config import CONFIG_FILE, SPACE_NAMES, load_config
from omnivec.kb.copy_verify import IdSample, difference, verify_collection
from omnivec.kb.settings import kb_settings
from omnivec.kb.state_dir import kb_location, normalize_store_uri
from omnivec.kb.stores.base import CollectionSpec, VectorStore
from omnivec.kb.stores.uri import open_store, store_scheme

MARKER = "copy-source.json"
MANIFEST = "manifest.sqlite"
PAGE = 1024  # records read, checked at the destination and written together
SAMPLE = 200  # records per collection compared at both ends


@dataclass
class CopyReport:
    """What a copy did: records per collection at the destination, those written by this run, the records
    compared per collection, and the seconds it took."""

    source: str
    target: str
    records: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    verified: dict[str, int] = field(default_factory=dict)
    thumbnails: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"copied {self.source} -> {self.target} in {self.seconds:.1f} s"]
        for name, count in self.records.items():
            lines.append(f"  {name:<8} {count:>9} records ({self.written[name]} written now, "
                         f"{self.verified[name]} compared)")
        lines.append(f"  {self.thumbnails} thumbnails; counts equal in every collection")
        return "\n".join(lines)


@dataclass(frozen=True)
class KBPlace:
    """A KB's local folder (manifest, thumbnails, kb.toml) and its store URI."""

    folder: Path
    store: str

    @property
    def key(self) -> str:
        """One spelling of the store, to tell two places apart."""
        return canonical_store(self.store)


def canonical_store(uri: str) -> str:
    """``uri`` with its scheme spelled out and a local path made absolute."""
    scheme, rest = store_scheme(uri)
    if scheme in ("", "lancedb"):
        return f"lancedb://{os.path.abspath(os.path.expanduser(rest))}"
    if scheme == "qdrant+path":
        uri = f"qdrant://{rest}"
    return normalize_store_uri(uri)


def run_copy(kb: str, to: str, config_path: str | None, show_progress: bool | None = None) -> int:
    report = copy_kb(kb, to, config_path, show_progress)
    print(report.summary(), file=sys.stderr)
    return 0


def copy_kb(kb: str, to: str, config_path: str | None = None, show_progress: bool | None = None,
            page: int = PAGE, sample: int = SAMPLE) -> CopyReport:
    """Copy the KB ``kb`` (its kb.toml, or ``config_path``) to ``to`` (a folder: LanceDB in ``<to>/vectors``; or a
    Qdrant URI), resuming a copy that was stopped. Raises InputError for a destination that cannot take it."""
    from omnivec.kb.lock import index_lock

    started = time.perf_counter()
    src_dir, config = kb_settings(kb, config_path, existing=True)
    source = KBPlace(src_dir, config.store_uri(src_dir))
    dest_dir, dest_uri = kb_location(to)
    target = KBPlace(dest_dir, dest_uri or str(dest_dir / "vectors"))
    if source.key == target.key or src_dir.resolve() == dest_dir.resolve():
        raise InputError(f"--kb {kb!r} and --to {to!r} are the same KB ({source.key}): name another "
                         "folder or store URI to copy to.")
    report = CopyReport(source.key, target.key)
    with ExitStack() as stack:
        stack.enter_context(index_lock(src_dir))  # no index run changes the source meanwhile
        src_store = stack.enter_context(open_store(source.store))
        specs = _specs(src_store)
        _check_sparse(specs, target, to)
        dest_store = stack.enter_context(open_store(target.store))
        _check_target(target, dest_store, source, to)
        stack.enter_context(index_lock(dest_dir))
        marker = dest_dir / MARKER
        marker.write_text(json.dumps({"source": source.key, "folder": str(src_dir.resolve())}), encoding="utf-8")
        samples = _copy_records(src_store, dest_store, specs, report, page, sample, show_progress)
        report.thumbnails = _copy_thumbnails(src_dir / "thumbs", dest_dir / "thumbs")
        _write_config(src_dir, config_path, target, dest_uri)
        for name in specs:
            verify_collection(src_store, dest_store, name, samples[name].ids)
            report.verified[name] = len(samples[name].ids)
            report.records[name] = dest_store.count(name)
        _copy_manifest(src_dir / MANIFEST, dest_dir / MANIFEST)
        marker.unlink()
    report.seconds = time.perf_counter() - started
    return report


def _specs(store: VectorStore) -> dict[str, CollectionSpec]:
    """The KB's collections (those named after its spaces) and what each is."""
    specs = {}
    for name in store.collections():
        spec = store.spec(name) if name in SPACE_NAMES else None
        if spec is not None:
            specs[name] = spec
    return specs


def _check_sparse(specs: dict[str, CollectionSpec], target: KBPlace, to: str) -> None:
    """A sparse space needs a store with sparse vectors: refused before the destination is opened."""
    sparse = [name for name, spec in specs.items() if spec.kind == "sparse"]
    if sparse and store_scheme(target.store)[0] in ("", "lancedb"):
        raise InputError(f"the KB has a learned-sparse space ({', '.join(sparse)}) and --to {to!r} is a "
                         "LanceDB store, which has no sparse vectors: copy it to Qdrant (--to qdrant://PATH or "
                         "http(s)://HOST:6333). Nothing was written.")


def _check_target(target: KBPlace, store: VectorStore, source: KBPlace, to: str) -> None:
    """The destination is empty, or a copy of this source stopped before its end; anything else is refused."""
    marker = target.folder / MARKER
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8")).get("source")
        except (OSError, ValueError, AttributeError):
            previous = None
        if previous == source.key:
            return
        raise InputError(f"--to {to!r} holds an unfinished copy of another KB ({previous}): remove it "
                         f"({target.folder} and the store {target.key}) or copy elsewhere.")
    held = [f"{name} ({store.count(name)} records)" for name in SPACE_NAMES if store.count(name)]
    held += [name for name in (MANIFEST, CONFIG_FILE) if (target.folder / name).exists()]
    thumbs = target.folder / "thumbs"
    if thumbs.is_dir() and any(thumbs.iterdir()):
        held.append("thumbs/")
    if held:
        raise InputError(f"--to {to!r} is not empty: it holds {', '.join(held)} ({target.key}, state in "
                         f"{target.folder}); a copy goes to a new folder or store. Nothing was written.")


def _copy_records(source: VectorStore, target: VectorStore, specs: dict[str, CollectionSpec], report: CopyReport,
                  page: int, sample: int, show_progress: bool | None) -> dict[str, IdSample]:
    """Every record of every collection in ``specs``, those already at ``target`` skipped; the ids sampled."""
    from tqdm.auto import tqdm

    total = sum(source.count(name) for name in specs)
    show = sys.stderr.isatty() if show_progress is None else show_progress
    samples = {}
    with tqdm(total=total, desc="kb copy", unit="record", disable=not show) as bar:
        for seed, (name, spec) in enumerate(specs.items()):
            target.ensure_spec(name, spec)
            samples[name] = IdSample(sample, seed)
            report.written[name] = _copy_collection(source, target, name, samples[name], bar, page)
            target.optimize(name)  # the ANN index past its threshold, the new rows in LanceDB's FTS index
    return samples


def _copy_collection(source: VectorStore, target: VectorStore, name: str, ids: IdSample, bar: Any,
                     page: int) -> int:
    resuming = target.count(name) > 0
    written, after = 0, None
    while records := source.scroll(name, after, page):
        after, read = records[-1].id, len(records)
        ids.add([record.id for record in records])
        if resuming:  # a stopped copy: records already there (stores write each whole) and equal are skipped
            have = {record.id: record for record in target.retrieve(name, [r.id for r in records])}
            records = [record for record in records if record.id not in have or difference(record, have[record.id])]
        if records:
            target.upsert(name, records)
            written += len(records)
        bar.update(read)
    return written


def _copy_thumbnails(source: Path, target: Path) -> int:
    """Thumbnails not yet at ``target`` (or cut short there), copied; returns how many ``source`` has."""
    if not source.is_dir():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    count = 0
    for path in source.iterdir():
        if not path.is_file():
            continue
        count += 1
        copy = target / path.name
        if not copy.is_file() or copy.stat().st_size != path.stat().st_size:
            staged = copy.with_name(f".{copy.name}.part")
            shutil.copyfile(path, staged)
            os.replace(staged, copy)  # whole or absent, if the copy is stopped here
    return count


def _write_config(src_dir: Path, config_path: str | None, target: KBPlace, dest_uri: str | None) -> None:
    """The source's kb.toml with ``store`` naming the destination (none for a folder: ``<folder>/vectors``);
    checked by reading it back. No source kb.toml and a folder destination: none is needed."""
    source = Path(config_path) if config_path else src_dir / CONFIG_FILE
    text = source.read_text(encoding="utf-8") if source.is_file() else ""
    if not text and dest_uri is None:
        return
    lines = text.splitlines()
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
    kept = [line for i, line in enumerate(lines)
            if i >= first_table or not line.split("=", 1)[0].strip() == "store"]  # top-level keys come first
    header = [f"store = {json.dumps(dest_uri)}  # written by omnivec kb copy"] if dest_uri else []
    path = target.folder / CONFIG_FILE
    path.write_text("\n".join([*header, *kept]) + "\n", encoding="utf-8")
    expected = replace(load_config(src_dir, config_path), store=dest_uri)
    if load_config(target.folder) != expected:
        path.unlink()
        raise InputError(f"could not rewrite the store of {source} for the copy (a multi-line store "
                         "value?); set store in it on one line and copy again.")


def _copy_manifest(source: Path, target: Path) -> None:
    """A consistent copy of the manifest (SQLite's backup API), moved into place whole."""
    staged = target.with_name(f".{target.name}.part")
    staged.unlink(missing_ok=True)
    with closing(sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(staged)) as dest:
        src.backup(dest)
    os.replace(staged, target)
