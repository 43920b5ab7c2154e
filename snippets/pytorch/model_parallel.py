"""Model-parallel margin head on torch.distributed: class centers split by class over processes, Partial FC per shard.

With G processes (ranks), rank g holds the class centers of one consecutive block of classes, C_g of them
(C_g = ⌊C/G⌋ + 1[g < C mod G], so uneven C is fine), and never the whole [C, D] matrix. One step:

  1. all-gather   every rank receives the embeddings [B, D] and labels [B] of all ranks (B = Σ_g b_g); the
                  gradient of the embeddings flows back to the rank that produced them (backward = all-reduce of
                  the [B, D] gradient, each rank keeping its own rows).
  2. local logits rank g computes cos θ [B, C_g] against its shard and applies the margin function on the rows
                  whose target class it owns (labels re-indexed into the shard, -1 elsewhere); other rows are s·cos θ.
  3. all-reduce   the softmax normalizer is spread over the shards, so the maximum M_i (op MAX), the sum
                  Σ_g Σ_j exp(z_ij - M_i) (op SUM) and the target logit z_i,y_i (op SUM, one owner) are reduced:

                  L = (1/B) Σ_i [ M_i + log Σ_g Σ_{j ∈ shard g} exp(z_ij - M_i) - z_i,y_i ]

                  identical on every rank; ∂L/∂z_ij = (softmax_ij - 1[j = y_i]) / B needs no further communication.

Traffic per step is O(B·D + B), independent of C. With sample_rate r < 1 each rank also does Partial FC on its own
shard: all classes of its shard present in the batch (the positives) plus uniformly random others, max(⌊r·C_g⌋,
#positives) in all, and only those rows enter the step (insightface arcface_torch, partial_fc_v2.py; An et al.,
"Partial FC: Training 10 Million Identities on a Single Machine", ICCV Workshops 2021, arXiv 2010.05222).

Inputs are checked on every rank and the verdict is agreed by one small all-reduce before any other collective, so
bad input on one rank raises the same ValueError on all ranks instead of leaving the others waiting forever.
The same code runs with gloo on CPU and NCCL on GPU: tensors stay on the device of the class centers. Without an
initialized process group the head is a single process that owns every class (the full-softmax MarginLoss).

Conventions (shared with margins.py): `margin_logits` is any `*_logits(cosine, labels, ...)` function, margins in
radians, margin math in float32 or float64; forward returns the mean cross-entropy over the global batch.

    torchrun --nproc_per_node=2 snippets/pytorch/model_parallel.py     # gloo on CPU; prints the same loss as
    python snippets/pytorch/model_parallel.py                          # one process does
"""

import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn


# --8<-- [start:shard_range]
def shard_range(num_classes, rank, world_size):
    """First class and number of classes of rank's shard: consecutive blocks, the first C mod G one class larger."""
    base, extra = divmod(num_classes, world_size)
    return base * rank + min(rank, extra), base + int(rank < extra)


# --8<-- [end:shard_range]


# --8<-- [start:all_gather]
class AllGather(torch.autograd.Function):
    """Concatenate every rank's rows [b_g, ...] (b_g may differ); backward: this rank's rows of the summed gradient."""

    @staticmethod
    def forward(ctx, tensor, sizes, group):
        ctx.sizes, ctx.group, ctx.rank = sizes, group, dist.get_rank(group)
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))  # all_gather needs equal shapes
        padded[: tensor.shape[0]] = tensor
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous(), group=group)
        return torch.cat([part[:n] for part, n in zip(parts, sizes, strict=True)])

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM, group=ctx.group)  # every rank's shard contributed to every row
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


# --8<-- [end:all_gather]


