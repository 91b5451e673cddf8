"""The joint multinomial logistic regression against scikit-learn, and the on-disk corpus cache."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from workbench.corpus_cache import KEEP_PER_KIND, array_key, cached_arrays, cached_sparse, corpus_key
from workbench.linear import fit_softmax, predict_softmax, standardize
from workbench.quality import nearest_neighbors, unit_rows


def _blobs(n: int = 600, k: int = 3, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    x = rng.normal(size=(n, d)) + rng.normal(scale=1.5, size=(k, d))[y]
    return x.astype(np.float32), y


@pytest.mark.parametrize("c", [0.01, 1.0])
def test_fit_softmax_matches_sklearn(c: float) -> None:
    x, y = _blobs()
    z = standardize(x)
    weights = fit_softmax(z, y, n_classes=3, cs=[c], max_iter=200)
    ours = predict_softmax(z, weights, n_classes=3)[:, 0]
    ref = LogisticRegression(C=c, tol=1e-8, max_iter=2000).fit(z, y).predict_proba(z)
    assert ours.shape == (600, 3)
    np.testing.assert_allclose(ours.sum(1), 1.0, atol=1e-9)
    assert np.abs(ours - ref).max() < 2e-3


def test_joint_fit_equals_separate_fits_and_stronger_penalty_shrinks() -> None:
    x, y = _blobs(seed=1)
    z = standardize(x)
    cs = [0.003, 0.1, 3.0]
    joint = predict_softmax(z, fit_softmax(z, y, n_classes=3, cs=cs, max_iter=200), n_classes=3)
    for j, c in enumerate(cs):
        alone = predict_softmax(z, fit_softmax(z, y, n_classes=3, cs=[c], max_iter=200), n_classes=3)[:, 0]
        assert np.abs(joint[:, j] - alone).max() < 1e-2  # one shared line search: close, not identical
    confidence = joint.max(2).mean(0)
    assert confidence[0] < confidence[1] < confidence[2]


@pytest.mark.parametrize("k, cs, products", [
    (3, [[0.01, 1.0], [0.1], [1.0]], 1),  # thin sets: one product over all rows, others' rows weighted 0
    (8, [[0.01, 0.03, 0.1, 0.3]] * 3, 3),  # 32 columns a set: one product per set on its own rows
])
def test_fits_on_several_training_sets_equal_fits_on_each_alone(monkeypatch, k, cs, products) -> None:
    from workbench import linear

    made = []
    real = linear._Block.__init__
    monkeypatch.setattr(linear._Block, "__init__", lambda self, *a: made.append(1) or real(self, *a))
    x, y = _blobs(k=k, seed=3)
    z = standardize(x)
    rows = [np.arange(0, 400), np.arange(200, 600), np.arange(0, 600, 2)]
    joint = predict_softmax(z, fit_softmax(z, y, n_classes=k, cs=cs, rows=rows, max_iter=300), n_classes=k)
    assert len(made) == products
    assert joint.shape == (600, sum(map(len, cs)), k)
    models = [(r, c) for r, group in zip(rows, cs) for c in group]
    for j, (r, c) in enumerate(models):
        alone = predict_softmax(z, fit_softmax(z[r], y[r], n_classes=k, cs=[c], max_iter=300), n_classes=k)[:, 0]
        assert np.abs(joint[:, j] - alone).max() < 1e-2, (j, c)
    # a model never sees rows outside its training set: moving them moves no other set's model
    y2 = y.copy()
    y2[400:] = (y2[400:] + 1) % k
    first = predict_softmax(z, fit_softmax(z, y2, n_classes=k, cs=cs[:2], rows=rows[:2], max_iter=300),
                            n_classes=k)[:, :len(cs[0])]
    alone = predict_softmax(z, fit_softmax(z[:400], y[:400], n_classes=k, cs=cs[0], max_iter=300), n_classes=k)
    assert np.abs(first - alone).max() < 1e-2


@pytest.mark.parametrize("k, cs", [(3, [[0.01, 1.0], [0.1], [1.0]]), (8, [[0.01, 0.1, 1.0]] * 3)])
def test_a_fit_with_bf16_products_reaches_the_float32_optimum(k, cs) -> None:
    x, y = _blobs(n=900, k=k, d=32, seed=4)
    z = standardize(x)
    rows = [np.arange(0, 600), np.arange(300, 900), np.arange(0, 900, 2)]
    fp32 = fit_softmax(z, y, n_classes=k, cs=cs, rows=rows, max_iter=200)
    bf16 = fit_softmax(z, y, n_classes=k, cs=cs, rows=rows, max_iter=200, bf16=True)
    assert str(bf16.dtype) == "torch.float32"  # the products alone are bf16: the weights stay float32
    assert not np.array_equal(bf16.numpy(), fp32.numpy())  # they were rounded
    models = [(r, c) for r, group in zip(rows, cs) for c in group]
    for j, (r, c) in enumerate(models):
        # the objective, in float64: rounding stops the fit a little short of the optimum, never far from it
        # (flat optima, weak penalties: up to 2% of a small loss; predictions still the same)
        gap = _objective(z[r], y[r], bf16, j, k, c) - _objective(z[r], y[r], fp32, j, k, c)
        assert -1e-6 < gap < 2e-3, (j, c, gap)
    p32, p16 = (predict_softmax(z, w, n_classes=k) for w in (fp32, bf16))
    assert (p16.argmax(2) == p32.argmax(2)).mean() > 0.995


def _objective(x: np.ndarray, y: np.ndarray, weights, model: int, k: int, c: float) -> float:
    """fit_softmax's objective for one model, ``(mean cross-entropy + ||W||^2 / (2 C n))``, in float64."""
    w = weights.double().numpy()[:, model * k:(model + 1) * k]
    logits = np.c_[x, np.ones(len(x))].astype(np.float64) @ w
    logits -= logits.max(1, keepdims=True)
    cross_entropy = np.log(np.exp(logits).sum(1)) - logits[np.arange(len(y)), y]
    return float((cross_entropy.sum() + (w[:-1] ** 2).sum() / (2 * c)) / len(y))


