"""Writing a Ray Dataset's vectors into a KB: ``KBSink``, a ``ray.data.Datasink`` (what Ray recommends for a custom
destination: ``ds.write_datasink(sink)``) whose write tasks upsert into the KB's store in parallel, and
``write_kb``, which picks that or, for a store one process at a time may open (Qdrant's local mode), writes from
the driver. Importing this module imports Ray; ``omnivec.ray`` imports it on first use."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterable
from typing import Any

from ray.data import Datasink
from ray.data.block import BlockAccessor

from omnivec.errors import ConfigError
from omnivec.kb.ray_target import KBTarget, WriteSummary, vector_dim
from omnivec.kb.ray_write_settings import KBWriteSettings, settings_from


class KBSink(Datasink[WriteSummary]):
    """``ds.write_datasink(KBSink(settings=KBWriteSettings(kb=..., space="text", model=...)))``: every row becomes a
    record of the space (see :class:`KBWriteSettings`); the KB is then searchable with ``omnivec search --kb``.

    On the driver: the KB, space and model are checked when the sink is made; when the write starts, the KB's
    index lock is taken (no ``omnivec index`` run meanwhile), the collections made and the space's model recorded;
    when it ends, the collections are optimised and ``summary`` says how many records were written and skipped.
    A Qdrant store in local mode is refused here (one process only): use :func:`write_kb`."""

    def __init__(self, settings: KBWriteSettings | None = None, **fields: Any) -> None:
        self.target = KBTarget(settings_from(settings, fields))
        if self.target.single_process:
            raise ConfigError(f"omnivec.ray.KBSink: the KB's store {self.target.store_uri!r} is Qdrant in local mode, "
                              "which one process at a time may open, so Ray's write tasks cannot share it: use "
                              "omnivec.ray.write_kb(ds, ...), which writes it from this process, or a Qdrant server "
                              "or LanceDB store.")
        self.summary: WriteSummary | None = None
        self._lock: contextlib.ExitStack | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_lock": None}  # the lock stays with the driver

    def on_write_start(self, schema: Any = None) -> None:
        self._lock = start(self.target, schema)

    def write(self, blocks: Iterable[Any], ctx: Any) -> WriteSummary:
        return self.target.write(BlockAccessor.for_block(block).to_batch_format("numpy") for block in blocks)

    def on_write_complete(self, write_result: Any) -> None:
        summary = WriteSummary()
        for part in write_result.write_returns:
            summary.add(part)
        try:
            if self._lock is not None:  # None: an empty dataset, nothing was started
                self.target.finish()
        finally:
            self._release()
        self.summary = summary

    def on_write_failed(self, error: Exception) -> None:
        self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


def start(target: KBTarget, schema: Any) -> contextlib.ExitStack:
    """Take the KB's index lock (held until the returned stack closes) and prepare the space for ``schema``."""
    from omnivec.kb.lock import index_lock

    stack = contextlib.ExitStack()
    stack.enter_context(index_lock(target.kb_dir))
    try:
        target.start(vector_dim(schema, target.settings.vector_column))
    except BaseException:
        stack.close()
        raise
    return stack


def write_kb(ds: Any, settings: KBWriteSettings | None = None, *, concurrency: int | None = None,
             **fields: Any) -> WriteSummary:
    """Write ``ds`` into the KB: with :class:`KBSink` (``concurrency`` write tasks at most) where the store takes
    writes from several processes, else from this process, batch by batch. Returns what was written and skipped."""
    target = KBTarget(settings_from(settings, fields))
    if not target.single_process:
        sink = KBSink(target.settings)
        ds.write_datasink(sink, concurrency=concurrency)
        return sink.summary or WriteSummary()
    # The schema comes from the first batch: ds.schema() would run the pipeline (its embedding) once more.
    batches = iter(ds.iter_batches(batch_format="pyarrow"))
    first = next(batches, None)
    if first is None:
        return WriteSummary()
    with start(target, first.schema):
        summary = target.write(BlockAccessor.for_block(b).to_batch_format("numpy")
                               for b in itertools.chain([first], batches))
        target.finish()
    return summary
