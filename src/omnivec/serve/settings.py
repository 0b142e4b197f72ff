"""The server's limits and batching settings, as one frozen object that ``create_app`` builds from its arguments."""

from __future__ import annotations

from dataclasses import dataclass

from omnivec.errors import ConfigError
from omnivec.inputs.image import MAX_IMAGE_PIXELS
from omnivec.inputs.sources import FetchPolicy
from omnivec.serve.edge import BODY_TIMEOUT_S

MiB = 1024 * 1024
# Pixels all the images of one /v1/embeddings request may have together (each also has MAX_IMAGE_PIXELS): decoded
# images stay in memory until the request's batch has run, as RGB (3 bytes a pixel).
MAX_REQUEST_PIXELS = 200_000_000


@dataclass(frozen=True)
class ServerSettings:
    """What ``create_app``'s keyword arguments set (see its docstring); ``max_queue`` None: twice ``max_inputs``."""

    max_batch_size: int = 32
    max_wait_ms: float = 5
    max_queue: int | None = None
    batching: bool = True
    max_inputs: int = 2048
    max_body_bytes: int = 16 * MiB
    body_timeout_s: float = BODY_TIMEOUT_S
    max_image_pixels: int = MAX_IMAGE_PIXELS
    max_request_pixels: int = MAX_REQUEST_PIXELS
    request_timeout_s: float = 60
    allow_media_urls: bool = False
    max_media_bytes: int = 16 * MiB
    media_timeout_s: float = 10
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.body_timeout_s > 0:
            raise ConfigError(f"body_timeout_s must be > 0, got {self.body_timeout_s}")

    @property
    def queue_size(self) -> int:
        """Items that may wait per model: by default a request of the largest allowed size fits an empty queue."""
        return 2 * self.max_inputs if self.max_queue is None else self.max_queue

    @property
    def fetch_policy(self) -> FetchPolicy:
        """How media items are read: ``data:`` URIs, and http(s) URLs only when ``allow_media_urls``."""
        return FetchPolicy(allow_remote=self.allow_media_urls, max_bytes=self.max_media_bytes,
                           timeout_s=self.media_timeout_s)
