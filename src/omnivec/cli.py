"""omnivec command line: ``omnivec demo | encode | export | index | search | kb | serve | train | bench-backends``. Heavy imports wait until a command runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from omnivec import cli_ray
from omnivec import cli_types as arg_types

DEMO_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
]


def _cmd_demo(args: argparse.Namespace) -> int:
    if not args.sentences:
        from omnivec.kb.demo import run_demo

        if args.config is not None:  # named before the sample folder is written
            from pathlib import Path

            from omnivec.kb.config import load_config

            load_config(Path(args.out or "."), args.config)
        return run_demo(args.out, args.config)
    import numpy as np

    from omnivec import Embedder
    from omnivec.loading.defaults import DEFAULT_TEXT_MODEL

    model = Embedder(args.model or DEFAULT_TEXT_MODEL)
    embeddings = model.encode(DEMO_SENTENCES)
    assert isinstance(embeddings, np.ndarray)  # a list of texts, convert_to_numpy: one (n, dim) array
    scores = model.similarity(embeddings, embeddings)
    print(f"{len(DEMO_SENTENCES)} sentences -> {embeddings.shape[1]}-d vectors ({model.similarity_fn_name} similarity)\n")
    for index, sentence in enumerate(DEMO_SENTENCES):
        print(f"[{index}] {sentence}")
    print("\n     " + "".join(f"{j:>7}" for j in range(len(DEMO_SENTENCES))))
    for i, row in enumerate(scores.tolist()):
        print(f"[{i}]  " + "".join(f"{value:7.3f}" for value in row))
    best = max(((i, j) for i in range(len(row)) for j in range(i + 1, len(row))), key=lambda ij: scores[ij].item())
    print(f"\nmost similar pair: [{best[0]}] and [{best[1]}] ({scores[best].item():.3f})")
    return 0


def _cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from omnivec import Embedder
    from omnivec.errors import ConfigError
    from omnivec.loading.defaults import DEFAULT_TEXT_MODEL

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    model = Embedder(args.model or DEFAULT_TEXT_MODEL, backend=args.backend or "torch")
    if args.prompt_name is not None and args.prompt_name not in model.prompts:
        raise ConfigError(f"--prompt-name {args.prompt_name!r} is not a prompt of this model; its prompts: "
                          f"{sorted(model.prompts) or 'none'}.")
    embeddings = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=args.normalize,
                              prompt_name=args.prompt_name, precision=args.precision)
    assert isinstance(embeddings, np.ndarray)  # a list of texts, convert_to_numpy: one (n, dim) array
    if args.output:
        np.save(args.output, embeddings)
        print(f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {args.output}", file=sys.stderr)
    else:
        for text, vector in zip(texts, embeddings.tolist(), strict=True):
            print(json.dumps({"text": text, "embedding": vector}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import logging

    from omnivec.train.config import run_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_config(args.config)
    print(json.dumps(result))  # one line, last: the trainer's own logs go to stdout before it
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from omnivec.export_command import ExportRequest, run_export

    return run_export(ExportRequest(model=args.model, backend=args.backend, int8=args.int8, optimize=args.optimize,
                                    calibration=args.calibration, output=args.output, model_type=args.model_type))


def _cmd_index(args: argparse.Namespace) -> int:
    from omnivec.kb.commands import run_index

    _check_kb_uri(args.kb)
    return run_index(args.paths, args.kb, args.config, wait_lock_s=args.wait_lock, backend=args.backend,
                     ray=cli_ray.ray_settings(args))


def _cmd_search(args: argparse.Namespace) -> int:
    from omnivec.kb.commands import FusionChoice, run_search
    from omnivec.kb.fusion import parse_weights
    from omnivec.kb.stores.base import Filter

    _check_kb_uri(args.kb)
    where = None
    if args.path_prefix or args.modality or args.file_type:
        where = Filter(path_prefix=args.path_prefix, modalities=args.modality, file_types=args.file_type)
    spaces = [name.strip() for name in args.spaces.split(",")] if args.spaces is not None else None
    choice = FusionChoice(args.fusion, args.rrf_k, parse_weights(args.weights) if args.weights else None, spaces)
    return run_search(args.query, args.image, args.kb, args.config, args.k, args.rerank, args.json, args.queries,
                      where, choice, args.backend)


def _cmd_kb(args: argparse.Namespace) -> int:
    for kb in (args.kb, getattr(args, "to", None)):
        _check_kb_uri(kb)
    if args.kb_command == "copy":
        from omnivec.kb.copy import run_copy

        return run_copy(args.kb, args.to, args.config)
    from omnivec.kb.info import run_info

    return run_info(args.kb, args.config, args.json)


def _cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import os

    from omnivec.serve.command import run_server

    _check_serve_settings(args)  # before any model loads
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return run_server(args.model or [], args.reranker or [], args.host, args.port,
                      args.api_key or os.environ.get("OMNIVEC_API_KEY"), args.max_batch_size, args.max_wait_ms,
                      not args.no_batching, args.allow_media_urls, args.kb, args.config, args.cors_origin or [],
                      args.max_connections, args.body_timeout, args.header_timeout, args.backend)


def _cmd_bench_backends(args: argparse.Namespace) -> int:
    from omnivec.backend_commands import run_bench_backends

    backends = [name.strip() for name in args.backends.split(",")] if args.backends else None
    return run_bench_backends(args.model, args.texts, args.model_type, backends, args.batch_size, args.limit,
                              save=not args.no_save)


def _apply_threads(args: argparse.Namespace) -> None:
    """``--threads``: the threads torch, ONNX Runtime and OpenVINO use (each backend reads torch's count, so one
    process never runs two pools of all cores). Default: torch's own choice, the physical cores."""
    threads = getattr(args, "threads", None)
    if threads is None:
        return
    import os

    import torch

    from omnivec.errors import ConfigError

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads > cores:
        raise ConfigError(f"--threads {threads}: this process may use {cores} core(s); more threads than cores only "
                          "oversubscribe them.")
    torch.set_num_threads(threads)


