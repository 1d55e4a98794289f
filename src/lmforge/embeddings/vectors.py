"""Word vectors: query them, save and load them, evaluate them, draw them.

- `WordVectors`: a vocabulary (most frequent first) and a (V, D) float32 matrix, answering gensim's
  `KeyedVectors` queries with gensim's names and results (`most_similar(positive, negative, topn)`,
  `most_similar_cosmul`, `distance(s)`, `rank`, `closer_than`, `most_similar_to_given`,
  `relative_cosine_similarity`, `get_mean_vector`, `add_vectors` and item assignment), plus
  `analogy(a, b, c)` (b − a + c, the inputs excluded), `doesnt_match`, and `plot_pca(words, png)`;
  a missing word is `MissingWordError` (an `LmforgeError` and a `KeyError`);
- the word2vec formats of Mikolov's word2vec.c, which gensim's `KeyedVectors` reads and writes:
  text (`V D` header, then `word x1 ... xD` per line) and binary (`V D` header, then `word ` + D float32
  little-endian per word); `WordVectors.save`/`load` pick the format from the suffix (`.bin` = binary);
- evaluation as gensim's `evaluate_word_analogies` / `evaluate_word_pairs` compute it, so the numbers agree:
  analogies by 3CosAdd over the first `restrict_vocab` words, case-insensitive (the most frequent case
  variant wins), questions with an unknown word skipped and counted in the OOV rate; word pairs scored by
  cosine, Spearman (average ranks for ties) and Pearson against the human scores;
- `gensim_test_file(name)`: the Google analogy set, WordSim-353 and SimLex-999 as the installed `gensim`
  package ships them (found with `importlib.util.find_spec`, gensim itself is never imported).

    >>> vectors = WordVectors(["king", "queen", "man", "woman"], np.eye(4, dtype=np.float32))
    >>> vectors.similarity("king", "king")
    1.0
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lmforge.embeddings.ngrams import ngram_file, read_ngram_file
from lmforge.errors import LmforgeError, MissingFileError
from lmforge.io import atomic_write, save_figure
from lmforge.text import iter_lines

# The evaluation sets the `gensim` package ships in gensim/test/test_data (used in place, never copied).
ANALOGY_FILE = "questions-words.txt"  # Mikolov et al. 2013: 19,544 questions in 14 sections
WORDSIM_FILE = "wordsim353.tsv"  # Finkelstein et al. 2002: 353 pairs, relatedness
SIMLEX_FILE = "simlex999.txt"  # Hill et al. 2015: 999 pairs, similarity (not relatedness)


class MissingWordError(LmforgeError, KeyError):
    """A word the vectors do not know: an `LmforgeError` (one line in the CLI) and a `KeyError` (what code
    written for gensim's `KeyedVectors` catches)."""

    def __str__(self) -> str:  # a KeyError's str() would quote the message; keep the plain line
        return str(self.args[0]) if self.args else ""


class VectorsError(LmforgeError, ValueError):
    """A query the vectors cannot answer (no input words, weights that do not match), a `ValueError` as in
    gensim."""


Key = str | int | np.integer  # a word, or a row index (as gensim's keys)


class WordVectors:
    """Words and their vectors. Rows are in vocabulary order, most frequent first when trained here.

    `oov` (optional) makes vectors for words outside the vocabulary (FastText does it from n-grams).
    """

    def __init__(
        self,
        words: Sequence[str],
        vectors: np.ndarray,
        oov: Callable[[str], np.ndarray | None] | None = None,
    ):
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(words):
            raise LmforgeError(
                f"need one vector per word: {len(words)} words, vectors of shape {vectors.shape}"
            )
        self.words = list(words)
        self.vectors = vectors  # (V, D)
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise LmforgeError("the vocabulary has duplicate words")
        self.oov = oov
        self._unit: np.ndarray | None = None

    # --- access -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __getitem__(self, word: Key | Sequence[Key]) -> np.ndarray:
        """The vector of a word (or row index); a list of them gives a (n, D) matrix, as in gensim."""
        if isinstance(word, (list, tuple)):
            return np.vstack([self.vector(w) for w in word])
        return self.vector(word)

    def __setitem__(self, words: Key | list[Key], vectors: np.ndarray) -> None:
        """Add words with their vectors, replacing the vectors of words already there (gensim's item
        assignment: ``vectors["frog"] = v`` or ``vectors[["a", "b"]] = matrix``)."""
        if not isinstance(words, list):
            words = [words]
            vectors = np.asarray(vectors).reshape(1, -1)
        self.add_vectors(words, vectors, replace=True)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    # gensim's names for the same things, so code written for KeyedVectors reads these too
    @property
    def vector_size(self) -> int:
        return self.dim

    @property
    def index_to_key(self) -> list[str]:
        return self.words

    @property
    def key_to_index(self) -> dict[str, int]:
        return self.index

    def get_index(self, word: Key) -> int:
        """The row of a word (a row index is its own row); `MissingWordError` (a KeyError) if there is none."""
        if isinstance(word, (int, np.integer)) and not isinstance(word, bool):
            if 0 <= word < len(self.words):
                return int(word)
        elif word in self.index:
            return self.index[word]
        raise MissingWordError(f"{word!r} is not in the vocabulary ({len(self):,} words)")

    def vector(self, word: Key, norm: bool = False) -> np.ndarray:
        """The vector of `word` (from its n-grams when it is unknown and the vectors can do that); `norm`:
        scaled to length 1."""
        if isinstance(word, (int, np.integer)) or word in self.index:
            row = self.get_index(word)
            return self.unit_vectors[row] if norm else self.vectors[row]
        made = self.oov(word) if self.oov is not None else None
        if made is None:
            raise MissingWordError(f"{word!r} is not in the vocabulary ({len(self):,} words)")
        return _unit(made) if norm else made

    get_vector = vector  # gensim's name

    def add_vectors(self, words: Key | Sequence[str], vectors: np.ndarray, replace: bool = False) -> None:
        """Append new words and their vectors (gensim's `add_vectors`); words already present keep their
        vector unless `replace`."""
        if isinstance(words, str):
            words = [words]
            vectors = np.asarray(vectors).reshape(1, -1)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(words), self.dim):
            raise VectorsError(
                f"add_vectors needs one {self.dim}-dimensional vector per word: {len(words)} words, "
                f"vectors of shape {vectors.shape}"
            )
        known = [word in self.index for word in words]
        new_rows = []
        for word, vector, present in zip(words, vectors, known, strict=True):
            if not present:
                self.index[word] = len(self.words)
                self.words.append(word)
                new_rows.append(vector)
        if new_rows:
            self.vectors = np.concatenate([self.vectors, np.stack(new_rows)])
        if replace:
            for word, vector, present in zip(words, vectors, known, strict=True):
                if present:
                    self.vectors[self.index[word]] = vector
        self._unit = None

    @property
    def norms(self) -> np.ndarray:
        return np.linalg.norm(self.vectors, axis=1)

    @property
    def unit_vectors(self) -> np.ndarray:
        """(V, D) rows scaled to length 1 (zero rows stay zero); cached."""
        if self._unit is None:
            norms = self.norms[:, None]
            self._unit = self.vectors / np.where(norms > 0, norms, 1).astype(np.float32)
        return self._unit

    # --- queries ------------------------------------------------------------------------------------

    def similarity(self, word1: str, word2: str) -> float:
        """Cosine similarity of two words."""
        return float(_unit(self.vector(word1)) @ _unit(self.vector(word2)))

    def distance(self, word1: str, word2: str) -> float:
        """Cosine distance: 1 − similarity."""
        return 1.0 - self.similarity(word1, word2)

    def distances(self, word_or_vector: Key | np.ndarray, other_words: Sequence[Key] = ()) -> np.ndarray:
        """Cosine distances from a word or vector to `other_words` (to every word, itself included, when
        empty), as gensim's `distances`."""
        query = self._query_vector(word_or_vector)
        if other_words:
            others = self.vectors[[self.get_index(w) for w in other_words]]
        else:
            others = self.vectors
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - (others @ query) / (np.linalg.norm(query) * np.linalg.norm(others, axis=1))

    def closer_than(self, word1: Key, word2: Key) -> list[str]:
        """Every word closer to `word1` than `word2` is (`word1` itself left out)."""
        distances = self.distances(word1)
        first, second = self.get_index(word1), self.get_index(word2)
        closer = np.flatnonzero(distances < distances[second])
        return [self.words[i] for i in closer if i != first]

    def rank(self, word1: Key, word2: Key) -> int:
        """Where `word2` ranks among the neighbours of `word1` (1 = nearest)."""
        return len(self.closer_than(word1, word2)) + 1

    def most_similar_to_given(self, word: Key, candidates: Sequence[Key]) -> Key:
        """The candidate most similar to `word`."""
        return candidates[int(np.argmax([self.similarity(word, c) for c in candidates]))]

    def relative_cosine_similarity(self, word_a: str, word_b: str, topn: int = 10) -> float:
        """similarity(a, b) divided by the summed similarities of a's `topn` nearest words (Leeuwenberg et al.
        2016): above 1/topn, b is closer to a than an average top-n neighbour."""
        neighbours = self.most_similar(word_a, topn=topn)
        if not neighbours:
            raise VectorsError("relative cosine similarity needs at least one neighbour of the first word")
        return self.similarity(word_a, word_b) / sum(score for _, score in neighbours)

    def get_mean_vector(
        self,
        keys: Sequence[Key | np.ndarray],
        weights: Sequence[float] | np.ndarray | None = None,
        pre_normalize: bool = True,
        post_normalize: bool = False,
        ignore_missing: bool = True,
    ) -> np.ndarray:
        """The weighted mean of words' vectors (unit vectors with `pre_normalize`) and given vectors (taken
        as they are), divided by the summed absolute weights, as gensim's `get_mean_vector`."""
        if len(keys) == 0:
            raise VectorsError("cannot compute a mean vector of no words")
        weights = np.ones(len(keys), dtype=np.float32) if weights is None else np.asarray(weights, np.float32)
        if weights.shape != (len(keys),):
            raise VectorsError(f"{len(keys)} keys but {weights.shape[0]} weights: give one weight per key")
        mean = np.zeros(self.dim, dtype=np.float32)
        total = 0.0
        for key, weight in zip(keys, weights, strict=True):
            if isinstance(key, np.ndarray):
                mean += weight * key
            elif self._knows(key):
                mean += weight * self.vector(key, norm=pre_normalize)
            elif not ignore_missing:
                raise MissingWordError(f"{key!r} is not in the vocabulary ({len(self):,} words)")
            else:
                continue
            total += abs(float(weight))
        if total > 0:
            mean = mean / total
        return _unit(mean) if post_normalize else mean

    def _knows(self, key: Key) -> bool:
        if isinstance(key, (int, np.integer)):
            return 0 <= key < len(self.words)
        return key in self.index or self.oov is not None

    def _query_vector(self, word_or_vector: Key | np.ndarray) -> np.ndarray:
        if isinstance(word_or_vector, np.ndarray):
            query = word_or_vector.astype(np.float32, copy=False)
            if query.shape != (self.dim,):
                raise VectorsError(
                    f"query vector has shape {query.shape}; these vectors have {self.dim} dims"
                )
            return query
        return self.vector(word_or_vector)

    def most_similar(
        self,
        positive: Key | np.ndarray | Sequence | None = None,
        negative: Key | np.ndarray | Sequence | None = None,
        topn: int | None = 10,
        clip_start: int = 0,
        clip_end: int | None = None,
        restrict_vocab: int | None = None,
        *,
        exclude: Iterable[str] = (),
    ) -> list[tuple[str, float]] | np.ndarray:
        """The `topn` words closest (cosine) to the mean of the `positive` words' unit vectors minus the
        `negative` ones' (gensim's `most_similar`: each may be a word, a vector, a list of them, or (word,
        weight) pairs). The input words and `exclude` are never answers. `topn` None: the similarity of every
        word (in the clipped range) as an array. `restrict_vocab`: only the first N words are candidates.

        >>> vectors = WordVectors(["a", "b", "c"], np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32))
        >>> [word for word, _ in vectors.most_similar("a", topn=2)]
        ['b', 'c']
        """
        if topn is not None and topn < 1:
            return []
        keys, weights = _weighted_keys(positive, negative)
        if not keys:
            raise VectorsError("most_similar needs at least one positive or negative word or vector")
        query = self.get_mean_vector(
            keys, weights, pre_normalize=True, post_normalize=True, ignore_missing=False
        )
        clip_end = clip_end or len(self)
        if restrict_vocab:
            clip_start, clip_end = 0, restrict_vocab
        clip_end = min(clip_end, len(self))
        scores = self.unit_vectors[clip_start:clip_end] @ query
        if topn is None:
            return scores
        excluded = {self.index[w] for w in exclude if w in self.index}
        excluded |= {self.get_index(k) for k in keys if not isinstance(k, np.ndarray) and self._has_row(k)}
        return self._top(scores, topn, [i - clip_start for i in excluded], offset=clip_start)

    def _has_row(self, key: Key) -> bool:
        if isinstance(key, (int, np.integer)):
            return 0 <= key < len(self.words)
        return key in self.index

    def most_similar_cosmul(
        self,
        positive: Key | np.ndarray | Sequence | None = None,
        negative: Key | np.ndarray | Sequence | None = None,
        topn: int | None = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]] | np.ndarray:
        """3CosMul (Levy and Goldberg 2014): the product of the positive words' cosines, each shifted to
        [0, 1], over the product of the negative ones' (+1e-6), as gensim's `most_similar_cosmul`. Words are
        taken as unit vectors, given vectors as they are. `restrict_vocab`: only the first N are candidates
        (gensim 4.4 accepts and ignores it)."""
        if topn is not None and topn < 1:
            return []
        positive, negative = _as_list(positive), _as_list(negative)
        if not positive:
            raise VectorsError("most_similar_cosmul needs at least one positive word or vector")
        inputs = {self.get_index(w) for w in positive + negative if isinstance(w, str) and w in self.index}
        limit = len(self) if not restrict_vocab else min(restrict_vocab, len(self))
        rows, norms = self.vectors[:limit], self.norms[:limit]

        def shifted(term: Key | np.ndarray) -> np.ndarray:
            term = self.vector(term, norm=True) if isinstance(term, str) else np.asarray(term, np.float32)
            return (1 + (rows @ term) / norms) / 2

        scores = np.prod([shifted(t) for t in positive], axis=0)
        scores = scores / (np.prod([shifted(t) for t in negative], axis=0) + 0.000001)
        if topn is None:
            return scores
        return self._top(scores, topn, [i for i in inputs if i < limit])

    def similar_by_word(self, word: Key, topn: int | None = 10, restrict_vocab: int | None = None):
        return self.most_similar(positive=[word], topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word

    def similar_by_vector(self, vector: np.ndarray, topn: int | None = 10, restrict_vocab: int | None = None):
        return self.most_similar(positive=[vector], topn=topn, restrict_vocab=restrict_vocab)

    def analogy(self, a: str, b: str, c: str, topn: int = 10) -> list[tuple[str, float]]:
        """a is to b as c is to ...? The words nearest to b − a + c (unit vectors, 3CosAdd), inputs excluded.

        `analogy("man", "king", "woman")` asks for king − man + woman; with good vectors "queen" comes first.
        """
        query = _unit(self.vector(b)) - _unit(self.vector(a)) + _unit(self.vector(c))
        return self.most_similar(query, topn=topn, exclude=(a, b, c))

    def doesnt_match(self, words: Sequence[str]) -> str:
        """The word farthest (cosine) from the mean of the others' unit vectors, as gensim computes it."""
        known = [w for w in words if w in self.index or self.oov is not None]
        if len(known) < 2:
            raise LmforgeError(f"doesnt_match needs at least two known words, got {list(words)}")
        units = np.stack([_unit(self.vector(w)) for w in known])
        scores = units @ _unit(units.mean(axis=0))
        return known[int(np.argmin(scores))]

    def _top(
        self, scores: np.ndarray, topn: int, excluded: Sequence[int], offset: int = 0
    ) -> list[tuple[str, float]]:
        scores = scores.copy()
        excluded = np.unique(np.asarray(excluded, dtype=np.int64))
        # outside a restricted vocabulary: not a candidate anyway
        excluded = excluded[(excluded >= 0) & (excluded < len(scores))]
        scores[excluded] = -np.inf
        topn = min(topn, len(scores) - len(excluded))
        if topn <= 0:
            return []
        best = np.argpartition(-scores, topn - 1)[:topn]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(self.words[offset + i], float(scores[i])) for i in best]

    # --- save and load ------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, binary: bool | None = None) -> Path:
        """Write the word2vec text format (or binary: `binary=True` or a `.bin` suffix), atomically."""
        path = Path(path)
        binary = path.suffix.lower() == ".bin" if binary is None else binary
        for word in self.words:
            if not word or any(ch.isspace() for ch in word):
                raise LmforgeError(
                    f"word {word!r} is empty or has whitespace: the word2vec format cannot hold it"
                )

        def write(temporary: str) -> None:
            with open(temporary, "wb") as out:
                out.write(f"{len(self)} {self.dim}\n".encode())
                if binary:
                    little = self.vectors.astype("<f4")
                    for word, row in zip(self.words, little, strict=True):
                        out.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
                else:
                    row_format = " ".join(["%.9g"] * self.dim)  # 9 significant digits round-trip a float32
                    lines = [
                        f"{word} {row_format % tuple(row)}\n"
                        for word, row in zip(self.words, self.vectors.tolist(), strict=True)
                    ]
                    out.write("".join(lines).encode("utf-8"))

        return atomic_write(path, write)

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        binary: bool | None = None,
        *,
        limit: int | None = None,
        unicode_errors: str = "strict",
    ) -> WordVectors:
        """Read the word2vec text or binary format (as written by word2vec.c, gensim or `save`); a text file
        without the 'WORDS DIMS' header (GloVe's released vectors) is read too.

        limit: read only the first N vectors (the most frequent, in files sorted by frequency), as gensim's
        `load_word2vec_format(limit=N)`. unicode_errors: what to do with words that are not valid UTF-8 —
        "strict" (an error naming the line), "replace" (U+FFFD) or "ignore", as gensim and `bytes.decode`.
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"{path}: no such vectors file (word2vec text or binary format)")
        if unicode_errors not in ("strict", "replace", "ignore"):
            raise VectorsError(f"unicode_errors must be strict, replace or ignore, got {unicode_errors!r}")
        if limit is not None and limit < 0:
            raise VectorsError(f"limit must be >= 0, got {limit}")
        binary = path.suffix.lower() == ".bin" if binary is None else binary
        with open(path, "rb") as handle:
            header = handle.readline()
            data = handle.read()
        try:
            count, dim = (int(x) for x in header.split())
        except ValueError:
            dim = None if binary else _headerless_dim(header)
            if dim is None:
                raise LmforgeError(
                    f"{path}:1: expected the word2vec header 'WORDS DIMS', got {header[:60]!r}"
                ) from None
            # GloVe's own text files have no header: every line is a word and its numbers
            words, vectors = _parse_text(path, header + data, None, dim, 1, limit, unicode_errors)
        else:
            parse = _parse_binary if binary else _parse_text
            words, vectors = parse(path, data, count, dim, 2, limit, unicode_errors)
        oov = None
        if ngram_file(path).is_file():  # saved by FastText: unknown words from n-grams
            oov = read_ngram_file(path)[2].oov_vector
        return cls(words, vectors, oov=oov)

    # --- evaluation ---------------------------------------------------------------------------------

    def evaluate_analogies(
        self,
        path: str | os.PathLike | None = None,
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> AnalogyResult:
        """Accuracy on an analogy file (`: section` lines, then `a b c expected`), as gensim computes it."""
        return evaluate_analogies(self, path, restrict_vocab, case_insensitive)

    def evaluate_pairs(
        self,
        path: str | os.PathLike | None = None,
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
    ) -> PairResult:
        """Spearman/Pearson against human similarity scores (`w1<TAB>w2<TAB>score`, `#` comments)."""
        return evaluate_pairs(
            self,
            path if path is not None else gensim_test_file(WORDSIM_FILE),
            restrict_vocab,
            case_insensitive,
        )

    # --- pictures -----------------------------------------------------------------------------------

    def plot_pca(self, words: Sequence[str], path: str | os.PathLike, title: str | None = None) -> Path:
        """Project the vectors of `words` onto their first two principal components; save a PNG."""
        if len(words) < 2:
            raise LmforgeError("plot_pca needs at least two words")
        points = np.stack([self.vector(w) for w in words]).astype(np.float64)
        centred = points - points.mean(axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)  # rows: principal directions
        xy = centred @ components[:2].T  # (n, 2)
        if xy.shape[1] < 2:
            xy = np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(7, 6))
        axes.scatter(xy[:, 0], xy[:, 1], s=14)
        for word, (x, y) in zip(words, xy, strict=True):
            axes.annotate(word, (x, y), xytext=(3, 3), textcoords="offset points", fontsize=10)
        axes.set_xlabel("principal component 1")
        axes.set_ylabel("principal component 2")
        axes.set_title(title or f"PCA of {len(words)} word vectors ({self.dim} dims)")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_figure(figure, path, dpi=110, bbox_inches="tight")


# --- the word2vec formats ----------------------------------------------------------------------------


def _headerless_dim(first_line: bytes) -> int | None:
    """The dimension of a text file without the word2vec header (GloVe's format: 'word x1 ... xD' from the
    first line on), or None when `first_line` is not such a line."""
    parts = first_line.split()
    if len(parts) < 2:
        return None
    try:
        [float(x) for x in parts[1:]]
    except ValueError:
        return None
    return len(parts) - 1


def _parse_text(
    path: Path,
    data: bytes,
    count: int | None,
    dim: int,
    first_line: int = 2,
    limit: int | None = None,
    unicode_errors: str = "strict",
) -> tuple[list[str], np.ndarray]:
    """Vector lines ('word x1 ... xD'); `count` None: as many as there are (no header to check against).
    `first_line`: the file's line number of data's first line, for the errors; `limit`: the first N only."""
    raw_lines = [line for line in data.splitlines() if line.strip()]
    if count is not None and len(raw_lines) != count:
        raise LmforgeError(
            f"{path}: the header announces {count} words but the file has {len(raw_lines)} vector lines"
        )
    if limit is not None:
        raw_lines = raw_lines[:limit]
    lines = []
    for number, line in enumerate(raw_lines):
        try:
            lines.append(line.decode("utf-8", errors=unicode_errors))
        except UnicodeDecodeError as exc:
            raise LmforgeError(
                f"{path}:{number + first_line}: byte {exc.start} of the line is not valid UTF-8; "
                "load(..., unicode_errors='replace') or 'ignore' to read it anyway"
            ) from None
    words: list[str] = []
    vectors = np.empty((len(lines), dim), dtype=np.float32)
    for number, line in enumerate(lines):
        parts = line.rstrip().split(" ")
        if len(parts) != dim + 1:
            raise LmforgeError(
                f"{path}:{number + first_line}: expected a word and {dim} numbers, got {len(parts) - 1} numbers"
            )
        words.append(parts[0])
        try:
            vectors[number] = np.array(parts[1:], dtype=np.float32)
        except ValueError:
            raise LmforgeError(f"{path}:{number + first_line}: a vector value is not a number") from None
    return words, vectors


def _parse_binary(
    path: Path,
    data: bytes,
    count: int,
    dim: int,
    first_line: int = 2,
    limit: int | None = None,
    unicode_errors: str = "strict",
) -> tuple[list[str], np.ndarray]:
    if limit is not None:
        count = min(count, limit)
    words: list[str] = []
    vectors = np.empty((count, dim), dtype=np.float32)
    row_bytes = 4 * dim
    position = 0
    for i in range(count):
        while position < len(data) and data[position : position + 1] == b"\n":  # word2vec.c ends rows with \n
            position += 1
        space = data.find(b" ", position)
        if space < 0 or space + 1 + row_bytes > len(data):
            raise LmforgeError(f"{path}: binary file ends inside word {i + 1} of {count}; it is truncated")
        try:
            words.append(data[position:space].decode("utf-8", errors=unicode_errors))
        except UnicodeDecodeError:
            raise LmforgeError(
                f"{path}: word {i + 1} of {count} is not valid UTF-8 ({data[position:space][:40]!r}); "
                "load(..., unicode_errors='replace') or 'ignore' to read it anyway"
            ) from None
        vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=space + 1)
        position = space + 1 + row_bytes
    return words, vectors


def _as_list(value) -> list:
    """gensim's convention: None → [], one word or one vector → [it], a matrix → its rows."""
    if value is None:
        return []
    if isinstance(value, (str, int, np.integer)) or (isinstance(value, np.ndarray) and value.ndim == 1):
        return [value]
    return list(value)


