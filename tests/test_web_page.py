"""The search page at ``/``, end to end: Playwright drives Debian's Chromium (headless) against a real server on
loopback. Key prompt, text search, image upload and drag-and-drop, thumbnails, PDF page previews, players that
start at the matched time, errors shown on the page."""

from __future__ import annotations

import base64
import mimetypes
import os
import shutil
from pathlib import Path

import pytest

from omnivec.kb.config import load_config
from omnivec.kb.search import Searcher
from omnivec.serve.app import create_app
from tests.fixtures.live_server import live_server

pytestmark = pytest.mark.slow  # drives a real Chromium against a live server

KEY = "page-key"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"]


def _chromium() -> str:
    path = os.environ.get("OMNIVEC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "the web page test needs Chromium: `apt-get install chromium` (scripts/test.sh does this as root), " \
                 "or set OMNIVEC_CHROMIUM to a Chromium binary"
    return path


@pytest.fixture(scope="module")
def site(sample_kb):
    docs, kb, config = sample_kb
    searcher = Searcher(kb, load_config(kb, config), device="cpu")
    with live_server(create_app({}, {}, kb=searcher, api_key=KEY)) as url:
        yield url, docs
    searcher.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=_chromium(), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
        yield context
        context.close()


@pytest.fixture
def page(browser, site):
    """The page, signed in with the key through its own prompt."""
    url, _ = site
    tab = browser.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(str(error)))
    tab.goto(url + "/")
    tab.wait_for_selector("#key-form:not([hidden])")  # the API answered 401: the page asks for the key
    tab.fill("#api-key", KEY)
    tab.click("#save-key")
    tab.wait_for_function("document.getElementById('about').textContent.includes('8 files')")
    yield tab
    tab.close()
    assert not problems, problems  # no uncaught script errors


def _search(page, query: str, k: int = 50) -> None:
    page.select_option("#k", str(k))
    page.fill("#query", query)
    page.press("#query", "Enter")
    page.wait_for_function("document.getElementById('status').textContent.includes('results in')")


def _cards(page) -> list[dict]:
    return page.eval_on_selector_all("article.result", """cards => cards.map(c => ({
        kind: c.dataset.kind, file: c.dataset.file.split('/').pop(), modality: c.dataset.modality,
        spaces: c.dataset.spaces, scores: c.querySelector('.scores').textContent}))""")


def test_a_result_the_lexical_space_found_says_so(page):
    _search(page, "charging coil voltage", k=10)
    top = _cards(page)[0]
    assert top["file"] == "manual.md" and "lexical" in top["spaces"].split(",") and "lexical " in top["scores"]


def test_text_search_shows_thumbnails_pages_and_players_at_the_matched_time(page):
    _search(page, "ball")
    cards = _cards(page)
    kinds = {(c["kind"], c["file"]) for c in cards}
    assert {("page", "report.pdf"), ("image", "red_circle.png"), ("frame", "ball.mp4"), ("audio", "beeps.wav"),
            ("text", "manual.md")} <= kinds
    # Each card says which spaces found it, with each one's own score.
    assert all(c["spaces"] and f"found by {c['spaces'].split(',')[0]} " in c["scores"] for c in cards)
    # Every picture loads: thumbnails and PDF pages come through signed links, without the Authorization header.
    page.wait_for_function("[...document.images].filter(i => i.src && !i.closest('#drop'))"
                           ".every(i => i.complete && i.naturalWidth > 0)")
    previews = page.eval_on_selector_all("article[data-kind=page] img", "imgs => imgs.map(i => i.naturalWidth)")
    assert previews and all(width == 640 for width in previews)  # rendered pages, not the small thumbnails
    pdf_link = page.get_attribute("article[data-kind=page] .media a", "href")
    assert "/v1/kb/files/" in pdf_link and "#page=" in pdf_link

    # Players start at the matched time: the 2-4 s window of the recording, the 2 s segment of the video.
    for selector, tag in (("article[data-kind=audio][data-file$='beeps.wav']", "audio"),
                          ("article[data-kind=frame][data-file$='ball.mp4']", "video")):
        starts = page.eval_on_selector_all(f"{selector} {tag}", "ps => ps.map(p => Number(p.dataset.start))")
        assert 2.0 in starts, starts
        player = f"{selector} {tag}[data-start='2']"
        page.wait_for_function(f"document.querySelector(\"{player}\").readyState >= 1")
        assert abs(page.eval_on_selector(player, "p => p.currentTime") - 2.0) < 0.05
    audio = "article[data-kind=audio][data-file$='beeps.wav']:has(audio[data-start='2'])"
    page.click(f"{audio} button.play")
    page.wait_for_function(f"document.querySelector(\"{audio} audio\").currentTime > 2.1")


def test_image_upload_and_drag_and_drop_search_by_picture(page, site):
    _, docs = site
    page.set_input_files("#image-input", str(docs / "red_circle.png"))
    page.wait_for_function("document.getElementById('status').textContent.includes('results in')")
    assert page.is_visible("#image-preview") and page.is_visible("#clear-image")
    assert _cards(page)[0]["file"] == "red_circle.png"  # the picture itself is the nearest neighbour

    page.click("#clear-image")
    assert not page.is_visible("#image-preview")
    _drop(page, docs / "green_triangle.png")
    page.wait_for_function("document.querySelector('article.result')?.dataset.file.endsWith('green_triangle.png')")

    # Only images: the modality filter reaches the server.
    page.uncheck("input[name=modality][value=text]")
    page.uncheck("input[name=modality][value=audio]")
    page.click("#search")
    page.wait_for_function("[...document.querySelectorAll('article.result')].every(c => c.dataset.modality == "
                           "'image') && document.getElementById('status').textContent.includes('results in')")


def _drop(page, path: Path) -> None:
    """A real drop event carrying the file, as a browser fires when a file is dragged from the desktop."""
    data = base64.b64encode(path.read_bytes()).decode()
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    page.evaluate("""([name, data, kind]) => {
        const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], name, {type: kind}));
        const drop = document.getElementById('drop');
        drop.dispatchEvent(new DragEvent('dragover', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        drop.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
    }""", [path.name, data, kind])


def test_errors_are_shown_on_the_page(page, site):
    _, docs = site
    page.click("#search")
    assert page.text_content("#status") == "Type a query or add an image."
    _drop(page, docs / "manual.md")  # not an image: refused in the page
    assert "is not an image" in page.text_content("#status")
    page.evaluate("sessionStorage.setItem('omnivec-key', 'wrong')")
    page.fill("#query", "lamp")
    page.click("#search")
    page.wait_for_selector("#key-form:not([hidden])")
    assert "API key" in page.text_content("#status") and page.get_attribute("#status", "class") == "error"
