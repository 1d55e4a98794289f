"""Training-step throughput of lmforge.model against Hugging Face `transformers`, in one process, interleaved.

    python benchmarks/model.py            # full run (~5 minutes on 2 cores); writes its RESULTS.md section
    python benchmarks/model.py --quick    # a few steps, prints only

What is measured (the transformer issue's benchmark):
- decoder: GPT-2 shape, n_layer 6, n_embd 384, n_head 6, context 256, vocab 8192, batch 8, dropout 0.
  HF `GPT2LMHeadModel` is built first; lmforge gets the same weights through `lmforge.model.convert.from_hf`.
  A plain loop: `torch.optim.AdamW`, `F.cross_entropy` on the fp32 `.logits`, no `torch.compile`.
  HF fp32, lmforge fp32 and lmforge bf16-autocast steps alternate on the same batches. The first-step losses
  of HF and lmforge must agree within 1e-4; lmforge's bf16 run must end within 1% of its fp32 run's loss
  after 50 steps (held-out batch, evaluated in fp32).
- MFU: FLOPs/token = 6N + 12·L·T·d (N without position embeddings) × tokens/s, against the median fp32
  `torch.mm` throughput at n = 2048 measured in the same run.
- encoder: vocab 8192, hidden 384, 6 layers, 6 heads, FFN 1536, seq 128, batch 16, 15% masked, MLM head.
  HF `BertForMaskedLM` computes the head at every position and ignores the unmasked labels; lmforge computes
  it only at the masked positions (`logits_where=`), which gives the same loss (checked on the first step).

Data: the bytes of tinyshakespeare (`../shared/data`) as token ids, or random ids when it is absent.
"""

from __future__ import annotations

import argparse
import datetime
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

VOCAB, LAYERS, WIDTH, HEADS, CONTEXT, BATCH = 8192, 6, 384, 6, 256, 8
ENC_SEQ, ENC_BATCH, MASK_ID = 128, 16, 4


def matmul_flops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def token_stream(length: int) -> torch.Tensor:
    path = HERE.parent.parent / "shared" / "data" / "tinyshakespeare" / "input.txt"
    if path.is_file():
        data = torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8).long()
        return data[:length]
    return torch.randint(0, 256, (length,), generator=torch.Generator().manual_seed(0))


def decoder_batches(n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    stream = token_stream(n * BATCH * (CONTEXT + 1) + 1)
    blocks = stream[: n * BATCH * (CONTEXT + 1)].view(n, BATCH, CONTEXT + 1)
    return [(block[:, :-1].contiguous(), block[:, 1:].contiguous()) for block in blocks]


def timed_step(model, optimizer, x, y, *, lmforge: bool, bf16: bool = False) -> tuple[float, float]:
    start = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = model(x).logits if lmforge else model(input_ids=x).logits
    loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start, loss.item()


@torch.no_grad()
def held_out_loss(model, x, y, *, lmforge: bool) -> float:
    model.eval()
    logits = model(x).logits if lmforge else model(input_ids=x).logits
    model.train()
    return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.view(-1)).item()


def bench_decoder(steps: int, hf_steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=LAYERS, n_embd=WIDTH, n_head=HEADS, n_positions=CONTEXT, vocab_size=VOCAB,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    hf = transformers.GPT2LMHeadModel(config)
    hf.save_pretrained(workdir / "hf-gpt")
    from_hf(workdir / "hf-gpt", workdir / "lm-gpt")
    ours32, ours16 = load(workdir / "lm-gpt"), load(workdir / "lm-gpt")
    for model in (hf, ours32, ours16):
        model.train()
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-3) for name, m in
                  (("hf", hf), ("fp32", ours32), ("bf16", ours16))}  # fmt: skip
    batches = decoder_batches(steps + 1)
    held_x, held_y = batches[-1]
    times: dict[str, list[float]] = {"hf": [], "fp32": [], "bf16": []}
    first: dict[str, float] = {}
    for step in range(steps):
        x, y = batches[step]
        runs = [("fp32", ours32, True, False), ("bf16", ours16, True, True)]
        if step < hf_steps:
            runs.insert(step % 2, ("hf", hf, False, False))  # alternate who goes first
        for name, model, lmforge, bf16 in runs:
            seconds, loss = timed_step(model, optimizers[name], x, y, lmforge=lmforge, bf16=bf16)
            times[name].append(seconds)
            first.setdefault(name, loss)
        print(f"  decoder step {step + 1}/{steps}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items() if v),
              flush=True)  # fmt: skip
    tokens = BATCH * CONTEXT
    median = {name: statistics.median(values[1:]) for name, values in times.items()}  # step 1 warms up
    n_without_positions = sum(p.numel() for p in ours32.parameters()) - CONTEXT * WIDTH
    flops_per_token = 6 * n_without_positions + 12 * LAYERS * CONTEXT * WIDTH
    return {
        "tokens_per_s": {name: tokens / seconds for name, seconds in median.items()},
        "median_s": median,
        "steps": {name: len(values) - 1 for name, values in times.items()},
        "first_loss": first,
        "held_out_after": {
            "fp32": held_out_loss(ours32, held_x, held_y, lmforge=True),
            "bf16": held_out_loss(ours16, held_x, held_y, lmforge=True),
        },
        "flops_per_token": flops_per_token,
    }


