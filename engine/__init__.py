"""Flywheel: a declarative engine for the evaluation flywheel of AI models."""
__version__ = "0.1.0"
