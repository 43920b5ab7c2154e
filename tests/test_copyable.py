"""What a reader copies runs: the blocks of one snippet file shown on a page, pasted in page order after that file's
imports, define every name they use and run the page's worked example exactly like the whole file does.

Three checks, each over every include on every page of both languages:
(a) no undefined name in "the file's head + the page's blocks" (a static check with the standard library's
    symtable, no extra package);
(b) every section marked in a snippet file is included by some page (a marked section nobody shows is dead);
(c) the pasted blocks run the worked examples below in a fresh `python -I` subprocess (no PYTHONPATH, no user site,
    nothing of the repository importable) and give the same numbers as the whole file.

"The file's head" is everything above the first section marker except the docstring: the imports (and, for
snippets/keras/original_post.py, the two lines that load margins.py from beside it).
"""

import ast
import builtins
import json
import os
import re
import subprocess
import symtable
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "docs").glob("[a-z][a-z]/*.md"))
INCLUDE = re.compile(r'^\s*--8<-- "([^":]+)(?::([a-z][-_0-9a-z]*))?"\s*$')
MARKER = re.compile(r"^\s*# --8<-- \[(start|end):([a-z][-_0-9a-z]*)\]\s*$")


def page_includes(page: Path):
    """[(file, section or None)] in page order, for every Python file a page includes."""
    found = []
    for line in page.read_text(encoding="utf-8").splitlines():
        m = INCLUDE.match(line)
        if m and m.group(1).endswith(".py"):
            found.append((m.group(1), m.group(2)))
    return found


def sections(path: str) -> dict:
    """{name: source} of the marked sections of a snippet file (markers of nested sections dropped)."""
    result, open_ = {}, []
    for line in (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True):
        m = MARKER.match(line)
        if m and m.group(1) == "start":
            open_.append(m.group(2))
            result.setdefault(m.group(2), "")
        elif m:
            assert open_ and open_[-1] == m.group(2), f"{path}: [end:{m.group(2)}] closes nothing"
            open_.pop()
        else:
            for name in open_:
                result[name] += line
    assert not open_, f"{path}: section {open_} never ends"
    return {name: textwrap.dedent(text) for name, text in result.items()}


def file_head(path: str) -> str:
    """The lines above the first section marker, without the module docstring."""
    lines = (ROOT / path).read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if MARKER.match(line))
    head = "".join(lines[:first])
    tree = ast.parse(head)
    if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(tree.body[0].value, ast.Constant):
        head = "".join(lines[tree.body[0].end_lineno : first])
    return head


def copy_jobs():
    """One job per (page, snippet file): the file's head followed by the page's blocks of it, in page order."""
    jobs = []
    for page in PAGES:
        shown = {}
        for path, section in page_includes(page):
            if section is not None:
                shown.setdefault(path, []).append(section)
        for path, names in shown.items():
            jobs.append((f"{page.parent.name}/{page.name}", path, names))
    return jobs


JOBS = copy_jobs()
JOB_IDS = [f"{page}:{path.removeprefix('snippets/')}" for page, path, _ in JOBS]


def pasted_source(path, names):
    blocks = sections(path)
    return file_head(path) + "\n\n".join(blocks[name] for name in names)


def undefined_names(source: str) -> set:
    """Names read somewhere in `source` that nothing in it defines and that are not builtins (symtable: the
    compiler's own scope analysis, so function bodies, classes and comprehensions are all covered)."""
    top = symtable.symtable(source, "<pasted>", "exec")
    defined = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    read, stack = set(), [top]
    while stack:
        table = stack.pop()
        stack.extend(table.get_children())
        read |= {
            symbol.get_name()
            for symbol in table.get_symbols()
            if symbol.is_referenced() and (table is top or symbol.is_global())
        }
    return read - defined - set(dir(builtins)) - {"__file__", "__name__"}


def test_every_page_with_code_is_checked():
    assert len(JOBS) >= 20, JOBS  # both languages, PyTorch and Keras: far more than 20 (page, file) pairs
    assert any(path == "snippets/keras/original_post.py" for _, path, _ in JOBS)