def _weighted_keys(positive, negative) -> tuple[list, list[float]]:
    """Keys and weights of most_similar's arguments: +1 / −1 by default, or the weight of a (key, weight)."""
    keys: list = []
    weights: list[float] = []
    for items, default in ((_as_list(positive), 1.0), (_as_list(negative), -1.0)):
        for item in items:
            if isinstance(item, tuple):
                keys.append(item[0])
                weights.append(float(item[1]))
            else:
                keys.append(item)
                weights.append(default)
    return keys, weights


def _unit(vector: np.ndarray) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


# --- evaluation --------------------------------------------------------------------------------------


def gensim_test_file(name: str, option: str = "") -> Path:
    """The path of a standard evaluation file shipped in the installed `gensim` package (found without
    importing it): only the fallback when no file is given. `option`: the command-line option that gives one."""
    spec = importlib.util.find_spec("gensim")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "test" / "test_data" / name
            if path.is_file():
                return path
    given = f"pass the file with {option} FILE" if option else "pass the file"
    raise MissingFileError(
        f"no {name} to evaluate with: {given}, or install gensim (`pip install -e '.[dev]'`), whose copies of "
        f"the standard sets ({ANALOGY_FILE}, {WORDSIM_FILE}, {SIMLEX_FILE}) are used when no file is given"
    )


