"""Request items turned into model inputs: text checked for lone surrogates, images from ``data:`` URIs (and http(s)
URLs where allowed) within the pixel limits per image and per request, base64 audio content parts; never a local
file. Every refusal is an ``ApiError`` naming the field or ``input[i]``."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from omnivec.errors import InputError
from omnivec.inputs.audio import load_audio
from omnivec.inputs.image import ImageTooLarge, load_image
from omnivec.inputs.sources import FetchPolicy
from omnivec.serve import schemas as s
from omnivec.serve.errors import ApiError


def check_text(text: str, what: str) -> None:
    """Refuse (400) text that is not valid Unicode: JSON's ``"\\ud800"`` escape gives a lone surrogate, which no
    tokenizer takes and which cannot be written back as UTF-8."""
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        message = f"{what} is not valid Unicode: {exc.reason} at character {exc.start}"
        raise ApiError(400, message, "invalid_text") from None


def check_image_url(url: str, what: str, policy: FetchPolicy) -> None:
    """Refuse (400) what the server never reads, a local path or file: URL, and http(s) URLs unless allowed."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https") and not policy.allow_remote:
        raise ApiError(400, f"{what}: remote image URLs are disabled on this server; send a data: URI")
    if scheme not in ("data", "http", "https"):
        raise ApiError(400, f"{what} must be a data: URI" + (" or an http(s) URL" if policy.allow_remote else ""))


def decode_items(items: list[Any], model: Any, policy: FetchPolicy,
                 pixel_limits: tuple[int, int]) -> tuple[list[dict[str, Any]], list[str]]:
    """``/v1/embeddings`` inputs ready for ``model.encode`` (one ``{modality: value}`` dict each, so a text is read
    as text even when it looks like a URL or a path) and their texts, for the token count. CPU work: run it in a
    worker thread. ``pixel_limits``: (per image, per request)."""
    decoded, texts = [], []
    pixels_left = pixel_limits[1]
    for i, item in enumerate(items):
        fused, pixels = _decode_item(item, i, model, policy, pixel_limits, pixels_left)
        decoded.append(fused)
        texts += [fused["text"]] if "text" in fused else []
        pixels_left -= pixels
    return decoded, texts


def _decode_item(item: Any, index: int, model: Any, policy: FetchPolicy, pixel_limits: tuple[int, int],
                 pixels_left: int) -> tuple[dict[str, Any], int]:
    """One input: a string, one content part, or parts fused into one input (at most one of each kind); and the
    pixels its image holds."""
    parts = item if isinstance(item, list) else [item]
    if not parts:
        raise ApiError(400, f"input[{index}] is an empty list of content parts")
    fused: dict[str, Any] = {}
    pixels = 0
    for part in parts:
        kind, value, size = _decode_guarded(part, index, model, policy, pixel_limits, pixels_left - pixels)
        if kind in fused:
            raise ApiError(400, f"input[{index}] has two {kind} parts; an input takes at most one of each kind")
        if not model.supports(kind):
            raise ApiError(400, f"input[{index}]: this model takes {model.modalities}, not {kind}")
        fused[kind] = value
        pixels += size
    return fused, pixels


def _decode_guarded(part: Any, index: int, model: Any, policy: FetchPolicy, pixel_limits: tuple[int, int],
                    pixels_left: int) -> tuple[str, Any, int]:
    """``_decode_part``, with whatever a decoder raises on these bytes answered as the input's fault."""
    per_image, per_request = pixel_limits
    try:
        if isinstance(part, str):
            check_text(part, f"input[{index}]")
            return "text", part, 0
        return _decode_part(part, index, model, policy, min(per_image, pixels_left))
    except ApiError:
        raise
    except ImageTooLarge as exc:
        raise ApiError(413, f"input[{index}]: {exc} This server takes at most {per_image:,} pixels an image and "
                       f"{per_request:,} a request.", "image_too_large") from None
    except Exception as exc:  # whatever a decoder raises on these bytes, the input is at fault
        raise ApiError(400, f"input[{index}] cannot be decoded: {exc}", "invalid_input") from None


def _decode_part(part: Any, index: int, model: Any, policy: FetchPolicy, max_pixels: int) -> tuple[str, Any, int]:
    """A content part: its kind, its decoded value and the pixels it holds."""
    if isinstance(part, s.TextPart):
        check_text(part.text, f"input[{index}] text")
        return "text", part.text, 0
    if isinstance(part, s.ImagePart):
        url = part.image_url.url
        check_image_url(url, f"input[{index}] image_url.url", policy)
        # Decoded as encode() decodes the same bytes (reduced toward the model's input side when far larger, see
        # Embedder.image_side), so a vector equals encode() of them; the pixel limit is checked first.
        image = load_image(url, index=index, policy=policy, max_pixels=max_pixels,
                           min_side=getattr(model, "image_side", None))
        return "image", image, image.size[0] * image.size[1]
    return "audio", _decode_audio(part, index, model, policy), 0


def _decode_audio(part: s.AudioPart, index: int, model: Any, policy: FetchPolicy) -> dict[str, Any]:
    try:
        raw = base64.b64decode(part.input_audio.data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"input[{index}]: input_audio.data is not valid base64", "invalid_base64") from None
    if len(raw) > policy.max_bytes:
        raise ApiError(413, f"input[{index}]: audio of {len(raw)} bytes is over this server's {policy.max_bytes}-byte "
                       "limit per media item", "media_too_large")
    rate = model.sampling_rate  # the model's rate, so encode() has nothing left to resample
    if not rate:
        raise ApiError(400, f"input[{index}]: this model does not take audio")
    return {"array": load_audio(raw, index=index, sampling_rate=rate), "sampling_rate": rate}


def decode_query_image(url: str, policy: FetchPolicy, max_pixels: int) -> Any:
    """A ``/v1/search`` query image (field ``'image'``), within the server's per-image pixel limit."""
    check_text(url, "'image'")
    check_image_url(url, "'image'", policy)
    try:
        return load_image(url, index=0, policy=policy, max_pixels=max_pixels)
    except ImageTooLarge as exc:
        raise ApiError(413, f"'image' is too large: {exc}", "image_too_large") from None
    except InputError as exc:
        raise ApiError(400, f"'image' cannot be decoded: {exc}", "invalid_image") from None
