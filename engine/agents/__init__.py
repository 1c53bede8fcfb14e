"""Agents and conversations: multi-turn golden cases with an agent task, trajectories stored one row per step,
and the trajectory metrics that score them in SQL (engine/metrics/trajectory.py)."""