@dataclass
class AnalogySection:
    name: str
    correct: int
    total: int  # questions answered (all four words known)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class AnalogyResult:
    accuracy: float  # over every answered question
    correct: int
    total: int  # answered questions
    questions: int  # all questions in the file
    oov_ratio: float  # % of questions skipped because a word is not in the first restrict_vocab words
    sections: list[AnalogySection] = field(default_factory=list)


@dataclass
class PairResult:
    spearman: float
    pearson: float
    pairs: int  # pairs scored
    oov_ratio: float  # % of pairs skipped because a word is unknown


def _ok_vocab(vectors: WordVectors, restrict_vocab: int, case_insensitive: bool) -> dict[str, int]:
    """Word (upper-cased if case-insensitive) -> row, over the first `restrict_vocab` rows; the most
    frequent case variant wins (gensim: later rows are written first, then overwritten)."""
    words = vectors.words[:restrict_vocab]
    fold = str.upper if case_insensitive else (lambda w: w)
    return {fold(word): i for i, word in reversed(list(enumerate(words)))}


def evaluate_analogies(
    vectors: WordVectors,
    path: str | os.PathLike | None = None,
    restrict_vocab: int = 300_000,
    case_insensitive: bool = True,
) -> AnalogyResult:
    """3CosAdd accuracy, overall and per section, with the same rules as gensim's evaluate_word_analogies."""
    path = Path(path) if path is not None else gensim_test_file(ANALOGY_FILE)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such analogy file")
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    fold = str.upper if case_insensitive else (lambda w: w)
    sections: list[tuple[str, list[tuple[int, int, int, int]]]] = []
    questions = 0
    for number, line in iter_lines(path):  # a byte that is not UTF-8: one line naming it
        if line.startswith(": "):
            sections.append((line.lstrip(": ").strip(), []))
            continue
        if not sections:
            raise LmforgeError(f"{path}:{number}: missing ': section' header before the first question")
        parts = [fold(w) for w in line.split()]
        if len(parts) != 4:
            continue  # gensim skips malformed lines too
        questions += 1
        if all(p in ok for p in parts):
            sections[-1][1].append(tuple(ok[p] for p in parts))
    if not questions:
        raise LmforgeError(
            f"{path}: no analogy questions (expected ': section' lines, then 'a b c expected')"
        )
    limit = min(restrict_vocab, len(vectors))
    unit = vectors.unit_vectors[:limit]
    raw = vectors.vectors[:limit]
    norms = vectors.norms[:limit]
    results = []
    for name, quads in sections:
        correct = 0
        if quads:
            ids = np.array(quads, dtype=np.int64)  # (Q, 4): a, b, c, expected
            predicted = _answer(raw, unit, norms, ids, vectors.words, fold)
            correct = int(np.sum(predicted == ids[:, 3]))
        results.append(AnalogySection(name, correct, len(quads)))
    correct = sum(s.correct for s in results)
    total = sum(s.total for s in results)
    return AnalogyResult(
        accuracy=correct / total if total else 0.0,
        correct=correct,
        total=total,
        questions=questions,
        oov_ratio=100.0 * (questions - total) / questions if questions else 0.0,
        sections=results,
    )


