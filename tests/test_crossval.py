"""Out-of-fold probabilities: shapes, no leakage, awkward class layouts handled with clear messages."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.crossval import (
    FINETUNE_DEFAULTS,
    _inner_split,
    out_of_fold_probs,
    pool_views,
    refit_epochs,
    scoring_epochs,
    stratified_folds,
)
from workbench.errors import DataError, WorkbenchError
from workbench.sample import make_classification_sample


@pytest.fixture(scope="module")
def sample():
    frame = make_classification_sample(n_items=500, seed=2)
    return frame["text"].tolist(), frame["label"].tolist(), frame["true_label"].tolist()


def _fake_embeddings(labels, seed=0):
    """Embeddings that carry some class signal plus noise, so the embedding view has something to learn."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(labels))
    centers = rng.normal(0, 1, (len(classes), 24))
    idx = np.array([classes.index(v) for v in labels])
    return centers[idx] + rng.normal(0, 1.5, (len(labels), 24))


def test_quick_mode_probabilities(sample):
    texts, labels, true = sample
    oof = out_of_fold_probs(texts, labels, embeddings=_fake_embeddings(true), progress=False)
    assert oof.pred_probs.shape == (500, 8)
    assert np.allclose(oof.pred_probs.sum(1), 1)
    assert set(oof.views) == {"embedding", "tfidf"}
    assert oof.accuracy() > 0.8
    assert oof.params["folds"] == 5 and len(oof.params["C"]["tfidf"]) == 5
    assert abs(sum(oof.params["pool_weights"].values()) - 1) < 1e-9


