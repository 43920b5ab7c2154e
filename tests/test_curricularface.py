"""CurricularFace (snippets/pytorch/curricularface.py) against a float64 oracle written from the paper / authors'
head/metrics.py, the worked example E7 of tests/worked_examples.md, and the t update rule."""

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import reference_curricularface_logits
from snippet_loader import ROOT, load_snippet

curricularface = load_snippet("pytorch/curricularface.py")

E7_COSINE = [[0.8, 0.5, -0.2], [0.1, 0.6, 0.3]]
E7_LABELS = [0, 1]


def realizable_embeddings(cosine):
    cosine = torch.as_tensor(cosine, dtype=torch.float64)
    rest = torch.sqrt(1 - (cosine**2).sum(dim=1, keepdim=True))
    weight = torch.cat([torch.eye(cosine.shape[1]), torch.zeros(cosine.shape[1], 1)], dim=1).double()
    return torch.cat([cosine, rest], dim=1), weight


def test_curricularface_logits_match_worked_example_e7():
    logits = curricularface.curricularface_logits(
        torch.tensor(E7_COSINE, dtype=torch.float64), torch.tensor(E7_LABELS), t=0.007
    )
    want = [[26.522286486385696, 16.224, -12.8], [6.4, 9.152582800, 5.8944]]
    np.testing.assert_allclose(logits.numpy(), want, rtol=1e-9)
    assert F.cross_entropy(logits, torch.tensor(E7_LABELS)).item() == pytest.approx(0.04868054530001764, rel=1e-9)


def test_curricularface_logits_match_float64_oracle_on_random_inputs():
    gen = torch.Generator().manual_seed(2)
    cosine = (torch.rand(20, 9, generator=gen, dtype=torch.float64) * 2 - 1).float()
    labels = torch.randint(0, 9, (20,), generator=gen)
    got = curricularface.curricularface_logits(cosine, labels, t=0.35)
    want = reference_curricularface_logits(cosine.double().numpy(), labels.numpy(), 0.35)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-4)


def test_curricularface_fallback_past_pi_minus_m():
    # cos(theta_y) = -0.95: theta_y + 0.5 > pi, target = -0.95 - 0.5 sin(0.5) (worked_examples.md E1)
    logits = curricularface.curricularface_logits(
        torch.tensor([[-0.95, 0.2]], dtype=torch.float64), torch.tensor([0]), t=0.0
    )
    assert logits[0, 0].item() == pytest.approx(-76.1416172353345, rel=1e-12)


def test_curricularface_easy_negatives_keep_their_cosine():
    cosine = torch.tensor([[0.9, 0.2, -0.5]], dtype=torch.float64)  # cos(acos(0.9) + 0.5) = 0.5776 > 0.2, -0.5
    logits = curricularface.curricularface_logits(cosine, torch.tensor([0]), t=0.8)
    assert logits[0, 1:].tolist() == pytest.approx([64 * 0.2, 64 * -0.5], rel=1e-15)


def test_curricularface_module_first_step_matches_e7():
    embeddings, weight = realizable_embeddings(E7_COSINE)
    head = curricularface.CurricularFaceHead(4, 3).double()
    with torch.no_grad():
        head.weight.copy_(weight)
    logits = head(embeddings, torch.tensor(E7_LABELS))
    assert head.t.item() == pytest.approx(0.007, rel=1e-12)
    assert F.cross_entropy(logits, torch.tensor(E7_LABELS)).item() == pytest.approx(0.04868054530001764, rel=1e-9)


def test_curricularface_two_consecutive_calls_update_t_before_use():
    torch.manual_seed(0)
    head = curricularface.CurricularFaceHead(5, 4, momentum=0.2).double()
    batches = [
        (torch.randn(6, 5, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1])),
        (torch.randn(4, 5, dtype=torch.float64), torch.tensor([2, 2, 3, 0])),
    ]
    t = 0.0
    w = head.weight.detach().numpy()
    w = w / np.linalg.norm(w, axis=1, keepdims=True)
    for embeddings, labels in batches:
        x = embeddings.numpy() / np.linalg.norm(embeddings.numpy(), axis=1, keepdims=True)
        cosine = x @ w.T
        t = 0.2 * cosine[np.arange(len(labels)), labels.numpy()].mean() + 0.8 * t
        logits = head(embeddings, labels)
        assert head.t.item() == pytest.approx(t, rel=1e-12)
        np.testing.assert_allclose(
            logits.detach().numpy(), reference_curricularface_logits(cosine, labels.numpy(), t), rtol=1e-10
        )


def test_curricularface_second_step_matches_e7_with_previous_t():
    embeddings, weight = realizable_embeddings(E7_COSINE)
    head = curricularface.CurricularFaceHead(4, 3).double()
    with torch.no_grad():
        head.weight.copy_(weight)
        head.t.fill_(0.3)
    logits = head(embeddings, torch.tensor(E7_LABELS))
    assert head.t.item() == pytest.approx(0.304, rel=1e-12)
    assert F.cross_entropy(logits, torch.tensor(E7_LABELS)).item() == pytest.approx(1.4527020823865362, rel=1e-9)


