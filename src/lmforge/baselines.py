"""Traditional machine learning beside the language models: TF-IDF features + logistic regression.

What this file implements (numpy only, deterministic; scikit-learn is the reference in the tests):
  - `SparseRows`: a compressed-sparse-row matrix with the two products a linear model needs (X @ W and
    Xᵀ @ R), each a `np.bincount` — exact, ordered sums, so results do not depend on threads; `DenseRows`,
    the same two products of a dense matrix (word or sentence vectors);
  - `TfidfVectorizer`: scikit-learn's defaults — lower-case, words of 2+ word characters
    (``(?u)\\b\\w\\w+\\b``), optional n-grams, vocabulary in sorted order, smooth idf
    ln((1 + n) / (1 + df)) + 1, raw counts × idf, each row scaled to unit L2 norm;
  - `LogisticRegression`: L2-regularised (C = inverse strength, intercept not penalised), fitted by
    L-BFGS (`minimize_lbfgs`) on the mean cross-entropy — a sigmoid for two classes, a softmax for more, as scikit-learn's
    lbfgs solver does; the same objective, so the same weights;
  - `tfidf_logreg`: train on labelled examples, score on the dev examples (accuracy, macro-F1).

    >>> vectorizer = TfidfVectorizer().fit(["a good film", "a bad film"])
    >>> vectorizer.vocabulary                       # 1-letter words are not tokens
    {'bad': 0, 'film': 1, 'good': 2}
    >>> X = vectorizer.transform(["good good film"])          # tf × idf, unit length
    >>> X.to_dense().round(3)         # good: tf 2 × idf 1.405; film: 1 × 1 (in every document)
    array([[0.   , 0.335, 0.942]])
    >>> model = LogisticRegression().fit(vectorizer.transform(["a good film", "a bad film"]), [1, 0])
    >>> model.predict(vectorizer.transform(["a good one", "bad"]))    # class indices
    array([1, 0])
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern


@dataclass
class SparseRows:
    """A (rows, columns) CSR matrix: row i holds values data[indptr[i]:indptr[i+1]] at columns indices[...]."""

    indptr: np.ndarray  # (rows + 1,) int64
    indices: np.ndarray  # (nnz,) int64 column of each stored value, ascending within a row
    data: np.ndarray  # (nnz,) float64
    num_columns: int

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.indptr) - 1, self.num_columns

    @cached_property
    def row_of_value(self) -> np.ndarray:
        """(nnz,) the row of each stored value."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def matmul(self, weights: np.ndarray) -> np.ndarray:
        """X @ W: (rows, columns) @ (columns, K) -> (rows, K)."""
        rows = self.row_of_value
        out = np.empty((self.shape[0], weights.shape[1]))
        for k in range(weights.shape[1]):
            out[:, k] = np.bincount(rows, self.data * weights[self.indices, k], minlength=self.shape[0])
        return out

    def rmatmul(self, residuals: np.ndarray) -> np.ndarray:
        """Xᵀ @ R: (columns, rows) @ (rows, K) -> (columns, K)."""
        rows = self.row_of_value
        out = np.empty((self.num_columns, residuals.shape[1]))
        for k in range(residuals.shape[1]):
            out[:, k] = np.bincount(self.indices, self.data * residuals[rows, k], minlength=self.num_columns)
        return out

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        dense[self.row_of_value, self.indices] = self.data
        return dense


@dataclass
class DenseRows:
    """A dense (rows, columns) float64 matrix with the same two products as `SparseRows` (BLAS), so that
    `LogisticRegression` also fits dense features (word or sentence vectors)."""

    values: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape

    def matmul(self, weights: np.ndarray) -> np.ndarray:
        return self.values @ weights

    def rmatmul(self, residuals: np.ndarray) -> np.ndarray:
        return self.values.T @ residuals