def test_cross_validation_shows_its_progress_and_is_quiet_when_asked(sample, monkeypatch):
    import tqdm.auto

    bars = []

    class Recorder(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.asked = kwargs
            bars.append(self)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    texts, labels, true = sample
    emb = _fake_embeddings(true)
    out_of_fold_probs(texts, labels, embeddings=emb, progress=True)
    out_of_fold_probs(texts, labels, embeddings=emb, progress=True, refit_clean=False, views=["tfidf"])
    out_of_fold_probs(texts, labels, embeddings=emb, progress=False)
    # 5 TF-IDF folds + the embedding head, per pass (the first and the clean refit); then 5 folds, one pass
    assert [(b.asked["desc"], b.n, b.asked["total"], b.asked["disable"]) for b in bars] == [
        ("cross-validation", 12, 12, False), ("cross-validation", 5, 5, False), ("cross-validation", 0, 12, True)]


def test_refit_leaves_out_flagged_training_items_and_helps_rank_them(sample, monkeypatch):
    from sklearn.metrics import roc_auc_score

    from workbench import crossval
    from workbench.quality import normalized_margin

    texts, labels, true = sample
    calls = []
    real = crossval._fit_views

    def spy(features, y, n_classes, splits, seed, **kw):
        calls.append((splits, kw.get("fixed")))
        return real(features, y, n_classes, splits, seed, **kw)

    monkeypatch.setattr(crossval, "_fit_views", spy)
    emb = _fake_embeddings(true)
    once = out_of_fold_probs(texts, labels, embeddings=emb, progress=False, refit_clean=False)
    twice = out_of_fold_probs(texts, labels, embeddings=emb, progress=False)
    assert len(calls) == 3  # one pass without the refit, two with it
    (first, _), (second, fixed) = calls[1], calls[2]
    left_out: set[int] = set()
    for (train_a, test_a), (train_b, test_b) in zip(first, second):
        assert np.array_equal(test_a, test_b)  # every item is still scored by a model that never saw it
        assert set(train_b) <= set(train_a) and not set(train_b) & set(test_b)
        left_out |= set(train_a) - set(train_b)
    assert 0 < twice.params["refit_left_out"] == len(left_out)
    assert fixed == once.params["C"]  # the second pass keeps each fold's regularisation
    wrong = np.array(labels) != np.array(true)
    auc = [roc_auc_score(wrong, -normalized_margin(o.labels, o.pred_probs)) for o in (once, twice)]
    assert auc[1] >= auc[0] - 0.005, auc


def test_the_refit_starts_each_tfidf_fold_from_its_own_first_pass_model(sample, monkeypatch):
    from workbench import crossval

    texts, labels, true = sample
    calls = []
    real = crossval._fit_fold_sparse

    def spy(x_train, y_train, x_test, alphas, seed, init=None):
        result = real(x_train, y_train, x_test, alphas, seed, init)
        calls.append((x_test.shape[0], init, result))
        return result

    monkeypatch.setattr(crossval, "_fit_fold_sparse", spy)
    oof = out_of_fold_probs(texts, labels, embeddings=_fake_embeddings(true), progress=False)
    assert oof.params["refit_left_out"] > 0 and len(calls) == 10
    # threads finish in any order: match each fold's two fits by its test part's size and the first pass's weights
    first = [c for c in calls if c[1] is None]
    second = [c for c in calls if c[1] is not None]
    assert len(first) == len(second) == 5
    for n_test, init, (_, _, alpha, _) in second:
        # the first-pass model of the same fold (it never saw this fold's test items), not another fold's
        source = [r for n, _, r in first if r[3][0] is init[0]]
        assert len(source) == 1 and source[0][1].shape[0] == n_test and source[0][2] == alpha
    # half the first pass's SGD epochs, never fewer than the search's
    assert [refit_epochs(n) for n in (10, 8, 5, 3)] == [5, 4, 3, 3]


def test_out_of_fold_means_no_item_sees_its_own_label():
    # Pure-noise features: a model that saw its own items would fit them; out of fold it stays at chance.
    rng = np.random.default_rng(0)
    n = 300
    labels = list(rng.choice(["a", "b", "c"], n))
    texts = [f"item {i} token{rng.integers(0, 10 ** 6)}" for i in range(n)]
    oof = out_of_fold_probs(texts, labels, embeddings=rng.normal(size=(n, 50)), progress=False)
    assert oof.accuracy() < 0.45


def test_a_class_smaller_than_the_folds_keeps_the_folds(sample):
    # lowering the folds for one small class (as before: 3 here, 2 for a class of two) cost every other item
    texts, labels, true = sample
    labels = list(labels)
    idx = [i for i, v in enumerate(labels) if v == "invoice_request"]
    for i in idx[3:]:
        labels[i] = "refund_request"
    oof = out_of_fold_probs(texts, labels, embeddings=_fake_embeddings(true), progress=False, views=["embedding"])
    assert oof.params["folds"] == oof.params["folds_asked"] == 5
    tiny = np.flatnonzero(oof.labels == oof.classes.index("invoice_request"))
    tests = [set(test) for _, test in stratified_folds(oof.labels, 5, 0)]
    assert [sum(int(i) in t for t in tests) for i in tiny] == [1, 1, 1]
    assert len({j for i in tiny for j, t in enumerate(tests) if int(i) in t}) == 3  # three different folds
    assert np.allclose(oof.pred_probs.sum(1), 1)
    # every class smaller than the folds (a first handful of examples): as many folds as the largest class has items
    pairs = [c for c in "abcdefgh" for _ in range(2)]
    small = out_of_fold_probs([f"text {i}" for i in range(16)], pairs, embeddings=np.eye(16), progress=False,
                              views=["embedding"])
    assert small.params["folds"] == 2 and small.pred_probs.shape == (16, 8)


def test_the_inner_hold_out_keeps_a_class_seen_once_in_the_fitting_part():
    y = np.array([0] * 12 + [1] * 12 + [2])  # class 2: one item in this fold's training part
    fit, val = _inner_split(y, 0)
    assert 24 in fit and 24 not in val and sorted([*fit, *val]) == list(range(25))
    assert set(y[val]) == {0, 1} and len(val) == 6
    assert _inner_split(np.array([0] * 12 + [1]), 0) is None  # nothing left to stratify over two classes


def test_class_absent_from_a_training_fold_keeps_its_column():
    rng = np.random.default_rng(1)
    texts = [f"text {i}" for i in range(40)]
    labels = ["a"] * 19 + ["b"] * 19 + ["c"] * 2
    oof = out_of_fold_probs(texts, labels, classes=["a", "b", "c", "d"], embeddings=rng.normal(size=(40, 8)),
                            folds=2, progress=False, views=["embedding"])
    assert oof.pred_probs.shape == (40, 4) and np.allclose(oof.pred_probs.sum(1), 1)
    assert oof.classes == ["a", "b", "c", "d"]


@pytest.mark.parametrize(("labels", "says"), [
    (["a"] * 10, "at least two classes"),
    (["a"] * 9 + ["b"], "single item"),
    (["refund_request"] * 9 + ["Refund request"], "'Refund request' looks like 'refund_request' spelled another way"),
    (["a", "b", "a"], "cannot be split into 5 folds"),
    (["a"] * 5 + [None] * 5, "no label"),
])
def test_data_that_cannot_be_cross_validated(labels, says):
    with pytest.raises(DataError, match=says):
        out_of_fold_probs([f"t{i}" for i in range(len(labels))], labels, embeddings=np.zeros((len(labels), 4)),
                          progress=False)


def test_unknown_mode_view_and_finetune_without_engine(sample, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    texts, labels, _ = sample
    with pytest.raises(DataError, match="mode"):
        out_of_fold_probs(texts, labels, mode="deep")
    with pytest.raises(DataError, match="view"):
        out_of_fold_probs(texts, labels, views=["bm25"], embeddings=np.zeros((500, 2)))
    with pytest.raises(WorkbenchError, match="unknown FineTuneConfig field"):
        out_of_fold_probs(texts, labels, mode="finetune", epoch=3)
    assert list(tmp_path.iterdir()) == []  # a config that cannot work leaves no scratch folder behind


def test_finetune_mode_runs_k_fine_tunes(tiny_bert, tmp_path):
    frame = make_classification_sample(n_items=90, seed=3)
    oof = out_of_fold_probs(frame["text"].tolist(), frame["label"].tolist(), mode="finetune", folds=2,
                            model=str(tiny_bert), epochs=1, max_length=32, precision="fp32", runs_dir=tmp_path)
    assert oof.pred_probs.shape == (90, 8) and np.allclose(oof.pred_probs.sum(1), 1)
    folds = sorted(tmp_path.iterdir())
    assert len(folds) == 2 and oof.params["runs_dir"] == str(tmp_path)
    for fold in folds:  # kept runs keep their model, but not the checkpoint a finished run cannot use
        assert (fold / "model" / "model.safetensors").exists() and not (fold / "checkpoint").exists()


def test_finetune_mode_without_runs_dir_leaves_no_scratch_behind(tiny_bert, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    frame = make_classification_sample(n_items=60, seed=4)
    oof = out_of_fold_probs(frame["text"].tolist(), frame["label"].tolist(), mode="finetune", folds=2,
                            model=str(tiny_bert), epochs=1, max_length=32, precision="fp32")
    assert oof.pred_probs.shape[0] == 60 and oof.params["runs_dir"] is None
    assert oof.params["learning_rate"] == FINETUNE_DEFAULTS["learning_rate"]  # not set here: the default applies
    assert list(tmp_path.iterdir()) == []


def test_pooling_prefers_the_better_view():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    good = np.full((400, 3), 0.1)
    good[np.arange(400), y] = 0.8
    bad = rng.dirichlet(np.ones(3), 400)
    pooled, weights, t = pool_views([good, bad], y)
    assert weights[0] > weights[1] and np.allclose(pooled.sum(1), 1)


def test_pooling_fits_weights_and_temperature_at_the_lowest_log_loss():
    from workbench.crossval import MAX_TEMPERATURE

    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 800)

    def view(signal: float, scale: float) -> np.ndarray:
        logits = scale * (signal * np.eye(4)[y] + rng.normal(size=(800, 4)))
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    views = [view(1.5, 2.0), view(1.0, 0.7)]  # an overconfident view and an underconfident one
    pooled, weights, t = pool_views(views, y)

    def loss(w: float, temp: float) -> float:
        z = (w * np.log(views[0]) + (1 - w) * np.log(views[1])) / temp
        z -= z.max(1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(1)) - z[np.arange(800), y]))

    found = -np.mean(np.log(pooled[np.arange(800), y]))
    assert found == pytest.approx(loss(weights[0], t))
    # no point of a fine grid does better (a coarse grid's best did worse than this)
    finest = min(loss(w, temp) for w in np.linspace(0, 1, 41) for temp in np.linspace(0.2, 3, 57))
    assert found <= finest + 1e-6
    # views no better than the class shares pool to nearly uniform, at the largest temperature
    noise = [rng.dirichlet(np.full(4, 0.3), 800) for _ in range(2)]
    pooled, weights, t = pool_views(noise, y)
    assert t == MAX_TEMPERATURE and np.abs(pooled - 0.25).max() < 0.05 and sum(weights) == pytest.approx(1)


