"""Indexing streams: a 3-hour recording and a 1,000-page PDF go through ``omnivec index`` (read, embedded and
written in batches of ``flush_chunks``) with a peak memory that does not grow with the file, measured in a
subprocess after its models are loaded, against the same run with each file's chunks gathered first (what the
list-returning readers did)."""

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


@pytest.mark.slow  # writes 330 MB, then embeds 1,080 ten-second windows (~40 s)
def test_a_three_hour_recording_is_indexed_in_bounded_memory(tmp_path, clap_dir):
    """Three hours of 16 kHz mono: 1,080 windows of 10 s, 2 GB of float32 at the model's 48 kHz. Measured: the
    streamed run grew 64 MiB over its loaded models. Bound: 200 MiB."""
    path = write_long_wav(tmp_path / "call.wav", minutes=180)
    config = tmp_path / "kb.toml"
    config.write_text(f'[spaces]\naudio = "{clap_dir}"\n', encoding="utf-8")
    streamed = _index(path, config, "stream", tmp_path / "kb")
    assert streamed["indexed"] == 1 and streamed["chunks"] == {"audio": 1080}, streamed
    assert streamed["grown_mib"] < 200, streamed


@pytest.mark.slow  # renders and embeds 1,000 pages and their text, twice (~60 s)
def test_a_thousand_page_pdf_is_indexed_in_bounded_memory(tmp_path, bert_dir, clip_dir):
    """1,000 pages, each a passage (text and lexical spaces) and a rendered page (image space). Measured: streamed
    grew 20 MiB; gathered first, 60 MiB. Bound: 40 MiB, and below the gathered run."""
    path = write_pdf(tmp_path / "manual.pdf", [[f"Page {n}", f"Line of page {n} about the lamp."]
                                               for n in range(1000)], size=(306, 396))
    config = tmp_path / "kb.toml"
    config.write_text(f'overlap_tokens = 8\n[spaces]\ntext = "{bert_dir}"\nimage = "{clip_dir}"\n', encoding="utf-8")
    streamed = _index(path, config, "stream", tmp_path / "streamed")
    gathered = _index(path, config, "list", tmp_path / "gathered")
    expected = {"text": 1000, "lexical": 1000, "image": 1000}
    assert streamed["chunks"] == gathered["chunks"] == expected, (streamed, gathered)
    assert streamed["grown_mib"] < 40 and streamed["grown_mib"] < gathered["grown_mib"], (streamed, gathered)
