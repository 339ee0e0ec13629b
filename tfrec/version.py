"""The tfrec release version."""

__version__ = "0.1.0"
