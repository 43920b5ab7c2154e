"""A margin cross-entropy computed over chunks of classes: loss and gradients without the [B, C] logit matrix.

The dense head (margins.py, MarginLoss) builds cos θ [B, C], the logits z [B, C], the softmax and the gradient of
z, each B·C numbers: at B = 256 and C = 10⁶ that is 1 GB per copy in float32. The loss needs far less. Per sample i

    L_i = logsumexp_j z_ij - z_i,y_i,      z_ij = margin_logits(cos θ, y)_ij   (s·cos θ_ij off the target)

and log-sum-exp can be accumulated one chunk of classes at a time (the "online" softmax normalizer: a running
maximum M_i and a running sum Z_i = Σ exp(z_ij - M_i), rescaled by exp(M_old - M_new) when the maximum grows).
The gradient is also local to a chunk once the normalizer is known,

    ∂L/∂z_ij = (softmax_ij - 1[j = y_i]) / B,      softmax_ij = exp(z_ij - logsumexp_i),

so backward recomputes each chunk's logits from the embeddings and that chunk of class centers, multiplies by
this gradient and lets autograd carry it through the margin, the normalization and the matrix product. Peak extra
memory is a few [B, chunk_size] tensors instead of a few [B, C]; the price is one more [B, chunk] x [chunk, D]
product per chunk (the forward's, done again in backward). Exactly the same numbers as the dense loss (up to
floating-point summation order), for any `*_logits(cosine, labels, ...)` function of margins.py, because the margin
function sees each chunk's cosines with the labels re-indexed into the chunk, on the rows whose target is there;
every other row of the chunk is plain s·cos θ.

Cut Cross-Entropy (Wijmans et al., "Cut Your Losses in Large-Vocabulary Language Models", ICLR 2025, arXiv 2411.09009)
does the same in a GPU kernel for language-model vocabularies: it blocks over the vocabulary with an online
log-sum-exp and recomputes the logits in backward. Liger-Kernel's fused linear cross-entropy (linkedin/Liger-Kernel)
saves memory another way: it splits the batch (the tokens) into chunks, builds each chunk's logits over the whole
vocabulary and computes the gradients already in the forward pass. This file is a plain-PyTorch version of the
first approach, for margin heads.

The C×D gradient of the class centers is as large as W itself (2 GB at C = 10⁶, D = 512 in float32) and any head
produces it. With `lr` set, backward never builds it: it applies a plain SGD step W_chunk ← W_chunk - lr·∂L/∂W_chunk
to each chunk as soon as that chunk's gradient is known and returns no gradient for W (an "optimizer in
backward", as large-scale trainers fuse the update into the backward pass). W must then be the parameter itself
(a leaf tensor) and must not also be given to an optimizer; the embeddings still get their gradient as usual.

Across processes (model_parallel.py) each rank passes its shard of the class centers and labels re-indexed into
the shard (-1 where the target lives on another rank); with a `process_group` the running maximum, the running
sum and the target logit are combined over the ranks by three all-reduces, so every rank holds the same loss.

Conventions (shared with margins.py): `embeddings` [B, D], `weight` [C, D] (rows are class centers, normalized
here), integer `labels` [B]; margins in radians; margin math in float32 or float64; returns the mean loss.
"""

import inspect

import torch
import torch.distributed as dist
import torch.nn.functional as F


# --8<-- [start:chunk_logits]
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


def chunk_logits(cosine, labels, margin_logits, margin_args):
    """Logits of one block of classes: margin on the rows whose target is in the block (labels >= 0), else s·cos θ.

    cosine [B, n] holds this block's cosines, labels [B] the targets re-indexed into the block (-1: elsewhere).
    """
    dtype = torch.promote_types(cosine.dtype, torch.float32)  # the margin functions compute in float32 or higher
    logits = cosine.to(dtype) * margin_scale(margin_logits, margin_args)
    rows = torch.nonzero(labels >= 0).squeeze(1)
    if rows.numel() == 0:
        return logits
    logits[rows] = margin_logits(cosine[rows], labels[rows], **margin_args)  # in place: no copy of the block
    return logits


# --8<-- [end:chunk_logits]


