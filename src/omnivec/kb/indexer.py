"""``omnivec index``: scan paths, find what is new, changed or gone, ingest, embed per space, write. A file's old
vectors are removed before its new ones are written, and it is marked done only after: a run killed anywhere
leaves every finished file intact, and the next run redoes the unfinished ones."""

from __future__ import annotations

import hashlib
import logging
import os
import stat as stat_mode
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omnivec.errors import InputError, OmnivecError
from omnivec.kb.chunk import Chunk, IngestError
from omnivec.kb.config import KBConfig
from omnivec.kb.consistency import check_models, check_store
from omnivec.kb.file_version import FileVersion
from omnivec.kb.manifest import FileEntry, Manifest, content_hash, record_counts
from omnivec.kb.scan import SYMLINK_SKIPPED, not_regular, os_reason, scan
from omnivec.kb.spaces import load_spaces
from omnivec.printing import printable

logger = logging.getLogger(__name__)

@dataclass
class IndexReport:
    scanned: int = 0
    unchanged: int = 0
    indexed: int = 0
    extended: int = 0  # of the indexed: unchanged files written only into spaces they lacked
    removed: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # not read: symlinks, FIFOs, devices, sockets
    chunks: dict[str, int] = field(default_factory=dict)  # space -> chunks written
    problems: list[str] = field(default_factory=list)  # spaces left out of this run
    repairs: list[str] = field(default_factory=list)  # where the manifest and the store had drifted apart
    notes: list[str] = field(default_factory=list)  # checks that could not be made (a model's files unreadable)
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> time spent

    def summary(self) -> str:
        extended = f" ({self.extended} only into new spaces)" if self.extended else ""
        lines = [f"{self.scanned} files: {self.indexed} indexed{extended}, {self.unchanged} unchanged, {self.removed} removed, "
                 f"{len(self.failed)} failed, {len(self.skipped)} skipped"]
        for space, count in sorted(self.chunks.items()):
            lines.append(f"  {space}: {count} chunks written")
        for stage, spent in self.seconds.items():
            lines.append(f"  {stage}: {spent:.1f} s")
        lines.extend(f"  skipped space: {problem}" for problem in self.problems)
        lines.extend(f"  repaired: {repair}" for repair in self.repairs)
        lines.extend(f"  note: {note}" for note in self.notes)
        # A file name (and a reason quoting it) may hold control characters: escaped, so each entry stays one line
        # and no escape sequence reaches the terminal.
        for title, entries in (("Files not indexed:", self.failed), ("Skipped (not read):", self.skipped)):
            if entries:
                lines.append(title)
                lines.extend(f"  {printable(path)}: {printable(reason)}" for path, reason in entries)
        return "\n".join(lines)


def file_key(path: str) -> str:
    """A short stable id of an indexed file's path (16 hex digits), the prefix of its records' ids."""
    return hashlib.blake2b(path.encode(), digest_size=8).hexdigest()


def record_id(path: str, position: int) -> str:
    return f"{file_key(path)}-{position}"


# What a model raises for an input it cannot take (a bad chunk): the file fails alone. Anything else stops the run.
EMBED_ERRORS = (OmnivecError, ValueError, RuntimeError)


class StoreWriteError(OmnivecError):
    """The vector store refused a write; no file is to blame. The files being written stay pending."""


