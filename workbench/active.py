"""Active learning: which items a person should label next, and the loop around the store.

A :class:`QueryStrategy` ranks the pool from what one round knows (:class:`PoolState`:
the quick head's probabilities, the embeddings, the pool's density); its ``query``
walks that ranking and leaves out near-duplicates of items already in the batch, so
one batch never asks for the same text twice. The strategies follow the small-text
split: one abstract method, everything else shared.

:class:`ActiveLearner` runs the loop over a :class:`~workbench.store.LabelStore`:
``query(n)`` marks items ``queued`` (the browser's "queue" filter shows them), the
analyst labels them, ``update()`` refits the quick head (embeddings + logistic
regression, warm-started) and says whether predictions have stopped changing.
:func:`simulate` runs the same strategies with labels revealed from a dataset, for
benchmarks.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.brief import BriefRepr
from workbench.errors import DataError
from workbench.quality import unit_rows
from workbench.report import first_few
from workbench.store import Filters, LabelStore, as_store

#: Cosine similarity at or above which two items count as near-duplicates within one batch.
DUPLICATE_SIMILARITY = 0.97
AUTHOR = "active-learning"


# ---------------------------------------------------------------------------------------- round state
@dataclass(repr=False)
class PoolState(BriefRepr):
    """What one query round knows about the pool.

    Attributes
    ----------
    probs : numpy.ndarray
        ``(n_pool, n_classes)`` the quick head's predicted probabilities for the pool items.
    embeddings : numpy.ndarray
        ``(n_pool, dim)`` L2-normalised embeddings of the pool items.
    density : numpy.ndarray
        ``(n_pool,)`` mean cosine similarity of each pool item to its nearest neighbours in the
        whole pool (high = in a dense region); all ones when the strategy does not read it
        (:attr:`QueryStrategy.needs_density`).
    labelled_embeddings : numpy.ndarray
        ``(n_labelled, dim)`` embeddings of the items labelled so far.
    labelled_y : numpy.ndarray
        ``(n_labelled,)`` their class indices.
    rng : numpy.random.Generator
        The only source of randomness a strategy may use (determinism by seed).
    """

    probs: np.ndarray
    embeddings: np.ndarray
    density: np.ndarray
    labelled_embeddings: np.ndarray
    labelled_y: np.ndarray
    rng: np.random.Generator

    def __post_init__(self) -> None:
        n = len(self.embeddings)
        if self.probs.shape[0] != n or self.density.shape[0] != n:
            raise DataError(f"pool state rows disagree: probs {self.probs.shape[0]}, embeddings {n}, "
                            f"density {self.density.shape[0]}")

    def __len__(self) -> int:
        return len(self.embeddings)


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)`` per row: 1 when the two best classes tie. ``(n, k) -> (n,)``"""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top2 = -np.partition(-probs, 1, axis=1)[:, :2]
    return np.asarray(1.0 - (top2[:, 0] - top2[:, 1]))


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy (nats) per row. ``(n, k) -> (n,)``"""
    p = np.clip(probs, 1e-12, 1.0)
    return np.asarray(-(p * np.log(p)).sum(axis=1))


def knn_density(embeddings: np.ndarray, *, k: int = 10, chunk: int = 2048) -> np.ndarray:
    """Mean cosine similarity of each row to its ``k`` nearest other rows.

    Parameters
    ----------
    embeddings : numpy.ndarray
        ``(n, dim)`` L2-normalised.

    Returns
    -------
    numpy.ndarray
        ``(n,)`` float64; all ones when there is a single row.
    """
    n = len(embeddings)
    if n <= 1:
        return np.ones(n)
    k = min(k, n - 1)
    x = np.asarray(embeddings, dtype=np.float32)
    out = np.empty(n)
    for start in range(0, n, chunk):
        sims = x[start:start + chunk] @ x.T
        rows = np.arange(sims.shape[0])
        sims[rows, start + rows] = -np.inf  # not its own neighbour
        top = np.partition(sims, n - k, axis=1)[:, n - k:]
        out[start:start + chunk] = top.mean(axis=1)
    return out


def _ranked_by(score: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices by descending score, ties broken at random (not by pool order)."""
    return np.lexsort((rng.random(len(score)), -score))


