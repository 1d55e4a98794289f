"""Topics of many texts: duplicates merged, sentence embeddings clustered, each cluster named and quoted.

- `merge_duplicates`: texts equal once case, punctuation and spacing are ignored count as one text with a
  multiplicity (the clustering weighs it so); `near_duplicates` then merges, inside each topic, texts whose
  embeddings have cosine ≥ 0.95 (a reworded copy), so a topic is not quoted three times saying one thing;
- `choose_topic_count`: `--topics auto` — k-means for each k in 2..10 on a random sample of at most 2,000
  texts, scored by the silhouette (Rousseeuw, 1987; cosine distance), the best k wins; 67k texts cost no more
  than 2,000 here;
- `cluster`: scikit-learn's k-means on the unit embeddings (so Euclidean distance orders like cosine);
  above 10,000 distinct texts its mini-batch form (Sculley, 2010), which fits 67k texts in seconds;
- `topic_keywords`: class-based TF-IDF as BERTopic computes it (Grootendorst, 2022) — all texts of a topic
  are one document; a word's weight is its count in the topic × log(1 + A / its count in all topics),
  A the average number of words per topic — English stop words left out;
- `representative`: the texts nearest a topic's centre, its quotes.

    >>> merge_duplicates(["Great phone!", "great phone", "Bad battery."])
    ([0, 2], [2, 1], [0, 0, 1])
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from lmforge.errors import ConfigError

_NOT_WORD = re.compile(r"[\W_]+")


def normalise(text: str) -> str:
    """The key under which texts count as the same: lower case, words only, single spaces.

    >>> normalise("  Great   phone!! ")
    'great phone'
    """
    return _NOT_WORD.sub(" ", text.lower()).strip()


def merge_duplicates(texts: Sequence[str]) -> tuple[list[int], list[int], list[int]]:
    """(index of the first text of each distinct key, how many texts share it, each text's distinct index)."""
    first: dict[str, int] = {}
    kept: list[int] = []
    counts: list[int] = []
    member_of: list[int] = []
    for i, text in enumerate(texts):
        key = normalise(text)
        if key not in first:
            first[key] = len(kept)
            kept.append(i)
            counts.append(0)
        counts[first[key]] += 1
        member_of.append(first[key])
    return kept, counts, member_of


def require_sklearn() -> None:
    """scikit-learn is the `analyze` extra: say how to install it rather than fail on an import."""
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise ConfigError("topics need scikit-learn: pip install -e '.[analyze]'") from None


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors, dtype=np.float64), where=norms > 0)


MINIBATCH_ABOVE = 10_000  # distinct texts above which `cluster` uses MiniBatchKMeans


def check_topic_count(distinct: int, topics: int | str) -> None:
    """Refuse, before any work, a number of topics the distinct texts cannot give."""
    if topics == "auto":
        if distinct < 3:
            raise ConfigError(f"{distinct} distinct text(s) are too few to choose a number of topics "
                              "(--topics auto needs 3 or more)")  # fmt: skip
    elif int(topics) > distinct:
        raise ConfigError(
            f"{topics} topics asked for, but there are only {distinct} distinct texts; ask for fewer"
        )


def choose_topic_count(vectors: np.ndarray, *, candidates: Sequence[int] = range(2, 11), sample: int = 2000,
                       seed: int = 0, progress: bool = False) -> tuple[int, dict[int, float]]:  # fmt: skip
    """(the k with the highest silhouette on a sample, {k: silhouette}); k stays below the sample's size."""
    require_sklearn()
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from tqdm.auto import tqdm

    rng = np.random.default_rng(seed)
    rows = unit_rows(vectors)
    if len(rows) > sample:
        rows = rows[np.sort(rng.choice(len(rows), sample, replace=False))]
    ks = [k for k in candidates if 2 <= k < len(rows)]
    if not ks:
        raise ConfigError(f"{len(rows)} distinct texts are too few to choose a number of topics (2 or more)")
    scores = {}
    for k in tqdm(ks, desc="topics: silhouette of k", unit="k", leave=False, disable=not progress):
        labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(rows)
        scores[k] = float(silhouette_score(rows, labels, metric="cosine")) if len(set(labels)) > 1 else -1.0
    best = max(ks, key=lambda k: (scores[k], -k))  # on a tie, fewer topics
    return best, scores