def test_quick_mode_leaves_the_callers_torch_threads_alone(sample):
    # The embedding head runs on fewer torch threads in a pool worker; OpenMP keeps that setting per thread,
    # so the caller's (a notebook cell's) count is what it was.
    import torch

    texts, labels, true = sample
    found = torch.get_num_threads()
    out_of_fold_probs(texts, labels, embeddings=_fake_embeddings(true), progress=False)
    assert torch.get_num_threads() == found


def test_the_tfidf_scoring_fit_continues_the_search_fit_at_the_chosen_alpha(sample, monkeypatch):
    from sklearn.linear_model import SGDClassifier

    from workbench import crossval
    from workbench.crossval import TFIDF_ALPHAS, TFIDF_EPOCHS, _fit_fold_sparse, _tfidf_features, continue_epochs

    texts, labels, _ = sample
    x, (y, _) = _tfidf_features(texts), crossval.encode_labels(labels)
    fits = []
    real = SGDClassifier.fit

    def spy(self, x_fit, y_fit, coef_init=None, intercept_init=None, **kw):
        fits.append((self.alpha, self.max_iter, x_fit.shape[0], None if coef_init is None else coef_init.copy()))
        model = real(self, x_fit, y_fit, coef_init=coef_init, intercept_init=intercept_init, **kw)
        fits[-1] += (model.coef_.copy(),)
        return model

    monkeypatch.setattr(SGDClassifier, "fit", spy)
    train, test = np.arange(400), np.arange(400, 500)
    _, _, alpha, _ = _fit_fold_sparse(x[train], y[train], x[test], TFIDF_ALPHAS, 0)
    *search, final = fits
    assert all(f[1] == TFIDF_EPOCHS[0] and f[2] == 300 and f[3] is None for f in search)  # a quarter held out
    assert final[:3] == (alpha, continue_epochs(400), 400)
    assert np.array_equal(final[3], [f for f in search if f[0] == alpha][0][4])
    # with nothing to search, the fit starts from zero for the full count of epochs
    fits.clear()
    _fit_fold_sparse(x[train], y[train], x[test], [1e-4], 0)
    assert [(f[1], f[3]) for f in fits] == [(scoring_epochs(400), None)]
    # about 24,000 updates: 10 epochs on small parts, 3 on the benchmark sets' folds, never more than from zero
    assert [continue_epochs(n) for n in (400, 2_400, 4_000, 8_000, 30_700)] == [10, 10, 6, 3, 3]


