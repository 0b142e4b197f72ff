"""Per-parameter learning rates: sentence-transformers' ``learning_rate_mapping`` ({name regex: rate})."""

from __future__ import annotations

import re
from typing import Any

import torch

from omnivec.errors import ConfigError


def apply_learning_rate_mapping(optimizer: torch.optim.Optimizer, model: torch.nn.Module,
                                mapping: dict[str, float]) -> None:
    """Moves each parameter whose name matches a pattern of ``mapping`` (the first that matches, by
    ``re.search``) into a parameter group with that learning rate, keeping its group's other settings."""
    try:
        patterns = [(re.compile(pattern), float(rate)) for pattern, rate in mapping.items()]
    except (re.error, TypeError, ValueError) as exc:
        raise ConfigError(f"learning_rate_mapping must map regular expressions to numbers: {exc}") from None
    names = {id(p): name for name, p in model.named_parameters()}
    new_groups: list[dict[str, Any]] = []
    for group in list(optimizer.param_groups):
        kept, moved = [], {}  # pattern index -> parameters
        for param in group["params"]:
            match = next((i for i, (regex, _) in enumerate(patterns) if regex.search(names.get(id(param), ""))), None)
            if match is None:
                kept.append(param)
            else:
                moved.setdefault(match, []).append(param)
        group["params"] = kept
        for index, params in moved.items():
            new_groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": params,
                               "lr": patterns[index][1], "initial_lr": patterns[index][1]})
    optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
    for group in new_groups:
        optimizer.add_param_group(group)
