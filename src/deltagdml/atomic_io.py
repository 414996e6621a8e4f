"""Atomic file writes: a reader never sees a half-written output.

Files are written to a temporary sibling and moved into place with ``os.replace``,
which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

log = logging.getLogger(__name__)

#: Timestamp of every zip entry, for reproducible ``.npz`` files (zip's epoch).
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def _umask() -> int:
    """The process's umask, read without changing it where Linux's /proc tells it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # meanwhile a file made by another thread stays private
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it onto ``path`` only on success.

    ``suffix`` defaults to the suffix of ``path`` so that writers that choose a
    format by extension (matplotlib, ``ase.io``) still work. The file gets the mode of
    any newly created file (0o666 less the umask), not the temporary file's 0o600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=suffix if suffix is not None else path.suffix,
        dir=path.parent,
    )
    tmp_path = Path(tmp)
    try:
        try:
            os.fchmod(fd, 0o666 & ~_umask())
        finally:
            os.close(fd)
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_npz_atomic(path: str | os.PathLike, **arrays: Any) -> None:
    """Write an uncompressed ``.npz`` atomically and byte-for-byte reproducibly.

    Unlike ``np.savez`` the zip entries carry a fixed timestamp, so the same arrays
    always give the same file. Object arrays are refused: they would need pickle.
    """
    for key, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise TypeError(
                f"refusing to write object array {key!r} to {path}: it would need pickle"
            )
    with atomic_path(path, suffix=".npz") as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_ZIP_TIME)
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(value), allow_pickle=False)


@contextlib.contextmanager
def live_text(path: str | os.PathLike) -> Iterator[TextIO]:
    """A line-buffered text file written live to ``PATH.partial`` (followable while it
    grows) and moved onto ``path`` when the block succeeds. On an error ``path`` is left
    untouched and ``PATH.partial`` stays as the record up to the failure, unless it holds
    no line beyond the first (a header), when it is removed."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(partial, "w", buffering=1) as fh:
            yield fh
    except BaseException:
        with open(partial) as fh:
            records = sum(1 for _ in fh) > 1
        if records:
            log.warning("the record up to the failure is in %s", partial)
        else:
            partial.unlink()
        raise
    os.replace(partial, path)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
