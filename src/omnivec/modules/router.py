"""Router: sends inputs to different sub-module chains by task (query / document) and modality.

Saved in sentence-transformers' ``router_config.json`` format: ``types`` (module id -> class),
``structure`` (route -> module ids) and ``parameters`` (default_route, allow_empty_key, route_mappings
keyed by ``str((task, modality))``).
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from omnivec.errors import ConfigError, InputError, ModelLoadError
from omnivec.loading.options import LoadOptions
from omnivec.modules.base import Module, module_class_for

RouteKey = tuple[str | None, str | None]


class Router(Module):
    """Routes by ``(task, modality)``: exact match, then task alone, modality alone, a catch-all, a route
    named like the task or modality, and finally ``default_route``.

    Args:
        sub_modules: route name -> the modules that route runs, in order (the first prepares the input).
        default_route: the route used when nothing matches (default: the first route, if ``allow_empty_key``).
        route_mappings: ``{(task or None, modality or None): route}``.
    """

    config_file_name = "router_config.json"
    config_keys = ("default_route", "allow_empty_key", "route_mappings")
    save_in_root = True
    st_type = "sentence_transformers.models.Router"

    def __init__(
        self,
        sub_modules: Mapping[str, Sequence[Module]],
        default_route: str | None = None,
        allow_empty_key: bool = True,
        route_mappings: dict[RouteKey, str] | None = None,
    ) -> None:
        super().__init__()
        if not sub_modules:
            raise ConfigError("Router needs at least one route.")
        self.sub_modules = torch.nn.ModuleDict({name: torch.nn.Sequential(*mods) for name, mods in sub_modules.items()})
        for key, route in (route_mappings or {}).items():
            if route not in self.sub_modules:
                raise ConfigError(f"route_mappings maps {key} to {route!r}, which is not a route ({list(self.sub_modules)}).")
        if default_route is not None and default_route not in self.sub_modules:
            raise ConfigError(f"default_route {default_route!r} is not a route ({list(self.sub_modules)}).")
        self.default_route = default_route if default_route is not None or not allow_empty_key else next(iter(self.sub_modules))
        self.allow_empty_key = allow_empty_key
        self.route_mappings: dict[RouteKey, str] = dict(route_mappings or {})

    @classmethod
    def for_query_document(cls, query_modules: Sequence[Module], document_modules: Sequence[Module]) -> Router:
        """Asymmetric retrieval: one chain for queries, another for documents (the default)."""
        return cls({"query": query_modules, "document": document_modules}, default_route="document")

    def resolve(self, task: str | None, modality: str | None) -> str:
        """The route name for this task and modality."""
        for key in ((task, modality), (task, None), (None, modality), (None, None)):
            if key in self.route_mappings:
                return self.route_mappings[key]
        for name in (task, modality):
            if name and name in self.sub_modules:
                return name
        if self.default_route is None:
            raise InputError(f"No route for task={task!r}, modality={modality!r}; routes: {list(self.sub_modules)}, "
                             f"mappings: {self.route_mappings}. Pass task= or set a default_route.")
        return self.default_route

    def route(self, task: str | None, modality: str | None) -> list[Module]:
        return self.chain(self.resolve(task, modality))

    def chain(self, route: str) -> list[Module]:
        """The modules of ``route``, in order."""
        # __init__ builds each route as a Sequential of the Modules it was given.
        return cast(list[Module], list(cast(torch.nn.Sequential, self.sub_modules[route])))

    @property
    def chains(self) -> dict[str, list[Module]]:
        """Every route's modules, in order."""
        return {name: self.chain(name) for name in self.sub_modules}

    def forward(self, features: dict[str, Any]) -> dict[str, Any]:
        for module in self.route(features.get("task"), features.get("modality")):
            features = module(features)
        return features

    @property
    def modalities(self) -> list[str]:
        found: list[str] = []
        for chain in self.chains.values():
            for modality in getattr(chain[0], "modalities", ["text"]):
                if modality not in found:
                    found.append(modality)
        return found

    def get_embedding_dimension(self) -> int | None:
        for chain in self.chains.values():
            for module in reversed(chain):
                dimension = getattr(module, "get_embedding_dimension", None)
                if callable(dimension):
                    return cast("int | None", dimension())  # the modules' own get_embedding_dimension
        return None

    # -- save / load ----------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        ids: dict[int, str] = {}
        types: dict[str, str] = {}
        structure: dict[str, list[str]] = {}
        for name, chain in self.chains.items():
            structure[name] = []
            for position, module in enumerate(chain):
                if id(module) not in ids:  # a module shared by routes is saved once
                    ids[id(module)] = f"{name}_{position}_{type(module).__name__}"
                    types[ids[id(module)]] = module.st_type
                    (folder / ids[id(module)]).mkdir(parents=True, exist_ok=True)
                    module.save(folder / ids[id(module)])
                structure[name].append(ids[id(module)])
        parameters = {"default_route": self.default_route, "allow_empty_key": self.allow_empty_key,
                      "route_mappings": {str(key): route for key, route in self.route_mappings.items()}}
        with open(folder / self.config_file_name, "w", encoding="utf-8") as f:
            json.dump({"types": types, "structure": structure, "parameters": parameters}, f, indent=4)

    @classmethod
    def load(cls, folder: Path, options: LoadOptions) -> Router:
        config = cls.read_config(folder)
        if not {"types", "structure"} <= set(config):
            raise ModelLoadError(f"{str(folder / cls.config_file_name)!r} needs 'types' and 'structure'.")
        modules: dict[str, Module] = {}
        for module_id, type_name in config["types"].items():
            subfolder = (folder / module_id).resolve()
            if folder.resolve() not in subfolder.parents:
                raise ModelLoadError(f"Router module id {module_id!r} points outside {str(folder)!r}.")
            modules[module_id] = module_class_for(type_name).load(subfolder, options)
        routes = {name: [modules[i] for i in ids] for name, ids in config["structure"].items()}
        parameters = dict(config.get("parameters") or {})
        mappings = {}
        for key, route in (parameters.pop("route_mappings", None) or {}).items():
            parsed = ast.literal_eval(key)
            mappings[(parsed[0], tuple(parsed[1]) if isinstance(parsed[1], list) else parsed[1])] = route
        return cls(routes, **cls.split_config(parameters, folder), route_mappings=mappings)

    def __repr__(self) -> str:
        routes = ", ".join(f"{name}: [{', '.join(type(m).__name__ for m in chain)}]" for name, chain in self.chains.items())
        return f"Router({routes}; default={self.default_route!r}, mappings={self.route_mappings})"
