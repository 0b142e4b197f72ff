"""``omnivec demo``: write a small sample folder, index it and run a few searches, offline."""

from __future__ import annotations

import tempfile
from pathlib import Path

DEMO_QUERIES = ["How do I charge my phone?", "What is the return window?", "How much did revenue grow?",
                "a red circle"]


def run_demo(out: str | None, config_path: str | None) -> int:
    from omnivec.errors import OmnivecError
    from omnivec.kb.commands import index_paths, kb_settings, print_results
    from omnivec.kb.ingest.sample import sample_folder
    from omnivec.kb.search import Searcher

    root = Path(out) if out else Path(tempfile.mkdtemp(prefix="omnivec-demo-"))
    docs, kb = root / "sample", root / "kb"
    files = sample_folder(docs)
    print(f"Wrote {len(files)} sample files to {docs}: {', '.join(f.name for f in files)}\n")
    print(f"$ omnivec index {docs} --kb {kb}", flush=True)
    kb_dir, config = kb_settings(str(kb), config_path)
    spaces = index_paths([str(docs)], kb_dir, config, show_progress=False)
    searcher = Searcher(kb_dir, config, spaces=spaces)  # the indexer's models, loaded once, for every query below
    try:
        for query in DEMO_QUERIES:
            print(f"\n$ omnivec search {query!r} --kb {kb} -k 3", flush=True)
            print_results(searcher.search(query, None, 3), kb_dir)
        image = next(f for f in files if f.suffix == ".png")
        print(f"\n$ omnivec search --image {image} --kb {kb} -k 3", flush=True)
        try:
            print_results(searcher.search(None, str(image), 3), kb_dir)
        except OmnivecError as exc:  # no image space in this run (e.g. no CLIP model offline): say so, go on
            print(f"(image search unavailable: {exc})")
    finally:
        searcher.close()
    print(f"\nThe knowledge base is in {kb}; search it with: omnivec search \"your question\" --kb {kb}")
    return 0
