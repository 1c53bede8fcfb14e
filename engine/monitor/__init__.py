"""Loop 2 monitoring. Importing this package registers the drift test kinds ("drift_test", name).

`engine.monitor.drift` is the API: `fit_reference` (the reference profile, plain data), `compile_drift`
(pure: the SQL), `compute_drift` (run on DuckDB, p-values in Python) -> `DriftResult`s.
"""
from engine.monitor import stattests  # noqa: F401  (registers the drift_test kinds)
