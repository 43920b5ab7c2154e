"""AdaFace (snippets/pytorch/adaface.py) against a float64 oracle written from the paper / authors' head.py,
the worked example E6 of tests/worked_examples.md, and the running-statistics rules."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import reference_adaface_logits
from snippet_loader import ROOT, load_snippet

adaface = load_snippet("pytorch/adaface.py")

# E6: three samples below / at / above the batch mean norm.
E6_COSINE = [[0.8, 0.3, -0.2], [0.1, 0.6, -0.4], [0.2, -0.1, 0.5]]
E6_LABELS = [0, 1, 2]
E6_NORMS = [10.0, 20.0, 30.0]


def realizable_embeddings(cosine, norms):
    """Embeddings x_i (norm n_i) and class weights W = [I | 0] such that cos(x_i, w_j) = cosine[i, j]."""
    cosine = torch.as_tensor(cosine, dtype=torch.float64)
    rest = torch.sqrt(1 - (cosine**2).sum(dim=1, keepdim=True))
    unit = torch.cat([cosine, rest], dim=1)
    weight = torch.cat([torch.eye(cosine.shape[1]), torch.zeros(cosine.shape[1], 1)], dim=1).double()
    return unit * torch.as_tensor(norms, dtype=torch.float64)[:, None], weight


def test_adaface_logits_match_worked_example_e6():
    logits = adaface.adaface_logits(
        torch.tensor(E6_COSINE, dtype=torch.float64),
        torch.tensor(E6_LABELS),
        torch.tensor(E6_NORMS, dtype=torch.float64),
        batch_mean=20.0,
        batch_std=10.0,
    )
    targets = logits[torch.arange(3), torch.tensor(E6_LABELS)]
    np.testing.assert_allclose(targets.numpy(), [28.57124636824269, 12.8, 4.952802765348373], rtol=1e-12)
    loss = F.cross_entropy(logits, torch.tensor(E6_LABELS)).item()
    assert loss == pytest.approx(2.616444440253509, rel=1e-12)


def test_adaface_logits_match_float64_oracle_on_random_inputs():
    gen = torch.Generator().manual_seed(1)
    cosine = torch.rand(16, 7, generator=gen, dtype=torch.float64) * 2 - 1
    norms = torch.rand(16, generator=gen, dtype=torch.float64) * 40
    labels = torch.randint(0, 7, (16,), generator=gen)
    got = adaface.adaface_logits(cosine.float(), labels, norms.float(), 21.0, 6.5)
    want = reference_adaface_logits(
        cosine.float().double().numpy(), norms.float().double().numpy(), labels.numpy(), 21.0, 6.5
    )
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-4)


def test_adaface_changes_only_the_target_column():
    cosine = torch.tensor(E6_COSINE)
    logits = adaface.adaface_logits(cosine, torch.tensor(E6_LABELS), torch.tensor(E6_NORMS), 20.0, 10.0)
    off_target = ~F.one_hot(torch.tensor(E6_LABELS), 3).bool()
    assert torch.equal(logits[off_target], 64.0 * cosine[off_target])


@pytest.mark.parametrize("norm, expected", [(0.0, 0.5031977898), (20.0, 0.4), (1000.0, 0.1704998006)])
def test_adaface_margin_scaler_limits_are_arcface_cosface_and_cos_theta_minus_m_minus_2m(norm, expected):
    # ms = -1 -> cos(theta + m); ms = 0 -> cos(theta) - m; ms = +1 -> cos(theta - m) - 2m (E6 single-row values)
    logits = adaface.adaface_logits(
        torch.tensor([[0.8, 0.1]], dtype=torch.float64),
        torch.tensor([0]),
        torch.tensor([norm], dtype=torch.float64),
        batch_mean=20.0,
        batch_std=1.0,
        s=1.0,
    )
    assert logits[0, 0].item() == pytest.approx(expected, abs=1e-10)


def test_adaface_module_first_step_matches_e6_with_t_alpha_001():
    embeddings, weight = realizable_embeddings(E6_COSINE, E6_NORMS)
    head = adaface.AdaFaceHead(4, 3, t_alpha=0.01).double()
    with torch.no_grad():
        head.weight.copy_(weight)
    logits = head(embeddings, torch.tensor(E6_LABELS))
    assert head.batch_mean.item() == pytest.approx(20.0, rel=1e-12)
    assert head.batch_std.item() == pytest.approx(99.1, rel=1e-12)  # 0.01 * 10 (unbiased) + 0.99 * 100
    targets = logits[torch.arange(3), torch.tensor(E6_LABELS)].detach().numpy()
    np.testing.assert_allclose(targets, [25.939476143393723, 12.8, 6.281840385463415], rtol=1e-10)
    assert F.cross_entropy(logits, torch.tensor(E6_LABELS)).item() == pytest.approx(2.1741592199382773, rel=1e-10)


def test_adaface_two_consecutive_calls_update_running_statistics_before_use():
    torch.manual_seed(0)
    head = adaface.AdaFaceHead(6, 4, t_alpha=0.3).double()
    batches = [
        (torch.randn(5, 6, dtype=torch.float64) * 12, torch.tensor([0, 1, 2, 3, 0])),
        (torch.randn(3, 6, dtype=torch.float64) * 30, torch.tensor([3, 3, 1])),
    ]
    mu, sigma = 20.0, 100.0
    for embeddings, labels in batches:
        norms = np.clip(np.linalg.norm(embeddings.numpy(), axis=1), 1e-3, 100)  # the module clips norms as head.py
        mu = 0.3 * norms.mean() + 0.7 * mu
        sigma = 0.3 * norms.std(ddof=1) + 0.7 * sigma
        logits = head(embeddings, labels)
        assert head.batch_mean.item() == pytest.approx(mu, rel=1e-12)
        assert head.batch_std.item() == pytest.approx(sigma, rel=1e-12)
        w = head.weight.detach().numpy()
        cosine = (embeddings.numpy() / norms[:, None]) @ (w / np.linalg.norm(w, axis=1, keepdims=True)).T
        want = reference_adaface_logits(cosine, norms, labels.numpy(), mu, sigma)  # uses the *updated* statistics
        np.testing.assert_allclose(logits.detach().numpy(), want, rtol=1e-10, atol=1e-10)


def test_adaface_batch_of_one_keeps_std_and_gives_finite_logits():
    head = adaface.AdaFaceHead(4, 3, t_alpha=0.5)
    embeddings = torch.tensor([[3.0, 4.0, 0.0, 0.0]])  # norm 5
    logits = head(embeddings, torch.tensor([1]))
    assert head.batch_std.item() == 100.0
    assert head.batch_mean.item() == pytest.approx(0.5 * 5 + 0.5 * 20)
    assert torch.isfinite(logits).all()


def test_adaface_eval_mode_leaves_statistics_alone():
    head = adaface.AdaFaceHead(4, 3).eval()
    head(torch.randn(6, 4) * 50, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert (head.batch_mean.item(), head.batch_std.item()) == (20.0, 100.0)


def test_adaface_norms_receive_no_gradient():
    norms = torch.tensor(E6_NORMS, requires_grad=True)
    cosine = torch.tensor(E6_COSINE, requires_grad=True)
    adaface.adaface_logits(cosine, torch.tensor(E6_LABELS), norms, 20.0, 10.0).sum().backward()
    assert norms.grad is None and cosine.grad is not None


def test_adaface_gradcheck_float64_away_from_kinks():
    cosine = torch.tensor(
        [[0.7, 0.3, 0.1], [0.2, 0.45, 0.35], [-0.3, 0.1, 0.25]], dtype=torch.float64, requires_grad=True
    )
    norms, labels = torch.tensor([12.0, 19.0, 27.0], dtype=torch.float64), torch.tensor([0, 1, 2])
    assert torch.autograd.gradcheck(lambda c: adaface.adaface_logits(c, labels, norms, 20.0, 10.0), (cosine,))


@pytest.mark.parametrize("edge", [1.0, -1.0])
def test_adaface_finite_gradients_at_cosine_plus_minus_one(edge):
    cosine = torch.tensor([[edge, 0.2], [0.1, edge]], requires_grad=True)
    logits = adaface.adaface_logits(cosine, torch.tensor([0, 1]), torch.tensor([5.0, 40.0]), 20.0, 10.0)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(logits).all() and torch.isfinite(cosine.grad).all()


def test_adaface_module_finite_for_zero_embedding():
    head = adaface.AdaFaceHead(4, 3)
    embeddings = torch.zeros(2, 4, requires_grad=True)
    loss = F.cross_entropy(head(embeddings, torch.tensor([0, 2])), torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all() and torch.isfinite(head.weight.grad).all()


def test_adaface_under_bf16_autocast_returns_float32_close_to_float32_run():
    torch.manual_seed(0)
    head = adaface.AdaFaceHead(8, 5)
    embeddings, labels = torch.randn(6, 8) * 10, torch.tensor([0, 1, 2, 3, 4, 0])
    reference = head.eval()(embeddings, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(embeddings, labels)
    assert logits.dtype == torch.float32
    np.testing.assert_allclose(logits.detach().numpy(), reference.detach().numpy(), atol=64 * 2e-2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cosine=torch.zeros(3)), "2-D"),
        (dict(cosine=torch.zeros(0, 3), labels=torch.zeros(0, dtype=torch.long), norms=torch.zeros(0)), "empty batch"),
        (dict(labels=torch.tensor([0.0, 1.0])), "integer"),
        (dict(labels=torch.tensor([0, 1, 1])), "shape"),
        (dict(labels=torch.tensor([0, 3])), r"\[0, 3\)"),
        (dict(labels=torch.tensor([-1, 0])), r"\[0, 3\)"),
        (dict(norms=torch.tensor([1.0, 2.0, 3.0])), "norms"),
        (dict(s=0.0), "s must"),
        (dict(m=-0.1), "m must"),
        (dict(m=2.0), "m must"),
    ],
)
def test_adaface_logits_bad_inputs_raise_value_error(kwargs, message):
    args = dict(
        cosine=torch.zeros(2, 3), norms=torch.ones(2), labels=torch.tensor([0, 1]), batch_mean=20.0, batch_std=100.0
    )
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        adaface.adaface_logits(**args)


def test_adaface_bad_call_does_not_move_statistics():
    head = adaface.AdaFaceHead(4, 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        head(torch.randn(2, 4), torch.tensor([0, 5]))
    assert (head.batch_mean.item(), head.batch_std.item()) == (20.0, 100.0)


def test_adaface_script_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "snippets/pytorch/adaface.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "2.61644" in result.stdout
