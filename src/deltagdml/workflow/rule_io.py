"""Helpers of the rule scripts, which pass Snakemake's named files to the steps."""

from __future__ import annotations

from collections.abc import Iterable


def grouped(named: Iterable[tuple[str, object]], prefix: str) -> dict[str, str]:
    """The files among ``named`` (name, path) items whose name starts with ``prefix``, by
    the rest of the name: ``model_binding`` → ``binding``."""
    return {name.removeprefix(prefix): str(path) for name, path in named if name.startswith(prefix)}