class TfidfVectorizer:
    """Texts -> L2-normalised TF-IDF rows over a vocabulary learnt from the training texts."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 1), min_df: int = 1):
        if not 1 <= ngram_range[0] <= ngram_range[1]:
            raise ValueError(f"ngram_range {ngram_range}: need 1 <= low <= high")
        self.ngram_range = ngram_range
        self.min_df = min_df  # drop terms found in fewer training documents
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0)  # (vocabulary,)

    def analyze(self, text: str) -> list[str]:
        """The terms of a text: ``"It's a GOOD, good film"`` -> ['it', 'good', 'good', 'film'] (+ n-grams)."""
        words = TOKEN_PATTERN.findall(text.lower())
        low, high = self.ngram_range
        terms = words if low == 1 else []
        for n in range(max(low, 2), high + 1):
            terms += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
        return terms

    def fit(self, texts: Sequence[str]) -> TfidfVectorizer:
        document_frequency: Counter[str] = Counter()
        for text in texts:
            document_frequency.update(set(self.analyze(text)))
        kept = sorted(term for term, df in document_frequency.items() if df >= self.min_df)
        self.vocabulary = {term: i for i, term in enumerate(kept)}
        df = np.array([document_frequency[term] for term in kept], dtype=np.float64)
        self.idf = np.log((1 + len(texts)) / (1 + df)) + 1  # smooth idf: as if one document held every term
        return self

    def transform(self, texts: Sequence[str]) -> SparseRows:
        indptr, indices, data = [0], [], []
        for text in texts:
            counts = Counter(i for term in self.analyze(text) if (i := self.vocabulary.get(term)) is not None)
            columns = sorted(counts)
            values = np.array([counts[c] for c in columns], dtype=np.float64) * self.idf[columns]
            norm = math.sqrt(dot(values, values))
            indices += columns
            data += (values / norm).tolist() if norm > 0 else values.tolist()
            indptr.append(len(indices))
        return SparseRows(
            np.array(indptr, dtype=np.int64),
            np.array(indices, dtype=np.int64),
            np.array(data, dtype=np.float64),
            len(self.vocabulary),
        )

    def fit_transform(self, texts: Sequence[str]) -> SparseRows:
        return self.fit(texts).transform(texts)


class LogisticRegression:
    """Minimises mean cross-entropy + ||W||² / (2·C·n) — scikit-learn's objective divided by n (same optimum).

    Two classes: one weight column, P(class 1) = sigmoid(x·w + b) (the softmax with class 0's logit fixed
    at 0). More: one column per class, softmax.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 500, tol: float = 1e-6):
        self.C = C
        self.max_iter = max_iter
        self.tol = tol  # stop when every gradient component is below this
        self.coef = np.zeros((0, 0))  # (columns, K): K = 1 for two classes, else the number of classes
        self.intercept = np.zeros(0)  # (K,)
        self.num_classes = 0
        self.iterations = 0

    def _logits(self, X: SparseRows, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
        scores = X.matmul(coef) + intercept  # (rows, K)
        if self.num_classes == 2:
            scores = np.concatenate([np.zeros((len(scores), 1)), scores], axis=1)
        return scores  # (rows, classes)

    def fit(self, X: SparseRows, labels: Sequence[int], num_classes: int | None = None) -> LogisticRegression:
        labels = np.asarray(labels, dtype=np.int64)
        self.num_classes = num_classes or int(labels.max()) + 1
        if self.num_classes < 2:
            raise ValueError("logistic regression needs at least two classes")
        rows, columns = X.shape
        width = 1 if self.num_classes == 2 else self.num_classes
        one_hot = np.eye(self.num_classes)[labels]  # (rows, classes)
        penalty = 1.0 / (self.C * rows)

        def objective_and_gradient(flat: np.ndarray) -> tuple[float, np.ndarray]:
            coef = flat[: columns * width].reshape(columns, width)
            intercept = flat[columns * width :]
            logits = self._logits(X, coef, intercept)
            logits -= logits.max(axis=1, keepdims=True)
            log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            loss = -float((one_hot * log_probs).sum()) / rows + 0.5 * penalty * float((coef * coef).sum())
            residual = (np.exp(log_probs) - one_hot) / rows  # d loss / d logits
            if self.num_classes == 2:
                residual = residual[:, 1:]
            gradient_coef = X.rmatmul(residual) + penalty * coef
            return loss, np.concatenate([gradient_coef.ravel(), residual.sum(axis=0)])

        flat, self.iterations = minimize_lbfgs(
            objective_and_gradient, np.zeros((columns + 1) * width), max_iter=self.max_iter, tol=self.tol
        )
        self.coef = flat[: columns * width].reshape(columns, width)
        self.intercept = flat[columns * width :]
        return self

    def predict_proba(self, X: SparseRows) -> np.ndarray:
        logits = self._logits(X, self.coef, self.intercept)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True)  # (rows, classes)

    def predict(self, X: SparseRows) -> np.ndarray:
        return self._logits(X, self.coef, self.intercept).argmax(axis=1)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """a·b without BLAS: OpenBLAS threads its dot products above ~10k elements, and on a busy machine its
    spinning threads made them 1000x slower; an elementwise product and a sum are always quick."""
    return float(np.multiply(a, b).sum())


