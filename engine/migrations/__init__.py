"""The store's schema as forward migrations (engine/store.py applies the missing ones when a store is opened).

Each is (version, description, statements). Never edit a released entry; append a new one (to the last module).
Versions are applied by set difference, not `> current`: features land out of order.
"""
from __future__ import annotations

from engine.migrations.first import MIGRATIONS as FIRST
from engine.migrations.later import MIGRATIONS as LATER

MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = FIRST + LATER
SCHEMA_VERSION = max(m[0] for m in MIGRATIONS)
