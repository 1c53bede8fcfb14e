"""Shared fixtures for model-adapter tests: a real local chat-completions server per test."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

# Tests dirs have no __init__.py; make chat_server importable whatever pytest import mode is used.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from chat_server import ChatServer  # noqa: E402


@pytest.fixture
def chat_server():
    with ChatServer() as server:
        yield server
