"""Δ-sGDML: symmetric gradient-domain kernel force fields, learned per fragment plus binding."""

__version__ = "0.1.0"