# ---------------------------------------------------------------------------------------- strategies
class QueryStrategy(ABC):
    """Ranks pool items by how much labelling them should help; subclasses implement :meth:`rank`."""

    name = "strategy"
    #: Whether :meth:`rank` reads ``state.density`` (an O(n^2) computation, done only when needed).
    needs_density = False

    @abstractmethod
    def rank(self, state: PoolState, n: int) -> np.ndarray:
        """Pool indices, best first: at least ``n`` of them when the pool has that many.

        Returns
        -------
        numpy.ndarray
            ``(m,)`` int indices into the pool, no repeats.
        """

    def query(self, state: PoolState, n: int, *, duplicate_similarity: float = DUPLICATE_SIMILARITY) -> np.ndarray:
        """Choose ``n`` pool items, best first, no two in the batch near-duplicates of each other.

        Near-duplicates skipped on the way are used only when the pool runs out of anything else.

        Returns
        -------
        numpy.ndarray
            ``(n,)`` int indices into the pool.

        Raises
        ------
        DataError
            When the pool is empty or smaller than ``n``, or ``n`` is not positive.
        """
        if n < 1:
            raise DataError(f"a query asks for at least 1 item, got n={n}")
        if len(state) == 0:
            raise DataError("the pool is empty: every item is labelled or queued; add unlabelled items "
                            "or lower the budget")
        if n > len(state):
            raise DataError(f"asked for {n} items but the pool has only {len(state)}; ask for at most "
                            f"{len(state)}")
        order = np.asarray(self.rank(state, n), dtype=np.int64)
        if len(np.unique(order)) != len(order) or (len(order) and (order.min() < 0 or order.max() >= len(state))):
            raise DataError(f"strategy {self.name!r} ranked invalid or repeated pool indices")
        chosen: list[int] = []
        skipped: list[int] = []
        for i in order:
            if len(chosen) == n:
                break
            if chosen and float((state.embeddings[chosen] @ state.embeddings[i]).max()) >= duplicate_similarity:
                skipped.append(int(i))
                continue
            chosen.append(int(i))
        if len(chosen) < n:  # the ranking was short or all near-duplicates: fill, best-ranked first
            rest = [int(i) for i in order if int(i) not in set(chosen) and int(i) not in set(skipped)]
            remaining = [int(i) for i in _ranked_by(margin_uncertainty(state.probs), state.rng)
                         if int(i) not in set(chosen) | set(skipped) | set(rest)]
            chosen += (rest + remaining + skipped)[:n - len(chosen)]
        return np.asarray(chosen, dtype=np.int64)


class RandomSampling(QueryStrategy):
    """Uniformly at random: the baseline every other strategy is measured against."""

    name = "random"

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        return state.rng.permutation(len(state))


class LeastConfidence(QueryStrategy):
    """Lowest top-class probability first."""

    name = "least_confidence"

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        return _ranked_by(1.0 - state.probs.max(axis=1), state.rng)


class MarginSampling(QueryStrategy):
    """Smallest gap between the two most probable classes first ("breaking ties"); equal gaps in random order."""

    name = "margin"

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        return _ranked_by(margin_uncertainty(state.probs), state.rng)


class EntropySampling(QueryStrategy):
    """Highest predictive entropy first."""

    name = "entropy"

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        return _ranked_by(entropy(state.probs), state.rng)


class DensityWeightedUncertainty(QueryStrategy):
    """Margin uncertainty times representativeness: ``u(x) * density(x) ** beta`` (information density).

    Parameters
    ----------
    beta : float
        How much density counts; 0 is plain margin sampling.
    """

    name = "density_weighted"
    needs_density = True

    def __init__(self, *, beta: float = 1.0) -> None:
        self.beta = float(beta)

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        density = np.clip(state.density, 1e-6, None)
        return _ranked_by(margin_uncertainty(state.probs) * density ** self.beta, state.rng)