# --8<-- [start:agree_on_inputs]
PROBLEMS = {
    1: "embeddings must be a 2-D floating-point tensor [batch, {D}]",
    2: "labels must be an integer tensor",
    3: "labels must be 1-D with one entry per embedding",
    4: "labels must lie in [0, {C})",
    5: "embeddings contain NaN or infinity",
    6: "the batch is empty",
    7: "embeddings must have the same dtype on every rank",
}
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def agree_on_inputs(embeddings, labels, num_classes, embedding_size, group, device):
    """Check this rank's inputs, then share every rank's verdict, batch size and dtype with ONE all-reduce.

    Returns the batch size of every rank; raises the same ValueError on every rank if any rank's input is bad.
    """
    code = 0
    if not (torch.is_tensor(embeddings) and embeddings.is_floating_point()) or embeddings.dim() != 2:
        code = 1
    elif embeddings.shape[1] != embedding_size or embeddings.dtype not in DTYPES:
        code = 1
    elif not torch.is_tensor(labels) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        code = 2
    elif labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        code = 3
    elif labels.numel() == 0:
        code = 6
    elif labels.min() < 0 or labels.max() >= num_classes:
        code = 4
    elif not torch.isfinite(embeddings).all():
        code = 5
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    report = torch.zeros(3, world, dtype=torch.int64, device=device)  # rows: problem, batch size, dtype + 1
    report[0, rank] = code
    report[1, rank] = labels.shape[0] if code == 0 else 0
    report[2, rank] = DTYPES.index(embeddings.dtype) + 1 if code == 0 else 0
    dist.all_reduce(report, op=dist.ReduceOp.SUM, group=group)  # each rank wrote only its own column
    if report[0].any():
        bad = int(torch.nonzero(report[0])[0])
        message = PROBLEMS[int(report[0, bad])].format(D=embedding_size, C=num_classes)
        raise ValueError(f"rank {bad}: {message}")
    if len(set(report[2].tolist())) > 1:
        raise ValueError(PROBLEMS[7] + f" (got {[str(DTYPES[i - 1]) for i in report[2].tolist()]})")
    return report[1].tolist()


# --8<-- [end:agree_on_inputs]


# --8<-- [start:sample_shard]
def sample_shard(targets, num_local, sample_rate, generator=None):
    """Partial FC on one shard: keep every class of the shard present in targets, fill up with random others.

    targets: labels re-indexed into the shard, -1 where the class lives elsewhere. Returns (index, remapped):
    sorted shard-local ids of the sampled centers, and targets re-indexed into the sample (-1 stays -1).
    """
    owned = targets >= 0
    positive = torch.unique(targets[owned])  # sorted
    num_sample = min(num_local, max(int(sample_rate * num_local), positive.numel()))
    score = torch.rand(num_local, generator=generator, device=targets.device)
    score[positive] = 2.0  # above every uniform draw: the positives are always among the top num_sample
    index = torch.topk(score, num_sample, sorted=False).indices.sort().values
    remapped = torch.where(owned, torch.searchsorted(index, targets.clamp_min(0)), -1)
    return index, remapped


# --8<-- [end:sample_shard]


# --8<-- [start:dist_cross_entropy]
def margin_scale(margin_logits, margin_args):
    """The scale s that margin_logits uses: the one given, else the function's default."""
    if "s" in margin_args:
        return margin_args["s"]
    return inspect.signature(margin_logits).parameters["s"].default


def check_target_only(margin_logits, margin_args):
    """Raise a ValueError unless margin_logits changes only the target column (s·cos θ elsewhere).

    This loss applies the margin only to the rows whose target is in the block it computes and uses s·cos θ for the
    others, which is exact for NormFace, SphereFace, CosFace, ArcFace and the combined margin but not for a margin
    that also changes other logits by the row's target cosine (CurricularFace): that would give a wrong loss silently.
    """
    probe = torch.tensor([[0.9, 0.8, -0.2], [0.1, 0.7, 0.75]], dtype=torch.float64)
    logits = margin_logits(probe, torch.tensor([0, 1]), **margin_args)  # bad margin args fail here too
    off_target = torch.tensor([[False, True, True], [True, False, True]])
    expected = margin_scale(margin_logits, margin_args) * probe
    if not torch.allclose(logits.to(torch.float64)[off_target], expected[off_target], rtol=1e-5, atol=1e-6):
        name = getattr(margin_logits, "__name__", repr(margin_logits))
        raise ValueError(
            f"{name} changes logits outside the target column (as CurricularFace does); this loss needs a margin "
            "that changes the target column only (normface, sphereface, cosface, arcface, combined_margin)"
        )