# --8<-- [start:chunked_function]
class ChunkedMarginCrossEntropy(torch.autograd.Function):
    """Mean margin cross-entropy over class chunks; saves only the inputs and one log-sum-exp per sample."""

    @staticmethod
    def forward(ctx, embeddings, weight, labels, margin_logits, margin_args, chunk_size, process_group, lr=None):
        x = F.normalize(embeddings, dim=1, eps=1e-12)
        dtype = torch.promote_types(embeddings.dtype, torch.float32)
        batch = x.shape[0]
        run_max = torch.full((batch,), -torch.inf, dtype=dtype, device=x.device)
        run_sum = torch.zeros(batch, dtype=dtype, device=x.device)
        target = torch.zeros(batch, dtype=dtype, device=x.device)
        for start in range(0, weight.shape[0], chunk_size):
            w = F.normalize(weight[start : start + chunk_size], dim=1, eps=1e-12)
            local = torch.where((labels >= start) & (labels < start + w.shape[0]), labels - start, -1)
            z = chunk_logits(F.linear(x, w), local, margin_logits, margin_args)
            new_max = torch.maximum(run_max, z.max(dim=1).values)
            run_sum = run_sum * torch.exp(run_max - new_max) + (z - new_max[:, None]).exp_().sum(dim=1)
            run_max = new_max
            rows = torch.nonzero(local >= 0).squeeze(1)
            target[rows] = z[rows, local[rows]]
        if process_group is not None:  # combine the shards: global max, then the rescaled sums and the targets
            global_max = run_max.clone()
            dist.all_reduce(global_max, op=dist.ReduceOp.MAX, group=process_group)
            run_sum = run_sum * torch.exp(run_max - global_max)
            dist.all_reduce(run_sum, op=dist.ReduceOp.SUM, group=process_group)
            dist.all_reduce(target, op=dist.ReduceOp.SUM, group=process_group)  # exactly one rank owns each target
            run_max = global_max
        lse = run_max + torch.log(run_sum)
        ctx.save_for_backward(embeddings, weight, labels, lse)
        ctx.settings = (margin_logits, margin_args, chunk_size, lr)
        return (lse - target).mean()

    @staticmethod
    def backward(ctx, grad_loss):
        embeddings, weight, labels, lse = ctx.saved_tensors
        margin_logits, margin_args, chunk_size, lr = ctx.settings
        with torch.enable_grad():
            leaf = embeddings.detach().requires_grad_()
            x = F.normalize(leaf, dim=1, eps=1e-12)
            x_detached = x.detach().requires_grad_()
            grad_x = torch.zeros_like(x)
            grad_weight = None if lr is not None else torch.zeros_like(weight)  # with lr: never built
            scale = grad_loss / x.shape[0]  # d(mean)/d(L_i)
            for start in range(0, weight.shape[0], chunk_size):
                w = weight[start : start + chunk_size].detach().requires_grad_()
                local = torch.where((labels >= start) & (labels < start + w.shape[0]), labels - start, -1)
                z = chunk_logits(
                    F.linear(x_detached, F.normalize(w, dim=1, eps=1e-12)), local, margin_logits, margin_args
                )
                with torch.no_grad():  # dL/dz = (softmax - one_hot) / B, computed in place on one [B, chunk] tensor
                    grad_z = (z - lse[:, None]).exp_()
                    rows = torch.nonzero(local >= 0).squeeze(1)
                    grad_z[rows, local[rows]] -= 1.0
                    grad_z *= scale
                gx, gw = torch.autograd.grad(z, (x_detached, w), grad_z)
                grad_x += gx
                if lr is None:
                    grad_weight[start : start + w.shape[0]] = gw
                else:  # SGD step on this chunk now; its rows are not read again in this backward
                    with torch.no_grad():
                        weight[start : start + w.shape[0]].sub_(gw, alpha=lr)
            (grad_embeddings,) = torch.autograd.grad(x, leaf, grad_x)
        return grad_embeddings, grad_weight, None, None, None, None, None, None


# --8<-- [end:chunked_function]