def bench_encoder(steps: int, workdir: Path) -> dict:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=WIDTH, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        intermediate_size=4 * WIDTH, max_position_embeddings=ENC_SEQ, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    hf = transformers.BertForMaskedLM(config)
    hf.save_pretrained(workdir / "hf-bert")
    from_hf(workdir / "hf-bert", workdir / "lm-bert")
    ours = load(workdir / "lm-bert")
    hf.train(), ours.train()
    optimizers = {
        "hf": torch.optim.AdamW(hf.parameters(), lr=1e-3),
        "ours": torch.optim.AdamW(ours.parameters(), lr=1e-3),
    }
    stream = token_stream(steps * ENC_BATCH * ENC_SEQ).view(steps, ENC_BATCH, ENC_SEQ) + 5
    generator = torch.Generator().manual_seed(1)
    times: dict[str, list[float]] = {"hf": [], "ours": []}
    first: dict[str, float] = {}
    for step in range(steps):
        labels_full = stream[step]
        masked = torch.rand(labels_full.shape, generator=generator) < 0.15
        inputs = labels_full.masked_fill(masked, MASK_ID)
        labels = labels_full.masked_fill(~masked, -100)
        order = [("hf", hf), ("ours", ours)] if step % 2 == 0 else [("ours", ours), ("hf", hf)]
        for name, model in order:
            start = time.perf_counter()
            if name == "hf":
                logits = model(input_ids=inputs).logits  # (B, T, V) at every position
                loss = F.cross_entropy(logits.float().view(-1, VOCAB), labels.view(-1), ignore_index=-100)
            else:
                logits = model(inputs, logits_where=masked).logits  # (N, V) at the masked positions only
                loss = F.cross_entropy(logits.float(), labels_full[masked])
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - start)
            first.setdefault(name, loss.item())
        print(
            f"  encoder step {step + 1}/{steps}: hf {times['hf'][-1]:.2f}s, ours {times['ours'][-1]:.2f}s",
            flush=True,
        )
    median = {name: statistics.median(values[1:]) for name, values in times.items()}
    return {
        "tokens_per_s": {name: ENC_BATCH * ENC_SEQ / s for name, s in median.items()},
        "median_s": median,
        "steps": steps - 1,
        "first_loss": first,
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"transformers {transformers.__version__}"
    )


