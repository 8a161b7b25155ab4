"""benchmarks/gpu_check.py runs on the CPU at small sizes, so the prepared GPU check cannot rot.

Only what the script computes is checked (every row present, the parity and functional rows pass);
its timings on a shared CPU are not asserted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

EXPECTED = {
    "parity": ["DGCNN fp32 vs float64", "DGCNN bf16 vs float64"],
    "speed": ["DGCNN train step fp32", "DGCNN train step bf16", "paper train step fp32", "paper train step bf16",
              "inference 1x512 fp32", "inference 1x512 bf16"],
    "analyses": ["segment (k-means", "segment (head", "point_heatmap", "embed_clouds"],
    "distributed": ["torchrun --nproc_per_node=1 crosspoint pretrain", "torchrun 1 rank: gloo group"],
    "data": ["one sample per core", "DataLoader, 2 workers"],
}


def test_gpu_check_runs_on_the_cpu(tmp_path):
    out = tmp_path / "rows.json"
    env = dict(os.environ, OMP_NUM_THREADS="2", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--quick",
                        "--threads", "2", "--json", str(out)], cwd=str(tmp_path), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    table = r.stdout
    res = json.loads(out.read_text())
    rows = res["rows"]
    assert res["device"] == "cpu" and res["quick"] is True
    for section, items in EXPECTED.items():
        for item in items:
            hits = [x for x in rows if x["section"] == section and x["item"].startswith(item)]
            assert len(hits) == 1, (section, item, [x["item"] for x in rows])
            assert hits[0]["item"] in table  # printed as one table
            if hits[0]["kind"] == "check":
                assert hits[0]["status"] == "PASS", hits[0]
    assert len(rows) == sum(len(v) for v in EXPECTED.values())
    # parity: measured numbers, the fast path's errors of the expected order
    for x in rows:
        if x["section"] == "parity":
            d = x["data"]
            assert 0 < d["fast_feature"] and 0 < d["ref_feature"]
            bound = 1e-4 if "fp32" in x["item"] else 0.1
            assert d["fast_feature"] < bound, x
    # speed rows carry their figures; at the quick sizes they give no verdict (and none is asserted)
    for x in rows:
        if x["kind"] == "speed":
            assert x["status"] == "n/a (quick)"
    assert "rows: 0 check(s) failed" in table


def test_cuda_blocks_take_the_available_memory(monkeypatch):
    """On CUDA the kNN and gather blocks grow to a share of the free memory, so the paper's batch
    (40 clouds x 2048 points, k 15, up to 256 channels) runs in one piece; the CPU keeps its bounds."""
    import torch

    from crosspoint.models import ops

    assert ops.block_budget("cpu", 123) == 123
    assert ops._chunk_rows(15, 256, 4) == ops._chunk_rows(15, 256, 4, torch.device("cpu"))
    monkeypatch.setattr(ops, "cuda_available_bytes", lambda device: 120 * 2**30)
    budget = ops.block_budget("cuda", ops.KNN_BLOCK_BYTES)
    assert budget == int(120 * 2**30 * ops.CUDA_BLOCK_FRACTION)
    b, n, k = 40, 2048, 15
    assert budget // (b * n * 4) >= n  # knn: all query rows in one block
    assert ops._chunk_rows(k, 256, 4, torch.device("cuda")) >= b * n  # neighbour max: one gather
    assert ops._chunk_rows(2, 256, 8, torch.device("cuda")) >= b * n  # its backward: one scatter
    monkeypatch.setattr(ops, "cuda_available_bytes", lambda device: 64 * 2**20)  # nearly full: the CPU bounds
    assert ops.block_budget("cuda", ops.KNN_BLOCK_BYTES) == ops.KNN_BLOCK_BYTES