@pytest.mark.parametrize("page, path, names", JOBS, ids=JOB_IDS)
def test_pasted_blocks_define_every_name_they_use(page, path, names):
    missing = undefined_names(pasted_source(path, names))
    assert not missing, (
        f"{page}: the blocks of {path} ({', '.join(names)}) use {sorted(missing)}, which the page never shows; "
        f"include the section that defines them (a collapsed `??? note` block is fine)"
    )


def test_the_undefined_name_check_sees_a_helper_a_page_does_not_show():
    source = "import math\n\ndef f(x):\n    return _helper(x) + math.pi\n\nclass A:\n    y = [_other(i) for i in x]\n"
    assert undefined_names(source) == {"_helper", "_other", "x"}
    assert undefined_names("import math\n\ndef g():\n    return math.pi\n") == set()


def test_every_marked_section_is_shown_on_some_page():
    included = {(path, section) for page in PAGES for path, section in page_includes(page) if section}
    snippet_files = sorted(
        p.relative_to(ROOT).as_posix()
        for folder in ("pytorch", "keras")
        for p in (ROOT / "snippets" / folder).glob("*.py")
    )
    unused = [f"{path}:{name}" for path in snippet_files for name in sections(path) if (path, name) not in included]
    assert not unused, f"marked sections that no page includes (show them or drop the markers): {unused}"


@pytest.mark.parametrize("page", [p for p in PAGES if any(s for _, s in page_includes(p))], ids=lambda p: p.name)
def test_every_shown_file_has_a_whole_file_block_on_the_page(page):
    includes = page_includes(page)
    shown = {path for path, section in includes if section}
    whole = {path for path, section in includes if section is None}
    assert shown <= whole, f"{page.parent.name}/{page.name}: no whole-file block for {sorted(shown - whole)}"


