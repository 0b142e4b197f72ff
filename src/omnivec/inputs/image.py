"""Decode images with Pillow: EXIF orientation applied, RGB, JPEG draft-mode decoding for big photos."""

from __future__ import annotations

from typing import Any

from omnivec.errors import InputError
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy, SourceError, open_source

# Draft (reduced-scale) JPEG decoding keeps at least this multiple of the model's input size, so the
# processor still downsamples with antialiasing: the photo loses detail the model could not see anyway.
DRAFT_MARGIN = 2


def require_pillow() -> Any:
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        raise InputError("Images need Pillow: pip install 'omnivec[image]'") from None
    return PIL.Image


def load_image(value: Any, *, index: int, min_side: int | None = None, policy: FetchPolicy = DEFAULT_POLICY) -> Any:
    """A PIL RGB image from a PIL image, HxWxC uint8 array, path, URL, data: URI or bytes.

    ``min_side``: the model's input size; a JPEG much larger than it is decoded at reduced scale
    (never below ``DRAFT_MARGIN * min_side`` on its short side). None decodes at full size.
    """
    Image = require_pillow()
    from PIL import ImageOps, UnidentifiedImageError

    if isinstance(value, Image.Image):
        return _to_rgb(_not_empty(value, index))
    if type(value).__name__ == "ndarray":
        return _to_rgb(_not_empty(Image.fromarray(value[..., 0] if value.shape[-1] == 1 else value), index))
    try:
        source, described = open_source(value, policy)
    except SourceError as exc:
        raise InputError(f"Input at index {index}: {exc}") from None
    try:
        image = Image.open(source)
        if min_side and image.format == "JPEG":
            want = DRAFT_MARGIN * min_side
            if min(image.size) >= 2 * want:
                scale = min(image.size) / want
                image.draft("RGB", (int(image.size[0] / scale), int(image.size[1] / scale)))
        image = ImageOps.exif_transpose(image)
        return _to_rgb(_not_empty(image, index))
    except InputError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"Input at index {index} ({described}): cannot decode as an image: {exc}") from None


def _not_empty(image: Any, index: int) -> Any:
    """A 0-pixel image would divide by zero in every processor's resize."""
    if image.width < 1 or image.height < 1:
        raise InputError(f"Input at index {index}: the image is {image.width}x{image.height} pixels; "
                         "expected at least 1x1.")
    return image


def _to_rgb(image: Any) -> Any:
    # Same conversion as transformers' image processors (alpha dropped), so numbers match theirs.
    return image if image.mode == "RGB" else image.convert("RGB")
