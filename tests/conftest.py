"""Shared test helpers.

Snippet files are standalone scripts (a reader copies one file), not a package, so tests load them by path.
The Keras backend is fixed per process: set KERAS_BACKEND before running pytest (default: torch).
"""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "snippets"


def load_snippet(relpath: str):
    """Import snippets/<relpath> (e.g. "pytorch/margins.py") as a module named after its path."""
    path = SNIPPETS / relpath
    name = "snippet_" + relpath.removesuffix(".py").replace("/", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
