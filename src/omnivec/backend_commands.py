"""``omnivec bench-backends``: measure a model's backends on this machine, print the table and keep the choice that
``backend="auto"`` loads."""

from __future__ import annotations

import sys
from pathlib import Path

from omnivec.errors import InputError

MAX_TEXTS = 100_000  # --texts lines read at most (a measurement, not an index run)


def read_texts(path: str | None, limit: int) -> tuple[list[str], str]:
    """The texts to measure on: the file's non-empty lines (``--texts``), else the built-in sample; and where from."""
    if path is None:
        from omnivec.models.exports.calibration import builtin_calibration_texts

        return builtin_calibration_texts()[:limit], "the built-in sample"
    file = Path(path)
    if not file.is_file():
        raise InputError(f"--texts {path!r}: no such file; expected a text file with one text per line.")
    try:
        with file.open(encoding="utf-8") as handle:
            texts = [line.strip() for _, line in zip(range(MAX_TEXTS), handle, strict=False) if line.strip()]
    except UnicodeDecodeError as exc:
        raise InputError(f"--texts {path!r} is not UTF-8 text ({exc.reason} at byte {exc.start}).") from None
    if len(texts) < 2:
        raise InputError(f"--texts {path!r} has {len(texts)} non-empty line(s); at least 2 are needed.")
    return texts[:limit], f"{len(texts[:limit])} lines of {path}"


def run_bench_backends(model: str, texts_path: str | None, kind: str, backends: list[str] | None, batch_size: int,
                       limit: int, save: bool) -> int:
    from omnivec.models.backend_bench import measure_backends

    texts, origin = read_texts(texts_path, limit)
    print(f"Measuring {model} ({kind}) on {len(texts)} texts from {origin}, batch size {batch_size}.", file=sys.stderr)
    result = measure_backends(model, texts, kind=kind, backends=backends, batch_size=batch_size, save=save,
                              progress=lambda name: print(f"  {name} ...", file=sys.stderr, flush=True))
    unit = "texts/s" if kind == "embedder" else "pairs/s"
    print(f"CPU: {result.cpu}\nthreads: {result.threads}\n")
    print(f"{'backend':<15}{unit:>10}{'vs torch':>10}{'mean cos':>10}{'min cos':>10}{'spearman':>10}{'prepare s':>11}")
    torch_speed = result.rows[0].per_second or 0.0
    for row in result.rows:
        if row.error is not None:
            print(f"{row.backend:<15}  not available: {row.error}")
            continue
        speed = row.per_second or 0.0
        ratio = f"{speed / torch_speed:.2f}x" if torch_speed else "-"
        print(f"{row.backend:<15}{speed:>10.1f}{ratio:>10}{_fmt(row.mean_cosine, 5)}{_fmt(row.min_cosine, 5)}"
              f"{_fmt(row.spearman, 5)}{_fmt(row.prepare_s, 1, 11)}{'' if row.passes else '  (below the agreement bar)'}")
    print(f"\nrecommended: backend={result.choice!r}")
    if save:
        print("saved: Embedder/CrossEncoder(..., backend='auto') and kb.toml backend = \"auto\" now load it here.")
    return 0


def _fmt(value: float | None, digits: int, width: int = 10) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"
