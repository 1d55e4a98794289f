"""lmforge.humaneval.stats against the reference libraries on the same data (scikit-learn, statsmodels,
`krippendorff`, `choix`), and the report against the truth: simulated raters drawn from a known Bradley–Terry
model."""

from __future__ import annotations

import numpy as np
import pytest

from lmforge.humaneval import analyze, create_study, simulate, stats

SEEDS = range(6)


def _labels(rng, n, categories, agreement):
    first = rng.integers(0, categories, n)
    second = np.where(rng.random(n) < agreement, first, rng.integers(0, categories, n))
    return first, second


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_kappa_equals_scikit_learn(seed):
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(seed)
    first, second = _labels(rng, 20 + 10 * seed, 2 + seed % 3, 0.3 + 0.1 * seed)
    names = np.array(["first", "second", "tie", "both_bad", "x"])  # strings, as the report's labels
    ours = stats.cohen_kappa(list(names[first]), list(names[second]))
    assert ours == pytest.approx(cohen_kappa_score(names[first], names[second]), abs=1e-12)


def test_cohen_kappa_of_identical_constant_labels_is_nan_like_scikit_learn():
    from sklearn.metrics import cohen_kappa_score

    with pytest.warns(UserWarning):  # scikit-learn says why it is undefined
        reference = cohen_kappa_score(["tie"] * 4, ["tie"] * 4)
    assert np.isnan(stats.cohen_kappa(["tie"] * 4, ["tie"] * 4)) and np.isnan(reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_fleiss_kappa_equals_statsmodels(seed):
    from statsmodels.stats.inter_rater import fleiss_kappa

    rng = np.random.default_rng(seed)
    raters = 2 + seed % 4
    table = rng.multinomial(raters, rng.dirichlet(np.ones(4)), size=15 + 5 * seed)
    assert stats.fleiss_kappa(table) == pytest.approx(fleiss_kappa(table, method="fleiss"), abs=1e-12)


def test_fleiss_kappa_worked_example_from_fleiss_1971():
    """The 10 × 5 table of Wikipedia's worked example (14 raters per unit): κ = 0.210."""
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    assert round(stats.fleiss_kappa(table), 3) == 0.210


@pytest.mark.parametrize("level", ["nominal", "ordinal"])
@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_alpha_equals_the_krippendorff_package(seed, level):
    import krippendorff

    rng = np.random.default_rng(seed)
    raters, units = 3 + seed % 3, 25
    truth = rng.integers(1, 6, units)
    data = np.where(rng.random((raters, units)) < 0.6, truth, rng.integers(1, 6, (raters, units))).astype(
        float
    )
    data[rng.random(data.shape) < 0.25] = np.nan  # raters who skipped units
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert stats.krippendorff_alpha(data, level) == pytest.approx(expected, abs=1e-9)


def _comparisons(rng, strengths, count):
    n = len(strengths)
    found = []
    for _ in range(count):
        i, j = rng.choice(n, 2, replace=False)
        p = 1 / (1 + np.exp(strengths[j] - strengths[i]))
        found.append((i, j) if rng.random() < p else (j, i))
    return found


@pytest.mark.parametrize("alpha", [0.01, 1e-4, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_bradley_terry_equals_choix(seed, alpha):
    import choix

    rng = np.random.default_rng(seed)
    strengths = rng.normal(0, 1, 3 + seed)
    data = _comparisons(rng, strengths, 60 + 40 * seed)
    wins = stats.win_matrix([(w, l, 1.0) for w, l in data], len(strengths))
    expected = choix.opt_pairwise(len(strengths), data, alpha=alpha)
    ours = stats.bradley_terry(wins, alpha)
    assert ours.mean() == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(ours, expected - expected.mean(), atol=1e-6)


def test_bradley_terry_stays_finite_for_a_system_that_wins_everything():
    import choix

    data = [(0, 1)] * 10 + [(0, 2)] * 10 + [(1, 2)] * 3 + [(2, 1)] * 2
    ours = stats.bradley_terry(stats.win_matrix([(w, l, 1.0) for w, l in data], 3), 0.01)
    expected = choix.opt_pairwise(3, data, alpha=0.01)
    assert np.all(np.isfinite(ours)) and ours[0] > ours[1] > ours[2]
    np.testing.assert_allclose(ours, expected - expected.mean(), atol=1e-5)


def test_a_tie_is_half_a_win_each_way():
    """A tie as 0.5 / 0.5 equals two comparisons, one each way, at half the weight: doubling every count
    and splitting the ties gives choix's fit of the doubled data with twice the penalty per comparison."""
    import choix

    comparisons = [(0, 1, 1.0), (0, 1, 0.5), (1, 2, 0.5), (2, 0, 0.0), (1, 2, 1.0)]
    doubled = []
    for i, j, score in comparisons:
        doubled += [(i, j), (i, j)] if score == 1 else [(j, i), (j, i)] if score == 0 else [(i, j), (j, i)]
    ours = stats.bradley_terry(stats.win_matrix(comparisons, 3), 0.05)
    expected = choix.opt_pairwise(3, doubled, alpha=0.1)
    np.testing.assert_allclose(ours, expected - expected.mean(), atol=1e-6)
    rates = stats.win_rates(comparisons, 3)
    np.testing.assert_allclose(rates, [(1 + 0.5 + 1) / 3, (0 + 0.5 + 0.5 + 1) / 4, (0.5 + 0) / 3])


def test_bootstrap_fits_equal_one_fit_per_resample():
    rng = np.random.default_rng(3)
    comparisons = [(i, j, 1.0) for i, j in _comparisons(rng, np.array([0.5, 0.0, -0.5]), 80)]
    fits = stats.bootstrap_bradley_terry(comparisons, 3, resamples=5, seed=11, chunk=2)
    again = np.random.default_rng(11)  # the same draws, one at a time
    for fit in fits[:2]:
        counts = again.multinomial(len(comparisons), np.full(len(comparisons), 1 / len(comparisons)))
        resampled = [c for c, k in zip(comparisons, counts, strict=True) for _ in range(k)]
        np.testing.assert_allclose(fit, stats.bradley_terry(stats.win_matrix(resampled, 3), 0.01), atol=1e-8)


def test_kendall_tau_wmt_counts_concordant_and_discordant_pairs():
    human = [1, -1, 1, 1, 0, -1]
    metric = [2.0, -1.0, -3.0, 0.0, 9.0, 4.0]  # C, C, D, metric tie (out), human tie (out), D
    assert stats.kendall_tau_wmt(human, metric) == (0.0, 2, 2)
    assert stats.kendall_tau_wmt([1, 1], [1.0, 2.0]) == (1.0, 2, 0)


def test_simulated_raters_recover_the_true_bradley_terry_model(tmp_path):
    """50 seeds of 4 raters drawn from a pure Bradley–Terry model (3 systems, 30 items, every pair, 2
    raters each: 180 preferences): the report ranks the systems in the true order, and each true
    log-strength lies inside its 95% interval in at least 88% of the 150 (system, seed) cases."""
    truth = {"good": 0.7, "middle": 0.1, "poor": -0.8}  # mean zero, as the report's log-strengths
    inside, ordered, cases = 0, 0, 0
    for seed in range(50):
        outputs = {name: [f"{name} {i}" for i in range(30)] for name in truth}
        study = create_study(
            tmp_path / f"{seed}.db",
            name="sim",
            outputs=outputs,
            raters=4,
            per_item=2,
            task="pairwise",
            seed=seed,
        )
        with study:
            assert simulate(study, truth, seed=seed) == 180
            report = analyze(study, resamples=200, seed=seed)
        bt = report["bradley_terry"]
        ordered += sorted(bt, key=lambda s: -bt[s]["strength"]) == list(truth)
        for system, true in truth.items():
            cases += 1
            inside += bt[system]["ci_low"] <= true <= bt[system]["ci_high"]
    assert ordered == 50
    assert inside / cases >= 0.88, inside / cases
