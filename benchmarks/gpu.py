"""lmforge beside Hugging Face `transformers` on one GPU: training steps, generation, and the matmul ceiling.

    python benchmarks/gpu.py train    --device cuda --out train.json      # GPT-2 small + BERT-base steps
    python benchmarks/gpu.py generate --device cuda --out generate.json   # greedy, batch 1 and 32
    python benchmarks/gpu.py train --device cpu --tiny --out /tmp/t.json  # the same code, tiny, on a CPU

Run by `benchmarks/gpu.sh` on a lent GPU machine; `benchmarks/gpu_report.py` turns the JSON files into the
"GPU" section of RESULTS.md. What is measured:

- peak: an 8192³ bf16 `torch.mm`, the median of 10 after 3 warm-ups — the measured ceiling that MFU is
  also reported against, beside the spec sheet's dense bf16 figure (989 TFLOP/s for the H100/H200 SXM).
- train, decoder: GPT-2 small (12 layers, d 768, 12 heads, context 1024, vocab 50,257, dropout 0), HF's
  `GPT2LMHeadModel` built first and its weights converted into lmforge (`convert.from_hf`), so both start
  from the same numbers. One plain step each: bf16 autocast forward, `F.cross_entropy` on the fp32
  logits, backward, fused AdamW. HF eager and lmforge eager alternate on the same random batches; then
  lmforge under `torch.compile` (its first step, the compilation, reported apart). FLOPs per token
  6N + 12·L·T·d (N without the position table), as nanoGPT / PaLM count them.
- train, encoder: BERT-base (`BertForMaskedLM`, 12 × 768, sequence 512, 15% masked), bf16 autocast,
  eager. HF computes the MLM head at every position; lmforge's MLM objective only at the masked ones
  (`logits_where=`), which gives the same loss (first-step losses compared).
- generate: GPT-2-small-shaped random weights (initializer range 0.2, so that next-token logits rarely
  tie), fp32 with TF32 off; lmforge `generate` vs HF `generate`, greedy, 128 new tokens, batch 1 (32-token
  prompt) and batch 32 (8–32-token prompts, left-padded); tokens compared on every repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
# benchmarks/tokenizers.py would shadow HF's `tokenizers` (which transformers imports): drop this folder
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent / "src"))

import transformers  # noqa: E402

from lmforge.model import load  # noqa: E402
from lmforge.model.convert import from_hf  # noqa: E402

transformers.logging.set_verbosity_error()
SPEC_BF16_TFLOPS = 989.0  # H100/H200 SXM dense bf16, the vendor's datasheet


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict:
    info = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info |= {
            "gpu": props.name,
            "gpu_memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return info


def matmul_tflops(device: torch.device, n: int, repeats: int = 10) -> float:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    times = []
    for i in range(repeats + 3):
        sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        if i >= 3:
            times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e12


def _step(model, optimizer, x, y, device, *, hf: bool, compiled=None) -> tuple[float, float]:
    """One training step; (seconds, loss). `compiled` is the torch.compile'd module to call, if any."""
    sync(device)
    start = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        forward = compiled if compiled is not None else model
        logits = forward(input_ids=x).logits if hf else forward(x).logits
    loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    sync(device)
    return time.perf_counter() - start, loss.item()


def _adamw(model, device):
    return torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")


def _same_weights(hf, where: Path, device: torch.device):
    """The HF model and lmforge's conversion of its initial weights, both on `device` in train mode, with
    an AdamW each: (hf, lmforge, {"hf": optimizer, "lmforge": optimizer})."""
    hf.save_pretrained(where / "hf")
    from_hf(where / "hf", where / "lmforge")
    ours = load(where / "lmforge").to(device).train()
    hf = hf.to(device).train()
    return hf, ours, {"hf": _adamw(hf, device), "lmforge": _adamw(ours, device)}


