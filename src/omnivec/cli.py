"""omnivec command line: ``omnivec demo | encode | train``. Heavy imports wait until a command runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

DEMO_SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "A woman is playing violin.",
    "Two men pushed carts through the woods.",
]


def _cmd_demo(args: argparse.Namespace) -> int:
    from omnivec import Embedder
    from omnivec.models.defaults import default_text_model

    model = Embedder(args.model or default_text_model())
    embeddings = model.encode(DEMO_SENTENCES)
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
    from omnivec import Embedder
    from omnivec.models.defaults import default_text_model

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    model = Embedder(args.model or default_text_model())
    embeddings = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=args.normalize,
                              prompt_name=args.prompt_name)
    if args.output:
        import numpy as np

        np.save(args.output, embeddings)
        print(f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {args.output}", file=sys.stderr)
    else:
        for text, vector in zip(texts, embeddings.tolist()):
            print(json.dumps({"text": text, "embedding": vector}))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import logging

    from omnivec.train.config import run_config

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_config(args.config)
    print(json.dumps(result))  # one line, last: the trainer's own logs go to stdout before it
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="omnivec", description="Multimodal embeddings, reranking and search.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser("demo", help="embed a few sentences offline and print their similarity matrix")
    demo.add_argument("--model", help="model folder or Hub id (default: all-MiniLM-L6-v2)")
    demo.set_defaults(func=_cmd_demo)

    encode = commands.add_parser("encode", help="embed texts (arguments, or one per line on stdin)")
    encode.add_argument("texts", nargs="*", help="texts to embed; read from stdin when none are given")
    encode.add_argument("--model", help="model folder or Hub id (default: all-MiniLM-L6-v2)")
    encode.add_argument("--batch-size", type=int, default=32)
    encode.add_argument("--normalize", action="store_true", help="L2-normalise the vectors")
    encode.add_argument("--prompt-name", help="a prompt stored with the model, e.g. query")
    encode.add_argument("--output", "-o", help="write a .npy file instead of JSON lines on stdout")
    encode.set_defaults(func=_cmd_encode)

    train = commands.add_parser("train", help="fine-tune a model as a YAML config describes (needs omnivec[train])")
    train.add_argument("config", help="YAML file: model, data, loss, evaluator, args, output")
    train.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from omnivec import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from omnivec.errors import OmnivecError

    try:
        return args.func(args)
    except OmnivecError as exc:
        print(f"omnivec {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