def _check_kb_uri(kb: str | None) -> None:
    """A ``--kb`` store URI that names no store, named before any model loads."""
    if kb is None or "://" not in kb:
        return
    from omnivec.errors import ConfigError
    from omnivec.kb.stores.uri import StoreURIError, store_scheme

    try:
        store_scheme(kb)
    except StoreURIError as exc:
        raise ConfigError(f"--kb {kb!r}: {exc}") from None


def _check_serve_settings(args: argparse.Namespace) -> None:
    """What ``omnivec serve`` can check before loading models: model names used twice, the KB's settings."""
    from omnivec.errors import ConfigError

    names: dict[str, str] = {}
    for flag, specs in (("--model", args.model or []), ("--reranker", args.reranker or [])):
        for spec in specs:
            name = arg_types.model_name(spec)
            if name in names:
                raise ConfigError(f"{flag} {spec!r}: the name {name!r} is already given by {names[name]}; give each "
                                  "model its own NAME=PATH_OR_ID.")
            names[name] = f"{flag} {spec!r}"
    if args.kb is not None:
        from omnivec.kb.config import load_config
        from omnivec.kb.state_dir import kb_location

        _check_kb_uri(args.kb)
        load_config(kb_location(args.kb)[0], args.config)


class _UsageError(Exception):
    """A command-line value argparse refused; ``main`` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad command line in one line (``omnivec index: error: argument -k: ...``) instead of
    the usage block and lets ``main`` return 2, so in-process callers get a status rather than ``SystemExit``."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see '{self.prog} --help')")


def _runtime_options(backend: bool = True) -> _Parser:
    """``--backend`` and ``--threads``, shared by the commands that run models."""
    from omnivec.loading.options import BACKEND_NAMES

    options = _Parser(add_help=False)
    if backend:
        options.add_argument("--backend", choices=BACKEND_NAMES,
                             help="what runs every model: torch (default), onnx, openvino, their -int8 variants "
                                  "(made for this CPU on first use), or auto (see bench-backends); index/search/serve "
                                  "--kb: overrides kb.toml's backend")
    options.add_argument("--threads", type=arg_types.at_least_one, help="CPU threads for the models (default: physical cores)")
    return options


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="omnivec", description="Multimodal embeddings, reranking and search.")
    runtime = _runtime_options()
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="index a generated sample folder and search it, offline")
    demo.add_argument("--out", help="folder for the sample files and the KB (default: a new temporary folder)")
    demo.add_argument("--config", help="kb.toml for the demo KB (default: the default models)")
    demo.add_argument("--sentences", action="store_true", help="instead: embed a few sentences, print similarities")
    demo.add_argument("--model", help="with --sentences: model folder or Hub id (default: all-MiniLM-L6-v2)")
    demo.set_defaults(func=_cmd_demo)

    encode = commands.add_parser("encode", help="embed texts (arguments, or one per line on stdin)", parents=[runtime])
    encode.add_argument("texts", nargs="*", help="texts to embed; read from stdin when none are given")
    encode.add_argument("--model", help="model folder or Hub id (default: all-MiniLM-L6-v2)")
    encode.add_argument("--batch-size", type=arg_types.at_least_one, default=32, help="texts per batch (default 32)")
    encode.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    encode.add_argument("--prompt-name", help="a prompt stored with the model, e.g. query")
    encode.add_argument("--precision", choices=["float32", "int8", "uint8", "binary", "ubinary"], default="float32",
                        help="quantize the vectors (default float32)")
    encode.add_argument("--output", "-o", help="write a .npy file instead of JSON lines on stdout")
    encode.set_defaults(func=_cmd_encode)

    index = commands.add_parser("index", help="index files and folders into a knowledge base", parents=[runtime])
    index.add_argument("paths", nargs="+", help="files and folders (txt md html pdf jsonl, images, audio, video)")
    index.add_argument("--kb", help="KB folder (default ./omnivec-kb), or a Qdrant URI (qdrant://path, http(s)://...; "
                                    "its manifest then lives under ~/.local/share/omnivec/kb)")
    index.add_argument("--config", help="kb.toml: spaces (models), store, chunking (default: <kb>/kb.toml)")
    index.add_argument("--wait-lock", type=float, default=0.0, metavar="SECONDS",  # range: kb/lock.py
                       help="when another index run holds the KB, wait this long for it (default 0: exit, status 2)")
    cli_ray.add_ray_options(index)
    index.set_defaults(func=_cmd_index)

    search = commands.add_parser("search", help="search a knowledge base with text and/or an image", parents=[runtime])
    search.add_argument("query", nargs="?", help="text query")
    search.add_argument("--image", help="an image query (path or URL), alone or with the text")
    search.add_argument("--kb", help="KB folder or Qdrant URI (as for index)")
    search.add_argument("--config", help="kb.toml (default: <kb>/kb.toml)")
    search.add_argument("-k", type=arg_types.at_least_one, default=10, help="results to return (default 10)")
    search.add_argument("--rerank", help="a CrossEncoder model, or 'none' (default: the config's reranker)")
    search.add_argument("--spaces", help="search only these spaces, e.g. text,lexical (default: all that take the query)")
    search.add_argument("--fusion", choices=["convex", "rrf", "score"], help="how spaces' results merge (default: kb.toml's)")
    search.add_argument("--weights", help="per-space fusion weights, e.g. text=0.4,lexical=0.6")
    search.add_argument("--rrf-k", type=int, help="the k of reciprocal rank fusion (default: kb.toml's, 60)")
    search.add_argument("--path-prefix", help="only files under this path")
    search.add_argument("--modality", action="append", choices=["text", "image", "audio"], help="only this modality")
    search.add_argument("--file-type", action="append", help="only this file type (pdf, md, jpg, ...)")
    search.add_argument("--queries", help="a file of queries (.jsonl with text, or one per line): JSON lines out")
    search.add_argument("--json", action="store_true", help="print results as JSON")
    search.set_defaults(func=_cmd_search)

    kb = commands.add_parser("kb", help="knowledge base tools: copy (to another store, no re-embedding), info")
    kb_commands = kb.add_subparsers(dest="kb_command", metavar="KB_COMMAND", required=True)
    copy = kb_commands.add_parser("copy", help="copy a KB (records, vectors, lexical data, manifest, thumbnails) to "
                                               "another store, resumable and verified; no model runs")
    copy.add_argument("--to", required=True, help="where to: a new KB folder (LanceDB) or a Qdrant URI (as --kb)")
    info = kb_commands.add_parser("info", help="spaces, models, records per space and modality, files, size")
    info.add_argument("--json", action="store_true", help="print it as JSON")
    for sub in (copy, info):
        sub.add_argument("--kb", required=True, help="KB folder or Qdrant URI (as for index)")
        sub.add_argument("--config", help="its kb.toml (default: <kb>/kb.toml)")
        sub.set_defaults(func=_cmd_kb)

    serve = commands.add_parser("serve", help="HTTP server: OpenAI-style /v1/embeddings, /v1/rerank (omnivec[serve])", parents=[runtime])
    serve.add_argument("--model", action="append", type=arg_types.model_spec,
                       help="embedder, NAME=PATH_OR_ID (repeatable; default MiniLM)")
    serve.add_argument("--reranker", action="append", type=arg_types.model_spec, help="CrossEncoder, NAME=PATH_OR_ID (repeatable)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=arg_types.port_number, default=8000)
    serve.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default: $OMNIVEC_API_KEY)")
    serve.add_argument("--max-batch-size", type=arg_types.at_least_one, default=32)
    serve.add_argument("--max-wait-ms", type=arg_types.seconds(0, inclusive=True), default=5.0,
                       help="how long a batch waits to fill")
    serve.add_argument("--no-batching", action="store_true", help="run each request alone")
    serve.add_argument("--allow-media-urls", action="store_true", help="fetch http(s) image/audio URLs")
    serve.add_argument("--max-connections", type=arg_types.at_least_one, default=512,
                       help="open connections past which requests get 503 at once (default 512)")
    serve.add_argument("--body-timeout", type=arg_types.seconds(0, inclusive=False),
                       help="seconds a request body may take to arrive (default 30)")
    serve.add_argument("--header-timeout", type=arg_types.seconds(0, inclusive=False),
                       help="seconds from a connection's opening to its complete request headers (default 10)")
    serve.add_argument("--cors-origin", action="append",
                       help="let pages from this origin call the API, e.g. https://app.example.com (repeatable; * = any)")
    serve.add_argument("--kb", help="a knowledge base to search at / and POST /v1/search (folder or Qdrant URI)")
    serve.add_argument("--config", help="with --kb: its kb.toml (default: <kb>/kb.toml)")
    serve.set_defaults(func=_cmd_serve)

    bench = commands.add_parser("bench-backends", parents=[_runtime_options(backend=False)],
                                help="time a model on every backend here; backend='auto' then loads the best")
    bench.add_argument("model", help="model folder or Hub id")
    bench.add_argument("--texts", help="a text file, one text per line (default: a built-in sample)")
    bench.add_argument("--model-type", choices=["embedder", "cross-encoder"], default="embedder",
                       help="embedder (default; texts) or cross-encoder (pairs of neighbouring texts)")
    bench.add_argument("--backends", help="comma-separated subset, e.g. torch,openvino-int8 (default: all installed)")
    bench.add_argument("--batch-size", type=arg_types.at_least_one, default=32, help="inputs per batch (default 32)")
    bench.add_argument("--limit", type=arg_types.at_least_one, default=2000, help="texts used at most (default 2000)")
    bench.add_argument("--no-save", action="store_true", help="print only; do not keep the choice for backend='auto'")
    bench.set_defaults(func=_cmd_bench_backends)

    export = commands.add_parser("export", parents=[_runtime_options(backend=False)], help="export a model for ONNX Runtime or OpenVINO, optionally int8")
    export.add_argument("model", help="model folder or Hub id")
    export.add_argument("--backend", choices=["onnx", "openvino"], required=True)
    export.add_argument("--int8", action="store_true",
                        help="also write this CPU's best int8 export (ONNX: dynamic; OpenVINO: static, calibrated)")
    export.add_argument("--optimize", choices=["O1", "O2", "O3", "O4"], help="onnx: also write model_<level>.onnx")
    export.add_argument("--calibration", metavar="FILE",
                        help="openvino --int8: calibration texts, one per line (default: a built-in sample); for "
                             "CLIP/SigLIP/CLAP also image or audio file paths")
    export.add_argument("--output", metavar="DIR", help="save the model with its exports here (default: in place)")
    export.add_argument("--model-type", choices=["auto", "embedder", "cross-encoder"], default="auto",
                        help="default auto: a folder saved as a CrossEncoder (or a classifier checkpoint) is one")
    export.set_defaults(func=_cmd_export)

    train = commands.add_parser("train", help="fine-tune a model as a YAML config describes (needs omnivec[train])")
    train.add_argument("config", help="YAML file: model, data, loss, evaluator, args, output")
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 for a bad setting or input (one message on stderr, never a traceback)."""
    from omnivec.printing import printable

    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(printable(str(exc)), file=sys.stderr)
        return 2
    if args.version:
        from omnivec import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from omnivec.errors import ConfigError, OmnivecError

    try:
        _apply_threads(args)
        return args.func(args)
    except ConfigError as exc:  # a bad setting: one line naming it and what is allowed
        print(f"omnivec {args.command}: error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except OmnivecError as exc:
        print(f"omnivec {args.command}: {printable(str(exc), keep_newlines=True)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