def _short(exc: BaseException) -> str:
    """An exception in one line of at most 300 characters, for a summary line."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f.rstrip(os.sep) + os.sep) for f in folders)


class Indexer:
    """Indexes files into one KB directory (manifest, vectors, thumbnails)."""

    def __init__(self, kb_dir: Path, config: KBConfig, device: str | None = None,
                 show_progress: bool | None = None) -> None:
        from omnivec.kb.stores.base import open_store

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

    def run(self, paths: list[Path]) -> IndexReport:
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
            self._delete(gone)
            self.manifest.remove(gone)
            report.removed = len(gone)
        todo = self._changed(files, entries, report)
        todo += self._pending_elsewhere(entries, roots, SUPPORTED, report)
        report.seconds["scan"] = time.perf_counter() - started
        self._index(todo, report)
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

    def _index(self, todo: list[FileVersion], report: IndexReport) -> None:
        from omnivec.kb.ingest import ingest_file
        from omnivec.runtime.batching import progress

        options = self._ingest_options()
        batch: list[tuple[FileVersion, list[Chunk]]] = []
        pending = 0
        for version in progress(todo, len(todo), self.show_progress, "Reading files", unit="file"):
            started = time.perf_counter()
            try:
                chunks = ingest_file(version.path, options)
            except IngestError as exc:
                self.manifest.set_states([version], "pending", spaces=self.space_names)  # before its vectors go
                self._delete([version.path])
                self.manifest.set_states([version], "failed", errors=[exc.reason], spaces=self.space_names)
                report.failed.append((version.path, exc.reason))
                continue
            finally:
                report.seconds["read"] = report.seconds.get("read", 0.0) + time.perf_counter() - started
            batch.append((version, chunks))
            pending += len(chunks)
            if pending >= self.config.flush_chunks:
                self._flush(batch, report)
                batch, pending = [], 0
        if batch:
            self._flush(batch, report)

    def _flush(self, batch: list[tuple[FileVersion, list[Chunk]]], report: IndexReport) -> None:
        """Embed and write a batch of files. A file whose chunks a model refuses fails alone (the batch is embedded
        again file by file to find it); a store that refuses a write stops the run, the files left pending."""
        from omnivec.kb.stores.base import Record

        files = [version for version, _ in batch]
        # Pending before any vector changes: a run killed from here on redoes these files.
        self.manifest.set_states(files, "pending", spaces=self.space_names)
        self._delete([version.path for version in files if version.path not in self.adding])
        for version in files:
            for name in self.adding.get(version.path, ((), {}))[0]:
                self.store.delete_files(name, [version.path])  # a run killed before may have written some
        failed: dict[str, str] = {}  # path -> reason
        embedded = []  # (space, [(path, position, chunk)], vectors)
        for space in self.spaces:
            chunks = [(version.path, position, chunk) for version, file_chunks in batch
                      if version.path not in self.adding or space.name in self.adding[version.path][0]
                      for position, chunk in enumerate(file_chunks) if chunk.modality == space.modality]
            if not chunks:
                continue
            started = time.perf_counter()
            try:
                vectors = list(self._embed(space, chunks, self.show_progress))
            except EMBED_ERRORS:
                chunks, vectors = self._embed_alone(space, chunks, failed)
            report.seconds[f"embed {space.name}"] = report.seconds.get(f"embed {space.name}", 0.0) + (
                time.perf_counter() - started)
            embedded.append((space, chunks, vectors))
        for space, chunks, vectors in embedded:
            started = time.perf_counter()
            records = [Record(rid, vector, self._payload(path, rid, position, chunk))
                       for (path, position, chunk), vector in zip(chunks, vectors, strict=True) if path not in failed
                       for rid in [record_id(path, position)]]
            try:
                self.store.upsert(space.name, records)
            except Exception as exc:  # the store's own failure (disk, server): no file is to blame
                raise StoreWriteError(f"Writing vectors to the {space.name} collection failed ({_short(exc)}). "
                                      f"The run stopped: the {len(files)} files being written are left pending and "
                                      "are indexed again by the next run.") from exc
            report.seconds["write"] = report.seconds.get("write", 0.0) + time.perf_counter() - started
            report.chunks[space.name] = report.chunks.get(space.name, 0) + len(records)
        bad = [version for version in files if version.path in failed]
        if bad:  # none of their vectors were written
            self.manifest.set_states(bad, "failed", errors=[failed[version.path] for version in bad],
                                     spaces=self.space_names)
            report.failed.extend((version.path, failed[version.path]) for version in bad)
        done = [(version, file_chunks) for version, file_chunks in batch if version.path not in failed]
        if not done:
            return
        per_space = [{**self.adding.get(version.path, ((), {}))[1],
                      **{space.name: n for space in self.spaces
                         if (n := sum(chunk.modality == space.modality for chunk in file_chunks))}}
                     for version, file_chunks in done]  # what the next run checks the store against
        self.manifest.set_states([version for version, _ in done], "done", [len(chunks) for _, chunks in done],
                                 spaces=self.space_names, records=per_space)
        report.indexed += len(done)
        report.extended += sum(version.path in self.adding for version, _ in done)

    def _embed(self, space: Any, chunks: list[tuple[str, int, Chunk]], show_progress: bool | None) -> Any:
        return space.embed([chunk.content for _, _, chunk in chunks], self.config.batch_size, show_progress,
                           modality=space.modality)

    def _embed_alone(self, space: Any, chunks: list[tuple[str, int, Chunk]],
                     failed: dict[str, str]) -> tuple[list[tuple[str, int, Chunk]], list[Any]]:
        """The batch's files embedded one at a time after the batch failed: each file the model refuses goes into
        ``failed`` with the model's reason; the chunks and vectors of the others are returned."""
        by_file: dict[str, list[tuple[str, int, Chunk]]] = {}
        for item in chunks:
            by_file.setdefault(item[0], []).append(item)
        kept, vectors = [], []
        for path, items in by_file.items():
            if path in failed:  # refused by an earlier space: none of its vectors are written
                continue
            try:
                vectors.extend(self._embed(space, items, False))
            except EMBED_ERRORS as exc:
                failed[path] = f"the {space.name} model could not embed it: {_short(exc)}"
                continue
            kept.extend(items)
        return kept, vectors

    def _payload(self, path: str, rid: str, position: int, chunk: Chunk) -> dict[str, Any]:
        thumbnail = ""
        if chunk.thumbnail:
            thumbnail = f"thumbs/{rid}.jpg"
            (self.kb_dir / thumbnail).write_bytes(chunk.thumbnail)
        # The file as indexed (the chunk's own is the same path); stores derive file_type from it.
        return {**replace(chunk.location, file=path).to_payload(), "modality": chunk.modality, "kind": chunk.kind,
                "text": chunk.text, "chunk": position, "thumbnail": thumbnail,
                "record": str(chunk.extra.get("record_id", ""))}

    def _delete(self, paths: list[str]) -> None:
        """Vectors and thumbnails of ``paths``; a file the manifest did not know has none."""
        paths = [p for p in paths if p in self.indexed]
        if not paths:
            return
        for name in self.store.collections():
            self.store.delete_files(name, paths)
        keys = {file_key(path) for path in paths}
        for thumbnail in (self.kb_dir / "thumbs").iterdir():  # one pass, not a glob per file
            if thumbnail.name.split("-", 1)[0] in keys:
                thumbnail.unlink(missing_ok=True)

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
