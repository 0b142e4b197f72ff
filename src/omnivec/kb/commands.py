"""The ``omnivec index`` and ``omnivec search`` commands, on top of ``Indexer`` and ``Searcher``."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omnivec.errors import InputError
from omnivec.kb.settings import kb_settings
from omnivec.loading.options import BackendName
from omnivec.printing import printable


def run_index(paths: list[str], kb: str | None, config_path: str | None, show_progress: bool | None = None,
              wait_lock_s: float = 0.0, backend: BackendName | None = None, ray: Any = None) -> int:
    index_paths(paths, *kb_settings(kb, config_path, backend=backend), show_progress, wait_lock_s, ray)
    return 0


def index_paths(paths: list[str], kb_dir: Path, config: Any, show_progress: bool | None = None,
                wait_lock_s: float = 0.0, ray: Any = None) -> list[Any]:
    """Index ``paths`` into ``kb_dir``, print the summary, and return the loaded spaces (for a ``Searcher``).
    ``ray``: ``RaySettings`` to read and embed on Ray (``kb/ray_index.py``).

    The KB's index lock is held from before the models load to the end: another run on the same KB waits up to
    ``wait_lock_s`` seconds, then stops with ``KBLockedError`` naming the holder."""
    from omnivec.kb.indexer import Indexer
    from omnivec.kb.lock import index_lock

    with index_lock(kb_dir, wait_lock_s):
        indexer = Indexer(kb_dir, config, show_progress=show_progress)
        try:
            report = indexer.run([Path(p) for p in paths], ray)
        finally:
            indexer.close()  # the store only: the spaces' models stay usable
    print(report.summary(), file=sys.stderr)
    return indexer.spaces


@dataclass(frozen=True)
class FusionChoice:
    """What the command line says of fusion and spaces; each part left None keeps the KB config's."""

    method: str | None = None
    rrf_k: int | None = None
    weights: dict[str, float] | None = None
    spaces: list[str] | None = None


def run_search(query: str | None, image: str | None, kb: str | None, config_path: str | None, k: int,
               rerank: str | None, as_json: bool, queries: str | None, where: Any, choice: FusionChoice,
               backend: BackendName | None = None) -> int:
    from omnivec.kb.search import Searcher, check_image_query

    check_image_query(image)  # a mistyped path is named before any model loads
    kb_dir, config = kb_settings(kb, config_path, existing=True, backend=backend)
    fusion = config.fusion.merged(choice.method, choice.rrf_k, choice.weights)
    reranker = None if rerank == "none" else (rerank or config.reranker)
    searcher = Searcher(kb_dir, config, reranker=reranker)
    try:
        if queries:
            for qid, text in _read_queries(queries):
                results = searcher.search(text, None, k, where, fusion, spaces=choice.spaces)
                print(json.dumps({"query_id": qid, "query": text, "results": [r.to_dict() for r in results]}))
            return 0
        results = searcher.search(query, image, k, where, fusion, spaces=choice.spaces)
    finally:
        searcher.close()
    if as_json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print_results(results, kb_dir)
    return 0


def print_results(results: list[Any], kb_dir: Path) -> None:
    """Results as a numbered list: score, kind, location, a text snippet and the thumbnail's path."""
    if not results:
        print("no results")
    for rank, result in enumerate(results, start=1):  # file names and texts with control characters: escaped
        found = " · ".join(f"{space} {value:.3f}" for space, value in result.scores.items())  # cosine, BM25, dot
        if result.rerank_score is not None:
            score = f"rerank {result.rerank_score:.3f} ({found})"
        else:
            score = f"{found}" if len(result.scores) == 1 else f"fused {result.score:.3f} ({found})"
        snippet = printable(" ".join(result.text.split())[:160])
        print(f"{rank:>2}. {score}  [{result.kind}]  {printable(result.location.describe())}")
        if snippet:
            print(f"      {snippet}")
        if result.thumbnail:
            print(f"      thumbnail: {printable(str(kb_dir / result.thumbnail))}")


def _read_queries(path: str) -> list[tuple[str, str]]:
    """Queries from a JSON-lines file (``{"_id" or "id", "text"}``, BEIR's format) or a text file (one per line)."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"Queries file {path!r} does not exist.")
    out = []
    for number, line in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if source.suffix == ".jsonl":
            try:
                row = json.loads(line)
                out.append((str(row.get("_id", row.get("id", number))), row["text"]))
            except (json.JSONDecodeError, KeyError, AttributeError):
                raise InputError(f"{path!r} line {number}: expected a JSON object with a 'text' field.") from None
        else:
            out.append((str(number), line.strip()))
    return out