def _answer(
    raw: np.ndarray,
    unit: np.ndarray,
    norms: np.ndarray,
    ids: np.ndarray,
    words: list[str],
    fold: Callable[[str], str],
) -> np.ndarray:
    """Row of the best answer to each question (Q, 4) → (Q,), in batches of 256 questions."""
    answers = np.empty(len(ids), dtype=np.int64)
    safe_norms = np.where(norms > 0, norms, 1).astype(np.float32)
    for begin in range(0, len(ids), 256):
        batch = ids[begin : begin + 256]
        query = unit[batch[:, 1]] + unit[batch[:, 2]] - unit[batch[:, 0]]  # (B, D): b + c − a
        query /= np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-30)
        scores = (query @ raw.T) / safe_norms  # (B, V), as gensim: v·q / |v|
        rows = np.arange(len(batch))[:, None]
        scores[rows, batch[:, :3]] = -np.inf
        k = min(5, scores.shape[1])
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # gensim's topn=5, then in order
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)
        for q, candidates in enumerate(top):
            # gensim takes the first of the top 5 whose folded form is not an input's folded form
            inputs = {fold(words[i]) for i in batch[q, :3]}
            chosen = candidates[-1]
            for candidate in candidates:
                if fold(words[candidate]) not in inputs:
                    chosen = candidate
                    break
            answers[begin + q] = chosen
    return answers


