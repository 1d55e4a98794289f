"""The statistics of a human evaluation: agreement between raters, a ranking of systems with confidence, and
how well an automatic metric agrees with the people. numpy only; the tests prove each function equal to the
reference library on the same data (scikit-learn, statsmodels, `krippendorff`, `choix`).

- `cohen_kappa(a, b)`: two raters' labels of the same units (Cohen, 1960);
- `fleiss_kappa(table)`: units × categories counts, the same number of raters per unit (Fleiss, 1971);
- `krippendorff_alpha(data, level)`: raters × units with gaps, nominal or ordinal (Krippendorff, 2011);
- `bradley_terry(wins, alpha)`: log-strengths that maximise the likelihood of a win matrix minus an L2
  penalty `alpha * sum(strength**2)` (so a system that wins everything stays finite), mean zero; batched,
  so that `bootstrap_bradley_terry` fits a thousand resamples at once;
- `win_rates`, `kendall_tau_wmt` (WMT's (C − D) / (C + D)), `percentile_interval`.

    >>> round(cohen_kappa(["a", "a", "b", "b"], ["a", "b", "b", "b"]), 4)
    0.5
    >>> [round(float(x), 3) for x in bradley_terry(np.array([[0, 3], [1, 0]]), alpha=1e-6)]
    [0.549, -0.549]
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np


def cohen_kappa(first: Sequence[Hashable], second: Sequence[Hashable]) -> float:
    """Cohen's κ of two raters' labels of the same units: (p_o − p_e) / (1 − p_e), p_e from each rater's
    own label frequencies. NaN when p_e is 1 (both raters always give the one same label), as scikit-learn."""
    if len(first) != len(second) or not first:
        raise ValueError("cohen_kappa needs two equally long, non-empty label lists")
    labels = sorted(set(first) | set(second), key=repr)
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)))
    for a, b in zip(first, second, strict=True):
        table[index[a], index[b]] += 1
    total = table.sum()
    observed = np.trace(table) / total
    expected = float(table.sum(1) @ table.sum(0)) / total**2
    if expected == 1.0:
        return float("nan")
    return float((observed - expected) / (1 - expected))


def fleiss_kappa(table: np.ndarray) -> float:
    """Fleiss' κ of a units × categories table of counts (row u: how many raters put unit u in each
    category); every row must sum to the same number of raters (at least 2)."""
    table = np.asarray(table, dtype=float)
    raters = table.sum(1)
    if table.ndim != 2 or len(table) == 0 or not np.all(raters == raters[0]) or raters[0] < 2:
        raise ValueError("fleiss_kappa needs units × categories counts with the same count (>= 2) per unit")
    n = raters[0]
    p_category = table.sum(0) / table.sum()
    p_unit = ((table * table).sum(1) - n) / (n * (n - 1))
    p_bar, p_expected = p_unit.mean(), float((p_category**2).sum())
    if p_expected == 1.0:
        return float("nan")
    return float((p_bar - p_expected) / (1 - p_expected))


def krippendorff_alpha(data: np.ndarray, level: str = "nominal") -> float:
    """Krippendorff's α of a raters × units array of values (NaN = not rated), `level` nominal or ordinal.

    Built on the coincidence matrix: each unit with m >= 2 values adds 1/(m − 1) for every ordered pair of
    its values; α = 1 − D_observed / D_expected with the level's squared distance δ²(c, k): nominal
    [c ≠ k]; ordinal (Σ_{g from c to k} n_g − (n_c + n_k)/2)², n_g the coincidences of value g.
    """
    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError("krippendorff_alpha needs a raters × units array")
    values = np.unique(data[~np.isnan(data)])
    index = {v: i for i, v in enumerate(values)}
    coincidences = np.zeros((len(values), len(values)))
    for unit in data.T:
        present = [index[v] for v in unit[~np.isnan(unit)]]
        if len(present) < 2:
            continue
        counts = np.bincount(present, minlength=len(values)).astype(float)
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (len(present) - 1)
    marginals = coincidences.sum(1)
    total = marginals.sum()
    if total == 0 or len(values) < 2:
        return float("nan")
    if level == "nominal":
        distance = 1.0 - np.eye(len(values))
    elif level == "ordinal":
        cumulative = np.concatenate([[0.0], np.cumsum(marginals)])
        low, high = (
            np.minimum.outer(np.arange(len(values)), np.arange(len(values))),
            np.maximum.outer(np.arange(len(values)), np.arange(len(values))),
        )
        between = cumulative[high + 1] - cumulative[low]  # Σ n_g for g from c to k, both ends included
        distance = (between - (marginals[:, None] + marginals[None, :]) / 2) ** 2
    else:
        raise ValueError(f"level must be nominal or ordinal, got {level!r}")
    observed = (coincidences * distance).sum()
    expected = (np.outer(marginals, marginals) * distance).sum() / (total - 1)
    return float(1 - observed / expected) if expected > 0 else float("nan")


def bradley_terry(wins: np.ndarray, alpha: float = 0.01, *, max_iter: int = 100, tol: float = 1e-10):
    """Bradley–Terry log-strengths θ (mean zero) from wins[i, j] = how often i beat j (fractions allowed:
    a tie is half a win each way), maximising Σ wins[i,j]·log σ(θ_i − θ_j) − alpha·Σ θ², as choix's
    `opt_pairwise` does. `wins` may be a stack (R, n, n): R fits at once, shape (R, n) back.

    Newton's method with step halving; the objective is strictly concave for alpha > 0, so the optimum is
    unique and, since the likelihood's gradient sums to zero over systems, already mean zero.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be above 0 (it keeps an unbeaten system finite), got {alpha}")
    wins = np.asarray(wins, dtype=float)
    single = wins.ndim == 2
    wins = wins[None] if single else wins
    batch, n, _ = wins.shape
    games = wins + wins.transpose(0, 2, 1)
    theta = np.zeros((batch, n))

    def objective(theta):
        difference = theta[:, :, None] - theta[:, None, :]
        return (wins * -np.logaddexp(0, -difference)).sum((1, 2)) - alpha * (theta**2).sum(1)

    current = objective(theta)
    for _ in range(max_iter):
        difference = theta[:, :, None] - theta[:, None, :]
        p = 1 / (1 + np.exp(-difference))  # P(i beats j)
        gradient = (wins - games * p).sum(2) - 2 * alpha * theta
        weight = games * p * (1 - p)
        hessian = weight - np.eye(n) * (weight.sum(2)[:, :, None] + 2 * alpha)  # negative definite
        step = -np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]
        size = np.ones(batch)
        for _ in range(30):
            candidate = theta + size[:, None] * step
            value = objective(candidate)
            worse = value < current - 1e-12
            if not worse.any():
                break
            size = np.where(worse, size / 2, size)
        theta, previous, current = candidate, current, value
        if np.all(np.abs(current - previous) <= tol * (1 + np.abs(current))) and np.abs(step).max() < 1e-8:
            break
        if np.abs(size[:, None] * step).max() < 1e-12:
            break
    theta = theta - theta.mean(1, keepdims=True)
    return theta[0] if single else theta


