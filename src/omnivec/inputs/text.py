"""Check that inputs for a text-only model are strings, naming the first one that is not."""

from __future__ import annotations

from typing import Any, Sequence

from omnivec.errors import InputError


def check_texts(inputs: Sequence[Any], modalities: Sequence[str] = ("text",)) -> list[str]:
    """Return ``inputs`` as a list of str, or raise InputError naming the index and type at fault."""
    texts = list(inputs)
    for index, item in enumerate(texts):
        if not isinstance(item, str):
            raise InputError(
                f"Input at index {index} is a {type(item).__name__}, but this model accepts "
                f"{', '.join(modalities)} only: pass str."
            )
    return texts
