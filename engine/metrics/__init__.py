"""The metric library. Importing this package registers every built-in metric kind."""
from engine.metrics import accuracy  # noqa: F401  (registers kinds)