def win_matrix(comparisons: Sequence[tuple[int, int, float]], n: int) -> np.ndarray:
    """wins[i, j] from (i, j, score of i) triples: score 1 = i won, 0 = j won, 0.5 = tie or both bad."""
    wins = np.zeros((n, n))
    for i, j, score in comparisons:
        wins[i, j] += score
        wins[j, i] += 1 - score
    return wins


def bootstrap_bradley_terry(
    comparisons: Sequence[tuple[int, int, float]],
    n: int,
    *,
    alpha: float = 0.01,
    resamples: int = 1000,
    seed: int = 0,
    chunk: int = 250,
) -> np.ndarray:
    """(resamples, n) Bradley–Terry fits of the comparisons resampled with replacement (each comparison
    a judgment)."""
    rng = np.random.default_rng(seed)
    triples = np.asarray(comparisons, dtype=float).reshape(-1, 3)
    first, second, score = triples[:, 0].astype(int), triples[:, 1].astype(int), triples[:, 2]
    cell_win = first * n + second  # the comparison adds `score` to wins[first, second] ...
    cell_loss = second * n + first  # ... and 1 - score to wins[second, first]
    fits = []
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        counts = rng.multinomial(len(triples), np.full(len(triples), 1 / len(triples)), size=rows)
        wins = np.zeros((rows, n * n))
        for r in range(rows):
            wins[r] = np.bincount(cell_win, counts[r] * score, n * n) + np.bincount(
                cell_loss, counts[r] * (1 - score), n * n
            )
        fits.append(bradley_terry(wins.reshape(rows, n, n), alpha))
    return np.concatenate(fits)


def percentile_interval(samples: np.ndarray, level: float = 0.95, axis: int = 0):
    """(low, high) percentiles that hold `level` of the samples between them."""
    tail = (1 - level) / 2 * 100
    return np.percentile(samples, tail, axis=axis), np.percentile(samples, 100 - tail, axis=axis)


def bootstrap_mean_interval(values: Sequence[float], *, resamples: int = 1000, seed: int = 0):
    """(mean, low, high): the mean of `values` and its 95% percentile bootstrap interval."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(1)
    low, high = percentile_interval(means)
    return float(values.mean()), float(low), float(high)


def win_rates(comparisons: Sequence[tuple[int, int, float]], n: int) -> np.ndarray:
    """Per system: its wins over its comparisons, a tie or both-bad counting half a win each way
    (Chatbot Arena's count); NaN for a system never compared."""
    wins = win_matrix(comparisons, n)
    games = (wins + wins.T).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return wins.sum(1) / games


def kendall_tau_wmt(human: Sequence[int], metric_difference: Sequence[float]) -> tuple[float, int, int]:
    """WMT's Kendall τ-like agreement of a metric with human preferences: over judged pairs, human[k] is +1
    when the first output was preferred, −1 when the second, 0 for a tie (left out); metric_difference[k]
    is metric(first) − metric(second), a metric tie (0) is left out too. (τ, concordant, discordant);
    τ = (C − D) / (C + D), NaN when no pair counts.

        >>> kendall_tau_wmt([1, 1, -1, 0], [0.3, -0.1, -2.0, 5.0])
        (0.3333333333333333, 2, 1)
    """
    human = np.sign(np.asarray(human, dtype=float))
    difference = np.sign(np.asarray(metric_difference, dtype=float))
    counted = (human != 0) & (difference != 0)
    concordant = int(((human == difference) & counted).sum())
    discordant = int(((human != difference) & counted).sum())
    total = concordant + discordant
    return ((concordant - discordant) / total if total else float("nan")), concordant, discordant