def test_curricularface_eval_mode_leaves_t_alone():
    head = curricularface.CurricularFaceHead(4, 3).eval()
    head(torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    assert head.t.item() == 0.0


def test_curricularface_t_receives_no_gradient():
    t = torch.tensor(0.4, requires_grad=True)
    cosine = torch.tensor(E7_COSINE, requires_grad=True)
    curricularface.curricularface_logits(cosine, torch.tensor(E7_LABELS), t).sum().backward()
    assert t.grad is None and cosine.grad is not None


def test_curricularface_hard_negative_gradient_is_t_plus_two_c():
    cosine = torch.tensor([[0.8, 0.5, -0.2]], dtype=torch.float64, requires_grad=True)
    curricularface.curricularface_logits(cosine, torch.tensor([0]), t=0.1, s=1.0)[0, 1].backward()
    assert cosine.grad[0, 1].item() == pytest.approx(0.1 + 2 * 0.5)


def test_curricularface_gradcheck_float64_away_from_kinks():
    cosine = torch.tensor(
        [[0.7, 0.5, 0.1], [0.2, 0.45, 0.05], [-0.3, 0.1, 0.25]], dtype=torch.float64, requires_grad=True
    )
    labels = torch.tensor([0, 1, 2])
    assert torch.autograd.gradcheck(lambda c: curricularface.curricularface_logits(c, labels, 0.2), (cosine,))


@pytest.mark.parametrize("edge", [1.0, -1.0])
def test_curricularface_finite_gradients_at_cosine_plus_minus_one(edge):
    cosine = torch.tensor([[edge, 0.2, -0.3], [0.1, edge, 0.9]], requires_grad=True)
    logits = curricularface.curricularface_logits(cosine, torch.tensor([0, 1]), t=0.1)
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(logits).all() and torch.isfinite(cosine.grad).all()


def test_curricularface_module_finite_for_zero_embedding():
    head = curricularface.CurricularFaceHead(4, 3)
    embeddings = torch.zeros(2, 4, requires_grad=True)
    loss = F.cross_entropy(head(embeddings, torch.tensor([0, 2])), torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all()


def test_curricularface_under_bf16_autocast_returns_float32():
    torch.manual_seed(0)
    head = curricularface.CurricularFaceHead(8, 5).eval()
    embeddings, labels = torch.randn(6, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    reference = head(embeddings, labels)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(embeddings, labels)
    assert logits.dtype == torch.float32
    np.testing.assert_allclose(logits.detach().numpy(), reference.detach().numpy(), atol=64 * 2e-2)


def test_curricularface_batch_of_one():
    head = curricularface.CurricularFaceHead(3, 2, momentum=0.5)
    logits = head(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([1]))
    w = F.normalize(head.weight.detach(), dim=1)
    assert head.t.item() == pytest.approx(0.5 * w[1, 0].item(), rel=1e-6)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(cosine=torch.zeros(3)), "2-D"),
        (dict(cosine=torch.zeros(0, 3), labels=torch.zeros(0, dtype=torch.long)), "empty batch"),
        (dict(labels=torch.tensor([0.0, 1.0])), "integer"),
        (dict(labels=torch.tensor([0, 1, 1])), "shape"),
        (dict(labels=torch.tensor([0, 3])), r"\[0, 3\)"),
        (dict(labels=torch.tensor([-1, 0])), r"\[0, 3\)"),
        (dict(s=-1.0), "s must"),
        (dict(s=float("inf")), "s must"),
        (dict(m=1.6), "m must"),
    ],
)
def test_curricularface_logits_bad_inputs_raise_value_error(kwargs, message):
    args = dict(cosine=torch.zeros(2, 3), labels=torch.tensor([0, 1]), t=0.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        curricularface.curricularface_logits(**args)


def test_curricularface_bad_call_does_not_move_t():
    head = curricularface.CurricularFaceHead(4, 3)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        head(torch.randn(2, 4), torch.tensor([0, 3]))
    assert head.t.item() == 0.0


def test_curricularface_script_runs():
    result = subprocess.run(
        [sys.executable, str(ROOT / "snippets/pytorch/curricularface.py")], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "0.04868" in result.stdout


def test_curricularface_target_at_cos_one_is_cos_m_to_float64_precision():
    # The sin clamp sits at 1e-20 as in margins.py: at cos = 1 the target is cos(m) to 1e-10. A floor of 1e-12
    # would add sqrt(1e-12) sin(m) = 4.8e-7 and fail.
    cosine = torch.tensor([[1.0, 0.2]], dtype=torch.float64)
    logits = curricularface.curricularface_logits(cosine, torch.tensor([0]), t=0.0, s=1.0, m=0.5)
    assert abs(logits[0, 0].item() - np.cos(0.5)) < 1e-9
