"""The model, generation and checkpoints on a CUDA GPU agree with the CPU (`pytest -m cuda`, on a GPU machine).

- forward + backward of every architecture (GPT-2-like, Llama-like, BERT-like with padding, the
  encoder-decoder) on CUDA in fp32 equals the CPU's within float tolerance, and under bf16 autocast stays
  within bf16's precision of the CPU's fp32 numbers;
- greedy generation on CUDA gives the CPU's tokens (batched, left-padded prompts, KV cache);
- a training checkpoint saved on CUDA resumes on the CPU, and one saved on the CPU resumes on CUDA, and the
  resumed run continues where the uninterrupted one goes (the same losses within float tolerance: the two
  devices' kernels sum in different orders).

Every test here is also run on the CPU as a stand-in device (`LMFORGE_TEST_DEVICE=cpu pytest -m cuda
tests/test_cuda.py`), which is how the file is checked on machines without a GPU before a GPU run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from lmforge.data.clm import CLMObjective
from lmforge.data.shards import ByteEncoder, TokenShards, prepare_shards
from lmforge.generate import GenerationConfig, generate
from lmforge.model import build_model, preset
from lmforge.train.loop import TrainConfig, train

DEVICE = os.environ.get("LMFORGE_TEST_DEVICE", "cuda")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(),
        reason="needs a CUDA GPU (or LMFORGE_TEST_DEVICE=cpu)",
    ),
]

TINY = dict(vocab_size=512, d_model=64, n_layers=2, n_heads=4, d_ff=256, max_positions=64)
ARCHITECTURES = {
    "gpt": lambda: preset("gpt-tiny", **TINY),
    "llama": lambda: preset("llama-small", **TINY, n_kv_heads=2),
    "bert": lambda: preset("bert-tiny", **TINY),
    "transformer": lambda: preset("transformer-tiny", **TINY, n_decoder_layers=2),
}


@pytest.fixture(autouse=True)
def exact_fp32_matmuls():
    """TF32 would round fp32 products to 10 mantissa bits on the GPU; these tests compare true fp32."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    yield
    torch.set_float32_matmul_precision(before)


def _inputs(architecture: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 512, (3, 24), generator=generator)
    inputs = {"input_ids": ids}
    if architecture in ("bert", "transformer"):
        mask = torch.ones_like(ids)
        mask[1, 17:] = 0  # padding on the right of one row
        mask[2, 9:] = 0
        inputs["attention_mask"] = mask
    if architecture == "transformer":
        inputs["decoder_input_ids"] = torch.randint(5, 512, (3, 11), generator=generator)
    return inputs


def _loss_and_grads(model, inputs, device, bf16: bool):
    model = model.to(device).train()
    model.zero_grad(set_to_none=True)
    moved = {k: v.to(device) for k, v in inputs.items()}
    with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(**moved).logits
    target = torch.roll(moved.get("decoder_input_ids", moved["input_ids"]), -1, dims=1)
    loss = torch.nn.functional.cross_entropy(logits.float().flatten(0, 1), target.flatten())
    loss.backward()
    grads = {n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None}
    return logits.detach().float().cpu(), float(loss.detach()), grads


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_forward_backward_on_cuda_equals_cpu(architecture):
    torch.manual_seed(0)
    model = build_model(ARCHITECTURES[architecture]())  # dropout 0: the same computation on both devices
    inputs = _inputs(architecture)
    cpu_logits, cpu_loss, cpu_grads = _loss_and_grads(model, inputs, "cpu", bf16=False)
    gpu_logits, gpu_loss, gpu_grads = _loss_and_grads(model, inputs, DEVICE, bf16=False)
    assert torch.allclose(gpu_logits, cpu_logits, atol=1e-4, rtol=1e-4), (gpu_logits - cpu_logits).abs().max()
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-5)
    assert cpu_grads.keys() == gpu_grads.keys() and cpu_grads
    for name, grad in cpu_grads.items():
        scale = grad.abs().max().item() + 1e-8
        assert (gpu_grads[name] - grad).abs().max().item() <= 1e-3 * scale, name

    bf16_logits, bf16_loss, bf16_grads = _loss_and_grads(model, inputs, DEVICE, bf16=True)
    # bf16 keeps 8 bits of mantissa: products carry ~0.4% relative error, summed over a few layers
    assert bf16_loss == pytest.approx(cpu_loss, rel=2e-2)
    assert (bf16_logits - cpu_logits).abs().max().item() <= 0.05 * cpu_logits.abs().max().item()
    for name, grad in cpu_grads.items():
        cosine = torch.nn.functional.cosine_similarity(bf16_grads[name].flatten(), grad.flatten(), dim=0)
        assert cosine > 0.98, (name, float(cosine))