class DiversitySampling(QueryStrategy):
    """A batch spread over the embedding space, optionally on top of an uncertainty shortlist.

    Parameters
    ----------
    method : {"kmeans", "coreset"}
        ``kmeans``: cluster the candidates into ``n`` groups and take the most uncertain item of
        each (cluster-margin). ``coreset``: greedy k-centre, each pick the candidate farthest from
        everything labelled or already picked.
    shortlist : int or None
        Candidates are the ``shortlist * n`` most margin-uncertain items; ``None`` uses the whole pool.
    """

    name = "diversity"

    def __init__(self, *, method: str = "kmeans", shortlist: int | None = 10) -> None:
        if method not in ("kmeans", "coreset"):
            raise DataError(f"unknown diversity method {method!r}; use 'kmeans' or 'coreset'")
        if shortlist is not None and shortlist < 1:
            raise DataError(f"shortlist must be at least 1 (or None for the whole pool), got {shortlist}")
        self.method = method
        self.shortlist = shortlist
        self.name = f"diversity_{method}" if shortlist is None else f"{method}_margin"

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        uncertainty = margin_uncertainty(state.probs)
        by_uncertainty = _ranked_by(uncertainty, state.rng)
        candidates = by_uncertainty if self.shortlist is None else by_uncertainty[:self.shortlist * n]
        if len(candidates) <= n:
            return by_uncertainty
        if self.method == "kmeans":
            picks = self._kmeans(state, candidates, uncertainty, n)
        else:
            picks = self._coreset(state, candidates, n)
        return np.concatenate([picks, by_uncertainty[~np.isin(by_uncertainty, picks)]])

    @staticmethod
    def _kmeans(state: PoolState, candidates: np.ndarray, uncertainty: np.ndarray, n: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        x = state.embeddings[candidates]
        seed = int(state.rng.integers(2**31 - 1))
        assign = KMeans(n_clusters=n, n_init=1, random_state=seed, max_iter=50).fit_predict(x)
        picks = []
        for cluster in range(n):
            members = candidates[assign == cluster]
            if len(members):
                picks.append(members[np.argmax(uncertainty[members])])
        order = np.asarray(picks, dtype=np.int64)
        return order[np.argsort(-uncertainty[order], kind="stable")]

    @staticmethod
    def _coreset(state: PoolState, candidates: np.ndarray, n: int) -> np.ndarray:
        x = state.embeddings[candidates]
        if len(state.labelled_embeddings):
            nearest = (1.0 - x @ state.labelled_embeddings.T).min(axis=1)
        else:
            nearest = np.full(len(candidates), np.inf)
        picks: list[int] = []
        for _ in range(n):
            best = int(np.argmax(nearest))
            picks.append(best)
            nearest = np.minimum(nearest, 1.0 - x @ x[best])
            nearest[picks] = -np.inf
        return candidates[np.asarray(picks, dtype=np.int64)]


class SparseRegionSampling(QueryStrategy):
    """Sample with probability proportional to ``1 / density``: explores the sparse regions (rare phrasings)."""

    name = "sparse_regions"
    needs_density = True

    def rank(self, state: PoolState, n: int) -> np.ndarray:
        weight = 1.0 / np.clip(state.density, 1e-3, None)
        keys = state.rng.random(len(state)) ** (1.0 / weight)  # weighted sampling without replacement
        return np.argsort(-keys, kind="stable")


STRATEGIES: dict[str, type[QueryStrategy]] = {
    "random": RandomSampling, "least_confidence": LeastConfidence, "margin": MarginSampling,
    "entropy": EntropySampling, "density_weighted": DensityWeightedUncertainty, "diversity": DiversitySampling,
    "sparse_regions": SparseRegionSampling,
}


def make_strategy(strategy: str | QueryStrategy, **options: Any) -> QueryStrategy:
    """A strategy by name (see :data:`STRATEGIES`) or the instance given."""
    if isinstance(strategy, QueryStrategy):
        return strategy
    if strategy not in STRATEGIES:
        raise DataError(f"unknown query strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[strategy](**options)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------- quick head
def head_features(texts: Sequence[str], *, classifier_layers: Sequence[int] = (-1,),
                  **options: Any) -> tuple[np.ndarray, np.ndarray]:
    """The quick head's features and the sentence embeddings, from one forward pass of the encoder.

    The head reads the sentence embedding by default. The top four hidden states
    (:data:`~workbench.embed.TOP_LAYERS`) suit classes that hinge on phrasing more than topic: on
    TREC-6 the full-pool accuracy rose from 0.902 to 0.944 and margin sampling reached 95% of it
    with 428 labels (640 for 95% of the lower mark with the sentence embedding), but on banking77
    it needed 1,145 instead of 877 (BENCHMARKS.md, "Active learning"), so it is an option.

    Parameters
    ----------
    texts : sequence of str
    classifier_layers : sequence of int
        Hidden states the head reads; ``(-1,)`` is the sentence embedding alone.
    **options
        Passed to :func:`workbench.embed.embed_texts` (model, cache_dir, precision, progress, ...).

    Returns
    -------
    features : numpy.ndarray
        ``(n, len(classifier_layers) * hidden)`` float32, rows scaled to unit length so the head's
        ``C`` means the same whatever the number of layers.
    sentences : numpy.ndarray
        ``(n, hidden)`` the sentence embeddings (strategies' distances).
    """
    from workbench.embed import embed_views

    features, sentences = embed_views(texts, classifier_layers=classifier_layers, **options)
    return unit_rows(features), sentences


class QuickHead:
    """Logistic regression on embeddings, warm-started from the previous round while the classes stay the same.

    Parameters
    ----------
    n_classes : int
    c : float
        Inverse L2 strength (scikit-learn's ``C``).
    """

    def __init__(self, n_classes: int, *, c: float = 10.0, max_iter: int = 1000) -> None:
        self.n_classes = int(n_classes)
        self.c = float(c)
        self.max_iter = int(max_iter)
        self._model: Any = None
        self._classes: np.ndarray | None = None

    def fit(self, x: np.ndarray, y: np.ndarray) -> QuickHead:
        """Fit on ``x (n, dim)`` and class indices ``y (n,)``."""
        from sklearn.linear_model import LogisticRegression

        classes = np.unique(y)
        if len(classes) < 2:
            self._model, self._classes = None, classes
            return self
        if self._model is None or self._classes is None or not np.array_equal(classes, self._classes):
            self._model = LogisticRegression(C=self.c, max_iter=self.max_iter, warm_start=True)
        self._classes = classes
        self._model.fit(x, y)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``(n, n_classes)`` probabilities; classes never seen get 0, a single seen class gets 1."""
        out = np.zeros((len(x), self.n_classes))
        if self._classes is None or len(self._classes) == 0:
            out[:] = 1.0 / self.n_classes
        elif self._model is None:
            out[:, self._classes[0]] = 1.0
        else:
            out[:, self._model.classes_] = self._model.predict_proba(x)
        return out


def stratified_seed(y: np.ndarray, per_class: int, *, rng: np.random.Generator) -> np.ndarray:
    """``per_class`` random indices of every class present in ``y (n,)`` (all of a class when it has fewer)."""
    if per_class < 1:
        raise DataError(f"the seed set needs at least 1 item per class, got {per_class}")
    picks = [rng.permutation(np.flatnonzero(y == c))[:per_class] for c in np.unique(y)]
    return np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)


def prediction_agreement(a: np.ndarray, b: np.ndarray, n_classes: int) -> float:
    """Cohen's kappa between two prediction vectors ``(n,)``: 1 when identical."""
    if len(a) == 0:
        return 1.0
    po = float(np.mean(a == b))
    pa = np.bincount(a, minlength=n_classes) / len(a)
    pb = np.bincount(b, minlength=n_classes) / len(b)
    pe = float(pa @ pb)
    return 1.0 if pe >= 1.0 else (po - pe) / (1.0 - pe)


# ---------------------------------------------------------------------------------------- simulation
@dataclass(repr=False)
class SimulationResult(BriefRepr):
    """One simulated active-learning run.

    Attributes
    ----------
    labels : list of int
        Labelled-set size at each evaluation.
    accuracy : list of float
        Test accuracy of the quick head at that size.
    query_seconds : list of float
        Time each query round took (strategy only, not the refit).
    """

    strategy: str
    seed: int
    labels: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    query_seconds: list[float] = field(default_factory=list)

    def labels_to_reach(self, target: float) -> int | None:
        """The first labelled-set size whose accuracy is at least ``target`` (None when never)."""
        for n, acc in zip(self.labels, self.accuracy, strict=True):
            if acc >= target:
                return n
        return None


def simulate(x_pool: np.ndarray, y_pool: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
             strategy: str | QueryStrategy, *, n_classes: int, initial_per_class: int = 1, batch_size: int = 20,
             budget: int = 1000, seed: int = 0, c: float = 10.0,
             embeddings: np.ndarray | None = None) -> SimulationResult:
    """Run active learning with labels revealed from ``y_pool`` as if a person gave them.

    Parameters
    ----------
    x_pool, x_test : numpy.ndarray
        ``(n_pool, dim)`` / ``(n_test, dim)`` the quick head's features (see :func:`head_features`).
    y_pool, y_test : numpy.ndarray
        ``(n_pool,)`` / ``(n_test,)`` class indices in ``[0, n_classes)``.
    strategy : str or QueryStrategy
    initial_per_class : int
        Stratified seed set size per class.
    batch_size, budget : int
        Items per round; stop once this many are labelled (or the pool is empty).
    embeddings : numpy.ndarray, optional
        ``(n_pool, d)`` L2-normalised sentence embeddings the strategies measure distances in
        (density, diversity, near-duplicates); ``x_pool`` when omitted.

    Returns
    -------
    SimulationResult
    """
    rng = np.random.default_rng(seed)
    chooser = make_strategy(strategy)
    geometry = x_pool if embeddings is None else embeddings
    if len(geometry) != len(x_pool):
        raise DataError(f"embeddings have {len(geometry)} rows for a pool of {len(x_pool)} items")
    labelled = np.zeros(len(y_pool), dtype=bool)
    labelled[stratified_seed(y_pool, initial_per_class, rng=rng)] = True
    density = knn_density(geometry) if chooser.needs_density else np.ones(len(x_pool))
    head = QuickHead(n_classes, c=c)
    result = SimulationResult(chooser.name, seed)
    while True:
        head.fit(x_pool[labelled], y_pool[labelled])
        result.labels.append(int(labelled.sum()))
        result.accuracy.append(float(np.mean(head.predict_proba(x_test).argmax(axis=1) == y_test)))
        pool = np.flatnonzero(~labelled)
        n = min(batch_size, budget - int(labelled.sum()), len(pool))
        if n <= 0:
            return result
        started = time.perf_counter()
        state = PoolState(head.predict_proba(x_pool[pool]), geometry[pool], density[pool], geometry[labelled],
                          y_pool[labelled], rng)
        picks = chooser.query(state, n)
        result.query_seconds.append(time.perf_counter() - started)
        labelled[pool[picks]] = True


# ---------------------------------------------------------------------------------------- the store loop
@dataclass
class UpdateResult:
    """What :meth:`ActiveLearner.update` learned.

    Attributes
    ----------
    n_labelled : int
        Items the head was fitted on.
    agreement : float or None
        Kappa between this round's and the previous round's predictions on the stop set.
    stable_rounds : int
        Consecutive updates with agreement at least the learner's ``stop_agreement``.
    should_stop : bool
        The stopping hint: predictions have stopped changing for ``stop_patience`` rounds, and every class has
        at least one item to learn from.
    per_class : dict of str to int
        Items the head was fitted on, per class (every class of the store, 0 for a class with none).
    """

    n_labelled: int
    n_queued: int
    n_pool: int
    agreement: float | None
    stable_rounds: int
    should_stop: bool
    trained_on: str = "labelled"  # what the head learns from: labelled items, or (pool "unreviewed") reviewed ones
    per_class: dict[str, int] = field(default_factory=dict)

    @property
    def unseen(self) -> list[str]:
        """The classes the head has no item of: it never predicts them, so its predictions cannot settle on them."""
        return [c for c, n in self.per_class.items() if n == 0]

    @property
    def hint(self) -> str:
        if self.should_stop:
            return (f"predictions stable for {self.stable_rounds} rounds (kappa {self.agreement:.3f}): more "
                    "labels are unlikely to change the model much; consider stopping or fine-tuning")
        counts = f"{self.n_labelled} {self.trained_on}, {self.n_queued} queued, {self.n_pool} in the pool"
        if not self.unseen or self.n_labelled == 0:
            return counts
        return (f"{counts}; no {self.trained_on} item of {first_few(map(repr, self.unseen))} yet: the model cannot "
                "predict a class it has no example of. Uncertainty queries often bring one up (its items look "
                "uncertain); a rare class may need a text search in the browser, or leave the label set if the data "
                "has none")

    #: Classes :attr:`class_counts` names one by one; the rest are summed up (banking77 has 77).
    COUNTED_CLASSES = 12

    @property
    def class_counts(self) -> str:
        """``per_class`` as one line, fewest first: where the next labels are most needed. Past
        :attr:`COUNTED_CLASSES` classes, the fewest are named and the rest summed up (how many, their range)."""
        ranked = sorted(self.per_class.items(), key=lambda kv: (kv[1], kv[0]))
        named = ranked if len(ranked) <= self.COUNTED_CLASSES else ranked[:self.COUNTED_CLASSES - 2]
        line = f"{self.trained_on} per class: " + ", ".join(f"{c} {n}" for c, n in named)
        rest = [n for _, n in ranked[len(named):]]
        if rest:
            line += f", and {len(rest)} more classes with {rest[0]}-{rest[-1]} each"
        return line


class ActiveLearner:
    """Active learning over a store: queue items, let a person label them, refit, repeat.

    Parameters
    ----------
    store : LabelStore
        Text classification; its label set names the classes.
    strategy : str or QueryStrategy
    pool : {"unlabelled", "unreviewed"}
        ``unlabelled``: items with no label are the pool and items with a label are the training
        set. ``unreviewed``: every item has a (possibly wrong) label; only items reviewed by a
        person train the head, unreviewed ones are the pool.
    embeddings : numpy.ndarray, optional
        ``(len(store), dim)`` L2-normalised sentence embeddings in the store's import order: what the
        strategies measure distances in (density, diversity, near-duplicates). Computed (and cached)
        with the default encoder when omitted.
    features : numpy.ndarray, optional
        ``(len(store), d)`` the quick head's features, same order; by default :func:`head_features`
        (when ``embeddings`` is omitted too) or ``embeddings`` itself.
    classifier_layers : sequence of int
        Hidden states the default features read (see :func:`head_features`).
    author : str
        Recorded on the queue writes.
    seed : int
    c : float
        The head's inverse regularisation strength (scikit-learn's ``C``).
    stop_agreement, stop_patience : float, int
        The stopping hint fires after ``stop_patience`` updates whose predictions agree with the
        previous ones at kappa ``>= stop_agreement``.
    """

    def __init__(self, store: LabelStore, *, strategy: str | QueryStrategy = "margin", pool: str = "unlabelled",
                 embeddings: np.ndarray | None = None, features: np.ndarray | None = None,
                 classifier_layers: Sequence[int] = (-1,), author: str = AUTHOR, seed: int = 0, c: float = 10.0,
                 stop_agreement: float = 0.99, stop_patience: int = 3, stop_set_size: int = 2000,
                 **strategy_options: Any) -> None:
        store = as_store(store, what="ActiveLearner")
        if store.task == "token-classification":
            raise DataError(f"active learning works on text classification stores; {store.url} holds token "
                            "classification (NER) data")
        if pool not in ("unlabelled", "unreviewed"):
            raise DataError(f"unknown pool {pool!r}; use 'unlabelled' or 'unreviewed'")
        if not store.labels:
            raise DataError(f"{store.url} has no label set; add the classes first with store.set_label_set([...])")
        self.store = store
        self.strategy = make_strategy(strategy, **strategy_options)
        self.pool_kind = pool
        self.author = author
        self.rng = np.random.default_rng(seed)
        self.classes = list(store.labels)
        frame = store.to_pandas()
        self.item_ids = frame["item_id"].astype(str).tolist()
        self._row = {item_id: i for i, item_id in enumerate(self.item_ids)}
        if embeddings is None:
            # given features: only the sentence embeddings are needed, not the other layers
            computed, embeddings = head_features(frame["text"].astype(str).tolist(),
                                                 classifier_layers=classifier_layers if features is None else (-1,))
            features = computed if features is None else features
        features = embeddings if features is None else features
        for name, array in (("embeddings", embeddings), ("features", features)):
            if array.shape[0] != len(self.item_ids):
                raise DataError(f"{name} have {array.shape[0]} rows but {store.url} has {len(self.item_ids)} "
                                "items; pass one row per item in the store's import order")
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.features = np.asarray(features, dtype=np.float32)
        self._density: np.ndarray | None = None
        self.head = QuickHead(len(self.classes), c=c)
        self.stop_agreement = float(stop_agreement)
        self.stop_patience = int(stop_patience)
        self._stop_set = self.rng.permutation(len(self.item_ids))[:stop_set_size]
        self._last_predictions: np.ndarray | None = None
        self._stable = 0
        self.history: list[UpdateResult] = []
        self._fitted = False
        self.last_query = ""  # how the latest batch was chosen: the strategy, or the fallback before two classes

    def __repr__(self) -> str:
        labelled, pool, queued, _ = self._state()
        return (f"ActiveLearner({self.store.url!r}, strategy={self.strategy.name!r}, pool={self.pool_kind!r}: "
                f"{len(labelled)} {self.trained_on}, {len(queued)} queued, {len(pool)} to choose from)")

    @property
    def density(self) -> np.ndarray:
        """``(n_items,)`` k-NN density, computed on first use by a strategy that needs it (O(n^2))."""
        if self._density is None:
            self._density = knn_density(self.embeddings)
        return self._density

    @property
    def trained_on(self) -> str:
        """What the head learns from, in the pool's words: ``labelled`` items, or ``reviewed`` ones."""
        return "labelled" if self.pool_kind == "unlabelled" else "reviewed"

    def _pool_density(self, pool: np.ndarray, strategy: QueryStrategy) -> np.ndarray:
        return self.density[pool] if strategy.needs_density else np.ones(len(pool))

    # ------------------------------------------------------------------ store views
    def _state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of labelled, pool and queued items, and the labelled items' class indices."""
        frame = self.store.page(0, len(self.item_ids), order_by="pos")
        index = {c: i for i, c in enumerate(self.classes)}
        rows = frame["item_id"].astype(str).map(self._row).to_numpy()
        status = frame["status"].astype(str).to_numpy()
        has_label = frame["label"].notna().to_numpy()
        queued = status == "queued"
        if self.pool_kind == "unlabelled":
            labelled = has_label & ~queued
            pool = ~has_label & ~queued
        else:
            labelled = (status == "reviewed") & has_label
            pool = status == "unreviewed"
        y = frame["label"][labelled].map(index).to_numpy()
        return rows[labelled], rows[pool], rows[queued], y.astype(np.int64)

    def _empty_pool(self, n_labelled: int, n_queued: int) -> DataError:
        """What to do when nothing is left to choose from (the strategy's head would fail on zero rows)."""
        done = "have a label" if self.pool_kind == "unlabelled" else "are reviewed"
        waiting = f" and {n_queued} wait in the queue (label them, then update())" if n_queued else ""
        other = ("import unlabelled items (workbench import ... --allow-missing-labels), or choose among labelled "
                 "items no one has reviewed: ActiveLearner(store, pool='unreviewed')"
                 if self.pool_kind == "unlabelled" else "import more items")
        return DataError(f"the pool is empty: {n_labelled} items in {self.store.url} {done}{waiting}; {other}")

    def queued(self) -> list[str]:
        """Ids of the items waiting for a label."""
        return self.store.page(0, len(self.item_ids), filters=Filters(status="queued"),
                               order_by="pos")["item_id"].astype(str).tolist()

    # ------------------------------------------------------------------ the loop
    def seed(self, per_class: int = 2) -> list[str]:
        """Queue a first set to label: ``per_class`` items per current label (stratified) when the pool
        has labels (``unreviewed``), else a spread over the embedding space (k-means centres)."""
        labelled, pool, queued, _ = self._state()
        if len(pool) == 0:
            raise self._empty_pool(len(labelled), len(queued))
        n = min(len(pool), per_class * len(self.classes))
        if self.pool_kind == "unreviewed":
            picks = self._by_current_label(pool, per_class=per_class)
        else:
            uniform = np.full((len(pool), len(self.classes)), 1.0 / len(self.classes))
            spread = DiversitySampling(method="kmeans", shortlist=None)
            state = PoolState(uniform, self.embeddings[pool], self._pool_density(pool, spread), self.embeddings[:0],
                              np.zeros(0, dtype=np.int64), self.rng)
            picks = pool[spread.query(state, n)]
        return self._enqueue(picks)

    def query(self, n: int = 20) -> list[str]:
        """Queue the ``n`` items the strategy ranks best; returns their ids.

        Raises
        ------
        DataError
            When the pool is empty or smaller than ``n``.
        """
        labelled, pool, queued, y = self._state()
        if len(pool) == 0:
            raise self._empty_pool(len(labelled), len(queued))
        if not self._fitted:
            self._fit(labelled, y)
        # With fewer than two classes labelled there is no decision boundary to be uncertain about: start from items
        # spread over the classes they are labelled with (the unreviewed pool), or over the embedding space.
        chooser: QueryStrategy = self.strategy
        self.last_query = self.strategy.name
        if len(np.unique(y)) < 2:
            if self.pool_kind == "unreviewed":
                self.last_query = "a few of each current label: fewer than two classes reviewed yet"
                return self._enqueue(self._by_current_label(pool, total=n))
            chooser = DiversitySampling(method="kmeans", shortlist=None)
            self.last_query = "spread over the embedding space: fewer than two classes labelled yet"
        state = PoolState(self.head.predict_proba(self.features[pool]), self.embeddings[pool],
                          self._pool_density(pool, chooser), self.embeddings[labelled], y, self.rng)
        return self._enqueue(pool[chooser.query(state, n)])

    def _by_current_label(self, pool: np.ndarray, *, per_class: int | None = None,
                          total: int | None = None) -> np.ndarray:
        """Pool rows stratified by their current labels: ``per_class`` of each, or ``total`` taken round-robin
        over the labels (one of each, then a second of each, ...), at random within a label."""
        labels = self.store.page(0, len(self.item_ids), order_by="pos")["label"].to_numpy()[pool]
        codes = np.unique(labels.astype(str), return_inverse=True)[1]
        if per_class is not None:
            return pool[stratified_seed(codes, per_class, rng=self.rng)]
        turn = np.empty(len(codes), dtype=np.int64)
        for c in np.unique(codes):
            members = self.rng.permutation(np.flatnonzero(codes == c))
            turn[members] = np.arange(len(members))
        order = np.lexsort((self.rng.random(len(codes)), turn))
        return pool[np.sort(order[:total])]

    def _enqueue(self, rows: np.ndarray) -> list[str]:
        ids = [self.item_ids[i] for i in rows]
        self.store.set_status(ids, "queued", author=self.author, source="active-learning",
                              note=f"queued by {self.strategy.name}")
        return ids

    def _fit(self, labelled: np.ndarray, y: np.ndarray) -> None:
        self.head.fit(self.features[labelled], y)
        self._fitted = True

    def update(self) -> UpdateResult:
        """Refit the quick head on everything labelled so far; returns counts and the stopping hint."""
        labelled, pool, queued, y = self._state()
        self._fit(labelled, y)
        predictions = self.head.predict_proba(self.features[self._stop_set]).argmax(axis=1)
        agreement = None
        if self._last_predictions is not None:
            agreement = prediction_agreement(self._last_predictions, predictions, len(self.classes))
            self._stable = self._stable + 1 if agreement >= self.stop_agreement else 0
        self._last_predictions = predictions
        per_class = dict(zip(self.classes, np.bincount(y, minlength=len(self.classes)).tolist()))
        # stable predictions say nothing of a class the head has never seen: it predicts that class nowhere, in
        # every round alike
        settled = self._stable >= self.stop_patience and min(per_class.values(), default=0) > 0
        result = UpdateResult(len(labelled), len(queued), len(pool), agreement, self._stable, settled,
                              self.trained_on, per_class)
        self.history.append(result)
        return result

    def predict_proba(self, item_ids: Sequence[str] | None = None) -> np.ndarray:
        """The current head's probabilities, ``(n, n_classes)`` for ``item_ids`` (default: every item)."""
        rows = np.arange(len(self.item_ids)) if item_ids is None else np.array([self._row[i] for i in item_ids])
        return self.head.predict_proba(self.features[rows])