# --8<-- [start:chunked_margin_cross_entropy]
def chunked_margin_cross_entropy(
    embeddings, weight, labels, margin_logits, chunk_size=4096, process_group=None, lr=None, **margin_args
):
    """Mean margin cross-entropy of embeddings [B, D] against class centers weight [C, D], chunk_size classes at a time.

    margin_logits: any `*_logits(cosine, labels, ...)` function (margins.py); margin_args go to it (s, m, ...).
    process_group: None for one process; a torch.distributed group when weight is this rank's shard and labels are
    re-indexed into the shard with -1 for targets held by another rank (model_parallel.py).
    lr: None, or a learning rate: backward then updates weight in place by plain SGD, chunk by chunk, and gives it
    no .grad (the C×D gradient is never held); weight must be a leaf tensor (the parameter, not a selection of it).
    The step uses the gradient of whatever loss backward starts from: under fp16 loss scaling pass lr / scale
    (GradScaler.get_scale()); learning-rate schedulers and gradient clipping never see weight.
    """
    if embeddings.dim() != 2 or not embeddings.is_floating_point():
        raise ValueError(f"embeddings must be a 2-D floating-point tensor [batch, D], got {tuple(embeddings.shape)}")
    if weight.dim() != 2 or weight.shape[1] != embeddings.shape[1]:
        raise ValueError(f"weight must have shape [classes, {embeddings.shape[1]}], got {tuple(weight.shape)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor, got {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != embeddings.shape[0]:
        raise ValueError(
            f"labels must have shape [{embeddings.shape[0]}] to match embeddings, got {tuple(labels.shape)}"
        )
    if embeddings.shape[0] == 0 or weight.shape[0] == 0:
        raise ValueError("empty input: need at least one sample and one class")
    lowest = -1 if process_group is not None else 0  # -1 marks "target on another rank"
    if labels.min() < lowest or labels.max() >= weight.shape[0]:
        raise ValueError(
            f"labels must lie in [{lowest}, {weight.shape[0]}), "
            f"got values in [{int(labels.min())}, {int(labels.max())}]"
        )
    if not (isinstance(chunk_size, int) and chunk_size > 0):
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if lr is not None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
            raise ValueError(f"lr must be None or a positive finite number, got {lr!r}")
        if not (weight.is_leaf and weight.requires_grad):
            raise ValueError("lr updates weight in place: weight must be a leaf tensor that requires grad")
    check_target_only(margin_logits, margin_args)
    labels = labels.long()
    return ChunkedMarginCrossEntropy.apply(
        embeddings, weight, labels, margin_logits, margin_args, chunk_size, process_group, lr
    )


# --8<-- [end:chunked_margin_cross_entropy]


if __name__ == "__main__":
    from margins import CosineClassifier, arcface_logits  # the dense head, from the file next to this one

    # Worked example: 10,000 classes in chunks of 1,000; the chunked loss and gradients equal the dense ones.
    torch.manual_seed(0)
    classifier = CosineClassifier(embedding_size=64, num_classes=10_000).double()
    x = torch.randn(32, 64, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 10_000, (32,))
    loss_dense = F.cross_entropy(arcface_logits(classifier(x), y, s=64.0, m=0.5), y)  # builds the [32, 10000] logits
    grad_x_dense, grad_w_dense = torch.autograd.grad(loss_dense, (x, classifier.weight))

    weight = classifier.weight.detach().clone().requires_grad_()
    loss = chunked_margin_cross_entropy(x, weight, y, arcface_logits, chunk_size=1_000, s=64.0, m=0.5)
    grad_x, grad_w = torch.autograd.grad(loss, (x, weight))
    print(f"dense loss   {loss_dense.item():.12f}")
    print(f"chunked loss {loss.item():.12f}")
    print(
        f"max |grad difference|: embeddings {(grad_x - grad_x_dense).abs().max().item():.1e}, "
        f"class centers {(grad_w - grad_w_dense).abs().max().item():.1e}"
    )
    print("largest logit block held at once: [32, 1000] instead of [32, 10000]")

    # The same step with the SGD update done inside backward (lr = 0.1): W changes, W.grad is never built.
    expected = classifier.weight.detach() - 0.1 * grad_w_dense
    chunked_margin_cross_entropy(x, weight, y, arcface_logits, chunk_size=1_000, lr=0.1, s=64.0, m=0.5).backward()
    print(
        f"SGD in backward: weight.grad is {weight.grad}, "
        f"max |W - (W - 0.1·grad_dense)|: {(weight.detach() - expected).abs().max().item():.1e}"
    )
