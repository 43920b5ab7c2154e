"""Model-parallel margin head (snippets/pytorch/model_parallel.py) in real processes: gloo on 127.0.0.1, 2 and 3 ranks.

Oracles, both single-process and built from the same global batch and class centers:
- the full softmax: cos θ of the normalized embeddings and centers, margins.py's `*_logits`, cross-entropy, autograd
  for the gradients (the dense MarginLoss computation), and the float64 formula of tests/oracles.py for the loss;
- for sample_rate < 1: the same full-softmax computation restricted to the class centers the ranks sampled
  (single-process Partial FC given the same index).

Each launch runs every scenario of one world size in one set of processes (starting torch dominates the cost), with
a time bound; on timeout or failure the whole process group of every rank is killed. Bad input on one rank must
give the same ValueError on every rank, and a rank that does not catch it must make all of them exit in time.

Run as a script (`python tests/test_model_parallel.py worker SPEC`) this file is the worker of one rank.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
PYTORCH_SNIPPETS = HERE.parent / "snippets" / "pytorch"
sys.path.insert(0, str(HERE.parent / "snippets" / "benchmarks"))
from common import launch_ranks  # noqa: E402  (the launcher the benchmark uses too)

NUM_CLASSES, DIM = 101, 6
BATCH_SIZES = {2: [5, 3], 3: [5, 3, 4]}  # uneven local batches on purpose
MARGIN_ARGS = {
    "arcface": {"s": 64.0, "m": 0.5},
    "cosface": {"s": 64.0, "m": 0.35},
    "sphereface": {"s": 30.0, "m": 4},
    "combined": {"s": 64.0, "m1": 1.0, "m2": 0.3, "m3": 0.2},
    "normface": {"s": 30.0},
}
LAUNCH_TIMEOUT_S = 120  # per launch of all ranks; the launches take a few seconds each on an idle machine
BAD_INPUTS = ["labels_out_of_range", "float_labels", "shape_mismatch"]


def global_data(world, dtype):
    """The global batch, labels and class centers, identical in the test and in every worker."""
    gen = torch.Generator().manual_seed(1234 + world)
    batch = sum(BATCH_SIZES[world])
    weight = torch.randn(NUM_CLASSES, DIM, generator=gen, dtype=torch.float64)
    labels = torch.randint(0, NUM_CLASSES, (batch,), generator=gen)
    labels[1] = labels[0]  # a repeated class
    embeddings = torch.randn(batch, DIM, generator=gen, dtype=torch.float64)
    # Rows 2 and 3 point almost away from their own center: θ_y near π, so θ_y + m > π (ArcFace's fallback branch).
    for i in (2, 3):
        embeddings[i] = -weight[labels[i]] + 0.05 * torch.randn(DIM, generator=gen, dtype=torch.float64)
    return embeddings.to(dtype), labels, weight.to(dtype)


def scenarios():
    """(name, settings) run by every launch; the test parametrization reads the same list."""
    out = []
    for dtype in ("float64", "float32"):
        for margin in MARGIN_ARGS:
            out.append((f"full-{margin}-{dtype}", {"margin": margin, "dtype": dtype, "r": 1.0, "chunk": None}))
    out.append(("partial-arcface-float64", {"margin": "arcface", "dtype": "float64", "r": 0.3, "chunk": None}))
    out.append(("partial-cosface-float32", {"margin": "cosface", "dtype": "float32", "r": 0.3, "chunk": None}))
    out.append(("chunked-arcface-float64", {"margin": "arcface", "dtype": "float64", "r": 1.0, "chunk": 7}))
    out.append(("chunked-partial-arcface-float64", {"margin": "arcface", "dtype": "float64", "r": 0.3, "chunk": 5}))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Worker (one rank)
# ---------------------------------------------------------------------------------------------------------------


def load(name):
    import importlib.util

    sys.path.insert(0, str(PYTORCH_SNIPPETS))  # model_parallel's __main__ and chunked_loss sit side by side
    spec = importlib.util.spec_from_file_location(f"snippet_pytorch_{name}", PYTORCH_SNIPPETS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_bad(kind, embeddings, labels):
    if kind == "labels_out_of_range":
        labels = labels.clone()
        labels[0] = NUM_CLASSES
    elif kind == "float_labels":
        labels = labels.to(torch.float32)
    elif kind == "shape_mismatch":
        labels = labels[:-1]
    return embeddings, labels


def worker(spec_path):
    import functools

    import torch.distributed as dist

    spec = json.loads(Path(spec_path).read_text())
    torch.set_num_threads(1)
    mp, margins, chunked = load("model_parallel"), load("margins"), load("chunked_loss")
    if spec["mode"] == "built_early":  # the head is built before the process group exists: it must not train alone
        early = mp.ModelParallelMarginLoss(DIM, NUM_CLASSES, margins.arcface_logits, s=64.0, m=0.5)
    dist.init_process_group("gloo", timeout=__import__("datetime").timedelta(seconds=LAUNCH_TIMEOUT_S))
    rank, world = dist.get_rank(), dist.get_world_size()
    sizes = BATCH_SIZES[world]
    mine = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))

    def make_head(settings):
        dtype = getattr(torch, settings["dtype"])
        loss_fn = mp.dist_margin_cross_entropy
        if settings["chunk"]:
            loss_fn = functools.partial(chunked.chunked_margin_cross_entropy, chunk_size=settings["chunk"])
        head = mp.ModelParallelMarginLoss(
            DIM,
            NUM_CLASSES,
            margins.MARGINS[settings["margin"]],
            sample_rate=settings["r"],
            loss_fn=loss_fn,
            generator=torch.Generator().manual_seed(rank),
            **MARGIN_ARGS[settings["margin"]],
        ).to(dtype)
        _, _, weight = global_data(world, dtype)
        with torch.no_grad():
            head.weight.copy_(weight[head.class_start : head.class_start + head.num_local])
        return head, dtype

    results = {}
    if spec["mode"] == "built_early":
        embeddings, labels, _ = global_data(world, torch.float32)
        try:
            early(embeddings[mine], labels[mine])
            results["built_early"] = "no error"
        except ValueError as error:
            results["built_early"] = str(error)
        Path(spec["out"]).joinpath(f"rank{rank}.json").write_text(json.dumps(results))
        dist.destroy_process_group()
        return
    if spec["mode"] == "uncaught":  # bad input on one rank, nobody catches it: every rank must exit with it
        head, dtype = make_head(scenarios()[0][1])
        embeddings, labels, _ = global_data(world, dtype)
        x, y = embeddings[mine], labels[mine]
        if rank == spec["bad_rank"]:
            x, y = make_bad(spec["bad"], x, y)
        head(x, y)
        return
    for name, settings in scenarios():
        head, dtype = make_head(settings)
        embeddings, labels, _ = global_data(world, dtype)
        x = embeddings[mine].clone().requires_grad_()
        loss = head(x, labels[mine])
        loss.backward()
        results[name] = {
            "loss": loss.item(),
            "grad_x": x.grad.tolist(),
            "grad_w": head.weight.grad.tolist(),
            "class_start": head.class_start,
            "num_local": head.num_local,
            "index": head.last_index.tolist(),
        }
    for kind in BAD_INPUTS:  # bad input on the last rank only; every rank records what it raised
        head, dtype = make_head(scenarios()[0][1])
        embeddings, labels, _ = global_data(world, dtype)
        x, y = embeddings[mine], labels[mine]
        if rank == world - 1:
            x, y = make_bad(kind, x, y)
        try:
            head(x, y)
            results[f"bad-{kind}"] = "no error"
        except ValueError as error:
            results[f"bad-{kind}"] = str(error)
    Path(spec["out"]).joinpath(f"rank{rank}.json").write_text(json.dumps(results))
    dist.destroy_process_group()


# ---------------------------------------------------------------------------------------------------------------
# Launcher
# ---------------------------------------------------------------------------------------------------------------


def launch(world, tmp_path, **spec):
    """Start `world` worker processes (snippets/benchmarks/common.py's launcher); wait at most LAUNCH_TIMEOUT_S.

    Returns (return codes, stderr texts, seconds); a code is None for a rank still running at the deadline, and
    every process group still alive then is killed.
    """
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps({"out": str(tmp_path), **spec}))
    argv = [sys.executable, __file__, "worker", str(spec_path)]
    codes, _, stderr, seconds = launch_ranks(argv, world, tmp_path, LAUNCH_TIMEOUT_S)
    return codes, stderr, seconds


@pytest.fixture(scope="module", params=[2, 3], ids=lambda w: f"world{w}")
def launched(request, tmp_path_factory):
    world = request.param
    tmp_path = tmp_path_factory.mktemp(f"world{world}")
    codes, stderr, seconds = launch(world, tmp_path, mode="all")
    assert codes == [0] * world, f"workers exited with {codes} after {seconds:.1f} s:\n" + "\n".join(stderr)[-4000:]
    results = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(world)]
    return world, results


# ---------------------------------------------------------------------------------------------------------------
# Oracles (single process)
# ---------------------------------------------------------------------------------------------------------------

margins = load("margins")


def reference(world, settings, index=None):
    """Single-process full softmax (index=None) or Partial FC on the centers `index`: loss, dL/dx, dL/dW.

    Computed in the scenario's dtype; the float64 scenarios are also held to the paper formula (oracles.py)."""
    dtype = getattr(torch, settings["dtype"])
    embeddings, labels, weight = global_data(world, dtype)  # the same dtype: float32 rounding is not under test
    x = embeddings.clone().requires_grad_()
    w = weight.clone().requires_grad_()
    centers, targets = w, labels
    if index is not None:
        index = torch.tensor(index)
        centers, targets = w[index], torch.searchsorted(index, labels)
        assert torch.equal(index[targets], labels), "a positive class center was not sampled"
    cosine = F.linear(F.normalize(x, eps=1e-12), F.normalize(centers, eps=1e-12))
    logits = margins.MARGINS[settings["margin"]](cosine, targets, **MARGIN_ARGS[settings["margin"]])
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    return loss.item(), x.grad, w.grad, dtype


def relative_error(actual, expected):
    actual, expected = torch.as_tensor(actual, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
    return float((actual - expected).abs().max() / expected.abs().max())


TOLERANCE = {"float64": 1e-6, "float32": 1e-5}


@pytest.mark.parametrize("name,settings", scenarios(), ids=[n for n, _ in scenarios()])
def test_loss_and_gradients_match_the_single_process_softmax(launched, name, settings):
    world, results = launched
    per_rank = [r[name] for r in results]
    index = None
    if settings["r"] < 1:
        index = [c for r in per_rank for c in r["index"]]  # shards are consecutive: the union stays sorted
        assert len(index) < NUM_CLASSES, "sampling kept every class: the r < 1 case tests nothing"
    loss, grad_x, grad_w, _ = reference(world, settings, index)
    tol = TOLERANCE[settings["dtype"]]
    sizes = BATCH_SIZES[world]
    for rank, r in enumerate(per_rank):
        assert relative_error(r["loss"], loss) <= tol, (rank, r["loss"], loss)
        mine = slice(sum(sizes[:rank]), sum(sizes[: rank + 1]))
        assert relative_error(r["grad_x"], grad_x[mine]) <= tol, rank
        shard = grad_w[r["class_start"] : r["class_start"] + r["num_local"]]
        assert relative_error(r["grad_w"], shard) <= tol, rank
    if settings["margin"] in ("arcface", "cosface") and settings["r"] == 1:  # the paper formula, independently
        from oracles import margin_loss

        embeddings, labels, weight = global_data(world, torch.float64)
        expected = margin_loss(
            embeddings.numpy(),
            weight.numpy(),
            labels.tolist(),
            settings["margin"],
            64.0,
            MARGIN_ARGS[settings["margin"]]["m"],
        )
        assert relative_error(per_rank[0]["loss"], expected) <= tol


def test_the_arcface_fallback_rows_are_in_the_batch():
    embeddings, labels, weight = global_data(2, torch.float64)
    cos_t = F.cosine_similarity(embeddings, weight[labels])
    assert (cos_t[2:4] < torch.cos(torch.tensor(torch.pi - 0.5, dtype=torch.float64))).all()


def test_shards_cover_every_class_once_with_uneven_sizes(launched):
    world, results = launched
    starts = [(r["full-arcface-float64"]["class_start"], r["full-arcface-float64"]["num_local"]) for r in results]
    assert starts[0][0] == 0 and sum(n for _, n in starts) == NUM_CLASSES
    assert all(a + n == b for (a, n), (b, _) in zip(starts[:-1], starts[1:], strict=True))
    assert max(n for _, n in starts) - min(n for _, n in starts) <= 1


@pytest.mark.parametrize("kind", BAD_INPUTS)
def test_bad_input_on_one_rank_raises_the_same_error_on_every_rank(launched, kind):
    world, results = launched
    messages = [r[f"bad-{kind}"] for r in results]
    expected = {
        "labels_out_of_range": f"labels must lie in [0, {NUM_CLASSES})",
        "float_labels": "labels must be an integer tensor",
        "shape_mismatch": "labels must be 1-D with one entry per embedding",
    }[kind]
    assert messages == [f"rank {world - 1}: {expected}"] * world


def test_an_uncaught_bad_input_on_one_rank_makes_every_rank_exit_in_time(tmp_path):
    world = 3
    codes, stderr, seconds = launch(world, tmp_path, mode="uncaught", bad="labels_out_of_range", bad_rank=1)
    assert None not in codes, f"a rank was still running after {LAUNCH_TIMEOUT_S} s (hang): {codes}"
    assert all(code != 0 for code in codes), codes
    for text in stderr:
        assert f"ValueError: rank 1: labels must lie in [0, {NUM_CLASSES})" in text, text[-2000:]


def test_a_head_built_before_the_process_group_raises_on_every_rank(tmp_path):
    # Built before init_process_group, the head would hold all classes on every rank and train its own softmax there,
    # silently; it must raise instead, on every rank, without a collective that could hang.
    world = 2
    codes, stderr, seconds = launch(world, tmp_path, mode="built_early")
    assert codes == [0] * world, f"workers exited with {codes} after {seconds:.1f} s:\n" + "\n".join(stderr)[-4000:]
    messages = [json.loads((tmp_path / f"rank{r}.json").read_text())["built_early"] for r in range(world)]
    assert messages == ["the head was built before torch.distributed.init_process_group: build it after"] * world


def test_without_a_process_group_the_head_is_the_single_process_softmax():
    mp = load("model_parallel")
    embeddings, labels, weight = global_data(2, torch.float64)
    head = mp.ModelParallelMarginLoss(DIM, NUM_CLASSES, margins.arcface_logits, s=64.0, m=0.5).double()
    with torch.no_grad():
        head.weight.copy_(weight)
    loss, _, _, _ = reference(2, {"margin": "arcface", "dtype": "float64"})
    assert relative_error(head(embeddings, labels).item(), loss) <= 1e-12
    with pytest.raises(ValueError, match=r"rank 0: labels must lie in \[0, 101\)"):
        head(embeddings, labels + NUM_CLASSES)


def test_shard_range_matches_insightface_split():
    mp = load("model_parallel")
    # insightface partial_fc_v2.py: num_local = C // W + (rank < C % W), start = C // W * rank + min(rank, C % W)
    for num_classes in (101, 7, 12):
        for world in (1, 2, 3, 5):
            for rank in range(world):
                start = num_classes // world * rank + min(rank, num_classes % world)
                count = num_classes // world + int(rank < num_classes % world)
                assert mp.shard_range(num_classes, rank, world) == (start, count)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "worker":
    worker(sys.argv[2])


def test_a_margin_that_changes_other_logits_is_rejected_not_split_wrongly():
    # CurricularFace changes hard negatives by the row's target cosine; rows whose target is on another rank would
    # get s·cos θ instead, a wrong loss without an error. Both entry points refuse it, the same way on every rank.
    mp = load("model_parallel")
    curricular = load("curricularface").curricularface_logits
    with pytest.raises(ValueError, match="changes logits outside the target column"):
        mp.ModelParallelMarginLoss(DIM, NUM_CLASSES, curricular, s=64.0, m=0.5, t=0.3)
    embeddings, labels, weight = global_data(2, torch.float64)
    with pytest.raises(ValueError, match="changes logits outside the target column"):
        mp.dist_margin_cross_entropy(embeddings, weight, labels, curricular, s=64.0, m=0.5, t=0.3)
    names = {"combined": "combined_margin_logits"}
    for name, args in MARGIN_ARGS.items():  # the margins the heads are tested with pass the check
        mp.check_target_only(getattr(margins, names.get(name, f"{name}_logits")), args)
