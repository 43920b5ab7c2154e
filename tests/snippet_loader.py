"""Load a standalone snippet file by path (snippets are scripts a reader copies, not a package).

The one loader of the repository: the tests, experiments/ and snippets/benchmarks/ all import snippets with it.

from snippet_loader import load_snippet
margins = load_snippet("pytorch/margins.py")
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNIPPETS = ROOT / "snippets"


def load_snippet(relpath: str):
    """Import snippets/<relpath> once, as a module named after its path (snippet_pytorch_margins, ...)."""
    path = SNIPPETS / relpath
    name = "snippet_" + relpath.removesuffix(".py").replace("/", "_")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
