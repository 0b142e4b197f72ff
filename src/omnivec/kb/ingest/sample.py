"""A small demo folder written offline: two Markdown documents, a PDF with a text layer, three pictures,
a recording and a short video -- one of each kind the knowledge base ingests."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

MANUAL = """# Aurora Desk Lamp Manual

The Aurora is a dimmable LED desk lamp with a wireless charging base.

## Setup

Unpack the lamp and remove the foam collar from the arm joint.

### Wiring

Plug the 12 V adapter into the socket on the back of the base. Use only the supplied adapter:
a different voltage damages the charging coil. Route the cable through the clip under the base.

### Mounting

Place the base on a flat surface or fix it with the two included screws.

## Operation

Touch the ring once to switch on. Hold it to dim; the lamp remembers the last brightness.
Put a phone on the base to charge it; the ring glows blue while charging.

## Maintenance

Wipe the shade with a dry cloth. Never spray cleaner into the ventilation slots.
"""

FAQ = """Frequently Asked Questions
==========================

Shipping
--------

**How long does delivery take?** Orders ship within two working days and arrive in three to five days.

**Can I track my parcel?** Yes: the confirmation e-mail holds a tracking link.

Returns
-------

**What is the return window?** Thirty days from delivery, in the original packaging.

**Who pays for return shipping?** We do, when the product is faulty; otherwise the customer does.
"""

PDF_PAGES = [
    ["Quarterly Report", "Revenue grew by twelve percent in the third quarter.",
     "The new lamp line sold out in four regions."],
    ["Costs", "Shipping costs fell after the switch to regional warehouses.",
     "Component prices stayed flat."],
    ["Outlook", "We expect steady demand through the holiday season.",
     "Two new products launch in spring."],
]


def sample_folder(target: Path) -> list[Path]:
    """Write the demo files into ``target`` (created if needed) and return their paths."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    paths = [target / "manual.md", target / "faq.md"]
    paths[0].write_text(MANUAL, encoding="utf-8")
    paths[1].write_text(FAQ, encoding="utf-8")
    paths.append(write_pdf(target / "report.pdf", PDF_PAGES))
    paths.extend(_write_pictures(target))
    paths.append(_write_recording(target / "beeps.wav"))
    paths.append(_write_video(target / "ball.mp4"))
    return paths


def write_pdf(path: Path, pages: list[list[str]], size: tuple[int, int] = (612, 792)) -> Path:
    """A minimal valid PDF: one page per list of lines, set in the standard Helvetica font (a real text layer).
    ``size`` is the page size in points; lines must be Latin-1."""
    def escape(line: str) -> str:
        return line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    width, height = size
    count = len(pages)
    font = 3 + 2 * count  # objects: 1 catalog, 2 page tree, then (page, contents) pairs, then the font
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", f"<< /Type /Pages /Kids [{kids}] /Count {count} >>".encode()]
    for i, lines in enumerate(pages):
        ops = [f"BT /F1 18 Tf 72 {height - 72} Td 22 TL"]
        for n, line in enumerate(lines):
            ops.append(f"({escape(line)}) Tj T*" if n else f"({escape(line)}) Tj /F1 12 Tf T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] "
                       f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {4 + 2 * i} 0 R >>".encode())
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    Path(path).write_bytes(bytes(out))
    return Path(path)


def _write_pictures(target: Path) -> list[Path]:
    from PIL import Image, ImageDraw

    shapes = {
        "red_circle.png": lambda d: d.ellipse((100, 60, 220, 180), fill=(220, 30, 30)),
        "blue_square.jpg": lambda d: d.rectangle((100, 60, 220, 180), fill=(30, 60, 220)),
        "green_triangle.png": lambda d: d.polygon([(160, 50), (250, 190), (70, 190)], fill=(30, 170, 60)),
    }
    paths = []
    for name, draw in shapes.items():
        image = Image.new("RGB", (320, 240), "white")
        draw(ImageDraw.Draw(image))
        image.save(target / name)
        paths.append(target / name)
    return paths


def _write_recording(path: Path, seconds: float = 5.0, rate: int = 16000) -> Path:
    """A rising sweep with a short beep every second."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    sweep = 0.3 * np.sin(2 * np.pi * (300 * t + 90 * t**2))  # 300 Hz rising to 1200 Hz
    beeps = 0.3 * np.sin(2 * np.pi * 1760 * t) * ((t % 1.0) < 0.1)
    soundfile.write(str(path), (sweep + beeps).astype(np.float32), rate, subtype="PCM_16")
    return path


def _write_video(path: Path, seconds: float = 4.0, fps: int = 10, rate: int = 16000) -> Path:
    """A ball crossing the frame left to right, with a 440 Hz tone (AAC) when the build has the encoder."""
    import av
    from PIL import Image, ImageDraw

    width, height = 160, 120
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream(_encoder(("libx264", "mpeg4")), rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio_codec = _encoder(("aac",), required=False)
        audio = container.add_stream(audio_codec, rate=rate, layout="mono") if audio_codec else None
        frames = int(seconds * fps)
        for i in range(frames):
            image = Image.new("RGB", (width, height), (235, 235, 235))
            x = 10 + (width - 40) * i / max(1, frames - 1)
            ImageDraw.Draw(image).ellipse((x, 45, x + 30, 75), fill=(240, 140, 0))
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = i, Fraction(1, fps)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None:
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)
            step = audio.codec_context.frame_size or 1024
            for start in range(0, tone.size, step):
                frame = av.AudioFrame.from_ndarray(tone[None, start:start + step], format="fltp", layout="mono")
                frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
    return path


def _encoder(names: tuple[str, ...], required: bool = True) -> str | None:
    from av.codec import Codec

    for name in names:
        try:
            Codec(name, "w")
            return name
        except Exception:  # unknown codec in this FFmpeg build
            continue
    if required:
        raise RuntimeError(f"this PyAV build has none of the encoders {names}")
    return None
