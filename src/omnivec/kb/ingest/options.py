"""How files are cut into chunks: text budgets, audio windows, video segments, page rendering, size limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from omnivec.errors import ConfigError

MIB = 1024 * 1024
MAX_TEXT_BYTES = 64 * MIB  # an HTML file over this is reported and skipped (it is parsed whole)
MODALITIES = frozenset({"text", "image", "audio"})


@dataclass
class IngestOptions:
    """Settings for ``ingest_file``.

    Text: passages of at most ``chunk_tokens`` tokens (heading prefix included) overlapping by about
    ``overlap_tokens``. ``count_tokens`` counts tokens with the text model's tokenizer; without it tokens are
    whitespace-separated words, which undercounts subword tokenizers, so set it from the model whenever there is one.
    ``tokenize_offsets`` (token character offsets of a string) lets a sentence longer than the budget be cut exactly
    between tokens; without it such a sentence is cut between words (or characters) found by counting.
    ``word_offsets`` (token offsets too) is used only for a single word over the budget (text without whitespace),
    otherwise cut between characters found by counting. ``count_tokens_many`` counts many texts in one call.

    Audio: ``audio_window_s`` windows every ``audio_hop_s`` seconds, resampled to ``audio_rate`` (the audio model's
    rate, 48 kHz for CLAP). Video: one segment every ``video_segment_s`` seconds with ``frames_per_segment`` frames.
    Pictures are decoded for ``image_side``, the image model's input size (``Embedder.image_side``): one much
    larger is decoded reduced, exactly as the library decodes that file, so the vector is the same and an 89 MP
    picture does not stay 268 MB in memory until its batch is embedded; None decodes at full size.
    PDF pages are rendered at ``page_dpi``; thumbnails fit in ``thumbnail_px`` squared. Files over
    ``max_file_bytes`` are refused. Plain text, Markdown and JSON lines stream (read and chunked block by block),
    so ``max_file_bytes`` is their only limit; HTML is parsed whole, and one over ``max_text_bytes`` is refused too
    (its tree would take several times its size in memory). ``transcribe_model``: a Whisper-family model id or folder; when set, speech in
    audio files and video sound tracks also becomes "transcript" text chunks. ``modalities``: the chunk modalities
    wanted (the KB's spaces); media no wanted chunk comes from is not decoded (no page rendering without "image",
    no sound track without "audio" or transcripts).
    """

    chunk_tokens: int = 256
    overlap_tokens: int = 32
    count_tokens: Callable[[str], int] | None = None
    count_tokens_many: Callable[[list[str]], list[int]] | None = None  # count_tokens of each, in one call
    tokenize_offsets: Callable[[str], list[tuple[int, int]]] | None = None
    word_offsets: Callable[[str], list[tuple[int, int]]] | None = None  # cuts a word over the budget between tokens
    audio_window_s: float = 10.0
    audio_hop_s: float = 10.0
    audio_rate: int = 48000
    video_segment_s: float = 10.0
    frames_per_segment: int = 1
    image_side: int | None = None  # the image model's input size: pictures and video frames decode reduced for it
    page_dpi: int = 72
    thumbnail_px: int = 256
    max_file_bytes: int = 512 * MIB
    max_text_bytes: int = MAX_TEXT_BYTES
    transcribe_model: str | None = None
    modalities: frozenset[str] = MODALITIES

    def __post_init__(self) -> None:
        if self.chunk_tokens < 8:
            raise ConfigError(f"chunk_tokens must be at least 8, got {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise ConfigError(f"overlap_tokens must be in [0, chunk_tokens / 2), got {self.overlap_tokens}")
        if self.audio_window_s <= 0 or self.audio_hop_s <= 0 or self.video_segment_s <= 0:
            raise ConfigError("audio_window_s, audio_hop_s and video_segment_s must be positive")
        if self.frames_per_segment < 1 or self.page_dpi < 1 or self.thumbnail_px < 16:
            raise ConfigError("frames_per_segment and page_dpi must be >= 1, thumbnail_px >= 16")
        if self.image_side is not None and self.image_side < 1:
            raise ConfigError(f"image_side must be None or >= 1, got {self.image_side}")
        self.modalities = frozenset(self.modalities)
        if not self.modalities <= MODALITIES:
            raise ConfigError(f"modalities must be among {sorted(MODALITIES)}, got {sorted(self.modalities)}")

    def wants(self, modality: str) -> bool:
        """Whether chunks of ``modality`` ("text", "image", "audio") are wanted."""
        return modality in self.modalities

    def token_count(self, text: str) -> int:
        """Tokens in ``text``: the model tokenizer's count, or whitespace words without one."""
        return self.count_tokens(text) if self.count_tokens is not None else len(text.split())

    def token_counts(self, texts: list[str]) -> list[int]:
        """``token_count`` of each text (one tokenizer call for all when ``count_tokens_many`` is set)."""
        if not texts:
            return []
        if self.count_tokens_many is not None and self.count_tokens is not None:
            return list(self.count_tokens_many(texts))
        return [self.token_count(text) for text in texts]
