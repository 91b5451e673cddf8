"""Label-issue scores and filters on synthetic data with planted noise from a known noise matrix."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from workbench import quality as Q
from workbench.errors import DataError

K = 4
# P(given = i | true = j): columns sum to 1; asymmetric, as annotators confuse some pairs more.
NOISE = np.array([
    [0.85, 0.10, 0.00, 0.05],
    [0.10, 0.80, 0.05, 0.00],
    [0.05, 0.10, 0.90, 0.05],
    [0.00, 0.00, 0.05, 0.90],
])


def planted(n: int = 4000, seed: int = 0):
    """True labels, noisy labels drawn from NOISE, and probabilities from a decent model of the truth."""
    rng = np.random.default_rng(seed)
    true = rng.choice(K, size=n, p=[0.4, 0.3, 0.2, 0.1])
    given = np.array([rng.choice(K, p=NOISE[:, t]) for t in true])
    logits = rng.normal(0, 1.0, (n, K))
    logits[np.arange(n), true] += 3.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return true, given, probs


@pytest.fixture(scope="module")
def data():
    return planted()


def test_scores_match_definitions(data):
    _, y, p = data
    sc = Q.self_confidence(y, p)
    assert np.allclose(sc, p[np.arange(len(y)), y])
    other = p.copy()
    other[np.arange(len(y)), y] = -1
    assert np.allclose(Q.normalized_margin(y, p), (sc - other.max(1) + 1) / 2)


@pytest.mark.parametrize("method", ["self_confidence", "normalized_margin", "confidence_weighted_entropy"])
def test_scores_rank_planted_errors_first(data, method):
    true, y, p = data
    s = Q.label_quality_scores(y, p, method=method)
    assert roc_auc_score(true != y, -s) > 0.9


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 6), st.integers(5, 40), st.integers(0, 10_000))
def test_scores_in_unit_interval_and_invariant_to_class_order(k, n, seed):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(k) * 0.5, size=n)
    y = rng.integers(0, k, n)
    perm = rng.permutation(k)
    inverse = np.argsort(perm)
    for method in ("self_confidence", "normalized_margin", "confidence_weighted_entropy", "label_posterior"):
        s = Q.label_quality_scores(y, p, method=method)
        assert np.all((s >= 0) & (s <= 1))
        # relabel classes: column perm[j] of the new matrix is column j of the old one
        s2 = Q.label_quality_scores(perm[y], p[:, inverse], method=method)
        assert np.allclose(s, s2)
    neighbors = np.stack([rng.permutation(np.delete(np.arange(n), i))[:3] for i in range(n)])
    s = Q.combine_scores(y, p, neighbors)
    assert np.all((s >= 0) & (s <= 1))
    assert np.allclose(s, Q.combine_scores(perm[y], p[:, inverse], neighbors))


def test_label_posterior_is_bayes_rule_with_the_estimated_noise(data):
    true, y, p = data
    post = Q.label_posterior(y, p)
    # the same rule with the noise matrix the labels were drawn from: the estimate should be close to it
    exact = NOISE[y, y] * p[np.arange(len(y)), y] / np.einsum("nk,nk->n", NOISE[y], p)
    assert np.all((post >= 0) & (post <= 1))
    assert np.abs(post - exact).mean() < 0.02
    # it knows which confusions occur, so it ranks the planted errors above both plain scores
    errors = true != y
    auprc = average_precision_score(errors, -post)
    for plain in (Q.self_confidence, Q.normalized_margin):
        assert auprc > average_precision_score(errors, -plain(y, p)) + 0.002
    assert np.array_equal(Q.label_quality_scores(y, p, method="label_posterior"), post)


def test_label_posterior_of_a_confusion_never_seen_is_low_not_zero():
    # labels 0/1 never confused in the data, then one item labelled 0 that the model puts in class 1
    p = np.array([[0.9, 0.1]] * 50 + [[0.1, 0.9]] * 50 + [[0.02, 0.98]])
    y = np.array([0] * 50 + [1] * 50 + [0])
    post = Q.label_posterior(y, p)
    assert 0 < post[-1] < post[:100].min()


def test_noise_matrix_and_rate_are_recovered(data):
    true, y, p = data
    est = Q.noise_matrix(y, p)
    assert np.allclose(est.sum(0), 1)
    assert np.abs(est - NOISE).max() < 0.06
    assert abs(Q.noise_rate(y, p) - (true != y).mean()) < 0.03


def test_thresholds_are_class_means(data):
    _, y, p = data
    t = Q.per_class_thresholds(y, p)
    for j in range(K):
        assert np.isclose(t[j], p[y == j, j].mean())


@pytest.mark.parametrize("filter_by", list(Q.FILTERS))
def test_filters_find_planted_errors_at_least_as_well_as_cleanlab(data, filter_by):
    import cleanlab.filter

    true, y, p = data
    ours = Q.find_label_issues(y, p, filter_by=filter_by)
    theirs = cleanlab.filter.find_label_issues(y, p, filter_by=filter_by)
    truth = true != y
    assert f1_score(truth, ours) >= f1_score(truth, theirs) - 0.01
    assert f1_score(truth, ours) > 0.6
    if filter_by == "predicted_neq_given":
        assert np.array_equal(ours, p.argmax(1) != y)
    else:
        assert not (ours & (p.argmax(1) == y)).any()


def test_confident_joint_is_calibrated(data):
    _, y, p = data
    joint = Q.confident_joint(y, p)
    assert np.isclose(joint.sum(), len(y))
    assert np.allclose(joint.sum(1), np.bincount(y, minlength=K))


def test_suggestions_are_argmax(data):
    _, y, p = data
    best, prob = Q.suggest_labels(p)
    assert np.array_equal(best, p.argmax(1)) and np.allclose(prob, p.max(1))
    table = Q.rank_label_issues(y, p, classes=list("abcd"))
    assert table["score"].is_monotonic_increasing and table["rank"].tolist() == list(range(len(y)))
    assert set(table["suggested_label"]) <= set("abcd")


def test_neighbor_agreement_on_clusters():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1, (3, 16)) * 5
    x = np.concatenate([c + rng.normal(0, 0.3, (50, 16)) for c in centers])
    y = np.repeat([0, 1, 2], 50)
    y_noisy = y.copy()
    y_noisy[[3, 60, 120]] = [1, 2, 0]
    s = Q.neighbor_agreement(y_noisy, x, k=10)
    assert set(np.argsort(s)[:3]) == {3, 60, 120}
    combined = Q.label_quality_scores(y_noisy, np.full((150, 3), 1 / 3), method="combined", embeddings=x)
    assert set(np.argsort(combined)[:3]) == {3, 60, 120}


def _clusters_with_weak_model(seed: int = 0):
    """Four tight clusters (so neighbours know the truth), planted errors, and a model that is often wrong."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, K, 800)
    x = np.eye(K)[true] * 4 + rng.normal(0, 0.5, (800, K))
    given = true.copy()
    flip = rng.random(800) < 0.1
    given[flip] = (true[flip] + 1) % K
    logits = rng.normal(0, 1.0, (800, K))
    logits[np.arange(800), true] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    neighbors = Q.nearest_neighbors(Q.unit_rows(x), k=10)[0]
    return true, given, probs, neighbors