def _decisive_decoder():
    """A random GPT with weights large enough that its next-token logits rarely tie: greedy decoding then
    has one right answer that both devices must find."""
    torch.manual_seed(1)
    model = build_model(preset("gpt-tiny", **TINY))
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.normal_(0, 0.2)
    return model.eval()


def test_greedy_generation_on_cuda_gives_the_cpu_tokens():
    model = _decisive_decoder()
    generator = torch.Generator().manual_seed(2)
    lengths = [12, 5, 9, 12]
    ids = torch.zeros(len(lengths), max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, n in enumerate(lengths):  # left padding, as batched generation uses
        ids[row, -n:] = torch.randint(5, 512, (n,), generator=generator)
        mask[row, -n:] = 1
    config = GenerationConfig(max_new_tokens=40, temperature=0, eos_token_id=[])
    on_cpu = generate(model, ids, config, attention_mask=mask).sequences
    on_gpu = generate(model.to(DEVICE), ids.to(DEVICE), config, attention_mask=mask.to(DEVICE)).sequences
    assert on_gpu.device.type == torch.device(DEVICE).type
    assert on_gpu.cpu().tolist() == on_cpu.tolist()


@pytest.fixture(scope="module")
def random_shards(tmp_path_factory):
    """Byte shards of a synthetic, learnable text (no ../shared/data on a GPU machine)."""
    root = tmp_path_factory.mktemp("cuda-shards")
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far", "away", "home"]
    text = " ".join(rng.choice(words, size=40_000)) + "\n"
    (root / "corpus.txt").write_text(text)
    prepare_shards([root / "corpus.txt"], root / "shards", ByteEncoder(), val_fraction=0.1)
    return TokenShards(root / "shards", "train"), TokenShards(root / "shards", "val")


def _run(shards, out, device: str, *, steps: int, stop_after: int | None = None):
    torch.manual_seed(3)
    model = build_model(preset("gpt-tiny", **{**TINY, "vocab_size": 257}))
    objective = CLMObjective(*shards, block_size=32, seed=5)
    config = TrainConfig(
        max_steps=steps, stop_after=stop_after, batch_size=8, lr=3e-3, warmup_steps=2, eval_every=0,
        eval_batches=2, log_every=1, device=device, precision="fp32", progress=False, tensorboard=False,
    )  # fmt: skip
    return train(model, objective, config, out)


@pytest.mark.parametrize(
    "first, second", [(DEVICE, "cpu"), ("cpu", DEVICE)], ids=["gpu-to-cpu", "cpu-to-gpu"]
)
def test_checkpoint_moves_between_cuda_and_cpu(random_shards, tmp_path, first, second):
    straight = _run(random_shards, tmp_path / "straight", first, steps=12)
    paused = _run(random_shards, tmp_path / "moved", first, steps=12, stop_after=6)
    assert paused.stopped_by == "stop_after" and paused.steps == 6
    resumed = _run(random_shards, tmp_path / "moved", second, steps=12)
    assert resumed.resumed_from == 6 and resumed.steps == 12
    assert next(resumed.model.parameters()).device.type == torch.device(second).type
    expected = [loss for step, loss in straight.losses if step > 6]
    got = [loss for _, loss in resumed.losses]
    assert got == pytest.approx(expected, rel=1e-4)
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.allclose(a.cpu(), b.cpu(), atol=1e-4, rtol=1e-3), name
