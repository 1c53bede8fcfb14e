"""The metric library. Importing this package registers every built-in metric kind (and its config checks)."""
from engine.metrics import accuracy, checks, classic, custom, groundedness, judge, operational, relevance, safety  # noqa: F401
from engine.metrics import trajectory  # noqa: F401
