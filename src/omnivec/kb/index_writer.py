"""The one writer of an index run: it turns batches of events (``kb/chunk_batches.py``) into store records and
manifest states, wherever the events were embedded. A file is set pending before any of its vectors change, its
records are written batch by batch as they come, and it is marked done (with its records per space) only at its
``FileEnd``, after all of them landed: a run killed anywhere leaves every finished file intact, and the next run
redoes the unfinished ones. A file that fails half-way loses what this run wrote of it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omnivec.errors import OmnivecError
from omnivec.kb.chunk import Chunk
from omnivec.kb.chunk_batches import ChunkItem, Event, FileEnd, FileWork
from omnivec.kb.file_version import FileVersion
from omnivec.kb.index_report import IndexReport, short_reason
from omnivec.kb.manifest import Manifest
from omnivec.kb.record_ids import file_key, record_id


class StoreWriteError(OmnivecError):
    """The vector store refused a write; no file is to blame. The files being written stay pending."""


@dataclass
class _Open:
    """A file being written: its records so far per space, and why it failed (if it did)."""

    records: dict[str, int] = field(default_factory=dict)
    error: str = ""


class IndexWriter:
    """Writes one run's events into a KB's store and manifest. ``indexed``: the files the manifest knew at the
    start of the run (only they can have vectors to delete); ``kept``: for a file written only into some spaces,
    its record counts in the others."""

    def __init__(self, kb_dir: Path, manifest: Manifest, store: Any, spaces: list[Any], works: list[FileWork],
                 indexed: set[str], kept: dict[str, dict[str, int]], report: IndexReport) -> None:
        self.kb_dir, self.manifest, self.store, self.spaces, self.report = kb_dir, manifest, store, spaces, report
        self.works = {work.version.path: work for work in works}
        self.indexed, self.kept = indexed, kept
        self.space_names = ",".join(sorted(space.name for space in spaces))  # as the manifest records them
        self.open: dict[str, _Open] = {}

    def write(self, events: list[Event]) -> None:
        """Write one batch: open the files it starts, write its chunks' records, close the files it ends."""
        self._open([event.path for event in events if event.path not in self.open])
        for item in events:
            if isinstance(item, ChunkItem) and item.error and not self.open[item.path].error:
                self.open[item.path].error = item.error
        from omnivec.kb.stores.base import Record

        started = time.perf_counter()
        for space in self.spaces:
            records = [Record(rid, item.vectors[space.name], self._payload(item.path, rid, item.position, item.chunk))
                       for item in events if isinstance(item, ChunkItem) and not self.open[item.path].error
                       and space.name in item.vectors for rid in [record_id(item.path, item.position)]]
            if not records:
                continue
            try:
                self.store.upsert(space.name, records)
            except Exception as exc:  # the store's own failure (disk, server): no file is to blame
                raise StoreWriteError(f"Writing vectors to the {space.name} collection failed ({short_reason(exc)})."
                                      f" The run stopped: the {len(self.open)} files being written are left pending"
                                      " and are indexed again by the next run.") from exc
            self.report.chunks[space.name] = self.report.chunks.get(space.name, 0) + len(records)
            for record in records:
                counts = self.open[record.payload["file"]].records
                counts[space.name] = counts.get(space.name, 0) + 1
        self.report.seconds["write"] = self.report.seconds.get("write", 0.0) + time.perf_counter() - started
        self._close([event for event in events if isinstance(event, FileEnd)])

    def _open(self, paths: list[str]) -> None:
        """Pending before any of their vectors change: a run killed from here on redoes these files."""
        paths = list(dict.fromkeys(paths))
        if not paths:
            return
        self.manifest.set_states([self.works[p].version for p in paths], "pending", spaces=self.space_names)
        self.delete([p for p in paths if self.works[p].spaces is None])
        for path in paths:
            self.open[path] = _Open()
            for name in self.works[path].spaces or ():
                self.store.delete_files(name, [path])  # a run killed before may have written some

    def _close(self, ends: list[FileEnd]) -> None:
        failed = [end for end in ends if end.error or self.open[end.path].error]
        if failed:
            for end in failed:
                if end.error:  # unreadable now: nothing of it stays searchable
                    self.delete([end.path])
                else:  # refused by a model: what this run wrote of it goes
                    self._delete_written(end.path)
            self.manifest.set_states([self.works[end.path].version for end in failed], "failed",
                                     errors=[end.error or self.open[end.path].error for end in failed],
                                     spaces=self.space_names)
            self.report.failed.extend((end.path, end.error or self.open[end.path].error) for end in failed)
        done = [end for end in ends if not (end.error or self.open[end.path].error)]
        if done:
            versions: list[FileVersion] = [self.works[end.path].version for end in done]
            records = [{**self.kept.get(end.path, {}), **self.open[end.path].records} for end in done]
            self.manifest.set_states(versions, "done", [end.chunks for end in done], spaces=self.space_names,
                                     records=records)
            self.report.indexed += len(done)
            self.report.extended += sum(self.works[end.path].spaces is not None for end in done)
        for end in ends:
            del self.open[end.path]

    def _delete_written(self, path: str) -> None:
        if self.works[path].spaces is None:  # its older vectors went when it opened
            self.delete([path], known_only=False)
            return
        for name in self.works[path].spaces or ():
            self.store.delete_files(name, [path])

    def _payload(self, path: str, rid: str, position: int, chunk: Chunk) -> dict[str, Any]:
        thumbnail = ""
        if chunk.thumbnail:
            thumbnail = f"thumbs/{rid}.jpg"
            (self.kb_dir / thumbnail).write_bytes(chunk.thumbnail)
        # The file as indexed (the chunk's own is the same path); stores derive file_type from it.
        return {**replace(chunk.location, file=path).to_payload(), "modality": chunk.modality, "kind": chunk.kind,
                "text": chunk.text, "chunk": position, "thumbnail": thumbnail,
                "record": str(chunk.extra.get("record_id", ""))}

    def delete(self, paths: list[str], known_only: bool = True) -> None:
        """Vectors and thumbnails of ``paths``; a file the manifest did not know has none, unless this run wrote
        some (``known_only=False``)."""
        delete_files(self.kb_dir, self.store, [p for p in paths if p in self.indexed or not known_only])


def delete_files(kb_dir: Path, store: Any, paths: list[str]) -> None:
    """Every record of ``paths`` in every collection, and their thumbnails."""
    if not paths:
        return
    for name in store.collections():
        store.delete_files(name, paths)
    keys = {file_key(path) for path in paths}
    for thumbnail in (kb_dir / "thumbs").iterdir():  # one pass, not a glob per file
        if thumbnail.name.split("-", 1)[0] in keys:
            thumbnail.unlink(missing_ok=True)
