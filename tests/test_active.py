"""Active learning: each strategy on data where the right pick is known, batches, seeds, errors, the store loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, load_dataset
from workbench.active import (
    STRATEGIES,
    ActiveLearner,
    DensityWeightedUncertainty,
    DiversitySampling,
    EntropySampling,
    LeastConfidence,
    MarginSampling,
    PoolState,
    QuickHead,
    RandomSampling,
    SparseRegionSampling,
    UpdateResult,
    knn_density,
    make_strategy,
    prediction_agreement,
    simulate,
    stratified_seed,
)
from workbench.errors import DataError


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def state(probs, embeddings=None, *, labelled=None, seed=0) -> PoolState:
    probs = np.asarray(probs, dtype=float)
    rng = np.random.default_rng(seed)
    if embeddings is None:
        embeddings = unit(rng.normal(size=(len(probs), 16)))
    labelled = np.zeros((0, embeddings.shape[1])) if labelled is None else labelled
    return PoolState(probs, embeddings, knn_density(embeddings, k=3), labelled, np.zeros(len(labelled), dtype=int),
                     rng)


def blobs(n_per: int, centres: np.ndarray, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.normal(size=(n_per, centres.shape[1])) for c in centres])
    return unit(x), np.repeat(np.arange(len(centres)), n_per)


# ------------------------------------------------------------------------------------- single strategies
def test_uncertainty_strategies_pick_the_known_most_uncertain_row():
    probs = np.array([[0.9, 0.05, 0.05], [0.5, 0.5, 0.0], [0.34, 0.33, 0.33], [0.6, 0.4, 0.0], [0.98, 0.01, 0.01]])
    assert MarginSampling().query(state(probs), 1)[0] == 1  # the exact tie
    assert LeastConfidence().query(state(probs), 1)[0] == 2  # lowest top probability
    assert EntropySampling().query(state(probs), 1)[0] == 2  # flattest distribution
    assert list(MarginSampling().query(state(probs), 5)) == [1, 2, 3, 0, 4]


def test_margin_breaks_equal_margins_at_random_not_by_position():
    probs = np.tile([0.5, 0.5], (50, 1))
    firsts = {int(MarginSampling().query(state(probs, seed=s), 1)[0]) for s in range(20)}
    assert len(firsts) > 5


def test_density_weighting_prefers_the_uncertain_item_in_a_dense_region():
    x, _ = blobs(30, np.eye(8)[:1] * 5, 0.1)
    outlier = unit(np.eye(8)[3:4])
    emb = np.concatenate([x, outlier])
    probs = np.tile([0.9, 0.1], (len(emb), 1))
    probs[0] = probs[-1] = [0.5, 0.5]  # two equally uncertain items: one in the blob, one alone
    assert DensityWeightedUncertainty(beta=1).query(state(probs, emb), 1)[0] == 0
    assert DensityWeightedUncertainty(beta=0).rank(state(probs, emb), 1)[:2].tolist() in ([0, 30], [30, 0])


def test_sparse_region_sampling_finds_the_sparse_cluster_far_more_often_than_chance():
    dense, _ = blobs(200, np.eye(8)[:1] * 5, 0.05, seed=1)
    sparse = unit(np.random.default_rng(2).normal(size=(10, 8)))  # scattered, far apart
    emb = np.concatenate([dense, sparse])
    probs = np.tile([0.5, 0.5], (len(emb), 1))
    hits = sum(int((SparseRegionSampling().query(state(probs, emb, seed=s), 5) >= 200).sum()) for s in range(40))
    assert hits / (40 * 5) > 0.5  # uniform sampling would give 10/210 = 0.05


def test_kmeans_margin_spreads_one_batch_over_the_clusters():
    x, y = blobs(40, np.eye(8)[:4] * 5, 0.2)
    probs = np.tile([0.5, 0.5], (len(x), 1))  # all equally uncertain: only diversity can decide
    picks = DiversitySampling(method="kmeans", shortlist=None).query(state(probs, x), 4)
    assert sorted(y[picks]) == [0, 1, 2, 3]


def test_coreset_picks_the_item_farthest_from_everything_labelled():
    x, y = blobs(20, np.eye(8)[:3] * 5, 0.1)
    probs = np.tile([0.5, 0.5], (len(x), 1))
    labelled = np.concatenate([x[y == 0][:3], x[y == 1][:3]])  # clusters 0 and 1 are covered, 2 is not
    picks = DiversitySampling(method="coreset", shortlist=None).query(state(probs, x, labelled=labelled), 1)
    assert y[picks[0]] == 2


def test_random_sampling_covers_the_pool_uniformly():
    probs = np.tile([0.5, 0.5], (20, 1))
    counts = np.bincount(np.concatenate([RandomSampling().query(state(probs, seed=s), 2) for s in range(400)]),
                         minlength=20)
    assert counts.min() > 20 and counts.max() < 70  # expected 40 each


# ------------------------------------------------------------------------------------- batches and seeds
@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_strategy_is_deterministic_by_seed_and_never_repeats(name):
    x, _ = blobs(30, np.eye(8)[:3] * 5, 0.5)
    probs = np.random.default_rng(3).dirichlet(np.ones(3), size=len(x))
    a = make_strategy(name).query(state(probs, x, seed=7), 10)
    b = make_strategy(name).query(state(probs, x, seed=7), 10)
    assert a.tolist() == b.tolist() and len(set(a.tolist())) == 10


def test_one_batch_holds_no_near_duplicates():
    base = unit(np.random.default_rng(0).normal(size=(10, 16)))
    emb = np.concatenate([base, base + 1e-4, base + 2e-4])  # every item three times
    emb = unit(emb)
    probs = np.tile([0.5, 0.5], (len(emb), 1))
    probs[:10] = [0.51, 0.49]  # the most uncertain copies come first in the ranking
    for strategy in (MarginSampling(), LeastConfidence(), RandomSampling()):
        picks = strategy.query(state(probs, emb), 10)
        sims = emb[picks] @ emb[picks].T
        np.fill_diagonal(sims, 0)
        assert sims.max() < 0.97, strategy.name


def test_near_duplicates_are_used_only_when_nothing_else_is_left():
    base = unit(np.random.default_rng(0).normal(size=(2, 16)))
    emb = unit(np.concatenate([base, base + 1e-4]))
    probs = np.tile([0.5, 0.5], (4, 1))
    assert sorted(MarginSampling().query(state(probs, emb), 4).tolist()) == [0, 1, 2, 3]


def test_empty_small_or_bad_requests_are_refused_with_the_reason():
    probs = np.tile([0.5, 0.5], (3, 1))
    with pytest.raises(DataError, match="pool is empty"):
        MarginSampling().query(state(np.zeros((0, 2)), np.zeros((0, 4))), 1)
    with pytest.raises(DataError, match="pool has only 3"):
        MarginSampling().query(state(probs), 5)
    with pytest.raises(DataError, match="at least 1 item"):
        MarginSampling().query(state(probs), 0)
    with pytest.raises(DataError, match="unknown query strategy 'smart'"):
        make_strategy("smart")
    with pytest.raises(DataError, match="unknown diversity method"):
        DiversitySampling(method="dbscan")
    with pytest.raises(DataError, match="rows disagree"):
        PoolState(probs, np.zeros((2, 4)), np.ones(3), np.zeros((0, 4)), np.zeros(0, dtype=int),
                  np.random.default_rng(0))
    with pytest.raises(DataError, match="at least 1 item per class"):
        stratified_seed(np.array([0, 1]), 0, rng=np.random.default_rng(0))


# ------------------------------------------------------------------------------------- head and simulation
def test_quick_head_handles_missing_classes_and_warm_starts():
    x, y = blobs(20, np.eye(8)[:3] * 5, 0.3)
    head = QuickHead(4)
    assert np.allclose(head.predict_proba(x[:2]), 0.25)
    head.fit(x[y == 0], y[y == 0])
    assert np.allclose(head.predict_proba(x[:2])[:, 0], 1.0)
    head.fit(x, y)
    p = head.predict_proba(x)
    assert p.shape == (60, 4) and np.allclose(p[:, 3], 0) and np.mean(p.argmax(1) == y) > 0.95
    first = head._model
    head.fit(x, y)
    assert head._model is first  # same classes: the previous solution is the starting point


def test_stratified_seed_and_prediction_agreement():
    y = np.array([0] * 10 + [1] * 3 + [2] * 1)
    seed = stratified_seed(y, 2, rng=np.random.default_rng(0))
    assert sorted(np.bincount(y[seed]).tolist()) == [1, 2, 2]
    a = np.array([0, 1, 2, 0])
    assert prediction_agreement(a, a, 3) == 1.0 and prediction_agreement(a, np.array([1, 2, 0, 1]), 3) < 0


def test_simulation_on_separable_blobs_learns_and_margin_beats_random_early():
    x, y = blobs(150, unit(np.random.default_rng(1).normal(size=(6, 16))) * 3, 0.9, seed=3)
    rng = np.random.default_rng(4)
    test = rng.permutation(len(x))[:300]
    pool = np.setdiff1d(np.arange(len(x)), test)
    results = {s: [simulate(x[pool], y[pool], x[test], y[test], s, n_classes=6, initial_per_class=1, batch_size=10,
                            budget=120, seed=seed) for seed in range(3)] for s in ("random", "margin")}
    first = results["margin"][0]
    assert first.labels[0] == 6 and first.labels[-1] == 120 and len(first.query_seconds) == len(first.labels) - 1
    assert min(first.accuracy[-1] for first in results["margin"]) > 0.8
    area = {s: np.mean([np.mean(r.accuracy) for r in runs]) for s, runs in results.items()}
    assert area["margin"] >= area["random"] - 0.01
    assert first.labels_to_reach(2.0) is None and first.labels_to_reach(0.0) == 6


# ------------------------------------------------------------------------------------- the store loop
@pytest.fixture
def pool_store(tmp_path):
    """A store of 240 items: 12 labelled, the rest an unlabelled pool; embeddings that separate the classes."""
    from workbench.sample import make_classification_sample

    frame = make_classification_sample(n_items=240, seed=3, noise_rate=0.0)
    truth = frame["label"].copy()
    frame["label"] = frame["label"].astype(object)
    keep = frame.groupby("label").head(2).index
    frame.loc[~frame.index.isin(keep), "label"] = None
    store = LabelStore.open(tmp_path / "pool.db")
    store.import_dataset(load_dataset(frame, id_column="id", allow_missing_labels=True), labels=sorted(truth.unique()))
    classes = store.labels
    centres = unit(np.random.default_rng(0).normal(size=(len(classes), 32))) * 3
    order = store.to_pandas()["item_id"].map(dict(zip(frame["id"].astype(str), truth, strict=True)))
    rng = np.random.default_rng(1)
    emb = unit(np.stack([centres[classes.index(c)] + rng.normal(size=32) for c in order]))
    yield store, emb, dict(zip(frame["id"].astype(str), truth, strict=True))
    store.close()


def test_learner_queues_labels_through_the_store_and_updates(pool_store):
    store, emb, truth = pool_store
    learner = ActiveLearner(store, strategy="margin", embeddings=emb, seed=0)
    first = learner.update()
    assert first.n_labelled == 2 * len(store.labels) and first.n_queued == 0
    ids = learner.query(10)
    assert len(ids) == 10 and sorted(learner.queued()) == sorted(ids)
    assert all(store.get(i)["status"] == "queued" for i in ids)
    assert store.history().iloc[-1]["source"] == "active-learning"
    with pytest.raises(DataError, match="pool has only"):
        learner.query(10_000)
    store.set_labels({i: truth[i] for i in ids[:6]}, author="ann")
    after = learner.update()
    assert after.n_labelled == first.n_labelled + 6 and after.n_queued == 4
    assert repr(learner).endswith(f"strategy='margin', pool='unlabelled': {after.n_labelled} labelled, 4 queued, "
                                  f"{after.n_pool} to choose from)")
    assert all(store.get(i)["status"] == "reviewed" for i in ids[:6])
    store.undo(author="ann")  # the labels and the queue come back together
    assert all(store.get(i)["status"] == "queued" and store.get(i)["label"] is None for i in ids[:6])


def test_stopping_hint_fires_when_predictions_stop_changing(pool_store):
    store, emb, _ = pool_store
    learner = ActiveLearner(store, embeddings=emb, stop_patience=2)
    results = [learner.update() for _ in range(3)]
    assert results[0].agreement is None and not results[1].should_stop and results[2].should_stop
    assert "stable for 2 rounds" in results[2].hint


def test_cold_start_with_nothing_labelled_queues_a_spread_seed(tmp_path):
    frame = pd.DataFrame({"text": [f"text number {i}" for i in range(60)], "label": [None] * 60})
    store = LabelStore.open(tmp_path / "cold.db")
    store.import_dataset(load_dataset(frame, allow_missing_labels=True, labels=["a", "b", "c"]))
    x, y = blobs(20, np.eye(8)[:3] * 5, 0.2)
    learner = ActiveLearner(store, embeddings=x)
    rows = [int(i) for i in (store.to_pandas().reset_index().set_index("item_id").loc[learner.query(3), "index"])]
    assert sorted(y[rows]) == [0, 1, 2]
    assert learner.last_query == "spread over the embedding space: fewer than two classes labelled yet"
    store.close()


def test_unreviewed_pool_seeds_stratified_by_the_current_labels(store):
    emb = unit(np.random.default_rng(0).normal(size=(len(store), 16)))
    learner = ActiveLearner(store, pool="unreviewed", embeddings=emb)
    # nothing reviewed yet: a query takes one of each current label first (not a spread that can miss a small class)
    first = learner.query(len(store.labels) + 1)
    counts = pd.Series([store.get(i)["label"] for i in first]).value_counts()
    assert set(counts.index) == set(store.labels) and sorted(counts) == [1] * (len(store.labels) - 1) + [2]
    assert learner.last_query == "a few of each current label: fewer than two classes reviewed yet"
    store.set_status(first, "unreviewed", author="ann")
    ids = learner.seed(per_class=2)
    labels = [store.get(i)["label"] for i in ids]
    assert sorted(pd.Series(labels).value_counts().unique()) == [2]
    store.set_status(ids[:3], "reviewed", author="ann")
    update = learner.update()
    assert update.n_labelled == 3 and update.hint.startswith("3 reviewed, ")  # every item has a label: say reviewed
    assert "3 reviewed" in repr(learner)


def test_learner_refuses_what_it_cannot_use(tmp_path, store, store_path):
    with pytest.raises(DataError, match="embeddings have 3 rows"):
        ActiveLearner(store, embeddings=np.zeros((3, 4)))
    with pytest.raises(DataError, match="unknown pool"):
        ActiveLearner(store, pool="everything", embeddings=np.zeros((len(store), 4)))
    from workbench.sample import make_ner_sample

    ner = LabelStore.open(tmp_path / "ner.db")
    ner.import_dataset(load_dataset(make_ner_sample(n_sentences=20), task="token-classification"))
    with pytest.raises(DataError, match="token classification"):
        ActiveLearner(ner, embeddings=np.zeros((len(ner), 4)))
    ner.close()
    # a path: the store it names, or a clear refusal (was AttributeError: 'str' object has no attribute 'task')
    assert len(ActiveLearner(str(store_path), embeddings=np.zeros((len(store), 4))).store) == len(store)
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(tmp_path / "data.csv", index=False)
    with pytest.raises(DataError, match="ActiveLearner takes a label store; .*data.csv is a dataset file"):
        ActiveLearner(tmp_path / "data.csv")
    with pytest.raises(DataError, match="takes a label store .* not a int"):
        ActiveLearner(42)


def test_one_round_through_the_panel_and_the_browser_widget(pool_store):
    from widgets import LabelBrowser
    from widgets.panels import ActiveLearningPanel

    store, emb, truth = pool_store
    browser = LabelBrowser(store, author="ann", page_size=10)
    panel = ActiveLearningPanel(store, browser=browser, embeddings=emb, author="ann")
    assert panel.pool.value == "unlabelled"
    panel.batch.value = 8
    panel.query(wait=True)
    before = panel.last_update.n_labelled
    n_pool = len(store) - before - 8
    # the counts after this batch, not before it
    assert f"queued 8 items (margin) · {before} labelled, 8 queued, {n_pool} in the pool" in panel.status.value
    queued = set(panel.learner.queued())
    assert browser.total == 8 and {r["item_id"] for r in browser.rows} == queued  # the browser shows the queue
    labelled = []
    for _ in range(5):  # the analyst labels the row under the cursor with the class's number key
        item = browser.rows[0]["item_id"]
        browser._on_msg(browser, {"type": "key", "key": str(store.labels.index(truth[item]) + 1)}, [])
        labelled.append(item)
        assert browser.error == ""
    assert browser.total == 3  # labelled items leave the queue
    assert all(store.get(i)["label"] == truth[i] and store.get(i)["status"] == "reviewed" for i in labelled)
    assert "<b>8</b> queued item(s) still to label" in panel.queue_line.value  # as of the query...
    panel.refresh()  # ...until the tab is opened again
    assert "<b>3</b> queued item(s) still to label" in panel.queue_line.value
    panel.update(wait=True)
    assert panel.last_update.n_labelled == before + 5 and panel.last_update.n_queued == 3
    assert "5 labelled" not in panel.status.value and f"{before + 5} labelled" in panel.status.value
    # once predictions stop changing, the status after a query says so (not only the counts)
    panel.learner.stop_agreement, panel.learner.stop_patience = -1.0, 1
    panel.query(wait=True)
    assert "queued 8 items (margin) · predictions stable for 1 rounds" in panel.status.value
    counts = panel.last_update.per_class  # and where labels are thinnest, fewest first
    fewest = min(counts, key=lambda c: (counts[c], c))
    assert f"<br>labelled per class: {fewest} {counts[fewest]}, " in panel.status.value


def test_a_class_with_no_labelled_item_is_named_and_holds_back_the_stopping_hint(pool_store):
    """The head never predicts a class it has no example of, in every round alike, so stable predictions there say
    nothing: the hint names the class instead of "consider stopping"."""
    store, emb, _ = pool_store
    missing = store.labels[-1]
    # its two labelled items relabelled as another class: no item of it is left to learn from
    store.set_labels({i: store.labels[0] for i in store.page(0, 10, filters={"label": missing})["item_id"]},
                     author="ann")
    learner = ActiveLearner(store, embeddings=emb, stop_agreement=-1.0, stop_patience=1)
    results = [learner.update() for _ in range(3)]
    assert results[-1].per_class[missing] == 0 and results[-1].unseen == [missing]
    assert sum(results[-1].per_class.values()) == results[-1].n_labelled
    assert results[-1].stable_rounds == 2 and not results[-1].should_stop
    assert f"no labelled item of {missing!r} yet: the model cannot predict a class" in results[-1].hint
    assert results[-1].class_counts.startswith(f"labelled per class: {missing} 0, ")
    item = store.page(0, 1, filters={"unlabelled": True})["item_id"][0]
    store.set_label(item, missing, author="ann")
    assert learner.update().should_stop  # every class seen: the hint may fire


def test_the_labels_per_class_line_sums_up_a_long_label_set():
    """banking77's 77 classes in one status line: the fewest named, the rest counted with their range."""
    per_class = {f"intent_{i:02d}": 1 + i // 10 for i in range(77)}
    line = UpdateResult(n_labelled=sum(per_class.values()), n_queued=0, n_pool=100, agreement=None,
                        stable_rounds=0, should_stop=False, per_class=per_class).class_counts
    named = UpdateResult.COUNTED_CLASSES - 2
    assert line.startswith("labelled per class: intent_00 1, intent_01 1, ")
    assert line.endswith(f", and {77 - named} more classes with 2-8 each") and line.count(" 1, ") == named
    few = UpdateResult(n_labelled=3, n_queued=0, n_pool=1, agreement=None, stable_rounds=0, should_stop=False,
                       per_class={"b": 2, "a": 1}).class_counts
    assert few == "labelled per class: a 1, b 2"


def test_unlabelled_and_disagreement_filters(pool_store):
    store, _, _ = pool_store
    assert store.count({"unlabelled": True}) == len(store) - 2 * len(store.labels)
    assert store.count({"unlabelled": False}) == 2 * len(store.labels)
    ids = store.to_pandas()["item_id"].tolist()[:3]
    x, y = store.labels[:2]
    store.add_annotations([{"item_id": ids[0], "annotator": "a", "label": x},
                           {"item_id": ids[0], "annotator": "b", "label": y},
                           {"item_id": ids[1], "annotator": "a", "label": x},
                           {"item_id": ids[1], "annotator": "b", "label": x}])
    assert store.page(filters={"disagree": True})["item_id"].tolist() == [ids[0]]
    assert store.count({"disagree": False}) == len(store) - 1


def test_density_is_computed_only_for_strategies_that_read_it(pool_store):
    store, emb, _ = pool_store
    learner = ActiveLearner(store, strategy="margin", embeddings=emb)
    learner.update()
    learner.query(5)
    assert learner._density is None  # margin never pays the O(n^2) neighbour search
    dense = ActiveLearner(store, strategy="density_weighted", embeddings=emb)
    dense.update()
    dense.query(5)
    assert dense._density is not None and dense._density.shape == (len(store),)
    assert {s: STRATEGIES[s].needs_density for s in ("margin", "density_weighted", "sparse_regions")} == {
        "margin": False, "density_weighted": True, "sparse_regions": True}


def test_head_features_are_unit_rows_of_the_chosen_layers_with_the_sentence_embeddings(tiny_bert, tmp_path):
    from workbench.active import head_features
    from workbench.embed import embed_texts

    texts = ["what is the capital of peru", "how many feet in a mile", "who wrote hamlet", "why is the sky blue"]
    opts = {"model": tiny_bert, "cache_dir": tmp_path, "precision": "fp32", "device": "cpu", "progress": False}
    sentences = embed_texts(texts, **opts)
    feats, sent = head_features(texts, **opts)  # default: the sentence embedding itself
    assert np.allclose(feats, sentences, atol=1e-5) and np.allclose(sent, sentences, atol=1e-5)
    feats, sent = head_features(texts, classifier_layers=(1, 2), **opts)
    assert feats.shape == (4, 64) and np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)
    assert np.allclose(sent, sentences, atol=1e-5)


