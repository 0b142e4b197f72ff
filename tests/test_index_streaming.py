"""Indexing streams: a 3-hour recording and a 1,000-page PDF go through ``omnivec index`` (read, embedded and
written in batches of ``flush_chunks``) with a peak memory that does not grow with the file, measured in a
subprocess after its models are loaded (a ``list`` mode gathers each file's chunks first, as the list-returning
readers did, for comparison)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from omnivec.kb.ingest.sample import write_pdf
from tests.fixtures.media import write_long_wav

INDEX = """
    import json, sys, warnings
    from pathlib import Path
    from omnivec.kb import ingest
    from omnivec.kb.config import load_config
    from omnivec.kb.indexer import Indexer

    hwm = lambda: int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    warnings.simplefilter("ignore")
    kb = Path(sys.argv[2])
    indexer = Indexer(kb, load_config(kb, sys.argv[3]), show_progress=False)
    if sys.argv[4] == "list":  # every chunk of the file read before the first is embedded
        whole = ingest.iter_chunks
        ingest.iter_chunks = lambda path, options=None: iter(list(whole(path, options)))
    before = hwm()  # the models are loaded, nothing is read yet
    report = indexer.run([Path(sys.argv[1])])
    indexer.close()
    print(json.dumps({"indexed": report.indexed, "failed": report.failed, "chunks": report.chunks,
                      "grown_mib": hwm() - before}))
"""


def _index(path: Path, config: Path, mode: str, kb: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(INDEX), str(path), str(kb), str(config), mode],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # writes 440 MB, then embeds 1,440 ten-second windows (~45 s)
def test_a_three_hour_recording_is_indexed_in_bounded_memory(tmp_path, clap_dir):
    """Three hours of 16 kHz mono: 1,080 windows of 10 s, 1.9 GiB of float32 at the model's 48 kHz. Measured over
    the loaded models: 305 MiB for three hours, 299 MiB for one (gathered first, that hour took 869 MiB). Bounds:
    400 MiB, and three hours within 50 MiB of one: the peak does not grow with the recording."""
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\naudio = "{clap_dir}"\n', encoding="utf-8")
    grown = {}
    for minutes in (60, 180):
        path = write_long_wav(tmp_path / f"call-{minutes}.wav", minutes=minutes)
        run = _index(path, config, "stream", tmp_path / f"kb-{minutes}")
        assert run["indexed"] == 1 and run["chunks"] == {"audio": minutes * 6}, run
        grown[minutes] = run["grown_mib"]
        path.unlink()
    assert grown[180] < 400 and grown[180] - grown[60] < 50, grown


@pytest.mark.slow  # renders and embeds 1,000 pages and their text (~30 s)
def test_a_thousand_page_pdf_is_indexed_in_bounded_memory(tmp_path, bert_dir, clip_dir):
    """1,000 pages, each a passage (text and lexical spaces) and a rendered page (image space). Measured: 80 MiB
    over the loaded models, most of it the models' batches (gathered first: 81 MiB, as a page is a small PNG until
    embedded; the reader alone: 6 MiB streamed, 18 MiB as a list, tests/test_ingest_streaming.py). Bound: 120 MiB."""
    path = write_pdf(tmp_path / "manual.pdf", [[f"Page {n}", f"Line of page {n} about the lamp."]
                                               for n in range(1000)], size=(306, 396))
    config = tmp_path / "kb.toml"
    config.write_text(f'overlap_tokens = 8\n[spaces]\ntext = "{bert_dir}"\nimage = "{clip_dir}"\n', encoding="utf-8")
    streamed = _index(path, config, "stream", tmp_path / "streamed")
    assert streamed["chunks"] == {"text": 1000, "lexical": 1000, "image": 1000}, streamed
    assert streamed["grown_mib"] < 120, streamed
