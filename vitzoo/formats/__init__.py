"""Checkpoint formats: one small pure function per format, each returning a state dict with vitzoo's (timm's) names.

A converter never downloads or reads files; it maps names and layouts only.
"""

from .transformers import from_transformers

__all__ = ["from_transformers"]
