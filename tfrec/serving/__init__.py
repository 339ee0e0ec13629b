"""Serving: export to TF Serving's SavedModel layout and validate through its signature path."""

from tfrec.serving.client import ExportedModel
from tfrec.serving.exporter import ExportError, export, validate, versions
from tfrec.serving.module import ServingModule
from tfrec.serving.trust import UntrustedExportError, check_trusted

__all__ = [
    "ExportError", "ExportedModel", "ServingModule", "UntrustedExportError", "check_trusted", "export", "validate",
    "versions",
]  # fmt: skip