# --- (c) the worked examples, run on the pasted blocks -----------------------------------------------------------
# Each public name a page shows needs an example here; `result` is what is compared with the whole file. The values
# are the guide's worked examples (tests/worked_examples.md). T: a float64 tensor (PyTorch) or array (Keras);
# L: integer labels; randn(*shape): seeded normal draws; seed(n): the framework's global seed.
E2 = "[[0.7, 0.3, 0.1], [0.2, 0.75, 0.35]]"
SUB = "[[-0.7, 0.7, 0.3, -0.3, 0.1, -0.1], [0.2, -0.2, 0.75, -0.75, 0.35, -0.35]]"
E6 = "[[0.8, 0.3, -0.2], [0.1, 0.6, -0.4], [0.2, -0.1, 0.5]]"
E9 = "[[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [0.0, 1.0]]"
Y5 = "L([0, 1, 2, 0, 1])"
PFC = "PartialFCLoss(8, 1000, sample_rate=0.1, seed=0)"
COMMON = {
    "normface_logits": f"result = normface_logits(T({E2}), L([0, 1]), s=64.0)",
    "sphereface_logits": f"result = sphereface_logits(T({E2}), L([0, 1]), s=64.0, m=4)",
    "cosface_logits": f"result = cosface_logits(T({E2}), L([0, 1]), s=64.0, m=0.35)",
    "arcface_logits": f"result = arcface_logits(T({E2}), L([0, 1]), s=64.0, m=0.5)",
    "combined_margin_logits": f"result = combined_margin_logits(T({E2}), L([0, 1]), s=64.0, m1=1.0, m2=0.3, m3=0.2)",
    "CosineClassifier": "seed(0); result = CosineClassifier(4, 3)(randn(2, 4))",
    "adaface_logits": f"result = adaface_logits(T({E6}), L([0, 1, 2]), T([10.0, 20.0, 30.0]), 20.0, 10.0)",
    "curricularface_logits": "result = curricularface_logits(T([[0.8, 0.5, -0.2], [0.1, 0.6, 0.3]]), L([0, 1]), 0.007)",
    "subcenter_arcface_logits": f"result = subcenter_arcface_logits(T({SUB}), L([0, 1]), num_subcenters=2)",
    "subcenter_outliers": f"result = subcenter_outliers(T({SUB}), L([0, 1]), num_subcenters=2)",
    "SubCenterCosineClassifier": "seed(0); result = SubCenterCosineClassifier(4, 3, num_subcenters=2)(randn(2, 4))",
    "pairwise_distances": f"result = pairwise_distances(T({E9}))",
    "triplet_loss": f"x = T({E9}); result = triplet_loss(x[[0]], x[[1]], x[[2]], margin=0.05)",
    "batch_hard_triplet_loss": f"result = batch_hard_triplet_loss(T({E9}), L([0, 0, 1, 1]), 0.05)",
    "batch_all_triplet_loss": f"result = batch_all_triplet_loss(T({E9}), L([0, 0, 1, 1]), 0.05)",
    "pk_batches": "result = pk_batches(L([0, 0, 0, 1, 1, 2, 2, 2]), p=2, k=2, seed=0)",
    "contrastive_loss": "result = contrastive_loss(T([[0.0, 0.0], [0.3, 0.0], [1.2, 0.0]]), L([0, 0, 1]), margin=1.0)",
}
# model_parallel.py and chunked_loss.py take any `*_logits` function: a CosFace-like one written here (nothing of the
# repository is importable in the subprocess). AllGather and agree_on_inputs need a process group: a one-process gloo
# group on a file store (no port, no network).
MARGIN = (
    "def cos_margin(cosine, labels, s=64.0, m=0.35):\n"
    "    return s * (cosine - m * torch.nn.functional.one_hot(labels, cosine.shape[1]))\n"
)
GROUP = (
    "import tempfile\nimport torch.distributed as dist\n"
    "if not dist.is_initialized():\n"
    "    dist.init_process_group('gloo', store=dist.FileStore(tempfile.mkstemp()[1], 1), rank=0, world_size=1)\n"
)
LARGE_SCALE = {
    "shard_range": "result = [shard_range(1003, rank, 3) for rank in range(3)]",
    "AllGather": GROUP + "seed(0); result = AllGather.apply(randn(2, 3), [2], None)",
    "agree_on_inputs": GROUP + "seed(0); result = agree_on_inputs(randn(3, 4), L([0, 2, 1]), 5, 4, None, 'cpu')",
    "agree_on_inputs_local": "seed(0); result = agree_on_inputs_local(randn(3, 4), L([0, 2, 1]), 5, 4)",
    "sample_shard": "result = sample_shard(L([3, -1, 7, 3]), 10, 0.3, torch.Generator().manual_seed(0))",
    "margin_scale": MARGIN + "result = [margin_scale(cos_margin, {}), margin_scale(cos_margin, {'s': 30.0})]",
    "shard_logits": MARGIN + f"result = shard_logits(T({E2}), L([0, -1]), cos_margin, {{'m': 0.35}})",
    "chunk_logits": MARGIN + f"result = chunk_logits(T({E2}), L([0, -1]), cos_margin, {{'m': 0.35}})",
    "check_target_only": MARGIN + "check_target_only(cos_margin, {'m': 0.35}); result = 1.0",
    "DistCrossEntropy": f"result = DistCrossEntropy.apply(T({E2}) * 64, L([0, 1]), None)",
    "dist_margin_cross_entropy": MARGIN
    + "seed(0); result = dist_margin_cross_entropy(randn(4, 8), randn(10, 8), L([1, -1, 3, 9]), cos_margin)",
    "ModelParallelMarginLoss": MARGIN
    + "seed(0); head = ModelParallelMarginLoss(8, 10, cos_margin); result = head(randn(4, 8), L([1, 2, 3, 9]))",
    "ChunkedMarginCrossEntropy": MARGIN
    + "seed(0); result = ChunkedMarginCrossEntropy.apply(randn(4, 8), randn(10, 8), L([1, 2, 3, 9]), cos_margin,"
    " {}, 4, None)",
    "chunked_margin_cross_entropy": MARGIN
    + "seed(0); result = chunked_margin_cross_entropy(randn(4, 8), randn(10, 8), L([1, 2, 3, 9]), cos_margin,"
    " chunk_size=4)",
}
EXAMPLES = {
    "pytorch": {
        **COMMON,
        **LARGE_SCALE,
        "MarginLoss": f"result = MarginLoss('arcface', s=64.0, m=0.5)(T({E2}), L([0, 1]))",
        "AdaFaceHead": f"seed(0); head = AdaFaceHead(4, 3); result = head(randn(5, 4) * 15, {Y5})",
        "CurricularFaceHead": f"seed(0); head = CurricularFaceHead(4, 3); result = head(randn(5, 4), {Y5})",
        "SubCenterArcFaceLoss": f"result = SubCenterArcFaceLoss(num_subcenters=2)(T({SUB}), L([0, 1]))",
        "sample_class_centers": "result = sample_class_centers(L([7, 2, 7]), 10, 5, torch.Generator().manual_seed(0))",
        "PartialFCLoss": f"seed(0); result = {PFC}(randn(4, 8), L([3, 14, 15, 3]))",
        "BatchTripletLoss": f"result = BatchTripletLoss('hard', 0.05)(T({E9}), L([0, 0, 1, 1]))",
    },
    "keras": {
        **COMMON,
        "MarginLoss": f"result = MarginLoss('arcface', s=64.0, m=0.5)(L([0, 1]), T({E2}))",
        "AdaFaceHead": f"seed(0); head = AdaFaceHead(4, 3); result = head([randn(5, 4) * 15, {Y5}], training=True)",
        "CurricularFaceHead": (
            f"seed(0); head = CurricularFaceHead(4, 3); result = head([randn(5, 4), {Y5}], training=True)"
        ),
        "SubCenterArcFaceLoss": f"result = SubCenterArcFaceLoss(num_subcenters=2)(L([0, 1]), T({SUB}))",
        "sample_class_centers": "result = sample_class_centers(L([7, 2, 7]), 10, 5, keras.random.SeedGenerator(0))",
        "PartialFCLoss": f"seed(0); result = {PFC}([randn(4, 8), L([3, 14, 15, 3])], training=True)",
        "BatchTripletLoss": f"result = BatchTripletLoss('hard', 0.05)(L([0, 0, 1, 1]), T({E9}))",
        # snippets/keras/sharded_classifier.py needs the jax backend; here (torch) it must refuse clearly
        "class_sharded_distribution": (
            "try:\n    class_sharded_distribution(4)\nexcept ValueError as error:\n"
            "    result = [float('jax backend' in str(error))]"
        ),
        # snippets/keras/original_post.py: the post's loss on softmax outputs, both models on a tiny batch, one epoch
        "arcface_loss": "probabilities = keras.ops.convert_to_tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])\n"
        "result = arcface_loss(L([0, 1]), probabilities)",
        "create_model": "seed(0); result = create_model((8,), 3)(randn(2, 8))",
        "create_corrected_model": "seed(0); result = create_corrected_model((8,), 3)(randn(2, 8))",
        "train_like_the_post": (
            "seed(0); model = create_corrected_model((8,), 3)\n"
            "result = train_like_the_post(model, corrected_loss, np.ones((4, 8), 'float32'), np.array([0, 1, 2, 0]),"
            " epochs=1, verbose=0).history['loss']"
        ),
    },
}
VER = "T([[1.0, 0.1], [0.9, 0.3], [0.1, 1.0], [-0.2, 0.9], [-1.0, 0.2], [-0.8, -0.5]]), L([0, 0, 1, 1, 2, 2])"
EXAMPLES["experiments"] = {  # snippets/experiments/verification.py: numpy only
    "unit": "result = unit(T([[3.0, 4.0], [0.0, 0.0]]))",
    "pair_scores": f"result = pair_scores(*({VER}), block=4)",
    "tar_at_far": "result = tar_at_far(np.array([0.2, 0.5, 0.9]), np.array([0.1, 0.3, 0.6]), [0.34, 0.67])",
    "equal_error_rate": "result = [equal_error_rate(np.array([0.2, 0.5, 0.9]), np.array([0.1, 0.3, 0.6]))]",
    "verification_metrics": (
        f"m = verification_metrics({VER})\nresult = [m[k] for k in sorted(m) if isinstance(m[k], float)] + m['roc_tar']"
    ),
    "pk_batches": "result = pk_batches(L([0, 0, 1, 1, 2, 2, 2]), 3, 2, 2, np.random.default_rng(0))",
}
PRELUDE = {
    "experiments": (
        "import numpy as np\n"
        "T = lambda x: np.array(x, dtype='float64')\nL = lambda x: np.array(x)\n"
        "to_numpy = np.asarray\n"
    ),
    "pytorch": (
        "import torch\nimport numpy as np\n"
        "T = lambda x: torch.tensor(x, dtype=torch.float64)\nL = lambda x: torch.tensor(x)\n"
        "seed = torch.manual_seed\nrandn = lambda *shape: torch.randn(*shape)\n"
        "to_numpy = lambda x: x.detach().numpy() if torch.is_tensor(x) else np.asarray(x)\n"
    ),
    "keras": (
        "import keras\nimport numpy as np\n"
        "T = lambda x: np.array(x, dtype='float64')\nL = lambda x: np.array(x)\n"
        "seed = keras.utils.set_random_seed\nrandn = lambda *shape: keras.random.normal(shape)\n"
        "to_numpy = lambda x: keras.ops.convert_to_numpy(x) if hasattr(x, 'shape') else np.asarray(x)\n"
    ),
}
RUNNER = r"""
import json, sys, traceback
import numpy as np
jobs, report = json.load(sys.stdin), {}
def flat(x):
    if isinstance(x, (tuple, list)) and x and not isinstance(x[0], (int, float)):
        return [flat(v) for v in x]
    return np.asarray(to_numpy(x), dtype="float64").tolist()
for job in jobs:
    try:
        outputs = []
        for source in (job["pasted"], job["whole"]):
            namespace = {"__name__": "pasted", "__file__": job["file"]}
            exec(compile(source, job["file"], "exec"), namespace)  # the reader's paste (or the whole file)
            for example in job["examples"]:
                exec(PRELUDE, namespace)
                exec(example, namespace)
                outputs.append(flat(namespace["result"]))
        half = len(outputs) // 2
        assert outputs[:half] == outputs[half:], "pasted blocks and the whole file disagree"
        report[job["id"]] = "ok"
    except Exception:
        report[job["id"]] = traceback.format_exc(limit=4)
print(json.dumps(report))
"""