def test_learner_fits_its_features_and_ranks_in_the_embeddings(pool_store):
    store, emb, truth = pool_store
    classes = store.labels
    order = store.to_pandas()["item_id"].map(truth)
    onehot = np.eye(len(classes))[[classes.index(c) for c in order]]  # features that give the class away
    noise = unit(np.random.default_rng(5).normal(size=(len(store), 12)))  # geometry that says nothing
    learner = ActiveLearner(store, strategy="margin", embeddings=noise,
                            features=onehot, seed=0)
    learner.update()
    assert np.mean(learner.predict_proba().argmax(1) == [classes.index(c) for c in order]) == 1.0
    assert learner.features.shape == (len(store), len(classes)) and learner.embeddings.shape[1] == 12
    ids = learner.query(6)
    assert len(set(ids)) == 6
    with pytest.raises(DataError, match="features have 3 rows"):
        ActiveLearner(store, embeddings=noise, features=onehot[:3])


def test_simulation_ranks_in_the_embeddings_given_and_fits_the_features():
    class Spy(MarginSampling):
        seen: list[int] = []

        def rank(self, state, n):
            Spy.seen.append(state.embeddings.shape[1])
            return super().rank(state, n)

    x, y = blobs(40, np.eye(6)[:3] * 4, 0.3)
    geometry = unit(np.random.default_rng(0).normal(size=(len(x), 10)))
    result = simulate(x, y, x, y, Spy(), n_classes=3, budget=30, batch_size=5, embeddings=geometry)
    assert set(Spy.seen) == {10} and result.labels[-1] == 30 and result.accuracy[-1] > 0.9
    with pytest.raises(DataError, match="embeddings have 5 rows"):
        simulate(x, y, x, y, "margin", n_classes=3, embeddings=geometry[:5])


def test_a_store_with_nothing_left_to_choose_says_what_to_do(pool_store):
    """Every item labelled: the head was asked for probabilities of zero rows and scikit-learn's ValueError said
    'Found array with 0 sample(s)'."""
    store, emb, truth = pool_store
    store.set_labels({i: truth[i] for i in store.to_pandas()["item_id"]}, author="t")
    learner = ActiveLearner(store, embeddings=emb)
    for call in (lambda: learner.query(5), lambda: learner.seed()):
        with pytest.raises(DataError, match=r"pool is empty: 240 items in .* have a label; import unlabelled items"):
            call()
    unreviewed = ActiveLearner(store, embeddings=emb, pool="unreviewed")
    assert len(unreviewed.query(5)) == 5
    unreviewed.query(235)  # now every item waits in the queue
    with pytest.raises(DataError, match=r"pool is empty: 0 items in .* are reviewed and 240 wait in the queue"):
        unreviewed.query(1)