def test_combined_score_lets_good_neighbours_help_a_weak_model():
    true, y, p, neighbors = _clusters_with_weak_model()
    q = Q.neighbor_label_distribution(y, neighbors, K)
    assert q.shape == (len(y), K) and np.allclose(q.sum(1), 1)
    w = Q.choose_neighbor_weight(y, p, q)
    assert 0.4 < w <= Q.MAX_NEIGHBOR_WEIGHT  # the neighbours err far less than this model: they count most
    errors = true != y
    auc_margin = roc_auc_score(errors, -Q.normalized_margin(y, p))
    auc_combined = roc_auc_score(errors, -Q.combine_scores(y, p, neighbors))
    assert auc_combined > auc_margin + 0.1
    assert Q.noise_rate(y, p) >= Q.POSTERIOR_MIN_NOISE_RATE  # a weak model: the noise model reads it
    assert np.allclose(Q.combine_scores(y, p, neighbors, neighbor_weight=0.0), Q.label_posterior(y, p))


def test_combined_score_reads_low_noise_by_the_margin():
    # a sharp model and 1% planted errors: the confident joint's off-diagonal is too thin for the noise model
    rng = np.random.default_rng(3)
    true = rng.integers(0, K, 3000)
    given = true.copy()
    flip = rng.random(3000) < 0.01
    given[flip] = (true[flip] + 1 + rng.integers(0, K - 1, flip.sum())) % K
    logits = rng.normal(0, 1.0, (3000, K))
    logits[np.arange(3000), true] += 6.0
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert Q.noise_rate(given, p) < Q.POSTERIOR_MIN_NOISE_RATE
    neighbors = np.stack([rng.choice(3000, 10, replace=False) for _ in range(3000)])
    assert np.allclose(Q.combine_scores(given, p, neighbors, neighbor_weight=0.0), Q.normalized_margin(given, p))


def test_combined_score_ignores_neighbours_far_weaker_than_the_model(data):
    true, y, p = data
    rng = np.random.default_rng(1)
    neighbors = np.stack([rng.choice(len(y), 10, replace=False) for _ in range(len(y))])  # random "neighbours"
    q = Q.neighbor_label_distribution(y, neighbors, K)
    assert Q.choose_neighbor_weight(y, p, q) == 0.0
    assert np.allclose(Q.combine_scores(y, p, neighbors), Q.label_posterior(y, p))
    with pytest.raises(DataError, match="neighbor_weight"):
        Q.combine_scores(y, p, neighbors, neighbor_weight=1.5)
    with pytest.raises(DataError, match="neighbours"):
        Q.combine_scores(y, p, neighbors[:10])


