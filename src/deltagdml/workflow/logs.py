"""Logging of workflow jobs: the package's log to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import os
from pathlib import Path


def setup_logging(log_path: str | os.PathLike | None) -> None:
    """Send the package's log to ``log_path`` (and stderr) at INFO level."""
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        handlers=handlers,
        force=True,
    )
