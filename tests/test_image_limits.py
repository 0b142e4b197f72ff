"""Image pixel limits (issue 12): the header's size is checked before anything is decoded, decompression bombs are
an ``InputError`` naming the input, and images far larger than the model's input are decoded reduced."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image

import omnivec
from omnivec.errors import InputError
from omnivec.inputs.image import DRAFT_MARGIN, MAX_IMAGE_PIXELS, ImageTooLarge, load_image
from tests.fixtures.images import UPRIGHT_CORNERS, corner_colors, write_image


def png_header_only(width: int, height: int) -> bytes:
    """A 1-bit PNG that declares ``width`` x ``height`` pixels in a few dozen bytes (its data is cut short)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


def one_bit_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (side, side), 1).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_png_past_the_pixel_limit_is_refused_from_its_header():
    big = one_bit_png(13000)  # 169 MP in ~20 KB
    assert len(big) < 100_000 and 13000 * 13000 > MAX_IMAGE_PIXELS
    with pytest.raises(ImageTooLarge, match=r"index 3 .*13000x13000 image has 169,000,000 pixels.*89,478,485"):
        load_image(big, index=3)
    assert load_image(big, index=0, max_pixels=None, min_side=224).size == (449, 449)  # explicitly allowed: reduced


@pytest.mark.parametrize("max_pixels", [MAX_IMAGE_PIXELS, None])
def test_a_decompression_bomb_is_an_input_error(max_pixels):
    """Past Pillow's own bomb check (2 x 89 MP) even without a limit of ours: an InputError, not Pillow's error."""
    with pytest.raises(ImageTooLarge, match="index 2"):
        load_image(png_header_only(30000, 30000), index=2, max_pixels=max_pixels)
    assert issubclass(ImageTooLarge, InputError)


def test_embedder_names_the_image_past_the_limit(clip_dir, tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(png_header_only(12000, 12000))
    model = omnivec.Embedder(clip_dir, device="cpu")
    with pytest.raises(InputError, match=r"index 1 .*huge.png.*12000x12000"):
        model.encode([Image.new("RGB", (32, 32)), str(path)])


@pytest.mark.parametrize("orientation", [None, 6, 8])
def test_large_pngs_decode_reduced_and_upright(orientation, tmp_path):
    path = write_image(tmp_path / "photo.png", size=(2400, 1800), exif_orientation=orientation)
    image = load_image(str(path), index=0, min_side=224)
    want = DRAFT_MARGIN * 224
    assert want <= min(image.size) < 2 * want and image.mode == "RGB"
    assert image.size == (600, 450)  # 6 and 8: the stored raster is 1800 x 2400, turned upright after reducing
    assert corner_colors(image) == UPRIGHT_CORNERS
    assert load_image(str(path), index=0).size == (2400, 1800)


REDUCED_MEMORY = """
import io, resource, sys
from PIL import Image
from omnivec.inputs.image import load_image
buffer = io.BytesIO()
Image.new("1", (9000, 9000), 1).save(buffer, format="PNG")
data = buffer.getvalue()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = load_image(data, index=0, min_side=224)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024, *image.size)
"""


def test_a_large_1_bit_png_decodes_reduced_in_bounded_memory():
    """81 MP, 1-bit: decoded (10 MB), widened to 8-bit (81 MB) and reduced before RGB; a full-size RGB copy alone
    would be 243 MB. Peak RSS growth measured in a subprocess: under 140 MB."""
    out = subprocess.run([sys.executable, "-c", REDUCED_MEMORY], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    grown_mb, width, height = map(int, out.stdout.split())
    assert (width, height) == (450, 450) and grown_mb < 140, grown_mb


def test_the_pixel_limit_is_pillows_bomb_threshold_so_allowed_images_raise_no_warning():
    """An image just under the limit decodes without Pillow's DecompressionBombWarning (the limit is ours to state;
    a library warning about it is noise)."""
    import warnings

    from PIL import Image as PILImage

    assert MAX_IMAGE_PIXELS == PILImage.MAX_IMAGE_PIXELS
    side = 9459  # 89,472,681 pixels
    assert side * side <= MAX_IMAGE_PIXELS < (side + 1) * (side + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning fails the test
        image = load_image(one_bit_png(side), index=0, min_side=224)
    assert min(image.size) >= 2 * DRAFT_MARGIN * 224 // 2 and max(image.size) < side


def test_encode_knows_its_models_image_side_with_the_installed_transformers(clip_dir):
    """The side large images decode reduced toward comes from the image processor's size, a dict in older
    transformers and a SizeDict in newer ones (it was read only from a dict: reduced decoding was silently off)."""
    model = omnivec.Embedder(clip_dir, device="cpu")
    assert model.image_side == 32  # the tiny CLIP's shortest_edge / crop size
    model.fast_image_decode = False
    assert model.image_side is None