def test_warm_start_from_a_solution_stays_there() -> None:
    x, y = _blobs(seed=2)
    z = standardize(x)
    w = fit_softmax(z, y, n_classes=3, cs=[0.1], max_iter=200)
    again = fit_softmax(z, y, n_classes=3, cs=[0.1], init=w, max_iter=5)
    assert np.abs(predict_softmax(z, w, n_classes=3) - predict_softmax(z, again, n_classes=3)).max() < 1e-4


def test_standardize_leaves_constant_columns_finite() -> None:
    x = np.c_[np.ones(5), np.arange(5.0)]
    z = standardize(x)
    assert np.isfinite(z).all() and np.allclose(z[:, 0], 0) and np.isclose(z[:, 1].std(), 1)


def test_corpus_cache_reuses_recomputes_and_prunes(tmp_path) -> None:
    import scipy.sparse as sp

    calls = []

    def compute() -> sp.csr_matrix:
        calls.append(1)
        return sp.csr_matrix(np.eye(3, dtype=np.float32))

    key = corpus_key(["a", "b"], "v1")
    first = cached_sparse("tfidf", key, compute, cache_dir=tmp_path)
    second = cached_sparse("tfidf", key, compute, cache_dir=tmp_path)
    assert len(calls) == 1 and (first != second).nnz == 0
    assert corpus_key(["a", "c"], "v1") != key and corpus_key(["a", "b"], "v2") != key
    cached_sparse("tfidf", key, compute, cache_dir=None)
    assert len(calls) == 2  # no cache dir, no caching
    # a torn file is recomputed, not an error
    path = next((tmp_path / "corpus" / "tfidf").glob("*.npz"))
    path.write_bytes(b"not a zip")
    cached_sparse("tfidf", key, compute, cache_dir=tmp_path)
    assert len(calls) == 3
    for i in range(KEEP_PER_KIND + 3):
        cached_arrays("knn", array_key(np.arange(i + 1)), lambda: (np.arange(3), np.ones(2)), cache_dir=tmp_path)
    assert len(list((tmp_path / "corpus" / "knn").glob("*.npz"))) == KEEP_PER_KIND
    newest = array_key(np.arange(KEEP_PER_KIND + 3))
    a, b = cached_arrays("knn", newest, lambda: (np.zeros(1),), cache_dir=tmp_path)
    assert a.tolist() == [0, 1, 2] and b.tolist() == [1.0, 1.0]


def test_nearest_neighbors_same_with_and_without_torch(monkeypatch) -> None:
    x = unit_rows(np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32))
    idx_t, sim_t = nearest_neighbors(x, k=5, chunk=64)
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    idx_n, sim_n = nearest_neighbors(x, k=5, chunk=64)
    assert (idx_t == idx_n).all() and np.abs(sim_t - sim_n).max() < 1e-6
    brute = x @ x.T
    np.fill_diagonal(brute, -np.inf)
    assert (idx_n[:, 0] == brute.argmax(1)).all()