def evaluate_pairs(
    vectors: WordVectors,
    path: str | os.PathLike,
    restrict_vocab: int = 300_000,
    case_insensitive: bool = True,
    delimiter: str = "\t",
) -> PairResult:
    """Spearman and Pearson correlation of cosine similarity with human scores, as gensim computes them."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such word-pair file")
    ok = _ok_vocab(vectors, restrict_vocab, case_insensitive)
    fold = str.upper if case_insensitive else (lambda w: w)
    gold, model = [], []
    oov = 0
    unit = vectors.unit_vectors
    for _, line in iter_lines(path):  # a byte that is not UTF-8: one line naming it
        if not line or line.startswith("#"):
            continue
        parts = line.split(delimiter)
        if len(parts) != 3:
            continue
        try:
            a, b, score = fold(parts[0]), fold(parts[1]), float(parts[2])
        except ValueError:
            continue
        if a not in ok or b not in ok:
            oov += 1
            continue
        gold.append(score)
        model.append(float(unit[ok[a]] @ unit[ok[b]]))
    if not gold:
        raise LmforgeError(
            f"{path}: no pair has both words in the vocabulary (or the file is not w1<TAB>w2<TAB>score)"
        )
    return PairResult(
        spearman=spearman(gold, model),
        pearson=float(np.corrcoef(gold, model)[0, 1]) if len(gold) > 1 else float("nan"),
        pairs=len(gold),
        oov_ratio=100.0 * oov / (len(gold) + oov),
    )


def rank_average(values: Sequence[float]) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank: [10, 20, 20, 5] -> [2, 3.5, 3.5, 1]."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(values)]])
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation: Pearson's r of the average ranks (as scipy.stats.spearmanr)."""
    if len(x) < 2:
        return float("nan")
    return float(np.corrcoef(rank_average(x), rank_average(y))[0, 1])
