"""Reading ``.npz`` files safely: no pickle, clear errors naming the file and key."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from deltagdml.errors import DatasetError, DeltaGDMLError


def read_npz(
    path: str | os.PathLike,
    required: Iterable[str],
    what: str,
    optional: Iterable[str] | None = None,
    error: type[DeltaGDMLError] = DatasetError,
) -> dict[str, np.ndarray]:
    """The ``required`` and present ``optional`` arrays (all arrays if ``optional`` is None).

    Object arrays would need pickle: they are refused, never unpickled. Keys that are not
    asked for are not read, so a reference sGDML model with pickled metadata still loads.
    """
    path = str(path)
    if not Path(path).is_file():
        raise error(f"{path}: {what} file not found")
    if not zipfile.is_zipfile(path):
        raise error(f"{path}: not a readable {what} .npz file (not a zip archive, or truncated)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise error(f"{path}: not a readable {what} .npz file ({exc})") from exc
    with data:
        missing = sorted(set(required) - set(data.files))
        if missing:
            raise error(
                f"{path}: missing key(s) {missing} in {what} file; found {sorted(data.files)}"
            )
        keys = data.files if optional is None else [*required, *optional]
        out = {}
        for key in keys:
            if key not in data.files:
                continue
            try:
                out[key] = data[key]
            except ValueError as exc:
                raise error(
                    f"{path}: key '{key}' is a pickled object array; refusing to unpickle it"
                ) from exc
            except (zipfile.BadZipFile, EOFError, OSError) as exc:
                raise error(f"{path}: key '{key}' is corrupted ({exc})") from None
    return out


def as_str(value: np.ndarray) -> str:
    """A string stored as a 0-d or 1-element array."""
    return str(value.item() if value.ndim == 0 else value.ravel()[0])
