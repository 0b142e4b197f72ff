"""Small JPEG previews of images, rendered pages and video frames, for result lists."""

from __future__ import annotations

import io
from typing import Any

JPEG_QUALITY = 80


def thumbnail(image: Any, size: int) -> bytes:
    """A JPEG of ``image`` (PIL) fitting in ``size`` x ``size``, aspect ratio kept."""
    small = image.copy()
    small.thumbnail((size, size))
    if small.mode != "RGB":  # JPEG has no alpha or palette
        small = small.convert("RGB")
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