def bench_decoder(device: torch.device, shape: dict, steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=shape["layers"], n_embd=shape["width"], n_head=shape["heads"], n_positions=shape["context"],
        vocab_size=shape["vocab"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
    )  # fmt: skip
    hf, ours, optimizers = _same_weights(transformers.GPT2LMHeadModel(config), workdir / "gpt", device)
    batch, context, vocab = shape["batch"], shape["context"], shape["vocab"]
    generator = torch.Generator(device=device).manual_seed(1)

    def batch_of_ids():
        block = torch.randint(0, vocab, (batch, context + 1), device=device, generator=generator)
        return block[:, :-1].contiguous(), block[:, 1:].contiguous()

    times: dict[str, list[float]] = {"hf": [], "lmforge": []}
    first: dict[str, float] = {}
    for step in range(steps + 2):  # two warm-up steps (allocator, cuBLAS heuristics), not counted
        x, y = batch_of_ids()
        order = [("hf", hf, True), ("lmforge", ours, False)]
        for name, model, is_hf in order if step % 2 == 0 else order[::-1]:
            seconds, loss = _step(model, optimizers[name], x, y, device, hf=is_hf)
            first.setdefault(name, loss)
            if step >= 2:
                times[name].append(seconds)
        print(
            f"  decoder step {step + 1}: hf {times['hf'][-1:]}, lmforge {times['lmforge'][-1:]}", flush=True
        )

    compiled = torch.compile(ours)
    x, y = batch_of_ids()
    compile_seconds, _ = _step(ours, optimizers["lmforge"], x, y, device, hf=False, compiled=compiled)
    print(f"  lmforge torch.compile: first step {compile_seconds:.1f}s", flush=True)
    times["lmforge_compiled"] = []
    for _ in range(steps + 1):
        x, y = batch_of_ids()
        seconds, _ = _step(ours, optimizers["lmforge"], x, y, device, hf=False, compiled=compiled)
        times["lmforge_compiled"].append(seconds)
    times["lmforge_compiled"] = times["lmforge_compiled"][1:]

    tokens = batch * context
    n_without_positions = sum(p.numel() for p in ours.parameters()) - context * shape["width"]
    flops_per_token = 6 * n_without_positions + 12 * shape["layers"] * context * shape["width"]
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "shape": shape,
        "parameters": sum(p.numel() for p in ours.parameters()),
        "median_s": median,
        "tokens_per_s": {name: tokens / seconds for name, seconds in median.items()},
        "steps_timed": {name: len(values) for name, values in times.items()},
        "compile_first_step_s": compile_seconds,
        "first_loss": first,
        "flops_per_token": flops_per_token,
    }