def write_results(text: str) -> None:
    path = HERE / "RESULTS.md"
    current = path.read_text() if path.is_file() else "# Benchmark results\n"
    start_marker, end_marker = "<!-- model:start -->", "<!-- model:end -->"
    section = f"{start_marker}\n{text.rstrip()}\n{end_marker}"
    if start_marker in current:
        before = current.split(start_marker)[0]
        after = current.split(end_marker, 1)[1]
        current = before + section + after
    else:
        current = current.rstrip() + "\n\n" + section + "\n"
    path.write_text(current)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few steps; print, do not write RESULTS.md")
    parser.add_argument("--note", default="", help="a note on the machine's load, written with the figures")
    args = parser.parse_args()
    steps, hf_steps, encoder_steps = (4, 4, 3) if args.quick else (50, 16, 14)

    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        mm_before = matmul_flops()
        print(f"fp32 torch.mm n=2048: {mm_before / 1e9:.0f} GFLOP/s", flush=True)
        decoder = bench_decoder(steps, hf_steps, workdir)
        encoder = bench_encoder(encoder_steps, workdir)
        mm_after = matmul_flops()
    peak = statistics.median([mm_before, mm_after])

    speed = decoder["tokens_per_s"]
    mfu = {name: speed[name] * decoder["flops_per_token"] / peak for name in speed}
    first_gap = abs(decoder["first_loss"]["hf"] - decoder["first_loss"]["fp32"])
    held = decoder["held_out_after"]
    bf16_gap = abs(held["bf16"] - held["fp32"]) / held["fp32"]
    encoder_ratio = encoder["tokens_per_s"]["ours"] / encoder["tokens_per_s"]["hf"]
    encoder_gap = abs(encoder["first_loss"]["hf"] - encoder["first_loss"]["ours"])
    ratio32, ratio16 = speed["fp32"] / speed["hf"], speed["bf16"] / speed["hf"]

    def verdict(ok: bool) -> str:
        return "yes" if ok else "**no**"

    lines = [
        "## Model training step (`benchmarks/model.py`)",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · {machine()}",
        f"fp32 `torch.mm` n=2048 in this run: {peak / 1e9:.0f} GFLOP/s (median of before/after: "
        f"{mm_before / 1e9:.0f} / {mm_after / 1e9:.0f}).",
    ]
    if args.note:
        lines.append(f"Machine load: {args.note}")
    lines += [
        "",
        f"Decoder (GPT-2 shape: {LAYERS} layers, d {WIDTH}, {HEADS} heads, context {CONTEXT}, vocab {VOCAB}, "
        f"batch {BATCH}; AdamW, F.cross_entropy on fp32 logits, no compile; medians of "
        f"{decoder['steps']['hf']} HF / {decoder['steps']['fp32']} lmforge steps, interleaved):",
        "",
        "| model | tokens/s | median step | MFU | × HF fp32 | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| HF GPT2LMHeadModel fp32 | {speed['hf']:,.0f} | {decoder['median_s']['hf']:.3f} s | {mfu['hf']:.0%} | 1.00 | | |",
        f"| lmforge fp32 | {speed['fp32']:,.0f} | {decoder['median_s']['fp32']:.3f} s | {mfu['fp32']:.0%} | "
        f"{ratio32:.2f} | ≥ 1.15×, MFU ≥ 65% | {verdict(ratio32 >= 1.15 and mfu['fp32'] >= 0.65)} |",
        f"| lmforge bf16 autocast | {speed['bf16']:,.0f} | {decoder['median_s']['bf16']:.3f} s | – | "
        f"{ratio16:.2f} | ≥ 1.8× | {verdict(ratio16 >= 1.8)} |",
        "",
        f"- first-step loss: HF {decoder['first_loss']['hf']:.6f}, lmforge {decoder['first_loss']['fp32']:.6f} "
        f"(|Δ| = {first_gap:.1e}; must be ≤ 1e-4: {verdict(first_gap <= 1e-4)})",
        f"- after {decoder['steps']['fp32'] + 1} steps, held-out loss: fp32 {held['fp32']:.4f}, bf16 {held['bf16']:.4f} "
        f"(gap {bf16_gap:.2%}; must be ≤ 1%: {verdict(bf16_gap <= 0.01)})",
        f"- FLOPs/token 6N + 12·L·T·d = {decoder['flops_per_token']:,}",
        "",
        f"Encoder MLM (vocab {VOCAB}, hidden {WIDTH}, {LAYERS} layers, {HEADS} heads, FFN {4 * WIDTH}, seq {ENC_SEQ}, "
        f"batch {ENC_BATCH}, 15% masked; median of {encoder['steps']} interleaved steps; lmforge computes the "
        "MLM head only at the masked positions):",
        "",
        "| model | tokens/s | median step | × HF |",
        "| --- | --- | --- | --- |",
        f"| HF BertForMaskedLM | {encoder['tokens_per_s']['hf']:,.0f} | {encoder['median_s']['hf']:.3f} s | 1.00 |",
        f"| lmforge encoder + MLM head | {encoder['tokens_per_s']['ours']:,.0f} | {encoder['median_s']['ours']:.3f} s | "
        f"{encoder_ratio:.2f} (target ≥ 1.15: {verdict(encoder_ratio >= 1.15)}) |",
        "",
        f"- first-step MLM loss: HF {encoder['first_loss']['hf']:.6f}, lmforge {encoder['first_loss']['ours']:.6f} "
        f"(|Δ| = {encoder_gap:.1e})",
        "- `torch.compile` (the training loop's `train.compile` option) is measured apart: next section, `benchmarks/model_compile.py`.",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        write_results(text)
        print(f"wrote {HERE / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