def test_the_tfidf_fit_needs_fewer_passes_over_more_rows():
    # 10 passes up to 15,000 training rows (every benchmark set), then about 150,000 updates, at least 3 passes
    assert [scoring_epochs(n) for n in (50, 8_000, 15_000, 20_000, 30_700, 100_000, 10**7)] == [10, 10, 10, 8, 5, 3, 3]


@pytest.mark.parametrize("texts", [["x", "y"] * 10, ["😀", "🙂", "😀 😀", "🙂 🙂"] * 5, ["!", "?"] * 8])
def test_texts_without_words_still_get_probabilities(texts):
    """Single letters and emoji have no two-letter word: the word TF-IDF found no terms and the scan crashed with
    scikit-learn's "empty vocabulary"."""
    labels = ["a", "b"] * (len(texts) // 2)
    rng = np.random.default_rng(0)
    oof = out_of_fold_probs(texts, labels, folds=2, views=("tfidf",), progress=False, refit_clean=False)
    assert oof.pred_probs.shape == (len(texts), 2) and np.allclose(oof.pred_probs.sum(1), 1)
    emb = rng.normal(size=(len(texts), 8))
    both = out_of_fold_probs(texts, labels, folds=2, embeddings=emb, progress=False)
    assert np.isfinite(both.pred_probs).all()


UPWARD_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


@pytest.mark.parametrize("rows, dims, noise, grid, expected", [
    (1500, 10, 0.0, "EMBED_CS", 6),  # clean and separable: the weakest regularisation, the grid's last C
    (400, 200, 0.5, "UPWARD_GRID", 0),  # wide and noisy: the strongest, the first C of a grid set too high
])
def test_the_c_walk_steps_out_to_the_grid_s_end_when_the_best_c_is_there(rows, dims, noise, grid, expected):
    """The walk starts at the middle three Cs and must step out round by round to the end of the grid."""
    from sklearn.model_selection import StratifiedKFold

    from workbench.crossval import EMBED_CS, _inner_split, _search_cs
    from workbench.linear import standardize

    cs = EMBED_CS if grid == "EMBED_CS" else UPWARD_GRID
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, dims)).astype(np.float32)
    y = (x[:, :5] @ rng.normal(size=(5, 3))).argmax(1)
    flip = rng.random(len(y)) < noise
    y[flip] = rng.integers(0, 3, flip.sum())
    splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y))
    inner = [_inner_split(y[train], 0) for train, _ in splits]
    best, weights = _search_cs(standardize(x), y, 3, splits, inner, [cs] * 3)
    assert best == [expected] * 3
    assert all(w.shape == (dims + 1, 3) for w in weights)


