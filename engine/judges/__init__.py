"""Judges you can trust: human labels as data, judge calibration against them, and what the gate and the bridge
do with it (engine/gate/judge_calibrated.py, the `judge_disagreement` sampler in engine/bridge/sampling.py)."""
