"""The precomputed SQuAD character classes equal what the running Python computes (they are read instead)."""
from __future__ import annotations

import pytest

from engine.metrics import squad_sql
from engine.metrics.squad_classes import CLASSES


def test_shipped_classes_are_the_running_pythons():
    key = squad_sql._unicode_key()
    if key not in CLASSES:
        pytest.skip(f"no classes shipped for {key}: they are computed at run time")
    assert CLASSES[key] == squad_sql._compute_classes()
    assert squad_sql._classes() == CLASSES[key]
