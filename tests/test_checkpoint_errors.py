"""Issue 10 item 7, checkpoints: a file that cannot be loaded says what it is (a directory, not a
PyTorch file, truncated with its size, ...), whole sentences; every load stays ``weights_only``."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from crosspoint.models import CheckpointError, build_point_encoder, load_point_encoder, read_checkpoint


def _msg(path) -> str:
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    return str(err.value)


@pytest.fixture
def state_file(tmp_path):
    torch.manual_seed(0)
    sd = build_point_encoder("dgcnn", k=4, emb_dims=32, projection_dim=8).state_dict()
    zip_path = tmp_path / "good.pth"
    torch.save(sd, zip_path)
    legacy = tmp_path / "legacy.pth"
    torch.save(sd, legacy, _use_new_zipfile_serialization=False)
    return zip_path, legacy


def test_directory_says_it_is_a_directory(tmp_path, state_file):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    msg = _msg(run)
    assert "is a directory, not a checkpoint file" in msg and "no such" not in msg
    assert "holds no .pt/.pth/.t7 file" in msg
    (run / "checkpoints" / "best.pt").write_bytes(state_file[0].read_bytes())
    assert "checkpoint files in it: checkpoints/best.pt" in _msg(run)
    with pytest.raises(CheckpointError, match="is a directory"):
        load_point_encoder(run)
    assert _msg(tmp_path / "missing.pth").endswith("no such checkpoint file")


def test_random_bytes_are_not_a_pytorch_checkpoint(tmp_path):
    path = tmp_path / "noise.pth"
    data = np.random.default_rng(0).bytes(4096)
    assert data[:2] != b"PK" and data[0] != 0x80
    path.write_bytes(data)
    msg = _msg(path)
    assert "not a PyTorch checkpoint (neither a zip archive nor a legacy pickle" in msg
    assert "run code" not in msg and "4096 bytes" in msg
    (tmp_path / "text.pth").write_text("hello\n")
    assert "neither a zip archive nor a legacy pickle" in _msg(tmp_path / "text.pth")


def test_truncated_zip_checkpoint(state_file, tmp_path):
    data = state_file[0].read_bytes()
    for n in (200, len(data) // 2, len(data) - 10):
        path = tmp_path / f"cut{n}.pth"
        path.write_bytes(data[:n])
        msg = _msg(path)
        assert "truncated or incomplete" in msg and f"{n} bytes on disk" in msg, msg
        assert msg.rstrip().endswith("?") or msg.rstrip().endswith(".")  # a whole sentence, not cut


def test_truncated_legacy_checkpoint(state_file, tmp_path):
    data = state_file[1].read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) - 100])  # inside the tensor data: torch knows how much is missing
    msg = _msg(path)
    assert f"truncated: {len(data) - 100} bytes on disk, at least" in msg and "more expected" in msg
    for n in (5, 15, 40, 300):  # inside the pickled header
        path.write_bytes(data[:n])
        msg = _msg(path)
        assert "truncated or incomplete" in msg and f"after {n} bytes" in msg, (n, msg)
        assert "run code" not in msg


def test_empty_and_foreign_files(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    assert "empty file (0 bytes)" in _msg(tmp_path / "empty.pth")
    np.savez(tmp_path / "arrays.npz", a=np.ones(3))
    msg = _msg(tmp_path / "arrays.npz")
    assert "a zip archive but not a PyTorch checkpoint" in msg and "a.npy" in msg
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump({"a": 1}, fh, protocol=2)
    assert "a Python pickle without PyTorch's magic number" in _msg(tmp_path / "plain.pkl")


def test_code_needing_pickles_are_still_refused(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")
    assert "unpickling it would need to run code" in _msg(tmp_path / "module.pth")
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "module_legacy.pth", _use_new_zipfile_serialization=False)
    assert "unpickling it would need to run code" in _msg(tmp_path / "module_legacy.pth")


def test_loads_are_weights_only(state_file, monkeypatch):
    import crosspoint.models.checkpoint as ck

    seen = []
    real = torch.load

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ck.torch, "load", spy)
    read_checkpoint(state_file[0])
    load_point_encoder(state_file[1])
    ck.checkpoint_background(state_file[0])
    assert seen and all(w is True for w in seen)


def test_long_messages_end_at_a_sentence():
    from crosspoint.models.checkpoint import _sentences

    text = ("PytorchStreamReader failed reading zip archive: failed finding central directory. This is an "
            "internal miniz error. If you are seeing this error, there is a high likelihood that your checkpoint "
            "file is corrupted or truncated. " * 3)
    out = _sentences(text, limit=200)
    assert out.endswith(".") and len(out) <= 200 and out.count(".") >= 1
    assert _sentences("short message", limit=200) == "short message"


def test_non_finite_weights_are_refused_with_their_names(state_file, tmp_path):
    """A diverged run's checkpoint (or bits flipped inside a tensor) loads byte-wise but computes NaN:
    the loader names the tensors instead of letting NaN features reach an SVM or a UMAP."""
    assert load_point_encoder(state_file[0]) is not None
    sd = torch.load(state_file[0], weights_only=True)
    name_nan, name_inf = [k for k, v in sd.items() if v.is_floating_point() and v.numel() > 1][1:3]
    sd[name_nan].view(-1)[:2] = float("nan")
    sd[name_inf].view(-1)[0] = float("-inf")
    bad = tmp_path / "diverged.pth"
    torch.save(sd, bad)
    with pytest.raises(CheckpointError) as err:
        load_point_encoder(bad)
    msg = str(err.value)
    assert msg.startswith(str(bad)) and "non-finite weights" in msg
    assert f"{name_nan} (2 of {sd[name_nan].numel()})" in msg and f"{name_inf} (1 of " in msg


def test_non_finite_dense_heads_are_refused():
    from crosspoint.analysis.session import _load_dense_heads
    from crosspoint.models.dense import DenseHeads

    config = {"point_dim": 64, "image_arch": "resnet18", "dim": 8, "hidden": 16}
    heads = DenseHeads(**config)
    sd = {k: v.clone() for k, v in heads.state_dict().items()}
    name = next(k for k, v in sd.items() if v.is_floating_point())
    sd[name].view(-1)[0] = float("nan")
    with pytest.raises(CheckpointError, match=f"^bundle.pt: its dense heads has non-finite weights.*{name}"):
        _load_dense_heads({"dense_heads": {"config": config, "state_dict": sd}}, "bundle.pt")
    sd[name].view(-1)[0] = 0.0
    assert _load_dense_heads({"dense_heads": {"config": config, "state_dict": sd}}) is not None


def _load_finite(path):
    model = load_point_encoder(path)
    assert all(torch.isfinite(t).all() for t in model.state_dict().values() if t.is_floating_point())


def test_damaged_checkpoints_load_or_raise_checkpoint_error(state_file, tmp_path):
    """Seeded damage to a zip and a legacy checkpoint (truncation, flipped bytes anywhere, in the
    pickle at the start, in the zip directory at the end): each one loads or raises CheckpointError,
    never another exception; a flip that leaves a tensor NaN is caught by the finiteness check."""
    import random

    from damage_support import Tally

    r = random.Random(20261203)
    tally = Tally(_load_finite, CheckpointError)
    for src in state_file:
        data = src.read_bytes()
        for i in range(40):
            d = bytearray(data)
            kind = ("truncate", "anywhere", "head", "tail")[i % 4]
            if kind == "truncate":
                d = d[: r.randrange(len(d))]
            else:
                for _ in range(r.randint(1, 6)):
                    span = {"anywhere": len(d), "head": min(len(d), 2000), "tail": min(len(d), 3000)}[kind]
                    j = r.randrange(span)
                    d[len(d) - 1 - j if kind == "tail" else j] = r.randrange(256)
            path = tmp_path / f"{src.stem}-{i}.pth"
            path.write_bytes(bytes(d))
            tally.add(path, f"({kind})")
    tally.check(min_refused=20)
