"""Serving: export to TF Serving's SavedModel layout and validate through its signature path."""

from tfrec.serving.client import ExportedModel
from tfrec.serving.exporter import ExportError, export, validate, versions
from tfrec.serving.module import ServingModule

__all__ = ["ExportError", "ExportedModel", "ServingModule", "export", "validate", "versions"]
