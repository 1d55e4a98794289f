"""Generation speed: lmforge `generate` vs Hugging Face `generate`, same weights, identical tokens.

The GPT config of the transformer benchmark (6 layers, d 384, 6 heads, context 256, vocab 8192), random
weights; a 32-token prompt and 200 new greedy tokens; a fresh prompt every repetition (no caching of
results or prefixes across calls); lmforge and HF interleaved; medians of the repetitions. Reported: new
tokens/s at batch 1 and at batch 16 (prompts of 8–32 tokens, left-padded), time to first token and the
per-token latency after it. Writes its section of benchmarks/RESULTS.md.

    python benchmarks/generate.py [--reps 5] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
# benchmarks/tokenizers.py would shadow HF's `tokenizers` (which transformers imports): drop this folder
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))  # last: for common.py, after the installed packages

from common import write_section  # noqa: E402

SECTION = "## Generation (`benchmarks/generate.py`)"


def build_pair(tmp: Path):
    import transformers

    from lmforge.model import load
    from lmforge.model.convert import from_hf

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=8192,
        n_positions=256,
        n_embd=384,
        n_layer=6,
        n_head=6,
        initializer_range=0.2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        eos_token_id=8191,
        bos_token_id=8191,
    )
    hf_model = transformers.GPT2LMHeadModel(config).eval()
    hf_model.save_pretrained(tmp / "hf")
    from_hf(tmp / "hf", tmp / "lmforge")
    return hf_model, load(tmp / "lmforge").eval()


def prompts(generator: torch.Generator, batch: int, low: int, high: int) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.randint(low, high + 1, (batch,), generator=generator).tolist()
    width = max(lengths)
    ids = torch.zeros(batch, width, dtype=torch.long)
    mask = torch.zeros(batch, width, dtype=torch.long)
    for row, n in enumerate(lengths):
        ids[row, width - n :] = torch.randint(0, 8191, (n,), generator=generator)
        mask[row, width - n :] = 1
    return ids, mask


def time_lmforge(model, ids, mask, new_tokens: int) -> tuple[torch.Tensor, float, float]:
    from lmforge.generate import GenerationConfig, generate

    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=[])
    start = time.perf_counter()
    first = generate(model, ids, config.replace(max_new_tokens=1), attention_mask=mask)
    ttft = time.perf_counter() - start
    start = time.perf_counter()
    out = generate(model, ids, config, attention_mask=mask)
    total = time.perf_counter() - start
    assert first.sequences.shape[1] == ids.shape[1] + 1
    return out.sequences, ttft, total


def time_hf(model, ids, mask, new_tokens: int) -> tuple[torch.Tensor, float, float]:
    settings = dict(do_sample=False, pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        start = time.perf_counter()
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, min_new_tokens=1, **settings)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            **settings,
        )
        total = time.perf_counter() - start
    return out, ttft, total


def first_divergence_is_a_tie(model, ids, mask, ours, theirs, tolerance: float = 1e-3) -> bool:
    """Where two greedy runs part, were the two tokens' logits equal up to float noise?

    With random weights and thousands of argmax decisions, two logits a few 1e-6 apart do occur; fp32
    kernels that sum in a different order may then pick either. That is not a decoding difference.
    """
    prompt = ids.shape[1]
    for row in range(ids.shape[0]):
        a, b = ours[row, prompt:].tolist(), theirs[row, prompt:].tolist()
        if a == b:
            continue
        step = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        prefix = theirs[row : row + 1, : prompt + step]
        row_mask = None
        if mask is not None:
            row_mask = torch.cat([mask[row : row + 1], torch.ones(1, step, dtype=mask.dtype)], dim=1)
        with torch.no_grad():
            logits = model(prefix, attention_mask=row_mask).logits[0, -1]
        if abs(float(logits[a[step]] - logits[b[step]])) > tolerance:
            return False
    return True


def step_weights(model) -> list[torch.Tensor]:
    """The matrices a decoding step multiplies by: every 2-D parameter but the position table (a tied
    embedding / LM head appears once: named_parameters skips the repeat)."""
    return [p for n, p in model.named_parameters() if p.dim() == 2 and "positions" not in n]


def weight_floor(model, batch: int, reps: int = 30) -> float:
    """Seconds for the matrix products alone of one decoding step: every distinct weight matrix of the model
    (the tied embedding/LM head once) times a (batch, in) input, fp32, median of `reps`.

    A step must at least read these weights (55 MB for this GPT) — and, at batch 1, do little else with them
    — so this is the floor no fp32 decoding loop can go under on the machine, whatever its Python overhead.
    """
    weights = step_weights(model)
    inputs = {w.shape[1]: torch.randn(batch, w.shape[1]) for w in weights}
    times = []
    with torch.no_grad():
        for _ in range(reps + 3):
            start = time.perf_counter()
            for w in weights:
                torch.nn.functional.linear(inputs[w.shape[1]], w)
            times.append(time.perf_counter() - start)
    return statistics.median(times[3:])


def run(reps: int, new_tokens: int) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        hf_model, model = build_pair(Path(tmp))
        generator = torch.Generator().manual_seed(1)
        for batch, (low, high) in [(1, (32, 32)), (16, (8, 32))]:
            rows = {"lmforge": [], "hf": []}
            ties = 0
            for rep in range(reps + 1):  # the first repetition warms up and is not counted
                ids, mask = prompts(generator, batch, low, high)
                mask_arg = None if batch == 1 else mask
                ours = time_lmforge(model, ids, mask_arg, new_tokens)
                theirs = time_hf(hf_model, ids, mask_arg, new_tokens)
                if ours[0].tolist() != theirs[0].tolist():
                    if not first_divergence_is_a_tie(model, ids, mask_arg, ours[0], theirs[0]):
                        raise SystemExit(f"batch {batch}: lmforge and HF produced different tokens")
                    ties += 1
                if rep:
                    rows["lmforge"].append(ours[1:])
                    rows["hf"].append(theirs[1:])
            results[(batch, "ties")] = ties
            results[(batch, "floor_ms")] = weight_floor(model, batch) * 1e3
            results[(batch, "weight_mb")] = (
                sum(p.numel() * p.element_size() for p in step_weights(model)) / 1e6
            )
            for name, timings in rows.items():
                ttft = statistics.median(t for t, _ in timings)
                total = statistics.median(t for _, t in timings)
                results[(batch, name)] = {
                    "tokens_per_s": batch * new_tokens / total,
                    "ttft_ms": ttft * 1e3,
                    "per_token_ms": (total - ttft) / (new_tokens - 1) * 1e3,
                }
    return results


def table(results: dict, reps: int, new_tokens: int) -> str:
    lines = [
        SECTION,
        "",
        f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}; GPT 6×384, vocab 8192, random "
        f"weights; {new_tokens} new greedy tokens, tokens compared every repetition; median of {reps}. "
        f"Repetitions whose tokens parted at an exact tie of two logits (|Δ| < 1e-3, float noise): "
        f"batch 1: {results[(1, 'ties')]}, batch 16: {results[(16, 'ties')]}; all others identical.",
        "",
        "| batch | who | new tokens/s | time to first token (ms) | per-token latency (ms) | speed vs HF |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for batch in (1, 16):
        hf = results[(batch, "hf")]["tokens_per_s"]
        for name in ("lmforge", "hf"):
            row = results[(batch, name)]
            lines.append(
                f"| {batch} | {'lmforge' if name == 'lmforge' else 'HF transformers'} | {row['tokens_per_s']:.0f} | "
                f"{row['ttft_ms']:.1f} | {row['per_token_ms']:.2f} | {row['tokens_per_s'] / hf:.2f}× |"
            )
    lines += [
        "",
        "The floor: the matrix products alone of one step (every distinct weight matrix of the model, the tied "
        "embedding/LM head once, times a (batch, in) fp32 input; median of 30), i.e. reading "
        f"{results[(1, 'weight_mb')]:.0f} MB of weights per step:",
        "",
        "| batch | floor per step (ms) | → at most new tokens/s | HF per-token (ms) | lmforge per-token (ms) | "
        "lmforge ÷ floor |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for batch in (1, 16):
        floor = results[(batch, "floor_ms")]
        ours, hf = results[(batch, "lmforge")]["per_token_ms"], results[(batch, "hf")]["per_token_ms"]
        lines.append(
            f"| {batch} | {floor:.2f} | {batch * 1e3 / floor:.0f} | {hf:.2f} | {ours:.2f} | {ours / floor:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--note", default="", help="a paragraph on the machine's load, written after the tables"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = run(args.reps, args.new_tokens)
    text = table(results, args.reps, args.new_tokens)
    text += (
        f"\n1-minute load average on the machine: {load_before:.2f} before the run, "
        f"{os.getloadavg()[0]:.2f} after it.\n"
    )
    if args.note:
        text += "\n" + args.note.strip() + "\n"
    print(text)
    if not args.no_write:
        write_section(SECTION, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
