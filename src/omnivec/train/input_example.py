"""InputExample: one training example (texts and a label), the record of sentence-transformers' old ``fit``."""

from __future__ import annotations


class InputExample:
    """An example for the old ``fit``-style training: ``texts`` (a pair, triplet, ...), a ``label`` and an id."""

    def __init__(self, guid: str = "", texts: list[str] | None = None, label: int | float = 0) -> None:
        self.guid = guid
        self.texts = texts
        self.label = label

    def __str__(self) -> str:
        return f"<InputExample> label: {self.label}, texts: {'; '.join(self.texts or [])}"

    def __repr__(self) -> str:
        return f"InputExample(guid={self.guid!r}, texts={self.texts!r}, label={self.label!r})"
