"""Ingest tests: make the helpers importable whatever pytest import mode is used (tests dirs have no __init__)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