def test_token_and_sentence_scores():
    tags = [[0, 1, 2], [0, 0]]
    probs = [np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.7, 0.1, 0.2]]),
             np.array([[0.95, 0.025, 0.025], [0.9, 0.05, 0.05]])]
    per_token = Q.token_scores(tags, probs)
    assert np.allclose(per_token[0], [0.9, 0.8, 0.2])
    assert np.allclose(Q.sentence_scores(per_token, method="min"), [0.2, 0.9])
    soft = Q.sentence_scores(per_token, method="softmin")
    assert 0.2 <= soft[0] < 0.3 and 0.9 <= soft[1] <= 0.95
    issues = Q.token_issues(tags, probs, tag_names=["O", "B-PER", "I-PER"], item_ids=["s1", "s2"])
    assert issues.to_dict("records") == [{"item_id": "s1", "token": 2, "given_tag": "I-PER", "suggested_tag": "O",
                                          "score": pytest.approx(0.2), "suggested_prob": pytest.approx(0.7)}]


@pytest.mark.parametrize(("labels", "probs", "says"), [
    ([0, 1], np.array([0.5, 0.5]), "2-D"),
    ([0, 1, 1], np.array([[0.5, 0.5], [0.5, 0.5]]), "labels has shape"),
    ([0, 1], np.array([[0.5, 0.6], [0.5, 0.5]]), r"of row 0 sum to 1.1000, not 1 \(1 of 2 rows\)"),
    ([0, 1], np.array([[np.nan, 1.0], [0.5, 0.5]]), "NaN"),
    ([0, 2], np.array([[0.5, 0.5], [0.5, 0.5]]), "outside the classes"),
    (["a", "b"], np.array([[0.5, 0.5], [0.5, 0.5]]), "class indices"),
    ([0, 1], np.array([[1.5, -0.5], [0.5, 0.5]]), "negative"),
    ([0, 0], np.array([[1.0], [1.0]]), "at least 2 classes"),
])
def test_bad_probabilities_give_clear_errors(labels, probs, says):
    with pytest.raises(DataError, match=says):
        Q.find_label_issues(labels, probs)


def _many_classes_with_tied_cells(seed: int):
    """30 classes, a few flips per class: rows of the calibrated joint hold equal fractional cells,
    and some items give their label probability 0 (ties in the filters' sort orders)."""
    rng = np.random.default_rng(seed)
    k, n = 30, 3000
    true = rng.integers(0, k, n)
    given = true.copy()
    flip = rng.random(n) < 0.06
    given[flip] = (true[flip] + rng.integers(1, 4, flip.sum())) % k
    logits = rng.normal(0, 1.0, (n, k))
    logits[np.arange(n), true] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    # published probabilities often hold exact zeros: ties on the given class's probability and margin
    zero = flip | (rng.random(n) < 0.05)  # more zeros per class than it has errors: the cut falls inside a tie
    probs[zero, given[zero]] = 0.0
    return given, probs / probs.sum(1, keepdims=True)


@pytest.mark.parametrize("seed", range(4))
def test_filters_flag_the_same_items_as_cleanlab_on_ties(seed):
    import cleanlab.filter

    y, p = _many_classes_with_tied_cells(seed)
    joint = Q.confident_joint(y, p)
    ties = [row for row in joint if len(np.unique(np.round(row[row % 1 > 1e-9], 9))) < (row % 1 > 1e-9).sum()]
    assert ties, "the fixture must produce rows with tied remainders, or the test checks nothing"
    for filter_by in Q.FILTERS:
        ours = Q.find_label_issues(y, p, filter_by=filter_by)
        theirs = cleanlab.filter.find_label_issues(y, p, filter_by=filter_by, n_jobs=1)
        assert np.array_equal(ours, theirs), (filter_by, np.flatnonzero(ours != theirs))


def test_the_report_gate_names_each_limit_exceeded():
    import pandas as pd

    from workbench.errors import DataError
    from workbench.report import QualityReport

    report = QualityReport({"estimated_noise_rate": 0.08, "issue_counts": {"label": 30, "exact_duplicate": 2}},
                           pd.DataFrame())
    assert report.gate() == [] and report.gate(max_noise_rate=0.1, max_issues={"label": 30, "outlier": 0}) == []
    assert report.gate(max_noise_rate=0.05, max_issues={"exact_duplicate": 1}) == [
        "estimated noise rate 0.080 is above 0.05", "2 items with issue exact_duplicate, more than 1"]
    with pytest.raises(DataError, match=r"unknown issue type\(s\) \['dupes'\]"):
        report.gate(max_issues={"dupes": 0})
    # 5 meant 5%: a gate no data could fail; a negative count, one no data could pass
    with pytest.raises(DataError, match=r"max_noise_rate=5: .* between 0 and 1 \(0.05 for 5%\)"):
        report.gate(max_noise_rate=5)
    with pytest.raises(DataError, match=r"max_issues=\{'label': -1\}: .* 0 or more"):
        report.gate(max_issues={"label": -1})