def test_the_embedding_head_runs_its_products_in_bf16_where_the_cpu_has_it(monkeypatch):
    import workbench.embed as E
    from workbench.crossval import EMBED_CS, _oof_embedding

    rng = np.random.default_rng(5)
    y = rng.integers(0, 4, 500)
    x = (rng.normal(size=(500, 24)) + 2 * rng.normal(size=(4, 24))[y]).astype(np.float32)
    splits = stratified_folds(y, 5, 0)
    fp32, c32, _ = _oof_embedding(x, y, 4, splits, [EMBED_CS] * 5, 0, precision="fp32")
    bf16, c16, _ = _oof_embedding(x, y, 4, splits, [EMBED_CS] * 5, 0, precision="bf16")
    assert c16 == c32 and not np.array_equal(bf16, fp32) and np.abs(bf16 - fp32).max() < 2e-2
    assert (bf16.argmax(1) == fp32.argmax(1)).mean() > 0.99
    for has_bf16, same_as in ((False, fp32), (True, bf16)):
        monkeypatch.setattr(E, "cpu_has_bf16", lambda has=has_bf16: has)
        assert np.array_equal(_oof_embedding(x, y, 4, splits, [EMBED_CS] * 5, 0)[0], same_as)
    with pytest.raises(DataError, match="unknown precision 'fp16' for the embedding head; use 'auto', 'bf16' or "
                                        "'fp32'"):
        _oof_embedding(x, y, 4, splits, [EMBED_CS] * 5, 0, precision="fp16")


def test_fp32_keeps_both_heads_in_float32_whatever_the_cpu(monkeypatch, tmp_path, tiny_bert):
    import workbench.embed as E
    import workbench.scan as S

    sample = make_classification_sample(n_items=200, seed=4)
    texts, labels = sample["text"].tolist(), sample["label"].tolist()
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(200, 16)).astype(np.float32)
    states = [rng.normal(size=(int(rng.integers(3, 12)), 16)).astype(np.float16) for _ in texts]

    def oof(has_bf16: bool, **options):
        monkeypatch.setattr(E, "cpu_has_bf16", lambda: has_bf16)
        return out_of_fold_probs(texts, labels, embeddings=embeddings, token_states=states, progress=False,
                                 **options).pred_probs

    without_bf16 = oof(False)
    assert np.array_equal(oof(True, head_precision="fp32"), without_bf16)
    assert not np.array_equal(oof(True), without_bf16)  # auto: bf16 products on such a CPU
    with pytest.raises(DataError, match="unknown precision 'fp16' for the quick views' heads"):
        oof(True, head_precision="fp16")
    # scan(precision="fp32") asks the heads for float32 too; other precisions leave them to the CPU
    asked = []
    real = S.out_of_fold_probs
    monkeypatch.setattr(S, "out_of_fold_probs", lambda *a, **kw: asked.append(kw["head_precision"]) or real(*a, **kw))
    for precision in ("fp32", "auto"):
        S.scan(sample, model=tiny_bert, precision=precision, cache_dir=tmp_path, progress=False, views=("embedding",))
    assert asked == ["fp32", "auto"]
