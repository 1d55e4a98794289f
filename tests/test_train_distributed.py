"""Two processes on CPU (gloo over loopback) give the losses of one process with the same global batch.

Each test launches `torchrun --standalone --nproc_per_node 2` on tests/dist_worker.py, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist

from train_helpers import NGramMLP, one_torch_thread, shakespeare_shards  # noqa: F401

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

pytestmark = pytest.mark.skipif(not dist.is_gloo_available(), reason="this PyTorch has no gloo backend")


@pytest.fixture(scope="module")
def shards(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    shakespeare_shards(shared_data, root, limit=60_000)
    return root / "shards"


@pytest.fixture(scope="module")
def two_ranks(shards, tmp_path_factory) -> Path:
    """torchrun with 2 ranks x 4 sequences per micro-batch, DDP then FSDP2, in one launch."""
    out = tmp_path_factory.mktemp("two")
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{HERE}", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command += [str(HERE / "dist_worker.py"), str(shards), str(out), "4", "ddp", "fsdp"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def single(shards, tmp_path_factory) -> dict:
    """One process (here, in-process) with 8 sequences per micro-batch: the same global batch."""
    import dist_worker

    return dist_worker.run(shards, tmp_path_factory.mktemp("single"), "ddp", batch_size=8)


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_ranks_match_one_process(two_ranks, single, mode):
    double = json.loads((two_ranks / mode / "result.json").read_text())
    assert single["world_size"] == 1 and double["world_size"] == 2
    steps = [s for s, _ in single["losses"]]
    assert steps == [s for s, _ in double["losses"]] == list(range(1, 7))
    for (_, one), (_, two) in zip(single["losses"], double["losses"], strict=True):
        assert two == pytest.approx(one, rel=1e-4)  # same samples, summed in another order
    assert single["losses"][-1][1] < single["losses"][0][1] - 0.1  # and it learns
    assert double["metrics"]["val_loss"] == pytest.approx(single["metrics"]["val_loss"], rel=1e-4)
    # checkpoints hold the plain module's names, whatever wrapped it
    assert double["parameter_names"] == sorted(NGramMLP().state_dict())
    assert double["optimizer_state_entries"] == len(list(NGramMLP().parameters()))
