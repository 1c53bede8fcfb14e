"""Reporting reads results only (never the store): terminal tables, JSON files, later HTML and CI formats."""
