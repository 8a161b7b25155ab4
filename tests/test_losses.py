"""NT-Xent and the CrossPoint loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from crosspoint.losses import crosspoint_loss, nt_xent


def hand_nt_xent(z1, z2, t):
    """The SimCLR loss written out with Python floats."""
    def unit(v):
        n = math.sqrt(sum(c * c for c in v))
        return [c / n for c in v]

    z = [unit(v) for v in z1] + [unit(v) for v in z2]
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        pos = i + n if i < n else i - n
        sims = {j: sum(a * b for a, b in zip(z[i], z[j])) / t for j in range(2 * n) if j != i}
        total += -sims[pos] + math.log(sum(math.exp(s) for s in sims.values()))
    return total / (2 * n)


def lightly_style(out0, out1, t):
    """The arrangement of lightly 1.1.21's NTXentLoss (no memory bank, one process)."""
    out0, out1 = F.normalize(out0, dim=1), F.normalize(out1, dim=1)
    b = out0.shape[0]
    diag = torch.eye(b, dtype=torch.bool)
    l00 = (out0 @ out0.t() / t)[~diag].view(b, -1)
    l01 = out0 @ out1.t() / t
    l10 = out1 @ out0.t() / t
    l11 = (out1 @ out1.t() / t)[~diag].view(b, -1)
    logits = torch.cat([torch.cat([l01, l00], 1), torch.cat([l10, l11], 1)], 0)
    return F.cross_entropy(logits, torch.arange(b).repeat(2))


def test_nt_xent_by_hand_orthogonal():
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # every row: positive similarity 1, two negatives with similarity 0, temperature 1
    assert nt_xent(z, z.clone(), temperature=1.0).item() == pytest.approx(math.log(2 + math.e) - 1, rel=1e-6)


def test_nt_xent_matches_hand_computation():
    z1 = [[1.0, 2.0, -1.0], [0.5, -0.3, 2.0], [-1.0, 0.2, 0.1]]
    z2 = [[0.8, 2.2, -0.7], [0.1, -0.5, 1.5], [3.0, 1.0, 0.0]]
    for t in (0.1, 0.5, 1.0):
        got = nt_xent(torch.tensor(z1, dtype=torch.float64), torch.tensor(z2, dtype=torch.float64), temperature=t)
        assert got.item() == pytest.approx(hand_nt_xent(z1, z2, t), rel=1e-12)


def test_nt_xent_matches_lightly_arrangement_and_is_scale_invariant():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(16, 32, generator=g), torch.randn(16, 32, generator=g)
    ref = lightly_style(a, b, 0.1)
    torch.testing.assert_close(nt_xent(a, b), ref)  # default temperature 0.1
    torch.testing.assert_close(nt_xent(3.0 * a, 0.5 * b), ref)  # rows are L2-normalised
    torch.testing.assert_close(nt_xent(b, a), ref)  # symmetric: mean over both directions
    # no process group: gathering is the identity
    torch.testing.assert_close(nt_xent(a, b, gather=True), nt_xent(a, b, gather=False))


def test_nt_xent_gradient():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: nt_xent(x, y, temperature=0.2), (a, b))


def test_crosspoint_loss_composition():
    z1 = [[1.0, 2.0], [0.5, -0.3], [-1.0, 0.2]]
    z2 = [[0.8, 2.2], [0.1, -0.5], [3.0, 1.0]]
    im = [[0.3, 1.0], [1.0, -1.0], [-2.0, 0.5]]
    p1, p2, img = (torch.tensor(v, dtype=torch.float64) for v in (z1, z2, im))
    total, intra, cross = crosspoint_loss(p1, p2, img)
    mean = [[(a + b) / 2 for a, b in zip(r1, r2)] for r1, r2 in zip(z1, z2)]
    assert intra.item() == pytest.approx(hand_nt_xent(z1, z2, 0.1), rel=1e-12)
    assert cross.item() == pytest.approx(hand_nt_xent(mean, im, 0.1), rel=1e-12)
    assert total.item() == pytest.approx(intra.item() + cross.item(), rel=1e-12)
    out = crosspoint_loss(p1, p2, img, temperature=0.5)
    assert out.total.item() == pytest.approx(hand_nt_xent(z1, z2, 0.5) + hand_nt_xent(mean, im, 0.5), rel=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError):
        nt_xent(torch.randn(4, 8), torch.randn(5, 8))
    with pytest.raises(ValueError):
        nt_xent(torch.randn(4, 8), torch.randn(4, 8), temperature=0.0)
