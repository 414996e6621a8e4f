"""The package version, written into every file the package makes."""

__version__ = "0.1.0"
