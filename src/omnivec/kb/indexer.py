"""``omnivec index``: scan paths, find what is new, changed or gone, ingest, embed per space, write. A file's old
vectors are removed before its new ones are written, and it is marked done only after: a run killed anywhere
leaves every finished file intact, and the next run redoes the unfinished ones."""

from __future__ import annotations

import os
import stat as stat_mode
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from omnivec.errors import InputError
from omnivec.kb.chunk_batches import ChunkItem, Event, FileWork, content_bytes, local_batches
from omnivec.kb.config import KBConfig
from omnivec.kb.consistency import check_models, check_store
from omnivec.kb.file_version import FileVersion
from omnivec.kb.index_report import IndexReport
from omnivec.kb.index_writer import IndexWriter, StoreWriteError, delete_files
from omnivec.kb.manifest import FileEntry, Manifest, content_hash, record_counts
from omnivec.kb.scan import SYMLINK_SKIPPED, not_regular, os_reason, scan
from omnivec.kb.spaces import load_spaces
from omnivec.runtime.allocator import release_free_memory

__all__ = ["IndexReport", "Indexer", "StoreWriteError"]


TRIM_BYTES = 16 << 20  # a batch whose contents held this much is worth handing back to the system (malloc_trim)


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


class Indexer:
    """Indexes files into one KB directory (manifest, vectors, thumbnails)."""

    def __init__(self, kb_dir: Path, config: KBConfig, device: str | None = None,
                 show_progress: bool | None = None) -> None:
        from omnivec.kb.stores.uri import open_store

        self.kb_dir, self.config, self.show_progress = kb_dir, config, show_progress
        kb_dir.mkdir(parents=True, exist_ok=True)
        (kb_dir / "thumbs").mkdir(exist_ok=True)
        self.manifest = Manifest(kb_dir / "manifest.sqlite")
        self.store = open_store(config.store_uri(kb_dir))
        self.spaces, self.problems = load_spaces(config, device)
        if not any(space.model is not None for space in self.spaces):
            # indexing without a model would only replace stored vectors with nothing (the lexical space has none)
            self.close()
            raise InputError("No model of this KB could be loaded, so nothing can be indexed: "
                             + " ".join(self.problems))
        # Before a changed dimension is refused; the models' files are read here, not when spaces load.
        try:
            self.repairs, self.notes = check_models(self.manifest, self.store, self.spaces)
            for space in self.spaces:
                space.ensure(self.store)
        except BaseException:  # a space this store cannot hold (sparse on LanceDB), a changed dimension
            self.close()
            raise
        self.active = {s.name for s in self.spaces}
        self.space_names = ",".join(sorted(self.active))  # as the manifest records them
        self.indexed: set[str] = set()  # files the manifest knew at the start of the run: they may have vectors
        # unchanged files that lack some active spaces: path -> (those spaces, the records they have in the others)
        self.adding: dict[str, tuple[set[str], dict[str, int]]] = {}

    def run(self, paths: list[Path], ray: Any = None) -> IndexReport:
        """Index ``paths``: read, embed and write in this process, or with ``ray`` (``RaySettings``) on a Ray
        cluster; either way this process alone writes the manifest and the store, so the result is the same."""
        from omnivec.kb.ingest import SUPPORTED

        report = IndexReport(problems=list(self.problems), notes=list(self.notes))  # the summary names them
        report.repairs = self.repairs + check_store(self.manifest, self.store, self.spaces, self.kb_dir)
        self.repairs, self.notes = [], []
        started = time.perf_counter()
        found = scan(paths, self.kb_dir, SUPPORTED)
        files = found.files
        report.scanned = len(files) + len(found.unsupported)
        report.failed.extend((str(f), f"unsupported file type {f.suffix or '(no extension)'!r}")
                             for f in found.unsupported)
        report.failed.extend(found.unlisted)
        report.skipped.extend(found.skipped)
        entries = self.manifest.entries()
        self.indexed = set(entries)
        roots = [str(p.resolve()) for p in paths]
        unlisted = [folder for folder, _ in found.unlisted]  # not seen is not deleted
        present = {str(f) for f in files}
        gone = [p for p in entries if p not in present and _under(p, roots) and not _under(p, unlisted)]
        if gone:
            delete_files(self.kb_dir, self.store, [p for p in gone if p in self.indexed])
            self.manifest.remove(gone)
            report.removed = len(gone)
        todo = self._changed(files, entries, report)
        todo += self._pending_elsewhere(entries, roots, SUPPORTED, report)
        report.seconds["scan"] = time.perf_counter() - started
        works = [FileWork(version, frozenset(self.adding[version.path][0]) if version.path in self.adding else None)
                 for version in todo]
        writer = IndexWriter(self.kb_dir, self.manifest, self.store, self.spaces, works, self.indexed,
                             {path: kept for path, (_, kept) in self.adding.items()}, report)
        for events in self._batches(works, ray, report):
            writer.write(events)
            held = sum(content_bytes(e.chunk) for e in events if isinstance(e, ChunkItem))
            del events  # the batch's last reference: its chunks' contents are freed before the heap is trimmed
            if held >= TRIM_BYTES:  # a long recording's windows, given back batch after batch
                release_free_memory()
        for space in self.spaces:
            self.store.optimize(space.name)
        return report

    def _changed(self, files: list[Path], entries: dict[str, FileEntry], report: IndexReport) -> list[FileVersion]:
        todo: list[FileVersion] = []
        touched: list[FileVersion] = []
        for path in files:
            entry = entries.get(str(path))
            try:  # a file replaced, removed or unreadable since the scan fails alone; what was indexed is kept
                found = path.lstat()
                if not stat_mode.S_ISREG(found.st_mode):
                    raise OSError(f"{not_regular(found.st_mode)} since the scan")
                file_hash = None  # hashed only when size and mtime cannot tell, and then only once
                if entry is not None and entry.state != "pending" and entry.version.size == found.st_size:
                    known = entry.version
                    file_hash = known.hash if known.shown_by(found) else content_hash(path)
                    current = FileVersion.of(str(path), found, file_hash)
                    missing = self.active - set(entry.spaces.split(","))
                    if current.same_content(known) and entry.state == "done" and missing and \
                            record_counts(entry) is not None:
                        # Only the spaces it lacks (a space added to kb.toml, the lexical space after an upgrade)
                        # are written: its vectors in the others stay.
                        self.adding[str(path)] = (missing, record_counts(entry) or {})
                    elif current.same_content(known) and (entry.state == "failed" or not missing):
                        if current != known:  # only its modification time changed
                            touched.append(current)
                        if entry.state == "failed":
                            report.failed.append((str(path), f"{entry.error} (unchanged since the last run)"))
                        else:
                            report.unchanged += 1
                        continue
                todo.append(FileVersion.of(str(path), found, file_hash or content_hash(path)))
            except OSError as exc:
                kept = "; what was indexed from it is kept" if entry is not None else ""
                report.failed.append((str(path), f"cannot read the file: {os_reason(exc)}{kept}"))
        if touched:
            self.manifest.touch(touched)
        return todo

    def _pending_elsewhere(self, entries: dict[str, FileEntry], roots: list[str], supported: Iterable[str],
                           report: IndexReport) -> list[FileVersion]:
        """Files outside this run's paths left pending by a repair (a changed model, missing vectors) or a killed
        run: redone here while each is still a regular file of a supported type with no symlink on its path (what a
        scan would take), else named with what to do; otherwise one would stay pending, unsearchable, forever."""
        extensions = {e.lower() for e in supported}
        todo: list[FileVersion] = []
        for path, entry in sorted(entries.items()):
            if entry.state != "pending" or _under(path, roots):  # under the roots: the scan decided
                continue
            file = Path(path)
            try:
                found = file.lstat()
                if not stat_mode.S_ISREG(found.st_mode):
                    raise OSError(not_regular(found.st_mode) if not stat_mode.S_ISLNK(found.st_mode)
                                  else SYMLINK_SKIPPED)
                if file.resolve() != file:
                    raise OSError("a folder on its path is now a symlink")
                if file.suffix.lower() not in extensions:
                    raise OSError(f"unsupported file type {file.suffix or '(no extension)'!r}")
                todo.append(FileVersion.of(path, found, content_hash(file)))
            except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, for Path.resolve
                report.failed.append((path, f"left to re-index by an earlier run, but not indexable now "
                                            f"({os_reason(exc)}): index it, or the folder it was in, again"))
        return todo

    def _batches(self, works: list[FileWork], ray: Any, report: IndexReport) -> Iterator[list[Event]]:
        options = self._ingest_options()
        if ray is None:
            return local_batches(works, options, self.spaces, self.config.batch_size, self.config.flush_chunks,
                                 report.seconds, self.show_progress)
        from omnivec.kb.ray_index import ray_batches

        return ray_batches(works, options, self.config, self.spaces, ray, report.seconds)

    def _ingest_options(self) -> Any:
        from omnivec.kb.ingest.chunking import tokenizer_counters
        from omnivec.kb.ingest.options import IngestOptions

        # chunks are cut to the text model's window (the dense one's, else the sparse one's)
        text = next((s for s in self.spaces if s.modality == "text" and s.model is not None), None)
        audio = next((s for s in self.spaces if s.name == "audio"), None)
        options = IngestOptions(chunk_tokens=min(self.config.chunk_tokens, _max_tokens(text)),
                                overlap_tokens=self.config.overlap_tokens, audio_window_s=self.config.audio_window_s,
                                audio_hop_s=self.config.audio_window_s, video_segment_s=self.config.video_segment_s,
                                frames_per_segment=self.config.frames_per_segment,
                                transcribe_model=self.config.transcribe,
                                modalities=frozenset(s.modality for s in self.spaces))  # nothing else is decoded
        if text is not None:
            options.count_tokens, options.count_tokens_many, options.word_offsets = tokenizer_counters(
                text.model.tokenizer)
        if audio is not None:
            options.audio_rate = audio.model.sampling_rate or options.audio_rate
        options.image_side = next((s.model.image_side for s in self.spaces if s.modality == "image"), None)
        return options

    def close(self) -> None:
        self.manifest.close()
        self.store.close()


def _max_tokens(space: Any) -> int:
    """A chunk must fit the text model's window, special tokens included."""
    if space is None:
        return 10**9
    return max(16, int(space.model.max_seq_length) - 2)
