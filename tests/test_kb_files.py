"""What the server's KB routes serve by key (serve/kb_files.py): a manifest reload racing a look-up, work kept off the
event loop, and a PDF page PDFium fails to render answered as a 4xx."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

from fastapi.testclient import TestClient

from omnivec.kb.file_version import FileVersion
from omnivec.kb.ingest.sample import write_pdf
from omnivec.kb.record_ids import file_key
from omnivec.serve.kb_files import KBFiles
from tests.fixtures.kb_state import indexed_kb


def _client(kb: Path) -> TestClient:
    from omnivec.serve.app import create_app

    app = create_app({}, {}, kb=SimpleNamespace(kb_dir=kb, spaces=[], reranker=None))
    return TestClient(app, raise_server_exceptions=False)


def test_a_reload_between_two_reads_of_the_file_table_is_not_a_key_error(tmp_path):
    """Another request's reload replaces the table between the membership test and the read: the look-up keeps
    the table it started with (before the fix: KeyError, a 500)."""
    path = tmp_path / "a.txt"
    path.write_text("x")
    found = os.stat(path)
    files = KBFiles(tmp_path, None)
    key, reads = "0123456789abcdef", [0]

    class Replaced(dict):
        def __contains__(self, item: object) -> bool:
            reads[0] += 1
            if reads[0] == 2:  # what a concurrent _reload does: a new table, here without the key
                files._files = {}
            return dict.__contains__(self, item)

    files._files = Replaced({key: FileVersion.of(str(path.resolve()), found, "")})
    checked_path, _ = files.checked(key)
    assert checked_path == path.resolve() and reads[0] == 2


def test_page_previews_look_up_the_file_off_the_event_loop(tmp_path, monkeypatch):
    """The look-up may re-read the manifest (SQLite): it runs in a worker thread, not on the event loop."""
    pdf = write_pdf(tmp_path / "doc.pdf", [["page one"]])
    kb = indexed_kb(tmp_path, [pdf])
    on_loop = []
    original = KBFiles.checked

    def probe(self, key):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return original(self, key)

    monkeypatch.setattr(KBFiles, "checked", probe)
    with _client(kb) as client:
        reply = client.get(f"/v1/kb/pages/{file_key(str(pdf))}/1.jpg?width=320")
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/jpeg"
    assert on_loop == [False]


def test_a_page_pdfium_cannot_render_is_a_4xx_not_a_500(tmp_path, monkeypatch):
    """The file opens, but rendering its page fails in PDFium (a damaged page): 404 naming the page, and the next
    page preview still works."""
    import pypdfium2

    pdf = write_pdf(tmp_path / "damaged.pdf", [["page one"], ["page two"]])
    kb = indexed_kb(tmp_path, [pdf])
    original, calls = pypdfium2.PdfPage.render, [0]

    def damaged_first_render(self, *args, **kwargs):  # the first render (page 2's) fails as a damaged page does
        calls[0] += 1
        if calls[0] == 1:
            raise pypdfium2.PdfiumError("Failed to render page (damaged content stream)")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pypdfium2.PdfPage, "render", damaged_first_render)
    key = file_key(str(pdf))
    with _client(kb) as client:
        reply = client.get(f"/v1/kb/pages/{key}/2.jpg?width=640")
        assert reply.status_code == 404, (reply.status_code, reply.text)
        message = reply.json()["error"]["message"]
        assert "page 2 cannot be rendered" in message and "damaged content stream" in message, message
        assert client.get(f"/v1/kb/pages/{key}/1.jpg?width=640").status_code == 200
