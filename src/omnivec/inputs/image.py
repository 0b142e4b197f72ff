"""Decode images with Pillow: EXIF orientation applied, RGB, a pixel limit checked on the header before decoding,
reduced-scale decoding (JPEG draft mode, else an integer box reduction) for images far larger than the model's input."""

from __future__ import annotations

from typing import Any

from omnivec.errors import DecodeError, InputError
from omnivec.inputs.sources import DEFAULT_POLICY, FetchPolicy, SourceError, open_source

# Draft (reduced-scale) JPEG decoding keeps at least this multiple of the model's input size, so the
# processor still downsamples with antialiasing: the photo loses detail the model could not see anyway.
DRAFT_MARGIN = 2
# Pixels one image may have (width x height, read from its header before anything is decoded): a 1-bit PNG of
# 20 KB can declare 13000 x 13000 pixels, 0.5 GB as RGB. Pillow's own decompression-bomb threshold (89.5 MP, about
# 256 MiB as RGBA), above nearly every camera's photo: at or below it Pillow does not warn either.
MAX_IMAGE_PIXELS = 89_478_485
# Modes whose pixels can be averaged by Image.reduce (others are converted first: "1" to "L", palettes to RGB).
_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "I", "F", "CMYK"}
_ORIENTATION = 0x0112


class ImageTooLarge(InputError):
    """An image past the pixel limit (its header says so, or Pillow's decompression-bomb check does)."""


def require_pillow() -> Any:
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        raise InputError("Images need Pillow: pip install 'omnivec[image]'") from None
    return PIL.Image


def load_image(value: Any, *, index: int, min_side: int | None = None, policy: FetchPolicy = DEFAULT_POLICY,
               max_pixels: int | None = MAX_IMAGE_PIXELS) -> Any:
    """A PIL RGB image from a PIL image, HxWxC uint8 array, path, URL, data: URI or bytes.

    ``min_side``: the model's input size; an image much larger than it is decoded at reduced scale
    (never below ``DRAFT_MARGIN * min_side`` on its short side). None decodes at full size.
    ``max_pixels``: an encoded image declaring more pixels is refused (``ImageTooLarge``) before it is decoded.
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
        raise DecodeError(f"Input at index {index}: {exc}") from None
    try:
        image = Image.open(source)  # reads the header only
        width, height = image.size
        if max_pixels is not None and width * height > max_pixels:
            raise ImageTooLarge(f"Input at index {index} ({described}): a {width}x{height} image has "
                                f"{width * height:,} pixels, more than the limit of {max_pixels:,}.")
        want = DRAFT_MARGIN * min_side if min_side else None
        if want and min(image.size) >= 2 * want:
            if image.format == "JPEG":
                scale = min(image.size) / want
                image.draft("RGB", (int(image.size[0] / scale), int(image.size[1] / scale)))
            else:
                return _to_rgb(_reduced(image, int(min(image.size) / want)))
        image = ImageOps.exif_transpose(image)
        return _to_rgb(_not_empty(image, index))
    except InputError:  # ImageTooLarge and the empty image, already named
        raise
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"Input at index {index} ({described}): {exc}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DecodeError(f"Input at index {index} ({described}): cannot decode as an image: {exc}") from None


def _not_empty(image: Any, index: int) -> Any:
    """A 0-pixel image would divide by zero in every processor's resize."""
    if image.width < 1 or image.height < 1:
        raise InputError(f"Input at index {index}: the image is {image.width}x{image.height} pixels; "
                         "expected at least 1x1.")
    return image


def _reduced(image: Any, factor: int) -> Any:
    """``image`` decoded, then shrunk by ``factor`` (box average), its EXIF orientation applied after: the full-size
    RGB copy and the transposed full-size copy are never made."""
    from PIL import Image

    orientation = image.getexif().get(_ORIENTATION)
    if image.mode not in _REDUCIBLE_MODES:
        image = image.convert("L" if image.mode == "1" else "RGB")
    image = image.reduce(factor)
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    return image.transpose(method) if method is not None else image


def _to_rgb(image: Any) -> Any:
    # Same conversion as transformers' image processors (alpha dropped), so numbers match theirs.
    return image if image.mode == "RGB" else image.convert("RGB")