def bench_encoder(device: torch.device, shape: dict, steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=shape["vocab"], hidden_size=shape["width"], num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"], intermediate_size=4 * shape["width"],
        max_position_embeddings=shape["context"], hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    hf, ours, optimizers = _same_weights(transformers.BertForMaskedLM(config), workdir / "bert", device)
    batch, context, vocab = shape["batch"], shape["context"], shape["vocab"]
    generator = torch.Generator(device=device).manual_seed(2)
    mask_id = 103 if vocab > 103 else 4
    times: dict[str, list[float]] = {"hf": [], "lmforge": []}
    first: dict[str, float] = {}
    for step in range(steps + 2):
        labels_full = torch.randint(999 if vocab > 999 else 5, vocab, (batch, context), device=device,
                                    generator=generator)  # fmt: skip
        masked = torch.rand(labels_full.shape, device=device, generator=generator) < 0.15
        inputs = labels_full.masked_fill(masked, mask_id)
        labels = labels_full.masked_fill(~masked, -100)
        order = [("hf", hf), ("lmforge", ours)]
        for name, model in order if step % 2 == 0 else order[::-1]:
            sync(device)
            start = time.perf_counter()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                if name == "hf":
                    logits = model(input_ids=inputs).logits  # (B, T, V) at every position
                else:
                    logits = model(inputs, logits_where=masked).logits  # (N, V): the masked positions only
            if name == "hf":
                loss = F.cross_entropy(logits.float().view(-1, vocab), labels.view(-1), ignore_index=-100)
            else:
                loss = F.cross_entropy(logits.float(), labels_full[masked])
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            sync(device)
            first.setdefault(name, loss.item())
            if step >= 2:
                times[name].append(time.perf_counter() - start)
        print(
            f"  encoder step {step + 1}: hf {times['hf'][-1:]}, lmforge {times['lmforge'][-1:]}", flush=True
        )
    median = {name: statistics.median(values) for name, values in times.items()}
    return {
        "shape": shape,
        "median_s": median,
        "tokens_per_s": {name: batch * context / seconds for name, seconds in median.items()},
        "steps_timed": {name: len(values) for name, values in times.items()},
        "first_loss": first,
    }


def run_train(args, device: torch.device) -> dict:
    if args.tiny:
        gpt = dict(layers=2, width=64, heads=4, context=64, vocab=512, batch=2)
        bert = dict(layers=2, width=64, heads=4, context=64, vocab=512, batch=2)
        n, steps = 256, 2
    else:
        gpt = dict(layers=12, width=768, heads=12, context=1024, vocab=50257, batch=args.batch)
        bert = dict(layers=12, width=768, heads=12, context=512, vocab=30522, batch=args.batch)
        n, steps = 8192, args.steps
    result = {"environment": environment(device)}
    result["matmul_tflops_before"] = matmul_tflops(device, n)
    print(f"matmul {n}³: {result['matmul_tflops_before']:.3f} TFLOP/s", flush=True)
    with tempfile.TemporaryDirectory() as directory:
        result["decoder"] = bench_decoder(device, gpt, steps, Path(directory))
        _write(args.out, result)  # what is done survives a later step that runs out of time
        result["encoder"] = bench_encoder(device, bert, steps, Path(directory))
    result["matmul_tflops_after"] = matmul_tflops(device, n)
    measured = statistics.mean([result["matmul_tflops_before"], result["matmul_tflops_after"]])
    decoder = result["decoder"]
    decoder["mfu_spec"] = {
        k: v * decoder["flops_per_token"] / (SPEC_BF16_TFLOPS * 1e12)
        for k, v in decoder["tokens_per_s"].items()
    }
    decoder["mfu_measured_peak"] = {
        k: v * decoder["flops_per_token"] / (measured * 1e12) for k, v in decoder["tokens_per_s"].items()
    }
    return result


def run_generate(args, device: torch.device) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    from lmforge.generate import GenerationConfig, generate

    shape = dict(layers=2, width=64, heads=4, context=256, vocab=512) if args.tiny else dict(
        layers=12, width=768, heads=12, context=1024, vocab=50257
    )  # fmt: skip
    new_tokens = 16 if args.tiny else args.new_tokens
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=shape["vocab"], n_positions=shape["context"], n_embd=shape["width"], n_layer=shape["layers"],
        n_head=shape["heads"], initializer_range=0.2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        eos_token_id=shape["vocab"] - 1, bos_token_id=shape["vocab"] - 1,
    )  # fmt: skip
    result: dict = {"environment": environment(device), "shape": shape, "new_tokens": new_tokens}
    with tempfile.TemporaryDirectory() as directory:
        hf = transformers.GPT2LMHeadModel(config).eval()
        hf.save_pretrained(Path(directory) / "hf")
        from_hf(Path(directory) / "hf", Path(directory) / "lm")
        ours = load(Path(directory) / "lm").to(device).eval()
    hf = hf.to(device)
    ours_config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=[])
    generator = torch.Generator().manual_seed(1)
    prompt_lengths = {1: (32, 32)}  # larger batches: 8-32-token prompts, left-padded
    for batch in [int(b) for b in args.batches.split(",")]:
        low, high = prompt_lengths.get(batch, (8, 32))
        timings: dict[str, list[float]] = {"hf": [], "lmforge": []}
        identical = 0
        for rep in range(args.reps + 1):  # repetition 0 warms up
            lengths = torch.randint(low, high + 1, (batch,), generator=generator).tolist()
            ids = torch.zeros(batch, max(lengths), dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, n in enumerate(lengths):
                ids[row, -n:] = torch.randint(0, shape["vocab"] - 1, (n,), generator=generator)
                mask[row, -n:] = 1
            ids, mask = ids.to(device), mask.to(device)
            mask_arg = None if batch == 1 else mask
            sync(device)
            start = time.perf_counter()
            ours_out = generate(ours, ids, ours_config, attention_mask=mask_arg).sequences
            sync(device)
            ours_s = time.perf_counter() - start
            with torch.no_grad():
                start = time.perf_counter()
                hf_out = hf.generate(
                    input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                    do_sample=False, pad_token_id=0, eos_token_id=None,
                )  # fmt: skip
                sync(device)
                hf_s = time.perf_counter() - start
            same = ours_out.tolist() == hf_out.tolist()
            identical += same
            rows = sum(a == b for a, b in zip(ours_out.tolist(), hf_out.tolist(), strict=True))
            rows_identical = result.setdefault(f"rows_identical_{batch}", [])
            rows_identical.append(rows)
            if (
                not same
            ):  # where the two parted: an exact tie of two logits (float noise), or a real difference?
                ties = result.setdefault(f"divergence_is_a_tie_{batch}", [])
                ties.append(
                    _generate_benchmark().first_divergence_is_a_tie(ours, ids, mask_arg, ours_out, hf_out)
                )
            if rep:
                timings["lmforge"].append(ours_s)
                timings["hf"].append(hf_s)
            print(
                f"  generate batch {batch} rep {rep}: lmforge {ours_s:.2f}s, hf {hf_s:.2f}s, same {same}",
                flush=True,
            )
        result[f"batch_{batch}"] = {
            "identical_repetitions": identical,
            "repetitions": args.reps + 1,
            "median_s": {k: statistics.median(v) for k, v in timings.items()},
            "tokens_per_s": {k: batch * new_tokens / statistics.median(v) for k, v in timings.items()},
            "ms_per_step": {k: statistics.median(v) / new_tokens * 1e3 for k, v in timings.items()},
        }
    return result


def _generate_benchmark():
    """benchmarks/generate.py's helpers (the tie check), imported by path."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate_benchmark", HERE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: str, result: dict) -> None:
    target = Path(path)
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, target)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["train", "generate"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--tiny", action="store_true", help="tiny shapes: a dry run of the code on any device"
    )
    parser.add_argument("--out", required=True, help="JSON file for the figures")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per model")
    parser.add_argument("--batch", type=int, default=16, help="sequences per training step")
    parser.add_argument("--reps", type=int, default=3, help="timed generation repetitions (after a warm-up)")
    parser.add_argument("--batches", default="1,32", help="generation batch sizes")
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu.py: --device cuda but this PyTorch sees no CUDA GPU", file=sys.stderr)
        return 2
    result = run_train(args, device) if args.what == "train" else run_generate(args, device)
    _write(args.out, result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
