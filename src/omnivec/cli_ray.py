"""``omnivec index``'s Ray options (``--ray [ADDRESS]``, actors, CPUs and GPUs per actor, batch sizes) and the
``RaySettings`` they give. Ray itself is imported only when ``--ray`` is given."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from omnivec import cli_types as arg_types

if TYPE_CHECKING:
    from omnivec.kb.ray_index import RaySettings

LOCAL_RAY = "local"  # --ray without an address


def add_ray_options(index: argparse.ArgumentParser) -> None:
    """The Ray option group of ``omnivec index``."""
    ray = index.add_argument_group("Ray (omnivec[ray]): read and embed on a Ray cluster; this process writes")
    ray.add_argument("--ray", nargs="?", const=LOCAL_RAY, metavar="ADDRESS",
                     help="run on Ray: no ADDRESS starts a local instance; 'auto' or ray://HOST:10001 joins a cluster")
    ray.add_argument("--ray-actors", type=arg_types.at_least_one, default=1, metavar="N", help="actors per space (default 1)")
    ray.add_argument("--ray-cpus-per-actor", type=arg_types.seconds(0, inclusive=False), default=1.0, metavar="CPUS",
                     help="CPUs each embedding actor reserves (default 1)")
    ray.add_argument("--ray-gpus-per-actor", type=arg_types.seconds(0, inclusive=True), default=0.0, metavar="GPUS",
                     help="GPUs each embedding actor reserves (default 0; fractions share a GPU)")
    ray.add_argument("--ray-batch-size", type=arg_types.space_batch, action="append", metavar="SPACE=N",
                     help="embedding batch of one space (repeatable; default: kb.toml's batch_size)")


def ray_settings(args: argparse.Namespace) -> RaySettings | None:
    """The ``RaySettings`` of the parsed options, or None without ``--ray``; a ``ConfigError`` saying how to install
    Ray when it is missing (before any model loads)."""
    if args.ray is None:
        return None
    from omnivec.kb.ray_index import RaySettings, require_ray

    require_ray()
    return RaySettings(None if args.ray == LOCAL_RAY else args.ray, args.ray_actors, args.ray_cpus_per_actor,
                       args.ray_gpus_per_actor, dict(args.ray_batch_size or []))
