"""Loop 2 monitoring. Importing this package registers the drift test kinds ("drift_test", name).

`engine.monitor.drift` is the API: `compute_drift_many` (every drift test of several features over the same
current / reference relations: fits the missing reference profiles, reads each relation once, returns
`DriftResult`s and the profiles), `fit_reference` / `fit_references` (reference profiles, plain data),
`compute_drift` (one feature), `compile_drift_many` / `compile_drift` (pure: the SQL; `compile_drift` is the
all-SQL plan). `engine.monitor.rule_plan` compiles one drift rule of `flywheel monitor` into plan statements.
"""
from engine.monitor import stattests  # noqa: F401  (registers the drift_test kinds)
