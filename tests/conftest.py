"""Shared test set-up. The Keras backend is fixed per process: set KERAS_BACKEND before pytest (default: torch)."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
