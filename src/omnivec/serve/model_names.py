"""The names ``omnivec serve`` serves its models under: a model's own name (the Hub id as given, or the name of the
folder it was loaded from) and the ``NAME`` of ``--model NAME=PATH_OR_ID``, both accepted by every route and both
listed by ``/v1/models``. Cheap to import: the CLI checks names before any model loads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omnivec.errors import InputError

# What infinity's clients send when the caller names no model: read as "no model named".
INFINITY_UNNAMED = "default/not-specified"


@dataclass(frozen=True)
class ServedModel:
    """One ``--model``/``--reranker`` spec: the name its routes key it by, where it loads from, and its other names."""

    name: str
    source: str
    aliases: tuple[str, ...] = ()


def own_names(source: str) -> tuple[str, ...]:
    """A model's own names, best first: a local folder's name; a Hub id as given and (as served before) its last
    part, so ``sentence-transformers/all-MiniLM-L6-v2`` also answers to ``all-MiniLM-L6-v2``."""
    trimmed = source.rstrip("/\\") or source
    if Path(source).expanduser().is_dir():
        return (Path(source).expanduser().resolve().name,)
    last = trimmed.replace("\\", "/").split("/")[-1]
    return (trimmed,) if last == trimmed else (trimmed, last)


def primary_name(spec: str) -> str:
    """The name a ``NAME=PATH_OR_ID`` or bare ``PATH_OR_ID`` spec is keyed by: ``NAME``, else its own name."""
    name, sep, _ = spec.partition("=")
    return name if sep else own_names(spec)[0]


def parse_specs(specs: list[str]) -> list[ServedModel]:
    """The specs' models with their names. ``NAME=PATH_OR_ID``: keyed by ``NAME``, the model's own names are
    aliases. Two specs keyed by one name are an error; an alias two models could claim (or that is another model's
    name) is dropped, so a name never means two models."""
    parsed: list[tuple[str, str, tuple[str, ...]]] = []
    for spec in specs:
        name, sep, source = spec.partition("=")
        if not sep:
            source = spec
        if not name.strip() or not source.strip():
            raise InputError(f"--model/--reranker {spec!r}: expected NAME=PATH_OR_ID or PATH_OR_ID.")
        names = own_names(source)
        parsed.append((name if sep else names[0], source, names if sep else names[1:]))
    keys = [name for name, _, _ in parsed]
    twice = sorted({name for name in keys if keys.count(name) > 1})
    if twice:
        raise InputError(f"model name(s) {twice} given twice; name each model NAME=PATH_OR_ID.")
    claimed = [alias for _, _, aliases in parsed for alias in set(aliases)]
    return [ServedModel(name, source, tuple(a for a in aliases if a not in keys and claimed.count(a) == 1))
            for name, source, aliases in parsed]


def alias_map(*groups: list[ServedModel]) -> dict[str, str]:
    """Alias -> the name it stands for, over embedders and rerankers together (an alias both could claim is
    dropped)."""
    served = [model for group in groups for model in group]
    keys = {model.name for model in served}
    claimed = [alias for model in served for alias in model.aliases]
    return {alias: model.name for model in served for alias in model.aliases
            if alias not in keys and claimed.count(alias) == 1}
