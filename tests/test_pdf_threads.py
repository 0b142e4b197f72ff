"""PDFium is not thread-safe: page previews requested at once (the search page fires one per PDF hit) and indexing
must never be inside it together. A live server is hit with concurrent preview requests; a probe checks that
renders from many threads never overlap."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image

from omnivec.kb.ingest.sample import write_pdf
from tests.fixtures.kb_state import indexed_kb

PDFS, PAGES = 4, 8
CONCURRENCY = 16
WIDTHS = (320, 640, 960, 1280, 1920)

SERVER = textwrap.dedent("""
    import socket, sys
    from pathlib import Path
    from types import SimpleNamespace
    import uvicorn
    from omnivec.serve.app import create_app

    app = create_app({}, {}, kb=SimpleNamespace(kb_dir=Path(sys.argv[1]), spaces=[], reranker=None))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
""")


def _pdfs(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for n in range(PDFS):
        lines = [[f"Document {n} page {p}"] + [f"line {i} " * 12 for i in range(30)] for p in range(PAGES)]
        paths.append(write_pdf(folder / f"doc{n}.pdf", lines))
    return paths


def test_concurrent_page_previews_on_a_live_server(tmp_path):
    from omnivec.kb.record_ids import file_key

    pdfs = _pdfs(tmp_path / "docs")
    kb = indexed_kb(tmp_path, pdfs)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(kb)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, text=True)
    try:
        base = f"http://127.0.0.1:{server.stdout.readline().strip()}"
        # Every (file, page, width) once: the server caches renderings, so each request renders.
        urls = [f"{base}/v1/kb/pages/{file_key(str(p))}/{page}.jpg?width={width}"
                for width in WIDTHS for page in range(1, PAGES + 1) for p in pdfs]
        deadline = time.monotonic() + 30
        while True:  # the server is up once /health answers
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.1)

        def fetch(url: str) -> tuple[str, int, bytes]:
            try:
                reply = httpx.get(url, timeout=60)
            except httpx.TransportError as exc:  # the server died under us
                return url, -1, repr(exc).encode()
            return url, reply.status_code, reply.content

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            replies = list(pool.map(fetch, urls))
        failed = [(url, status, body[:200]) for url, status, body in replies if status != 200]
        assert not failed, (len(failed), failed[:3], server.poll())
        for url, _, body in replies:
            image = Image.open(io.BytesIO(body))
            assert image.format == "JPEG" and image.width == int(url.rsplit("=", 1)[1]), url
        assert server.poll() is None  # still serving
    finally:
        server.terminate()
        server.wait(10)


def test_renders_from_threads_never_overlap(tmp_path, monkeypatch):
    """Indexing (page reads with rendering) and previews (render_page) from many threads at once: a probe on
    PDFium's render counts the callers inside it at any time, which must never exceed one."""
    import pypdfium2

    from omnivec.kb.ingest import IngestOptions, ingest_file
    from omnivec.kb.ingest.pdf import render_page

    pdfs = _pdfs(tmp_path / "docs")
    inside, most, calls = [0], [0], [0]
    guard, serial = threading.Lock(), threading.Lock()
    original = pypdfium2.PdfPage.render

    def probe(self, *args, **kwargs):
        with guard:
            inside[0] += 1
            calls[0] += 1
            most[0] = max(most[0], inside[0])
        try:
            time.sleep(0.002)  # widen the window an unserialised caller would overlap in
            with serial:  # the probe's own renders never overlap, so an unfixed build fails here, not crashes
                return original(self, *args, **kwargs)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(pypdfium2.PdfPage, "render", probe)
    jobs = [lambda p=p, n=n: render_page(p, n, 320) for p in pdfs for n in range(1, PAGES + 1)]
    jobs += [lambda p=p: ingest_file(p, IngestOptions()) for p in pdfs]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = [future.result() for future in [pool.submit(job) for job in jobs]]
    assert calls[0] == 2 * PDFS * PAGES and most[0] == 1
    assert all(r.width == 320 for r in results[:PDFS * PAGES])
    assert all(sum(c.kind == "page" for c in chunks) == PAGES for chunks in results[PDFS * PAGES:])
