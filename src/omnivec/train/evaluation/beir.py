"""Reading a BEIR-format dataset folder: corpus.jsonl, queries.jsonl and a qrels TSV per split."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from omnivec.errors import InputError


class BeirData(NamedTuple):
    """``corpus`` and ``queries`` map id -> text; ``qrels`` maps query id -> {corpus id: grade > 0}."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def load_beir(folder: str | os.PathLike, split: str = "test", max_queries: int | None = None,
              max_corpus: int | None = None) -> BeirData:
    """Read a BEIR folder. Only queries that have a relevant document in ``split`` are kept.

    A document's text is ``(title + " " + text).strip()``, as BEIR's own dense-retrieval models, MTEB and
    sentence-transformers' examples join them. ``max_queries`` keeps the first queries (file order);
    ``max_corpus`` keeps every document relevant to a kept query plus the first other documents of
    corpus.jsonl, up to ``max_corpus`` in all: a small, deterministic slice for quick evaluations.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"BEIR folder {str(root)!r} does not exist.")
    qrels = read_qrels(_qrels_path(root, split))
    queries = {qid: text for qid, text in read_queries(_require(root / "queries.jsonl")).items() if qid in qrels}
    if max_queries is not None:
        queries = dict(list(queries.items())[:max_queries])
    qrels = {qid: qrels[qid] for qid in queries}
    corpus = read_corpus(_require(root / "corpus.jsonl"))
    if max_corpus is not None:
        needed = {doc for relevant in qrels.values() for doc in relevant}
        room = max(0, max_corpus - len(needed & corpus.keys()))
        kept: dict[str, str] = {}
        for doc, text in corpus.items():
            if doc in needed:
                kept[doc] = text
            elif room > 0:
                kept[doc] = text
                room -= 1
        corpus = kept
    return BeirData(corpus, queries, qrels)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"BEIR file {str(path)!r} is missing.")
    return path


def _qrels_path(root: Path, split: str) -> Path:
    # BEIR's own downloads use qrels/{split}.tsv; flattened copies (and some mirrors) use qrels-{split}.tsv.
    candidates = [root / "qrels" / f"{split}.tsv", root / f"qrels-{split}.tsv"]
    for path in candidates:
        if path.is_file():
            return path
    tried = " or ".join(repr(str(p)) for p in candidates)
    raise InputError(f"No qrels for split {split!r}: expected {tried}.")


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path} line {line_no}: not valid JSON ({err.msg}).") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise InputError(f"{path} line {line_no}: expected a JSON object with an '_id' key.")
            yield line_no, row


def _read_texts(path: Path, with_title: bool) -> dict[str, str]:
    texts: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line_no, row in _jsonl(path):
        doc = str(row["_id"])
        if doc in first_line:
            raise InputError(f"{path} line {line_no}: duplicate _id {doc!r} (first on line {first_line[doc]}).")
        text = row.get("text")
        if not isinstance(text, str):
            raise InputError(f"{path} line {line_no}: expected a string 'text', got {type(text).__name__}.")
        title = row.get("title") if with_title else None
        texts[doc] = f"{title} {text}".strip() if isinstance(title, str) and title else text
        first_line[doc] = line_no
    return texts


def read_corpus(path: str | os.PathLike) -> dict[str, str]:
    """corpus.jsonl as ``{_id: (title + " " + text).strip()}``."""
    return _read_texts(Path(path), with_title=True)


def read_queries(path: str | os.PathLike) -> dict[str, str]:
    """queries.jsonl as ``{_id: text}``."""
    return _read_texts(Path(path), with_title=False)


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """A qrels TSV (``query-id  corpus-id  score``, an optional header line) as ``{query: {doc: score}}``.

    Pairs with score <= 0 are judged not relevant and left out."""
    path = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            cells = [c.strip() for c in line.rstrip("\r\n").split("\t")]
            if len(cells) != 3:
                raise InputError(f"{path} line {line_no}: expected 3 tab-separated columns "
                                 f"(query-id, corpus-id, score), got {len(cells)}: {line.rstrip()!r}.")
            try:
                score = int(cells[2])
            except ValueError:
                if line_no == 1:  # the header line
                    continue
                raise InputError(f"{path} line {line_no}: score {cells[2]!r} is not an integer.") from None
            if score > 0:
                qrels.setdefault(cells[0], {})[cells[1]] = score
    return qrels
