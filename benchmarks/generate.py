"""Generation speed: lmforge `generate` vs Hugging Face `generate`, same weights, identical tokens.

The GPT config of the transformer benchmark (6 layers, d 384, 6 heads, context 256, vocab 8192), random
weights; a 32-token prompt and 200 new greedy tokens; a fresh prompt every repetition (no caching of
results or prefixes across calls); lmforge and HF interleaved; medians of the repetitions. Reported: new
tokens/s at batch 1 and at batch 16 (prompts of 8–32 tokens, left-padded), time to first token and the
per-token latency after it. Writes its section of benchmarks/RESULTS.md.

    python benchmarks/generate.py [--reps 5] [--no-write]

`--speculative` measures speculative decoding instead (its own section): trained models, not random
weights (random weights make greedy text repeat itself, which flatters every drafting method) — a target
and its draft (`configs/gpt-code-stdlib.yaml` and `configs/gpt-code-stdlib-draft.yaml`) completing
held-out standard-library functions (files in the target's validation split, the last 5% of the corpus).
Per prompt, in turn: HF `generate` greedy, HF assisted generation with the same draft (HF's default
settings, and lmforge's γ and schedule), HF prompt lookup, lmforge greedy, speculative and prompt lookup;
new tokens/s over all prompts, acceptance rates, and the share of tokens identical to plain greedy.

    python benchmarks/generate.py --speculative --target runs/gpt-code-stdlib/model \
        --draft runs/gpt-code-stdlib-draft/model [--prompts 40 --new-tokens 96 --gamma 4 --lookup 10]

`--corpus wikitext2` takes its prompts from held-out WikiText-2 lines instead (the test split, which
neither training nor validation reads: the first half of each paragraph line, headings left out), for
`configs/gpt-bpe-wikitext2-384.yaml` and its draft, in a section of its own. `--compile` adds rows with the
torch.compile'd steps (`GenerationConfig.compile`, compiled during the warm-up prompt): plain greedy, and
speculative decoding with the draft's steps and the target's passes over the drafts compiled.
`--reduced-precision` adds rows for the target with bf16 weights and with int8 weights in its linear layers
(torch's `quantize_dynamic` qint8: torchao is not installed here) — faster or not, never identical, so they
get their own table with the share of tokens that still equal fp32 greedy and, on WikiText-2, the
validation perplexity of each precision (non-overlapping windows of the model's context).

    python benchmarks/generate.py --speculative --corpus wikitext2 --target runs/gpt-bpe-wikitext2-384/model \
        --draft runs/gpt-bpe-wikitext2-384-draft/model --prompts 200 --new-tokens 64 --reduced-precision --compile

`--corpus tatoeba` measures the translation model (`configs/translate-en-es-tatoeba.yaml`) and its draft
(`configs/translate-en-es-tatoeba-draft.yaml`) translating English sentences of the target run's own test
split (the held-out rule in its run directory's config.yaml: sentences neither model trained on; the draft
must have held out the same ones), in its own section; HF runs both models converted to Marian.

    python benchmarks/generate.py --speculative --corpus tatoeba --target runs/translate-en-es-tatoeba/model \
        --draft runs/translate-en-es-tatoeba-draft/model --prompts 500 --new-tokens 64
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

DATA = Path(os.environ.get("LMFORGE_SHARED_DATA", HERE.parent.parent / "shared" / "data"))

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
    embedding / LM head appears once: named_parameters skips the repeat). An encoder-decoder's step runs
    the decoder alone, and its cross-attention keys and values are cached from the encoder's output: the
    encoder's layers and the cross-attention key/value projections are not read per step."""
    encoder_decoder = model.config.architecture == "encoder-decoder"

    def read_per_step(name: str) -> bool:
        return not encoder_decoder or not (
            name.startswith("encoder_layers.") or "cross_attention.key_value" in name
        )

    return [
        p for n, p in model.named_parameters() if p.dim() == 2 and "positions" not in n and read_per_step(n)
    ]


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