def public_names(source: str):
    """Top-level public functions and classes a block defines, in order (constants need no example)."""
    return [
        node.name
        for node in ast.parse(source).body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
    ]


def example_jobs(framework):
    jobs = []
    for (_page, path, names), job_id in zip(JOBS, JOB_IDS, strict=True):
        if not path.startswith(f"snippets/{framework}/"):
            continue
        pasted = pasted_source(path, names)
        shown = public_names("\n\n".join(sections(path)[name] for name in names))
        missing = [name for name in shown if name not in EXAMPLES[framework]]
        assert not missing, f"{job_id}: no worked example in tests/test_copyable.py for {missing}"
        jobs.append(
            {
                "id": job_id,
                "file": str(ROOT / path),
                "pasted": pasted,
                "whole": (ROOT / path).read_text(encoding="utf-8"),
                "examples": [EXAMPLES[framework][name] for name in shown],
            }
        )
    return jobs


@pytest.fixture(scope="module")
def run_examples():
    """Run every job of one framework in one isolated subprocess (one start-up, not one per page)."""
    reports = {}

    def run(framework):
        if framework not in reports:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
            env["KERAS_BACKEND"] = "torch"  # Keras on the torch backend: the only framework installed everywhere
            program = f"PRELUDE = {PRELUDE[framework]!r}\n{PRELUDE[framework]}{RUNNER}"
            done = subprocess.run(
                [sys.executable, "-I", "-c", program],
                input=json.dumps(example_jobs(framework)),
                cwd="/",
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert done.returncode == 0, done.stderr[-4000:]
            reports[framework] = json.loads(done.stdout.strip().splitlines()[-1])
        return reports[framework]

    return run


@pytest.mark.parametrize("page, path, names", JOBS, ids=JOB_IDS)
def test_pasted_blocks_run_the_worked_example_like_the_whole_file(run_examples, page, path, names):
    framework = path.split("/")[1]
    report = run_examples(framework)
    job_id = JOB_IDS[JOBS.index((page, path, names))]
    assert report[job_id] == "ok", f"{job_id}:\n{report[job_id]}"
