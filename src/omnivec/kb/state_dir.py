"""Where a knowledge base keeps its local state (manifest, thumbnails, kb.toml): the folder given by ``--kb``, or
for a KB named by a store URI, one folder per store under the user's data directory, so that every command finds
the same state from any working directory."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger(__name__)

DEFAULT_KB = "omnivec-kb"


def state_root() -> Path:
    """Where a KB named by a store URI keeps its local state (manifest, thumbnails, kb.toml):
    ``$XDG_DATA_HOME/omnivec/kb`` (default ``~/.local/share/omnivec/kb``), one folder per store URI."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "omnivec" / "kb"


def normalize_store_uri(uri: str) -> str:
    """One spelling per store: a local Qdrant/LanceDB path made absolute, a server URL with its scheme and host
    lower-cased and no trailing slash. The same store then has the same state folder from any directory."""
    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if scheme in ("qdrant", "qdrant+path", "lancedb") and rest and rest != ":memory:":
        return f"{scheme}://{os.path.abspath(os.path.expanduser(rest))}"
    if scheme in ("http", "https"):
        parts = urlsplit(uri)
        return urlunsplit((scheme, parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))
    return uri


def state_dir(uri: str) -> Path:
    """The state folder of the KB whose vectors are at ``uri`` (normalised): a readable name (host and port, or
    the path; never credentials) and a hash of the whole URI."""
    parts = urlsplit(uri)
    readable = f"{parts.hostname or ''}_{parts.port or ''}{parts.path}" if parts.scheme.startswith("http") else uri
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", readable).strip("_.")[-60:]
    return state_root() / f"{name}-{hashlib.blake2b(uri.encode(), digest_size=6).hexdigest()}"


def kb_location(kb: str | None) -> tuple[Path, str | None]:
    """The local KB folder (manifest, thumbnails, kb.toml) and, when ``kb`` is a store URI, the store URI.

    ``--kb DIR`` keeps everything in DIR (a ``store`` in its kb.toml may put the vectors elsewhere);
    ``--kb http(s)://host:6333`` or ``qdrant://path`` puts vectors there and the rest in ``state_dir(uri)``,
    the same folder whatever the working directory."""
    kb = kb or DEFAULT_KB
    if "://" not in kb:
        return Path(kb), None
    uri = normalize_store_uri(kb)
    folder = state_dir(uri)
    # Earlier releases kept it under the working directory: moved once, said once.
    legacy = (Path(".omnivec") / re.sub(r"[^A-Za-z0-9._-]+", "_", kb)).resolve()
    if (legacy / "manifest.sqlite").is_file() and not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(legacy), str(folder))
        logger.warning("Moved the local state of KB %s from %s to %s.", kb, legacy, folder)
    return folder, uri
