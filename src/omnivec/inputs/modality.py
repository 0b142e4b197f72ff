"""What is this input? Decided once, from its type and explicit structure, and carried as a tag.

Rules: a ``str`` is text unless it has a media URL scheme (http(s)://, file://, data:) or is an existing
file with a media extension; a PIL image, ``bytes`` with a known signature, an ``HxWxC`` uint8 array, an
``{"array", "sampling_rate"}`` dict and a ``{"frames": [...]}`` dict say what they are; a dict with
``text``/``image``/``audio``/``video`` keys is one multimodal input. A bare float array is never
guessed from its rank: it must come wrapped or with ``modality=`` forced.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from omnivec.errors import InputError

logger = logging.getLogger(__name__)

MODALITIES = ("text", "image", "audio", "video")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi", ".m4v")


@dataclass(frozen=True)
class Item:
    """One input with its modality decided: a single modality, or a sorted tuple for a multimodal dict."""

    index: int
    modality: str | tuple[str, ...]
    value: Any  # raw, not yet decoded; for a multimodal dict: {modality: raw value}


def as_batch(inputs: Any) -> tuple[list[Any], bool]:
    """The inputs as a list, and whether they were one input. A batch is a list or tuple, any other sequence that is
    not text or bytes (a ``datasets`` Column, a ``collections.UserList``...), a pandas Series, Index or array (what
    ``df["text"].values`` gives with pandas 3), or a 1-D
    NumPy array of strings (dtype ``<U..``) or objects. Anything else is one input: a 1-D array of numbers stays
    one (ambiguous) input, refused by ``tag_inputs`` with a message that says how to mark it."""
    if isinstance(inputs, list):
        return inputs, False
    if isinstance(inputs, (str, bytes, bytearray, memoryview, dict)):
        return [inputs], True
    kind = type(inputs)
    if kind.__name__ == "ndarray":
        if inputs.dtype.kind in ("U", "S", "O") and inputs.ndim >= 1:
            if inputs.ndim != 1:
                raise InputError(f"A NumPy array of inputs must be 1-D (one input per element), got shape "
                                 f"{tuple(inputs.shape)}; pass array.ravel() or a list.")
            return inputs.tolist(), False
        return [inputs], True
    if kind.__module__.split(".")[0] == "pandas" and getattr(inputs, "ndim", None) == 1:
        return list(inputs.tolist()), False  # Series, Index, and .values of a string column (ArrowStringArray)
    if isinstance(inputs, Sequence):  # tuple, datasets.Column, UserList, range...
        return list(inputs), False
    return [inputs], True


def tag_inputs(inputs: Sequence[Any], modality: str | None = None) -> list[Item]:
    """Tag each input with its modality (or the forced ``modality``), naming the index of any it cannot tell."""
    if modality is not None and modality not in MODALITIES:
        raise InputError(f"modality={modality!r} must be one of {MODALITIES} (or None to detect it).")
    items = [Item(i, *_detect(x, i, modality)) for i, x in enumerate(inputs)]
    for item in items:
        text = item.value.get("text") if isinstance(item.value, dict) else item.value
        if "text" in item.modality and isinstance(text, str):  # a text input, or a multimodal dict's text
            require_valid_unicode(text, f"Input at index {item.index}")
    if modality is None:
        _warn_missing_media_paths(inputs, items)
    return items


def require_valid_unicode(text: str, what: str) -> None:
    """Refuse text holding a lone surrogate (a JSON ``"\\ud800"`` escape, a file name's undecodable bytes): no
    tokenizer can take it, and the tokenizers library would fail with a bare TypeError."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"{what} holds text that is not valid Unicode ({exc.reason} at character "
                             f"{exc.start}).") from None


def _warn_missing_media_paths(inputs: Sequence[Any], items: list[Item]) -> None:
    """One warning per call for bare strings that look like media paths (``photo.jpg``) but name no file: most
    likely a mistyped path, embedded as the text of its name. ``{"text": ...}`` says text is meant: no warning."""
    missing = [item for item in items if item.modality == "text" and isinstance(inputs[item.index], str)
               and looks_like_media_path(item.value)]
    if missing:
        more = f" (and {len(missing) - 1} more such inputs)" if len(missing) > 1 else ""
        logger.warning("Input at index %d, %r, looks like a media file path but no such file exists, so it is "
                       "embedded as text%s; pass modality='text' (or {'text': ...}) if text is meant.",
                       missing[0].index, missing[0].value, more)


def looks_like_media_path(text: str) -> bool:
    """A string ending in a media extension that reads as a path: no whitespace, or an absolute or ./ path."""
    if not isinstance(text, str) or len(text) > 4096 or "\n" in text or _kind_of_extension(text) is None:
        return False
    if "://" in text or text.startswith("data:"):
        return False
    return not any(c.isspace() for c in text) or text.startswith(("/", "~", "./", "../", "\\")) or (
        len(text) > 2 and text[1] == ":" and text[2] in "/\\")


def _detect(x: Any, index: int, forced: str | None) -> tuple[str | tuple[str, ...], Any]:
    if isinstance(x, dict):
        return _detect_dict(x, index, forced)
    if forced is not None:
        _check_forced(x, index, forced)
        return forced, x
    return _detect_single(x, index), x


def _detect_single(x: Any, index: int) -> str:
    if isinstance(x, str):
        return media_kind_of_string(x) or "text"
    if _is_pil_image(x):
        return "image"
    if isinstance(x, (bytes, bytearray, memoryview)):
        kind = sniff_bytes(bytes(x[:64]))
        if kind is None:
            raise InputError(f"Input at index {index}: bytes (first {min(len(x), 8)}: {bytes(x[:8])!r}) are not "
                             "a known image, audio or video format; pass modality= to force one.")
        return kind
    if _is_image_array(x):
        return "image"
    if type(x).__name__ in ("ndarray", "Tensor"):
        raise InputError(
            f"Input at index {index}: a bare {type(x).__name__} of shape {tuple(x.shape)} is ambiguous. Pass "
            "{'array': waveform, 'sampling_rate': sr} for audio, an HxWxC uint8 array or PIL image for an image, "
            "or {'frames': [...], 'fps': f} for a video."
        )
    if isinstance(x, (list, tuple)):
        raise InputError(f"Input at index {index}: a {type(x).__name__} inside the inputs is ambiguous; pass "
                         "{'frames': [...], 'fps': f} for a video, or a dict with 'text'/'image'/... keys.")
    raise InputError(f"Input at index {index} is a {type(x).__name__}; expected str, PIL image, bytes, "
                     "an HxWxC uint8 array, or a dict (audio, video frames, or multimodal).")


def _detect_dict(x: dict, index: int, forced: str | None) -> tuple[str | tuple[str, ...], Any]:
    keys = set(x)
    if "array" in keys:
        if "sampling_rate" not in keys:
            raise InputError(f"Input at index {index}: audio dict needs 'sampling_rate' next to 'array'.")
        kind = "audio"
    elif "frames" in keys:
        if not isinstance(x["frames"], (list, tuple)) or not x["frames"]:
            raise InputError(f"Input at index {index}: video dict needs a non-empty list under 'frames'.")
        kind = "video"
    else:
        unknown = keys - set(MODALITIES)
        if unknown or not keys:
            raise InputError(f"Input at index {index}: dict keys {sorted(map(str, keys))} are not an audio dict "
                             f"('array', 'sampling_rate'), a video dict ('frames', 'fps') or modality keys {MODALITIES}.")
        if forced is not None:
            raise InputError(f"Input at index {index}: modality={forced!r} cannot be forced on a multimodal dict.")
        parts = {}
        for key in sorted(keys):
            part_kind, part_value = _detect(x[key], index, key)
            parts[key] = part_value
        if len(parts) == 1:
            (only, value), = parts.items()
            return only, value
        return tuple(parts), parts
    if forced is not None and forced != kind:
        raise InputError(f"Input at index {index} is a {kind} dict, but modality={forced!r} was forced.")
    return kind, x


def _check_forced(x: Any, index: int, forced: str) -> None:
    ok = {
        "text": isinstance(x, str),
        "image": isinstance(x, (str, bytes, bytearray, memoryview)) or _is_pil_image(x) or _is_image_array(x),
        "audio": isinstance(x, (str, bytes, bytearray, memoryview)),
        "video": isinstance(x, (str, bytes, bytearray, memoryview, list, tuple)),
    }[forced]
    if not ok:
        raise InputError(f"Input at index {index} is a {type(x).__name__}, which cannot be read as {forced}.")


def media_kind_of_string(text: str) -> str | None:
    """The media modality a string names (an existing media file or a media URL), else None (it is text)."""
    if len(text) > 4096 or "\n" in text:
        return None
    if text.startswith("data:"):
        mime = text[5:].split(";", 1)[0].split(",", 1)[0]
        kind = mime.split("/", 1)[0]
        return kind if kind in ("image", "audio", "video") else None
    scheme = urlparse(text).scheme.lower() if "://" in text else ""
    if scheme in ("http", "https", "file"):
        return _kind_of_extension(urlparse(text).path)
    if scheme:
        return None
    kind = _kind_of_extension(text)
    return kind if kind and os.path.isfile(os.path.expanduser(text)) else None


def _kind_of_extension(path: str) -> str | None:
    ext = os.path.splitext(path.lower())[1]
    for kind, extensions in (("image", IMAGE_EXTENSIONS), ("audio", AUDIO_EXTENSIONS), ("video", VIDEO_EXTENSIONS)):
        if ext in extensions:
            return kind
    return None


def sniff_bytes(head: bytes) -> str | None:
    """Modality of an encoded file from its first bytes (its signature), or None if unknown."""
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")):
        return "image"
    if head[:4] == b"RIFF":
        return {b"WEBP": "image", b"WAVE": "audio", b"AVI ": "video"}.get(head[8:12])
    if head.startswith((b"fLaC", b"OggS", b"ID3")) or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio"
    if head[4:8] == b"ftyp":
        return "audio" if head[8:11] in (b"M4A", b"M4B") else "video"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # Matroska / WebM
        return "video"
    return None


def _is_pil_image(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "convert") and hasattr(x, "size")


def _is_image_array(x: Any) -> bool:
    return (type(x).__name__ == "ndarray" and getattr(x, "ndim", 0) == 3 and str(x.dtype) == "uint8"
            and x.shape[-1] in (1, 3, 4))
