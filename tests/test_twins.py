"""The PyTorch and Keras twins keep one contract (CONTRIBUTING.md, "The snippet contract"): every file of
snippets/pytorch/ has a twin of the same name in snippets/keras/ with the same public names, the same parameter
lists (names, order, kinds, defaults) and the same public methods. Read from the source with `ast`, nothing is
imported. Each exception is in ALLOWED below, with its reason.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = ("pytorch", "keras")

# A file present in one framework only: path -> reason.
ONE_FRAMEWORK_FILES = {
    "snippets/keras/original_post.py": "Keras-only by design: the blog post's Keras code re-created, defects marked",
    "snippets/pytorch/model_parallel.py": (
        "torch.distributed process groups; Keras shards with keras.distribution instead (sharded_classifier.py)"
    ),
    "snippets/pytorch/chunked_loss.py": (
        "a custom torch.autograd.Function that recomputes chunks in backward; Keras has no backend-neutral equivalent"
    ),
    "snippets/keras/sharded_classifier.py": (
        "keras.distribution on JAX shards the class centers; its PyTorch counterpart is model_parallel.py"
    ),
}
# Entries for files being written on another branch: while the file exists in neither folder, the entry is skipped
# instead of reported as stale. Empty while nothing is pending.
PENDING_FILES: set[str] = set()

# Keras' own constructor arguments of every layer and loss: a framework idiom, not a difference.
KERAS_CONSTRUCTOR_EXTRAS = {"name", "reduction", "dtype", "**kwargs"}
# Methods each framework calls by its own protocol (forward vs call/build/get_config): compared by the contract
# tests and the parity tests (tests/keras/), not by name here.
FRAMEWORK_HOOKS = {"pytorch": {"forward"}, "keras": {"call", "build", "get_config", "compute_output_shape"}}

ALLOWED = {  # "file: difference" -> reason; empty while the twins agree
}


def signature(fn: ast.FunctionDef) -> list:
    """['a', 'b=1', '*args', 'c=None' (keyword-only), '**kwargs'] for a def, with defaults as source text."""
    args = fn.args
    positional = args.posonlyargs + args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + args.defaults
    out = [a.arg + ("" if d is None else "=" + ast.unparse(d)) for a, d in zip(positional, defaults, strict=True)]
    if args.vararg:
        out.append("*" + args.vararg.arg)
    for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True):
        out.append("kw:" + a.arg + ("" if d is None else "=" + ast.unparse(d)))
    if args.kwarg:
        out.append("**" + args.kwarg.arg)
    return [a for a in out if a != "self"]


def public_api(path: Path, framework: str) -> dict:
    """{name: description} of the public top-level functions, classes (their __init__ and public methods) and
    UPPER_CASE constants of one snippet file."""
    api = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            api[node.name] = ("function", signature(node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
            init = signature(methods["__init__"]) if "__init__" in methods else []
            if framework == "keras":
                init = [a for a in init if a.split("=")[0].removeprefix("kw:") not in KERAS_CONSTRUCTOR_EXTRAS]
            public = {
                name: signature(m)
                for name, m in methods.items()
                if not name.startswith("_") and name not in FRAMEWORK_HOOKS[framework]
            }
            api[node.name] = ("class", init, public)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id.isupper():
                    api[target.id] = ("constant",)
    return api


def twin_differences(root: Path = ROOT) -> list:
    """Every way the two folders differ, as 'snippets/<file>: ...' strings (one-framework files included)."""
    names = {fw: {p.name for p in (root / "snippets" / fw).glob("*.py")} for fw in FRAMEWORKS}
    found = []
    for fw, other in (("pytorch", "keras"), ("keras", "pytorch")):
        for name in sorted(names[fw] - names[other]):
            found.append(f"snippets/{fw}/{name}: no twin in snippets/{other}/")
    for name in sorted(names["pytorch"] & names["keras"]):
        torch_api = public_api(root / "snippets/pytorch" / name, "pytorch")
        keras_api = public_api(root / "snippets/keras" / name, "keras")
        for item in sorted(set(torch_api) ^ set(keras_api)):
            only = "pytorch" if item in torch_api else "keras"
            found.append(f"{name}: {item} only in {only}")
        for item in sorted(set(torch_api) & set(keras_api)):
            if torch_api[item] != keras_api[item]:
                found.append(f"{name}: {item} differs: pytorch {torch_api[item]} vs keras {keras_api[item]}")
    return found


def test_twins_agree_except_for_the_allow_list():
    allowed_files = {
        f"{path}: no twin in snippets/{'keras' if '/pytorch/' in path else 'pytorch'}/" for path in ONE_FRAMEWORK_FILES
    }
    unexpected = [d for d in twin_differences() if d not in ALLOWED and d not in allowed_files]
    assert not unexpected, "PyTorch and Keras twins differ (fix one, or allow it with a reason):\n" + "\n".join(
        unexpected
    )


def test_every_allow_list_entry_is_still_needed():
    differences = set(twin_differences())
    stale = [entry for entry in ALLOWED if entry not in differences]
    for path in ONE_FRAMEWORK_FILES:
        twin = path.replace("/pytorch/", "/KERAS/").replace("/keras/", "/pytorch/").replace("/KERAS/", "/keras/")
        exists, twin_exists = (ROOT / path).exists(), (ROOT / twin).exists()
        if exists and twin_exists:
            stale.append(f"{path} (it has a twin now)")
        elif not exists and not (path in PENDING_FILES and not twin_exists):
            stale.append(f"{path} (no such file)")
    assert not stale, f"allow-list entries that no longer match anything: {stale}"


def test_the_allow_list_is_short_enough_to_read_in_a_minute():
    assert len(ALLOWED) + len(ONE_FRAMEWORK_FILES) <= 10


def test_the_comparison_sees_a_renamed_parameter_a_missing_name_and_a_changed_default(tmp_path):
    for fw in FRAMEWORKS:
        (tmp_path / "snippets" / fw).mkdir(parents=True)
    (tmp_path / "snippets/pytorch/a.py").write_text(
        "X = 1\ndef f(cosine, labels, s=64.0):\n    pass\n"
        "class C:\n    def __init__(self, n, seed=None):\n        pass\n"
    )
    (tmp_path / "snippets/keras/a.py").write_text(
        "def f(cosine, label, s=30.0):\n    pass\n"
        "class C:\n    def __init__(self, n, seed=None, name='c', **kwargs):\n        pass\n"
    )
    (tmp_path / "snippets/keras/b.py").write_text("")
    found = twin_differences(tmp_path)
    assert "a.py: X only in pytorch" in found
    assert any(d.startswith("a.py: f differs") and "label" in d for d in found)
    assert not any(d.startswith("a.py: C") for d in found)  # name= and **kwargs are Keras' idiom
    assert "snippets/keras/b.py: no twin in snippets/pytorch/" in found


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_there_are_files_to_compare(framework):
    assert (ROOT / "snippets" / framework / "margins.py").exists()
