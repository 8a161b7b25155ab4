"""DDP on the CPU (gloo): two processes with half batches each give the loss, the gradients and the
BatchNorm statistics of one process on the whole batch (SyncBatchNorm in the fast EdgeConv and in
plain BatchNorm layers; NT-Xent negatives gathered from the global batch)."""

from __future__ import annotations

import contextlib
import os
import socket

import pytest
import torch
import torch.nn as nn

WORLD = 2
B_GLOBAL = 8
N_POINTS = 24


class TinyImageEncoder(nn.Module):
    """Stands in for the ResNet: a BatchNorm MLP with the image encoder's ``project`` method."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(12, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 16))

    def project(self, images):
        return self.net(images.flatten(1))


def _build(seed: int):
    from crosspoint.models import DGCNN, CrossPointModel

    torch.manual_seed(seed)
    model = CrossPointModel(DGCNN(k=4, emb_dims=32, projection_dim=16), TinyImageEncoder())
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # non-trivial BatchNorm affine parameters (negative scales included)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.1 * torch.randn(m.num_features, generator=g))
    return model.double()  # float64: the comparison below can then be tight


def _data(seed: int):
    g = torch.Generator().manual_seed(seed + 2)
    p1 = torch.randn(B_GLOBAL, N_POINTS, 3, generator=g, dtype=torch.float64)
    p2 = p1 + 0.05 * torch.randn(B_GLOBAL, N_POINTS, 3, generator=g, dtype=torch.float64)
    img = torch.randn(B_GLOBAL, 3, 2, 2, generator=g, dtype=torch.float64)
    return p1, p2, img


def _result(model, out) -> dict:
    return {
        "loss": out["loss"].detach(), "intra": out["intra_loss"].detach(), "cross": out["cross_loss"].detach(),
        "grads": {n: p.grad.detach().clone() for n, p in model.named_parameters()},
        "buffers": {n: b.detach().clone() for n, b in model.named_buffers()},
    }


@contextlib.contextmanager
def _process_group(rank: int, world: int, port: int):
    """This spawned process as ``rank`` of a gloo group of ``world`` on ``port`` (one thread)."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _worker(rank: int, world: int, port: int, folder: str, seed: int, seed_map: int) -> None:
    """Both DDP computations of this module in one spawn (starting two processes costs more than the
    computations): the whole model's step (``seed``) and the encoder's with the point map (``seed_map``)."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    from crosspoint.models import convert_sync_batchnorm

    per = B_GLOBAL // world
    sl = slice(rank * per, (rank + 1) * per)
    with _process_group(rank, world, port):
        model = convert_sync_batchnorm(_build(seed))
        ddp = DDP(model)
        p1, p2, img = _data(seed)
        out = ddp(p1[sl], p2[sl], img[sl])
        out["loss"].backward()
        torch.save(_result(model, out), os.path.join(folder, f"rank{rank}.pt"))

        enc = convert_sync_batchnorm(_build_encoder(seed_map))
        ddp = DDP(enc)
        loss = _map_loss(ddp(_data(seed_map)[0][sl], with_point_features=True))
        loss.backward()
        torch.save({"grads": {n: p.grad.detach().clone() for n, p in enc.named_parameters()},
                    "buffers": {n: b.detach().clone() for n, b in enc.named_buffers()}},
                   os.path.join(folder, f"map{rank}.pt"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SEED, SEED_MAP = 7, 11


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    """The folder of both computations' per-rank results (one spawn of two gloo processes)."""
    import torch.multiprocessing as mp

    folder = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(WORLD, _free_port(), str(folder), SEED, SEED_MAP), nprocs=WORLD, join=True)
    return folder


@pytest.mark.timeout(180)
def test_ddp_two_processes_match_one_process(ddp_results):
    seed = SEED
    model = _build(seed)
    out = model(*_data(seed))
    out["loss"].backward()
    ref = _result(model, out)

    for rank in range(WORLD):
        got = torch.load(ddp_results / f"rank{rank}.pt", weights_only=True)
        for key in ("loss", "intra", "cross"):
            torch.testing.assert_close(got[key], ref[key], rtol=1e-10, atol=1e-12, msg=f"rank {rank} {key}")
        for name, g in ref["grads"].items():
            torch.testing.assert_close(got["grads"][name], g, rtol=1e-8, atol=1e-10,
                                       msg=lambda m, name=name: f"rank {rank} grad {name}: {m}")
        for name, b in ref["buffers"].items():
            torch.testing.assert_close(got["buffers"][name], b, rtol=1e-10, atol=1e-12,
                                       msg=lambda m, name=name: f"rank {rank} buffer {name}: {m}")


def _map_loss(out):
    """A loss on the projection and on the kept point map, the mean over the process's clouds (so that
    DDP's average over two equal halves is the whole batch's mean)."""
    return (out.projection.sin().sum(1) + out.point_features.cos().mean((1, 2))).mean()


def _build_encoder(seed: int):
    """The DGCNN of :func:`_build` (randomised BatchNorm affine parameters, float64)."""
    return _build(seed).point_encoder


@pytest.mark.timeout(180)
def test_ddp_keeps_the_point_map_like_one_process(ddp_results):
    """The training path that keeps the per-point map (the dense term's) under SyncBatchNorm: the
    fused BatchNorm + activation + pooling with the map's gradient, two processes against one."""
    seed = SEED_MAP
    enc = _build_encoder(seed).train()
    _map_loss(enc(_data(seed)[0], with_point_features=True)).backward()
    for rank in range(WORLD):
        got = torch.load(ddp_results / f"map{rank}.pt", weights_only=True)
        for name, p in enc.named_parameters():
            torch.testing.assert_close(got["grads"][name], p.grad, rtol=1e-8, atol=1e-10,
                                       msg=lambda m, name=name: f"rank {rank} grad {name}: {m}")
        for name, b in enc.named_buffers():
            torch.testing.assert_close(got["buffers"][name], b, rtol=1e-10, atol=1e-12,
                                       msg=lambda m, name=name: f"rank {rank} buffer {name}: {m}")
