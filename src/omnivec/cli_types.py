"""The command line's value types: what argparse checks each option's value with (a bad value exits 2 naming the
option and what was expected)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def model_name(spec: str) -> str:
    """The name a ``NAME=PATH_OR_ID`` or bare ``PATH_OR_ID`` serves under (a Hub id as given, a folder's name)."""
    from omnivec.serve.model_names import primary_name

    return primary_name(spec)


def model_spec(value: str) -> str:
    """``--model``/``--reranker``: ``NAME=PATH_OR_ID`` or ``PATH_OR_ID``, neither part empty."""
    name, sep, source = value.partition("=")
    if (sep and not (name.strip() and source.strip())) or not model_name(value).strip():
        raise argparse.ArgumentTypeError(f"expected NAME=PATH_OR_ID or PATH_OR_ID, got {value!r}")
    return value


def at_least_one(value: str) -> int:
    """A whole number >= 1, for counts such as ``-k`` (argparse exits 2 with this message otherwise)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def port_number(value: str) -> int:
    """A TCP port, 0..65535 (0: any free port)."""
    try:
        number = int(value)
    except ValueError:
        number = -1
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {value!r}")
    return number


def seconds(least: float, inclusive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds (or milliseconds) > ``least`` (>= with ``inclusive``)."""
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not (number >= least if inclusive else number > least) or number == math.inf:
            raise argparse.ArgumentTypeError(f"expected a number {'>=' if inclusive else '>'} {least:g}, got {value!r}")
        return number

    return parse


def space_batch(value: str) -> tuple[str, int]:
    """``--ray-batch-size SPACE=N``: a space's name and its embedding batch (N >= 1)."""
    name, sep, size = value.partition("=")
    try:
        number = int(size) if sep and name.strip() else 0
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected SPACE=N with N a whole number >= 1 (e.g. text=64), got {value!r}")
    return name.strip(), number
