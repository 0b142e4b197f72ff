"""``omnivec index --ray``: the same index run with reading, chunking and embedding on a Ray cluster (Ray Data).

Scanning, the manifest and the store writes stay in this process (the driver), which consumes the same event
batches as a single-process run (``kb/chunk_batches.py``) through the same writer (``kb/index_writer.py``): so the
records, ids, payloads, manifest states and the resume-after-kill behaviour are those of a single-process run.
Reading runs as Ray Data tasks that stream a file's chunks as they come; each space with a model embeds on its own
actor pool, where every actor loads that model once. The driver writes because it is the one process every store
takes writes from safely (a Qdrant path is single-process; LanceDB commits from many writers would race the
manifest), and because a file may be marked done only after all its records landed."""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from omnivec.errors import ConfigError
from omnivec.kb.chunk_batches import ChunkItem, Event, FileEnd, FileWork, embed_items, read_file
from omnivec.kb.config import KBConfig

logger = logging.getLogger(__name__)

ALL_SPACES = "*"  # a file written into every space (FileWork.spaces is None)
ROWS_PER_READ_BATCH = 64  # chunk rows a reading task hands on at a time: a long file streams, never sits whole
# Rows an actor embeds per call, in model batches of the space's batch size: sorted by length over more rows,
# batches pad less (a single-process run sorts each flush of 512).
ROWS_PER_EMBED_CALL = 256
FILES_PER_READ = 16  # files a reading task reads in turn: fewer, longer tasks (a task and its options cost ~50 ms)


@dataclass(frozen=True)
class RaySettings:
    """How an index run uses Ray. ``address``: None starts a local instance; ``"auto"`` or ``"ray://host:10001"``
    joins a cluster. ``actors``: the size of each space's actor pool; ``cpus_per_actor`` and ``gpus_per_actor``:
    what each actor reserves (its model runs on a GPU when it has one); ``batch_sizes``: the model's batch per
    space (default: kb.toml's ``batch_size``; an actor is handed at least ``ROWS_PER_EMBED_CALL`` rows a call)."""

    address: str | None = None
    actors: int = 1
    cpus_per_actor: float = 1.0
    gpus_per_actor: float = 0.0
    batch_sizes: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.address is not None and not self.address.strip():
            raise ConfigError("--ray: the address is empty; give 'auto', 'ray://HOST:PORT', or no value for a "
                              "local instance.")
        if self.actors < 1:
            raise ConfigError(f"--ray-actors {self.actors}: expected at least 1 actor per space.")
        if not self.cpus_per_actor > 0:
            raise ConfigError(f"--ray-cpus-per-actor {self.cpus_per_actor}: expected a number above 0.")
        if not self.gpus_per_actor >= 0:
            raise ConfigError(f"--ray-gpus-per-actor {self.gpus_per_actor}: expected 0 or more.")
        for space, size in self.batch_sizes.items():
            if size < 1:
                raise ConfigError(f"--ray-batch-size {space}={size}: expected a batch of at least 1.")

    def batch_size(self, space: str, default: int) -> int:
        return self.batch_sizes.get(space, default)

    def check_spaces(self, names: list[str]) -> None:
        """A batch size for a space this KB does not have is a mistake worth naming."""
        unknown = sorted(set(self.batch_sizes) - set(names))
        if unknown:
            raise ConfigError(f"--ray-batch-size: no space {', '.join(map(repr, unknown))} in this KB; its spaces "
                              f"with a model: {', '.join(names) or '(none)'}.")


def require_ray() -> Any:
    """Ray with Ray Data, or a ``ConfigError`` saying how to install it (checked before any model loads)."""
    try:
        import ray
        import ray.data  # noqa: F401  (the pipeline's half of Ray)
    except ImportError as exc:
        raise ConfigError(f"--ray needs Ray Data: pip install 'omnivec[ray]' ({exc}).") from None
    return ray


def ray_batches(works: list[FileWork], options: Any, config: KBConfig, spaces: list[Any], settings: RaySettings,
                seconds: dict[str, float]) -> Iterator[list[Event]]:
    """The events of ``works`` read and embedded on Ray, in file order, in batches of at most ``flush_chunks``
    rows. Spaces without a model (the lexical one) are filled here: there is nothing to compute."""
    modelled = [space for space in spaces if space.model is not None]
    settings.check_spaces([space.name for space in modelled])
    if not works:
        return
    ray = require_ray()
    started_here = _connect(ray, settings, len(modelled))
    try:
        yield from _stream(ray, works, options, config, spaces, modelled, settings, seconds)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, settings: RaySettings, pools: int) -> bool:
    """Join the cluster at ``settings.address``, or start a local instance sized so every actor pool and a reading
    task fit (its CPUs are Ray's logical units: a pool's actors run however many cores there are). Returns whether
    this run started Ray (and so stops it)."""
    if ray.is_initialized():
        return False
    if settings.address is not None:
        ray.init(address=settings.address, log_to_driver=False)
        return True
    needed = pools * settings.actors * settings.cpus_per_actor + 1
    cpus = max(os.cpu_count() or 1, int(needed + 0.999))
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    logger.info("started a local Ray instance with %d logical CPUs", cpus)
    return True