def shard_logits(cosine, targets, margin_logits, margin_args):
    """Margin on the rows whose target is in this shard (targets >= 0), plain s·cos θ on the others."""
    logits = cosine.to(torch.promote_types(cosine.dtype, torch.float32)) * margin_scale(margin_logits, margin_args)
    rows = torch.nonzero(targets >= 0).squeeze(1)
    if rows.numel() == 0:
        return logits
    logits[rows] = margin_logits(cosine[rows], targets[rows], **margin_args)  # in place: no copy of [B, C_g]
    return logits


class DistCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of logits split by columns over the ranks of group (None: one process)."""

    @staticmethod
    def forward(ctx, logits, targets, group):
        batch = logits.shape[0]
        row_max = logits.max(dim=1).values
        if group is not None:
            dist.all_reduce(row_max, op=dist.ReduceOp.MAX, group=group)
        probs = torch.exp(logits - row_max[:, None])
        sum_exp = probs.sum(dim=1)
        rows = torch.nonzero(targets >= 0).squeeze(1)
        target_logit = torch.zeros(batch, dtype=logits.dtype, device=logits.device)
        target_logit[rows] = logits[rows, targets[rows]]
        if group is not None:
            dist.all_reduce(sum_exp, op=dist.ReduceOp.SUM, group=group)
            dist.all_reduce(target_logit, op=dist.ReduceOp.SUM, group=group)  # exactly one rank owns each target
        probs /= sum_exp[:, None]
        ctx.save_for_backward(probs, targets)
        return (row_max + torch.log(sum_exp) - target_logit).mean()

    @staticmethod
    def backward(ctx, grad_loss):
        probs, targets = ctx.saved_tensors
        grad = probs.clone()
        rows = torch.nonzero(targets >= 0).squeeze(1)
        grad[rows, targets[rows]] -= 1.0
        return grad * (grad_loss / probs.shape[0]), None, None


def dist_margin_cross_entropy(embeddings, weight, targets, margin_logits, process_group=None, **margin_args):
    """Dense loss on one shard: cos θ [B, C_g], margin on owned rows, cross-entropy reduced over process_group."""
    check_target_only(margin_logits, margin_args)
    cosine = F.linear(F.normalize(embeddings, dim=1, eps=1e-12), F.normalize(weight, dim=1, eps=1e-12))
    return DistCrossEntropy.apply(shard_logits(cosine, targets, margin_logits, margin_args), targets, process_group)


# --8<-- [end:dist_cross_entropy]


# --8<-- [start:model_parallel_loss]
class ModelParallelMarginLoss(nn.Module):
    """This rank's shard of the class centers [C_g, D] + a margin softmax over all ranks; forward returns the mean loss.

    margin_logits: any `*_logits(cosine, labels, ...)` function; margin_args go to it (s, m, ...).
    sample_rate < 1: Partial FC in train() mode (positives kept); eval() or sample_rate = 1 uses the whole shard.
    loss_fn: dist_margin_cross_entropy (dense on the shard) or chunked_loss.chunked_margin_cross_entropy.
    """

    def __init__(
        self,
        embedding_size,
        num_classes,
        margin_logits,
        sample_rate=1.0,
        loss_fn=dist_margin_cross_entropy,
        process_group=None,
        generator=None,
        **margin_args,
    ):
        super().__init__()
        if not 0 <= sample_rate <= 1:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        self.group = (process_group or dist.group.WORLD) if dist.is_initialized() else None
        world = dist.get_world_size(self.group) if self.group is not None else 1
        rank = dist.get_rank(self.group) if self.group is not None else 0
        if num_classes < world:
            raise ValueError(f"num_classes={num_classes} is smaller than the world size {world}")
        self.class_start, self.num_local = shard_range(num_classes, rank, world)
        self.num_classes, self.embedding_size, self.sample_rate = num_classes, embedding_size, sample_rate
        self.margin_logits, self.margin_args, self.loss_fn, self.generator = (
            margin_logits,
            margin_args,
            loss_fn,
            generator,
        )
        check_target_only(margin_logits, margin_args)  # bad margin args, or a margin this loss cannot split: fail now
        self.weight = nn.Parameter(torch.randn(self.num_local, embedding_size) * 0.01)  # this rank's class centers
        self.last_index = None  # global class ids used in the last step (all of the shard when not sampling)

    def forward(self, embeddings, labels):
        if self.group is None and dist.is_initialized() and dist.get_world_size() > 1:
            # Built before init_process_group: every rank would hold all C centers and train its own softmax.
            raise ValueError("the head was built before torch.distributed.init_process_group: build it after")
        if self.group is None:  # one process: plain checks, no collectives
            sizes = agree_on_inputs_local(embeddings, labels, self.num_classes, self.embedding_size)
            gathered, all_labels = embeddings, labels.long()
        else:
            sizes = agree_on_inputs(
                embeddings, labels, self.num_classes, self.embedding_size, self.group, self.weight.device
            )
            gathered = AllGather.apply(embeddings, sizes, self.group)
            all_labels = AllGather.apply(labels.long(), sizes, self.group)  # integers: no gradient
        owned = (all_labels >= self.class_start) & (all_labels < self.class_start + self.num_local)
        targets = torch.where(owned, all_labels - self.class_start, -1)
        weight = self.weight
        if self.training and self.sample_rate < 1:
            index, targets = sample_shard(targets, self.num_local, self.sample_rate, self.generator)
            weight = self.weight[index]  # only the sampled rows get a gradient this step
            self.last_index = index + self.class_start
        else:
            self.last_index = torch.arange(self.class_start, self.class_start + self.num_local, device=weight.device)
        return self.loss_fn(gathered, weight, targets, self.margin_logits, process_group=self.group, **self.margin_args)


def agree_on_inputs_local(embeddings, labels, num_classes, embedding_size):
    """Single-process version of agree_on_inputs (the same checks, no all-reduce)."""
    if not (torch.is_tensor(embeddings) and embeddings.is_floating_point()) or embeddings.dim() != 2:
        raise ValueError("rank 0: " + PROBLEMS[1].format(D=embedding_size))
    if embeddings.shape[1] != embedding_size:
        raise ValueError("rank 0: " + PROBLEMS[1].format(D=embedding_size))
    if not torch.is_tensor(labels) or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError("rank 0: " + PROBLEMS[2])
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError("rank 0: " + PROBLEMS[3])
    if labels.numel() == 0:
        raise ValueError("rank 0: " + PROBLEMS[6])
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError("rank 0: " + PROBLEMS[4].format(C=num_classes))
    if not torch.isfinite(embeddings).all():
        raise ValueError("rank 0: " + PROBLEMS[5])
    return [labels.shape[0]]


# --8<-- [end:model_parallel_loss]


if __name__ == "__main__":
    import os

    from margins import CosineClassifier, arcface_logits  # the single-process head, from the file next to this one

    # Worked example: 1,003 classes (uneven shards), 8 embeddings per rank, ArcFace s = 64, m = 0.5, float64.
    distributed = "WORLD_SIZE" in os.environ  # set by torchrun
    if distributed:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    device = torch.device("cuda", torch.cuda.current_device()) if distributed and backend == "nccl" else "cpu"
    num_classes, dim, per_rank = 1_003, 16, 8

    generator = torch.Generator().manual_seed(0)  # the same global batch and centers on every rank
    all_embeddings = torch.randn(world * per_rank, dim, generator=generator, dtype=torch.float64)
    all_labels = torch.randint(0, num_classes, (world * per_rank,), generator=generator)
    all_centers = torch.randn(num_classes, dim, generator=generator, dtype=torch.float64)

    # The single-process reference on the same global batch and the same centers.
    classifier = CosineClassifier(dim, num_classes).double()
    with torch.no_grad():
        classifier.weight.copy_(all_centers)
    logits = arcface_logits(classifier(all_embeddings), all_labels, s=64.0, m=0.5)
    expected = F.cross_entropy(logits, all_labels).item()

    head = ModelParallelMarginLoss(dim, num_classes, arcface_logits, s=64.0, m=0.5).double().to(device)
    with torch.no_grad():
        head.weight.copy_(all_centers[head.class_start : head.class_start + head.num_local])
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    embeddings = all_embeddings[mine].clone().to(device).requires_grad_()
    loss = head(embeddings, all_labels[mine].to(device))
    loss.backward()
    print(
        f"rank {rank}/{world}: classes [{head.class_start}, {head.class_start + head.num_local}), "
        f"loss {loss.item():.12f}, single process {expected:.12f}",
        flush=True,
    )
    if distributed:
        dist.destroy_process_group()
