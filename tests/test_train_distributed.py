"""Two processes on CPU (gloo over loopback) give the losses of one process with the same global batch.

The tests launch `torchrun --standalone` on tests/dist_worker.py, as a user would: once with two ranks
(DDP, FSDP2, then `lmforge pretrain --train.parallel=fsdp`) and once with one rank.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
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


def _torchrun(shards: Path, out: Path, processes: int, batch_size: int, lmforge: list[str] = ()) -> Path:
    """torchrun with `processes` ranks x `batch_size` sequences per micro-batch: DDP, FSDP2 and the plan,
    then the `lmforge` command line if any, one launch."""
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{HERE}", OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command += [str(HERE / "dist_worker.py"), str(shards), str(out), str(batch_size), "ddp", "fsdp", "plan"]
    command += ["--", *lmforge] if lmforge else []
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _fsdp_pretrain(text: Path, out: Path) -> list[str]:
    """`lmforge pretrain` of a one-layer char GPT for 3 steps under FSDP2."""
    command = ["pretrain", "--config", str(HERE.parent / "configs" / "gpt-char-shakespeare.yaml")]
    command += [f"--data.files=[{text}]", f"--out={out}", "--model.preset=gpt-tiny", "--set", "block_size=32"]
    command += ["--model.changes={n_layers: 1, d_model: 32, n_heads: 2, d_ff: 64}", "--train.parallel=fsdp"]
    command += ["--train.max_steps=3", "--train.eval_batches=1", "--train.batch_size=2", "--train.device=cpu"]
    command += ["--train.progress=false", "--train.tensorboard=false"]
    return command + ["--set", "fit_steps_to_minutes=false"]


@pytest.fixture(scope="module")
def two_ranks(shards, shared_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("two")
    text = out / "tiny.txt"
    text.write_bytes((shared_data / "tinyshakespeare" / "input.txt").read_bytes()[:30_000])
    return _torchrun(shards, out, 2, 4, lmforge=_fsdp_pretrain(text, out / "pretrain"))


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


def test_every_rank_takes_rank_0s_precision_and_fitted_steps(two_ranks):
    """`plan_training` under torchrun: rank 1 asked for bf16 and twice the minutes, and still runs what rank
    0 measured (ranks that ran different step counts would hang in the gradient all-reduce)."""
    plans = [json.loads((two_ranks / "plan" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert plans[0] == plans[1]
    assert plans[0]["world_size"] == 2 and plans[0]["precision"] == "fp32" and plans[0]["max_steps"] >= 10


@pytest.fixture(scope="module")
def one_rank(shards, tmp_path_factory) -> Path:
    return _torchrun(shards, tmp_path_factory.mktemp("one"), 1, 8)


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_one_process_under_torchrun_joins_the_group(one_rank, single, mode):
    """One GPU is a common machine: `torchrun --nproc_per_node 1` must still run the DDP / FSDP2 path (the
    wrappers, the collectives, the sharded checkpoint) with its backend, and train as one plain process."""
    record = json.loads((one_rank / mode / "result.json").read_text())
    assert record["world_size"] == 1 and record["backend"] == "gloo"
    assert single["backend"] is None
    for (_, plain), (_, launched) in zip(single["losses"], record["losses"], strict=True):
        assert launched == pytest.approx(plain, rel=1e-5)
    assert record["parameter_names"] == sorted(NGramMLP().state_dict())


def test_pretrain_under_fsdp_saves_a_whole_model(two_ranks):
    """FSDP2 leaves each rank holding a shard of every parameter: the model directory `pretrain` writes at
    the end must still hold the whole model (gathered), equal to the last checkpoint's weights."""
    from lmforge.model import load
    from lmforge.train.state import latest_checkpoint, load_checkpoint

    out = two_ranks / "pretrain"
    assert "FSDP2 over 2 process(es), backend gloo" in (two_ranks / "lmforge-rank0.out").read_text()
    # rank 0 reports the run once; the other rank trained beside it in silence
    assert "model directory:" in (two_ranks / "lmforge-rank0.out").read_text()
    assert "model directory:" not in (two_ranks / "lmforge-rank1.out").read_text()
    saved = load(out / "model").state_dict()
    final = load_checkpoint(latest_checkpoint(out / "checkpoints"))["model"]
    assert set(final) <= set(saved)
    for name, tensor in final.items():
        assert torch.equal(saved[name], tensor), name