def cluster(vectors: np.ndarray, k: int, *, weights: Sequence[float] | None = None, seed: int = 0,
            minibatch_above: int = MINIBATCH_ABOVE) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(each row's topic 0..k-1, numbered by decreasing weight; (k, d) unit centres): `KMeans(k, n_init=3)`,
    or above `minibatch_above` rows `MiniBatchKMeans(k, n_init=3, batch_size=2048)`, seeded by `seed`, on
    the unit rows weighted by `weights`."""
    require_sklearn()
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if k > len(vectors):
        raise ConfigError(f"{k} topics asked for, but there are only {len(vectors)} distinct texts")
    rows = unit_rows(vectors)
    if len(rows) > minibatch_above:
        model = MiniBatchKMeans(n_clusters=k, n_init=3, batch_size=2048, random_state=seed)
    else:
        model = KMeans(n_clusters=k, n_init=3, random_state=seed)
    model.fit(rows, sample_weight=weights)
    labels = model.labels_
    sizes = np.bincount(labels, weights=weights, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], c))  # topic 0 is the biggest
    renumber = np.empty(k, dtype=np.int64)
    renumber[order] = np.arange(k)
    return renumber[labels], unit_rows(model.cluster_centers_[order])


def topic_keywords(texts: Sequence[str], topics: Sequence[int], k: int, *, weights: Sequence[float] | None = None,
                   top: int = 8) -> list[list[str]]:  # fmt: skip
    """The `top` words of each topic by class-based TF-IDF (see the module's docstring)."""
    require_sklearn()
    from sklearn.feature_extraction.text import CountVectorizer

    counts = CountVectorizer(stop_words="english").fit(texts)
    matrix = counts.transform(texts)  # (texts, words) sparse counts
    weights = np.ones(len(texts)) if weights is None else np.asarray(weights, dtype=np.float64)
    per_topic = np.zeros((k, matrix.shape[1]))
    for topic in range(k):
        rows = np.flatnonzero(np.asarray(topics) == topic)
        if len(rows):
            per_topic[topic] = np.asarray(matrix[rows].multiply(weights[rows][:, None]).sum(axis=0)).ravel()
    total = per_topic.sum(axis=0)  # each word's count over all topics
    average_words = per_topic.sum() / k
    weight = per_topic * np.log(1 + average_words / np.maximum(total, 1e-12))
    vocabulary = counts.get_feature_names_out()
    keywords = []
    for topic in range(k):
        ranked = [i for i in np.argsort(-weight[topic], kind="stable") if per_topic[topic, i] > 0]
        keywords.append([str(vocabulary[i]) for i in ranked[:top]])
    return keywords


def representative(vectors: np.ndarray, topics: np.ndarray, centres: np.ndarray, topic: int,
                   count: int = 3) -> list[int]:  # fmt: skip
    """The rows of `topic` nearest its centre (cosine), best first."""
    rows = np.flatnonzero(topics == topic)
    closeness = unit_rows(vectors[rows]) @ centres[topic]
    return [int(rows[i]) for i in np.argsort(-closeness, kind="stable")[:count]]


def near_duplicates(
    vectors: np.ndarray, topics: np.ndarray, threshold: float = 0.95, block: int = 256
) -> np.ndarray:
    """For each row, the row it merges into (itself if none): within a topic, in order, a row whose cosine
    with a kept row is at least `threshold` joins the most similar one; otherwise it is kept. Rows are
    only compared inside their topic (a near-copy lands in its original's topic), never all n × n, and a
    block of rows at a time against the kept ones (one matrix product), so 67k texts take seconds."""
    leader = np.arange(len(vectors))
    rows = unit_rows(vectors)
    for topic in np.unique(topics):
        members = np.flatnonzero(topics == topic)
        kept = np.zeros(0, dtype=np.int64)
        for start in range(0, len(members), block):
            chunk = members[start : start + block]
            versus_kept = rows[chunk] @ rows[kept].T  # (B, kept)
            within = rows[chunk] @ rows[chunk].T  # (B, B)
            kept_here: list[int] = []  # positions in chunk kept so far
            for position, row in enumerate(chunk):
                best_row, best = -1, -np.inf
                if len(kept):
                    i = int(np.argmax(versus_kept[position]))
                    best_row, best = int(kept[i]), versus_kept[position, i]
                if kept_here:
                    j = int(np.argmax(within[position, kept_here]))
                    if within[position, kept_here[j]] > best:
                        best_row, best = int(chunk[kept_here[j]]), within[position, kept_here[j]]
                if best >= threshold:
                    leader[row] = best_row
                else:
                    kept_here.append(position)
            kept = np.concatenate([kept, chunk[kept_here]])
    return leader