def _stream(ray: Any, works: list[FileWork], options: Any, config: KBConfig, spaces: list[Any],
            modelled: list[Any], settings: RaySettings, seconds: dict[str, float]) -> Iterator[list[Event]]:
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the writer closes a file after all its chunks
    rows = [{"path": work.version.path,
             "spaces": ALL_SPACES if work.spaces is None else ",".join(sorted(work.spaces))} for work in works]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 1000)))
    dataset = dataset.map_batches(_read_files, batch_size=FILES_PER_READ, fn_kwargs={"options": options},
                                  batch_format="pyarrow", num_cpus=0.5)
    for position, space in enumerate(modelled):
        # the last space of a modality drops the chunks' contents: the driver writes payloads, not pixels
        last = all(other.modality != space.modality for other in modelled[position + 1:])
        model_batch = settings.batch_size(space.name, config.batch_size)
        dataset = dataset.map_batches(
            SpaceEmbedder, fn_constructor_kwargs={"config": config, "name": space.name, "batch_size": model_batch,
                                                  "drop_content": last},
            batch_size=max(ROWS_PER_EMBED_CALL, model_batch), batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=settings.actors), num_cpus=settings.cpus_per_actor,
            num_gpus=settings.gpus_per_actor or None)
    others = [space for space in spaces if space.model is None]
    works_by_path = {work.version.path: work for work in works}
    started = time.perf_counter()
    for batch in dataset.iter_batches(batch_size=config.flush_chunks, batch_format="pyarrow", prefetch_batches=1):
        events = _events(batch.to_pylist(), [space.name for space in modelled])
        del batch  # the rows' bytes, not kept while the events are written
        embed_items(others, [e for e in events if isinstance(e, ChunkItem)], works_by_path, config.batch_size)
        yield events
    seconds["ray read + embed"] = time.perf_counter() - started


def _read_files(batch: Any, options: Any) -> Iterator[Any]:
    """A Ray Data task: the chunk rows of the files in ``batch`` (up to ``FILES_PER_READ``, read in turn), handed
    on every ``ROWS_PER_READ_BATCH`` rows as they are read, each file's end row after its chunks."""
    rows: list[dict[str, Any]] = []
    for row in batch.to_pylist():
        for event in read_file(row["path"], options):
            rows.append(_row(event, row["spaces"]))
            if len(rows) >= ROWS_PER_READ_BATCH:
                yield _columns(rows)
                rows = []
    if rows:
        yield _columns(rows)


def _row(event: Event, spaces: str) -> dict[str, Any]:
    if isinstance(event, FileEnd):
        return {"path": event.path, "spaces": spaces, "end": True, "position": event.chunks, "error": event.error,
                "modality": "", "chunk": b""}
    return {"path": event.path, "spaces": spaces, "end": False, "position": event.position, "error": "",
            "modality": event.chunk.modality, "chunk": pickle.dumps(event.chunk)}


def _columns(rows: list[dict[str, Any]]) -> Any:
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=pa.schema([("path", pa.string()), ("spaces", pa.string()),
                                                        ("end", pa.bool_()), ("position", pa.int64()),
                                                        ("error", pa.string()), ("modality", pa.string()),
                                                        ("chunk", pa.binary())]))


def _work(path: str, spaces: str) -> FileWork:
    from omnivec.kb.file_version import FileVersion

    only = None if spaces == ALL_SPACES else frozenset(filter(None, spaces.split(",")))
    return FileWork(FileVersion(path, "", 0, 0.0), only)  # only ``spaces`` is read on a worker


class SpaceEmbedder:
    """A Ray Data actor embedding one space's chunks: the model loads once, in ``__init__``. Adds the column
    ``vector:<space>`` (the pickled vector, empty where the space does not take the row) and sets ``error`` on
    the rows of a file the model refuses. ``drop_content``: no later space reads this modality, so its chunks go on
    without their content (decoded audio and pixels need not travel to the driver)."""

    def __init__(self, config: KBConfig, name: str, batch_size: int, drop_content: bool = False) -> None:
        from omnivec.kb.spaces import load_spaces

        only = replace(config, spaces={name: config.spaces[name]}, lexical=replace(config.lexical, enabled=False))
        loaded, problems = load_spaces(only)
        if not loaded:
            raise RuntimeError(f"The {name} space's model could not be loaded on this Ray worker: "
                               + " ".join(problems))
        self.space, self.batch_size, self.drop_content = loaded[0], batch_size, drop_content

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        items: dict[int, ChunkItem] = {}
        works = {}
        for index, row in enumerate(rows):
            if row["end"] or row["error"] or row["modality"] != self.space.modality:
                continue
            works[row["path"]] = _work(row["path"], row["spaces"])
            items[index] = ChunkItem(row["path"], row["position"], pickle.loads(row["chunk"]))
        embed_items([self.space], list(items.values()), works, self.batch_size)
        vectors, errors, chunks = [], [], []
        for index, row in enumerate(rows):
            item = items.get(index)
            vectors.append(pickle.dumps(item.vectors[self.space.name])
                           if item is not None and self.space.name in item.vectors else b"")
            errors.append(item.error if item is not None and item.error else row["error"])
            chunks.append(row["chunk"])
            if self.drop_content and not row["end"] and row["modality"] == self.space.modality:
                chunk = item.chunk if item is not None else pickle.loads(row["chunk"])
                chunk.content = None
                chunks[-1] = pickle.dumps(chunk)
        for name, values in (("error", pa.array(errors, pa.string())), ("chunk", pa.array(chunks, pa.binary()))):
            batch = batch.set_column(batch.schema.get_field_index(name), name, values)
        return batch.append_column(f"vector:{self.space.name}", pa.array(vectors, pa.binary()))


def _events(rows: list[dict[str, Any]], names: list[str]) -> list[Event]:
    events: list[Event] = []
    for row in rows:
        if row["end"]:
            events.append(FileEnd(row["path"], row["position"], row["error"]))
            continue
        vectors = {name: pickle.loads(row[f"vector:{name}"]) for name in names if row[f"vector:{name}"]}
        events.append(ChunkItem(row["path"], row["position"], pickle.loads(row["chunk"]), vectors, row["error"]))
    return events
