"""LoggingHandler: log records written through tqdm, so they do not break progress bars."""

from __future__ import annotations

import logging

import tqdm


class LoggingHandler(logging.Handler):
    """A ``logging.Handler`` that prints each formatted record with ``tqdm.write`` (as sentence-transformers')."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.tqdm.write(self.format(record))
            self.flush()
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:
            self.handleError(record)