def minimize_lbfgs(function, x: np.ndarray, *, max_iter: int, tol: float, history: int = 10):
    """Minimise a smooth convex `function(x) -> (value, gradient)` by L-BFGS (Nocedal & Wright, algorithm
    7.4) with a backtracking (Armijo) line search; stops when every gradient component is below `tol`.
    Returns (x, iterations). `history` = 10 pairs, as scipy's L-BFGS-B that scikit-learn uses."""
    value, gradient = function(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (step s, gradient change y, 1 / s·y)
    for iteration in range(max_iter):
        if np.abs(gradient).max() <= tol:
            return x, iteration
        # two-loop recursion: direction = -H·gradient with H the inverse-Hessian estimate from the pairs
        direction = gradient.copy()
        alphas = []
        for s, y, rho in reversed(pairs):
            alphas.append(rho * dot(s, direction))
            direction -= alphas[-1] * y
        s, y, _ = pairs[-1] if pairs else (None, None, None)
        scale = dot(s, y) / dot(y, y) if pairs else min(1.0, 1.0 / np.abs(gradient).sum())
        direction *= scale
        for (s, y, rho), alpha in zip(pairs, reversed(alphas), strict=True):
            direction += s * (alpha - rho * dot(y, direction))
        direction = -direction
        slope = dot(gradient, direction)  # < 0: a descent direction
        step = 1.0
        while True:
            candidate = x + step * direction
            new_value, new_gradient = function(candidate)
            if new_value <= value + 1e-4 * step * slope:  # sufficient decrease
                break
            step *= 0.5
            if step < 1e-10:  # no progress possible at float64 precision: converged as far as it can
                return x, iteration
        s, y = candidate - x, new_gradient - gradient
        if dot(s, y) > 1e-12:  # keep the estimate positive definite
            pairs = [*pairs[-(history - 1) :], (s, y, 1.0 / dot(s, y))]
        x, value, gradient = candidate, new_value, new_gradient
    return x, max_iter


@dataclass
class BaselineResult:
    accuracy: float
    macro_f1: float
    features: int  # vocabulary size
    train_examples: int
    seconds: float  # fit + dev prediction


def tfidf_logreg(train_examples, dev_examples, labels: Sequence[str], C: float = 1.0) -> BaselineResult:
    """TF-IDF + logistic regression trained on `train_examples`, scored on `dev_examples`
    (`lmforge.data.classification.Example`s; a text pair is joined into one text)."""
    from lmforge.metrics import accuracy, precision_recall_f1

    started = time.perf_counter()
    index = {label: i for i, label in enumerate(labels)}

    def text(example) -> str:
        return example.text if example.pair is None else f"{example.text} {example.pair}"

    vectorizer = TfidfVectorizer()
    features = vectorizer.fit_transform([text(e) for e in train_examples])
    model = LogisticRegression(C=C).fit(features, [index[e.label] for e in train_examples], len(labels))
    predictions = model.predict(vectorizer.transform([text(e) for e in dev_examples])).tolist()
    truths = [index[e.label] for e in dev_examples]
    macro = precision_recall_f1(predictions, truths, average="macro", classes=list(range(len(labels))))
    return BaselineResult(
        accuracy=accuracy(predictions, truths),
        macro_f1=macro.f1,
        features=len(vectorizer.vocabulary),
        train_examples=len(train_examples),
        seconds=time.perf_counter() - started,
    )