# --- speculative decoding --------------------------------------------------------------------------------

SPECULATIVE_SECTION = "## Speculative decoding (`benchmarks/generate.py --speculative`)"
SPECULATIVE_SECTIONS = {
    "stdlib": SPECULATIVE_SECTION,
    "wikitext2": "## Speculative decoding, WikiText-2 (`benchmarks/generate.py --speculative --corpus wikitext2`)",
    "tatoeba": "## Speculative decoding, translation (`benchmarks/generate.py --speculative --corpus tatoeba`)",
}


def held_out_functions(tokenizer, count: int, max_prompt: int, seed: int = 0) -> list[list[int]]:
    """Prompts: the first half of the lines (at least the signature) of functions defined in the
    standard-library files that lie wholly in the pre-training run's validation split (the last 5% of the
    corpus's bytes, files in sorted order — the split `lmforge prepare` makes with val_fraction 0.05)."""
    import ast
    import random

    from lmforge.text import stdlib_files

    files = stdlib_files()
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    sizes = [len(t.encode("utf-8")) + 1 for t in texts]
    cut, seen, held_out = 0.95 * sum(sizes), 0, []
    for text, size in zip(texts, sizes, strict=True):
        if seen >= cut:
            held_out.append(text)
        seen += size
    prompts = []
    for text in held_out:
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        lines = text.splitlines(keepends=True)
        for node in ast.walk(tree):
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.end_lineno - node.lineno >= 7
            ):
                body = lines[node.lineno - 1 : node.end_lineno]
                head = "".join(body[: max(node.body[0].lineno - node.lineno, len(body) // 2)])
                ids = tokenizer.encode(head).ids
                if 8 <= len(ids) <= max_prompt:
                    prompts.append(ids)
    random.Random(seed).shuffle(prompts)
    return prompts[:count]


def held_out_lines(tokenizer, count: int, max_prompt: int, seed: int = 0) -> list[list[int]]:
    """Prompts: the first half (at most `max_prompt` tokens) of paragraph lines of WikiText-2's test split,
    which the pre-training run never reads (it trains on train.txt and validates on valid.txt); headings
    (" = Title = ") and lines under 32 tokens are left out."""
    import random

    lines = (DATA / "wikitext-2" / "test.txt").read_text(encoding="utf-8").splitlines()
    prompts = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("="):
            continue
        ids = tokenizer.encode(" " + text).ids  # the corpus's lines start with a space
        if len(ids) >= 32:
            prompts.append(ids[: min(len(ids) // 2, max_prompt)])
    random.Random(seed).shuffle(prompts)
    return prompts[:count]


def run_split(model_dir) -> dict:
    """The held-out rule of the translation run that wrote `model_dir` (its run directory's config.yaml,
    the recipe's defaults where it has none): pairs file and columns, test / validation counts, salt."""
    import yaml

    from lmforge.finetune.translate import TranslateData

    defaults = TranslateData()
    config_file = Path(model_dir).resolve().parent / "config.yaml"
    saved = yaml.safe_load(config_file.read_text()) if config_file.is_file() else {}
    section = (saved or {}).get("translate") or {}
    keys = ("pairs", "source_column", "target_column", "test_sentences", "validation_sentences", "split_salt")
    split = {key: section.get(key, getattr(defaults, key)) for key in keys}
    pairs = Path(split["pairs"])
    if not pairs.is_absolute() and not pairs.is_file():  # written relative to the repository's root
        pairs = HERE.parent / pairs
    split["pairs"] = pairs if pairs.is_file() else DATA / "tatoeba-spa-eng" / pairs.name
    return split


def held_out_sentences(
    target_dir, draft_dir, tokenizer, eos: int, count: int, max_source: int, seed: int = 0
):
    """Sources: English sentences of the target run's test split (`translate.split_salt`: the first
    `test_sentences` source sentences in blake2b order, with all their translations, which training and
    validation never read), encoded as the translation pipeline encodes them (ending in EOS). The draft
    must have held out the same sentences (the same rule and counts), so that neither model trained on
    them."""
    import random

    from lmforge.data.seq2seq import encode_texts, read_pairs
    from lmforge.finetune.translate import split_by_source

    split, draft_split = run_split(target_dir), run_split(draft_dir)
    same = ("test_sentences", "validation_sentences", "split_salt")
    if any(split[k] != draft_split[k] for k in same) or split["pairs"].name != draft_split["pairs"].name:
        raise SystemExit(f"the draft's held-out rule {draft_split} is not the target's {split}")
    pairs = read_pairs(split["pairs"], split["source_column"], split["target_column"])
    test = split_by_source(
        pairs,
        test_sentences=split["test_sentences"],
        validation_sentences=split["validation_sentences"],
        salt=split["split_salt"],
    ).test
    sources = list(test.sources)
    random.Random(seed).shuffle(sources)
    encoded = encode_texts(tokenizer, sources[:count], max_source, eos)
    return encoded, split


def reduced_precision(model, kind: str):
    """A copy of `model` with bf16 weights, or with int8 weights in every linear layer (torch's dynamic
    quantization: int8 weights, activations quantized per call; the LM head included)."""
    import copy

    clone = copy.deepcopy(model).eval()
    if kind == "bf16":
        return clone.to(torch.bfloat16)
    return torch.ao.quantization.quantize_dynamic(clone, {torch.nn.Linear}, dtype=torch.qint8)


def validation_perplexity(model, tokenizer, context: int) -> float:
    """WikiText-2 validation perplexity in non-overlapping windows of `context` tokens."""
    from lmforge.metrics.perplexity import sliding_window_nll

    text = (DATA / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    ids = tokenizer.encode(text).ids
    return sliding_window_nll(model, ids, context=context, stride=context).perplexity


def per_token_ms(model, prompt: list[int], new_tokens: int, reps: int = 3, compile: bool = False) -> float:
    """Milliseconds per new token of plain greedy decoding (no EOS), prefill left out: the best of `reps`
    whole runs less the best of `reps` one-token runs (best of each apart: a one-token run slowed by the
    machine's load must not make the difference small, or below zero for a tiny model)."""
    from lmforge.generate import GenerationConfig, generate

    ids = torch.tensor([prompt])
    never = [model.config.vocab_size]  # outside the vocabulary: no EOS ([] means the model's EOS)
    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=never, compile=compile)
    first = total = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        generate(model, ids, config.replace(max_new_tokens=1))
        first = min(first, time.perf_counter() - start)
        start = time.perf_counter()
        out = generate(model, ids, config)
        total = min(total, time.perf_counter() - start)
        assert out.new_tokens.shape[1] == new_tokens, "plain greedy stopped early"
    return (total - first) / (new_tokens - 1) * 1e3


def guess_ms(draft, prompt: list[int], new_tokens: int, reps: int = 3, compile: bool = False) -> float:
    """Milliseconds per guess of a greedy draft (`DraftModel.propose`: the argmax-only step speculative
    decoding runs), prefill left out, best of `reps`."""
    from lmforge.generate import DraftModel, GenerationConfig

    ids = torch.tensor([prompt])
    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=[], compile=compile)
    best = float("inf")
    with torch.no_grad():
        for _ in range(reps):
            start = time.perf_counter()
            DraftModel(draft, ids, None, new_tokens, config).propose(ids, 1, None)
            first = time.perf_counter() - start
            start = time.perf_counter()
            DraftModel(draft, ids, None, new_tokens, config).propose(ids, new_tokens, None)
            best = min(best, (time.perf_counter() - start - first) / (new_tokens - 1))
    return best * 1e3


def speculative_methods(
    target, draft, hf_target, hf_draft, eos: int, new_tokens: int, gamma: int, lookup: int,
    reduced: dict | None = None, compiled: bool = False, encoder_decoder: bool = False,
):  # fmt: skip
    """name -> a function of (1, T) prompt ids -> (new token ids, drafted, accepted). `reduced`: precision
    name -> (target, draft) copies, for the reduced-precision rows. `encoder_decoder`: the ids are a source
    sentence, HF's output is the decoder start token + new tokens, and HF's `forced_eos_token_id` (Marian's
    config sets it: EOS forced as the last token a length limit allows) is switched off, as lmforge has no
    such rule — it changes no token of a translation that ends before the limit."""
    from lmforge.generate import GenerationConfig, generate

    config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=[eos])

    def lmforge(model=target, **options):
        draft_model = options.pop("draft_model", None)

        def call(ids):
            out = generate(model, ids, config.replace(**options), draft_model=draft_model)
            drafted = None if out.drafted is None else int(out.drafted.sum())
            accepted = None if out.accepted is None else int(out.accepted.sum())
            return out.new_tokens[0].tolist(), drafted, accepted

        return call

    extra = {"forced_eos_token_id": None} if encoder_decoder else {}

    def hf(assistant_settings=None, **options):
        def call(ids):
            start = 1 if encoder_decoder else ids.shape[1]
            if assistant_settings is not None:  # HF changes them as it runs (its schedule): set every call
                for key, value in assistant_settings.items():
                    setattr(hf_draft.generation_config, key, value)
                options["assistant_model"] = hf_draft
            with torch.no_grad():
                out = hf_target.generate(
                    ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens, do_sample=False,
                    eos_token_id=eos, pad_token_id=eos, **extra, **options,
                )  # fmt: skip
            return out[0, start:].tolist(), None, None

        return call

    defaults = type(hf_draft.generation_config)._get_default_generation_params()  # what HF uses when unset
    hf_defaults = {
        key: defaults[key]
        for key in ("num_assistant_tokens", "num_assistant_tokens_schedule", "assistant_confidence_threshold")
    }
    ours = {"num_assistant_tokens": gamma, "num_assistant_tokens_schedule": "heuristic",
            "assistant_confidence_threshold": 0.0}  # fmt: skip
    methods = {
        "HF generate (greedy)": hf(),
        "HF assisted, HF defaults": hf(hf_defaults),
        f"HF assisted, γ {gamma} adaptive": hf(ours),
        f"HF prompt lookup ({lookup})": hf(prompt_lookup_num_tokens=lookup),
        "lmforge greedy": lmforge(),
        f"lmforge speculative (γ {gamma} adaptive)": lmforge(draft_model=draft, num_speculative_tokens=gamma),
        f"lmforge prompt lookup ({lookup})": lmforge(prompt_lookup_num_tokens=lookup),
    }
    if compiled:  # the one-token step through torch.compile (compiled during the warm-up prompt)
        methods["lmforge greedy, compiled step"] = lmforge(compile=True)
        # the draft's steps and the target's passes over the drafts compiled
        methods[f"lmforge speculative (γ {gamma} adaptive), compiled step"] = lmforge(
            draft_model=draft, num_speculative_tokens=gamma, compile=True
        )
    for precision, (model, draft_copy) in (reduced or {}).items():
        methods[f"lmforge greedy, {precision}"] = lmforge(model)
        if draft_copy is not None:  # the drafting methods too (the run above: plain greedy only)
            methods[f"lmforge speculative (γ {gamma} adaptive), {precision}"] = lmforge(
                model, draft_model=draft_copy, num_speculative_tokens=gamma
            )
            methods[f"lmforge prompt lookup ({lookup}), {precision}"] = lmforge(
                model, prompt_lookup_num_tokens=lookup
            )
    return methods, hf_defaults


BF16, INT8 = "bf16 weights", "int8 linear weights (quantize_dynamic qint8)"
TATOEBA_NOTE = (
    " HF runs the models converted to Marian (`lmforge.model.convert.to_hf`), with `forced_eos_token_id` off"
    " (lmforge has no such rule). Prompt lookup, lmforge's and HF's, looks for n-grams in the decoder's own"
    " text (the Spanish so far), not in the English source. The step table's floor is the decoder's weights"
    " a step reads (not the encoder, not the cached cross-attention keys and values)."
)


def run_speculative(args) -> tuple[str, dict]:
    import transformers

    from lmforge.model import load
    from lmforge.model.convert import to_hf
    from lmforge.tokenizers import load_tokenizer

    target, draft = load(args.target).eval(), load(args.draft).eval()
    tokenizer = load_tokenizer(Path(args.target) / "tokenizer.json")
    eos = target.config.eos_token_id
    encoder_decoder = target.config.architecture == "encoder-decoder"
    if encoder_decoder != (args.corpus == "tatoeba"):
        raise SystemExit(
            "--corpus tatoeba is for an encoder-decoder (translation) target, the others for decoders"
        )
    if encoder_decoder and (args.compile or args.reduced_precision):
        raise SystemExit("--compile and --reduced-precision are measured on the decoder corpora only")
    auto = transformers.AutoModelForSeq2SeqLM if encoder_decoder else transformers.AutoModelForCausalLM
    with tempfile.TemporaryDirectory() as tmp:
        to_hf(args.target, Path(tmp) / "target")  # Marian for the translation models
        to_hf(args.draft, Path(tmp) / "draft")
        hf_target = auto.from_pretrained(Path(tmp) / "target").eval()
        hf_draft = auto.from_pretrained(Path(tmp) / "draft").eval()
    args.split = None
    if encoder_decoder:  # sources as long as the positions allow (Tatoeba's are all far shorter)
        prompts, args.split = held_out_sentences(
            args.target, args.draft, tokenizer, eos, args.prompts + 1, target.config.max_positions
        )
    else:
        max_prompt = target.config.max_positions - args.new_tokens - args.gamma - 8
        find = held_out_lines if args.corpus == "wikitext2" else held_out_functions
        prompts = find(tokenizer, args.prompts + 1, min(max_prompt, 128))
    reduced = None
    if args.reduced_precision:
        reduced = {BF16: (reduced_precision(target, "bf16"), None),
                   INT8: (reduced_precision(target, "int8"), None)}  # fmt: skip
    methods, hf_defaults = speculative_methods(
        target, draft, hf_target, hf_draft, eos, args.new_tokens, args.gamma, args.lookup, reduced,
        args.compile, encoder_decoder,
    )  # fmt: skip
    names = list(methods)
    args.failures = []
    totals = {name: {"seconds": 0.0, "tokens": 0, "drafted": 0, "accepted": 0, "same": 0, "same_hf": 0}
              for name in names}  # fmt: skip
    for index, prompt in enumerate(prompts):  # prompt 0 warms up and is not counted
        ids = torch.tensor([prompt])
        order = names[index % len(names) :] + names[: index % len(names)]  # each method leads in turn
        outputs, failed = {}, None
        for name in order:
            start = time.perf_counter()
            try:
                outputs[name] = methods[name](ids)
            except IndexError as error:  # HF assisted generation, translation: positions past the table
                failed = f"{name}: {type(error).__name__}: {error}"
                break
            outputs[name] = (*outputs[name], time.perf_counter() - start)
        if failed:  # the prompt leaves every row, so that all rows count the same prompts
            args.failures.append((index, failed))
            print(f"prompt {index} left out: {failed}", file=sys.stderr)
            continue
        if index == 0:
            continue
        plain, plain_hf = outputs["lmforge greedy"][0], outputs["HF generate (greedy)"][0]
        for name, (tokens, drafted, accepted, seconds) in outputs.items():
            row = totals[name]
            row["seconds"] += seconds
            row["tokens"] += len(tokens)
            row["drafted"] += drafted or 0
            row["accepted"] += accepted or 0
            row["same"] += sum(a == b for a, b in zip(tokens, plain, strict=False))
            row["same_hf"] += sum(a == b for a, b in zip(tokens, plain_hf, strict=False))
            row["reference_tokens"] = row.get("reference_tokens", 0) + max(len(plain), len(tokens))
        print(f"prompt {index}/{len(prompts) - 1}", file=sys.stderr)
    # the step itself: plain greedy per token of the target, of the draft, and the weight-read floor
    steps = {"target": per_token_ms(target, prompts[0], args.new_tokens),
             "draft": per_token_ms(draft, prompts[0], args.new_tokens),
             "floor": weight_floor(target, 1) * 1e3}  # fmt: skip
    steps["draft, greedy guess (argmax-only step)"] = guess_ms(draft, prompts[0], args.new_tokens)
    if args.compile:
        steps["target, compiled step"] = per_token_ms(target, prompts[0], args.new_tokens, compile=True)
        steps["draft, compiled step"] = per_token_ms(draft, prompts[0], args.new_tokens, compile=True)
        steps["draft, greedy guess, compiled step"] = guess_ms(
            draft, prompts[0], args.new_tokens, compile=True
        )
    if reduced:
        steps[BF16] = per_token_ms(reduced[BF16][0], prompts[0], args.new_tokens)
        steps[INT8] = per_token_ms(reduced[INT8][0], prompts[0], args.new_tokens)
    counted = len(prompts) - 1 - sum(index > 0 for index, _ in args.failures)
    text = speculative_table(args, totals, counted, hf_defaults, steps)
    if args.failures:
        text += (
            f"\nLeft out of every row: {len(args.failures)} of the {len(prompts) - 1} prompts, on which a method "
            "raised (" + "; ".join(f"prompt {i}: {what}" for i, what in args.failures) + ").\n"
        )
    if reduced and args.corpus == "wikitext2":
        context = target.config.max_positions
        print("validation perplexity ...", file=sys.stderr)
        ppl = {"fp32": validation_perplexity(target, tokenizer, context)}
        for precision, (model, _) in reduced.items():
            ppl[precision] = validation_perplexity(model, tokenizer, context)
        text += perplexity_table(ppl, context)
    return text, totals


def speculative_table(args, totals: dict, count: int, hf_defaults: dict, steps: dict) -> str:
    rate = {name: row["tokens"] / row["seconds"] for name, row in totals.items()}
    hf, ours = rate["HF generate (greedy)"], rate["lmforge greedy"]
    if args.corpus == "wikitext2":
        what = (f"{count} held-out WikiText-2 lines (the test split; the first half of each, at most 128 "
                f"tokens)")  # fmt: skip
    elif args.corpus == "tatoeba":
        split = args.split
        what = (f"{count} held-out English sentences (drawn from the target run's {split['test_sentences']:,} "
                f"test sentences of `{split['pairs'].name}`, salt `{split['split_salt']}`, which neither model "
                f"trained on) translated")  # fmt: skip
    else:
        what = f"{count} held-out standard-library functions (the first half of each, at most 128 tokens)"
    header = (
        "| method | new tokens/s | vs HF generate | vs lmforge greedy | acceptance rate | identical tokens |"
    )
    lines = [
        SPECULATIVE_SECTIONS[args.corpus],
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}; batch 1, greedy; target "
        f"`{args.target}`, draft `{args.draft}`; {what}{'' if args.corpus == 'tatoeba' else ' completed'} with "
        f"up to {args.new_tokens} new tokens (EOS ends them), after one warm-up prompt; the methods take turns "
        f"within each prompt.{TATOEBA_NOTE if args.corpus == 'tatoeba' else ''} HF's "
        f"defaults for assisted generation: " + ", ".join(f"{k} {v}" for k, v in hf_defaults.items()) + ".",
        "",
        header,
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    reduced_rows = [name for name in totals if name.endswith((BF16, INT8))]
    for name, row in totals.items():
        if name in reduced_rows:
            continue
        accepted = f"{row['accepted'] / row['drafted']:.1%}" if row["drafted"] else "—"
        same = row["same"] / row["reference_tokens"]
        lines.append(
            f"| {name} | {rate[name]:.0f} | {rate[name] / hf:.2f}× | {rate[name] / ours:.2f}× | {accepted} | "
            f"{same:.1%} |"
        )
    if reduced_rows:
        lines += [
            "",
            "Reduced precision, in the same run (never identical by design: the last column is the share of "
            "tokens that still equal fp32 greedy's):",
            "",
            header.replace("identical tokens", "tokens equal to fp32 greedy"),
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for name in reduced_rows:
            row = totals[name]
            accepted = f"{row['accepted'] / row['drafted']:.1%}" if row["drafted"] else "—"
            lines.append(
                f"| {name} | {rate[name]:.0f} | {rate[name] / hf:.2f}× | {rate[name] / ours:.2f}× | "
                f"{accepted} | {row['same'] / row['reference_tokens']:.1%} |"
            )
    floor = steps["floor"]
    lines += [
        "",
        f"The step, plain greedy at batch 1 in the same process ({args.new_tokens} new tokens, prefill left "
        "out, best of 3), against the floor (the target's weight matrices times a 1-row input, fp32, "
        "median of 30):",
        "",
        "| model | per token (ms) | ÷ weight-read floor | ÷ target step |",
        "| --- | ---: | ---: | ---: |",
        f"| floor (matrix products alone) | {floor:.2f} | 1.00 | {floor / steps['target']:.2f} |",
    ]
    for name, ms in steps.items():
        if name != "floor":
            lines.append(f"| {name} | {ms:.2f} | {ms / floor:.2f} | {ms / steps['target']:.2f} |")
    return "\n".join(lines) + "\n"


def perplexity_table(ppl: dict, context: int) -> str:
    base = ppl["fp32"]
    lines = [
        "",
        f"WikiText-2 validation perplexity of the target by weight precision (non-overlapping windows of "
        f"{context} tokens):",
        "",
        "| weights | validation perplexity | change vs fp32 |",
        "| --- | ---: | ---: |",
    ]
    for name, value in ppl.items():
        lines.append(f"| {name} | {value:.2f} | {value / base - 1:+.2%} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, help="default 200 (--speculative: 96)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument(
        "--note", default="", help="a paragraph on the machine's load, written after the tables"
    )
    parser.add_argument("--speculative", action="store_true", help="speculative decoding (trained models)")
    parser.add_argument("--target", default="runs/gpt-code-stdlib/model", help="--speculative: the model")
    parser.add_argument(
        "--draft", default="runs/gpt-code-stdlib-draft/model", help="--speculative: its draft"
    )
    parser.add_argument("--prompts", type=int, default=40, help="--speculative: held-out functions")
    parser.add_argument("--gamma", type=int, default=4, help="--speculative: draft tokens per round (start)")
    parser.add_argument("--lookup", type=int, default=10, help="--speculative: prompt-lookup tokens")
    parser.add_argument(
        "--corpus", choices=("stdlib", "wikitext2", "tatoeba"), default="stdlib",
        help="--speculative: held-out standard-library functions, WikiText-2 test lines, or (a translation "
        "model and its draft) held-out Tatoeba English sentences",
    )  # fmt: skip
    parser.add_argument(
        "--reduced-precision", action="store_true",
        help="--speculative: also bf16 and int8-weight rows (and WikiText-2 validation perplexity)",
    )  # fmt: skip
    parser.add_argument(
        "--compile", action="store_true", help="--speculative: also rows with the torch.compile'd step"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    if args.speculative:
        args.new_tokens = args.new_tokens or 96
        text, _ = run_speculative(args)
        text += (
            "\nLoad average (1, 5, 15 min) "
            + " / ".join(f"{x:.2f}" for x in load_before)
            + " before the run, "
            + " / ".join(f"{x:.2f}" for x in os.getloadavg())
            + " after it.\n"
        )
        if args.note:
            text += "\n" + args.note.strip() + "\n"
        print(text)
        if not args.no_write:
            write_section(SPECULATIVE_SECTIONS[args.corpus], text, before="## Serving")
        return 0
    load_before = load_before[0]
    args.new_tokens = args.new_tokens or 200
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
