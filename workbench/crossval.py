"""Out-of-fold predicted probabilities: every item is scored by a model that never saw it.

``quick`` mode combines cheap views of the text, each under stratified k-fold:
frozen sentence embeddings (or several layers' pooled states; standardised) with a multinomial logistic regression
(:mod:`workbench.linear`), word + character n-gram TF-IDF with a logistic-loss linear
model fitted by SGD, and an attention head over the encoder's frozen token vectors
(:mod:`workbench.attention_view`). Each view's regularisation is chosen inside the outer fold's training
part only (nested: an inner stratified hold-out of a quarter of it), then refitted on
the whole training part. The views'
out-of-fold probabilities are pooled log-linearly with weights and a temperature
fitted to the out-of-fold log loss (one number per view, so the pooling itself barely overfits).
Then a second pass (``refit_clean``) fits every fold again without the training items that
confident learning flagged in the first, so that wrong labels pull the models less.

``finetune`` mode runs k-fold fine-tunes through the training engine, short ones by default
(:data:`FINETUNE_DEFAULTS`): they fit fewer of the wrong labels they train on.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.brief import BriefRepr
from workbench.corpus_cache import cached_sparse, corpus_key
from workbench.errors import Cancelled, DataError, require
from workbench.normalize import canonical_spellings

MODES = ("quick", "finetune")
#: Quick mode's views: sentence embeddings, TF-IDF, and a head over the encoder's token vectors
#: (:mod:`workbench.attention_view`).
VIEWS = ("embedding", "tfidf", "attention")
#: The views without the attention head, which a default scan keeps where that head's token vectors would take too
#: much memory (:func:`default_views`).
BASE_VIEWS = ("embedding", "tfidf")
#: A default scan of more labelled texts than this leaves the attention view out: their token vectors, about 40 KB
#: per short text while it trains and 8 KB per text in the embedding cache, would run to gigabytes. Asking for the
#: view by name (``views=``) keeps it at any size that fits in memory.
ATTENTION_DEFAULT_MAX_ITEMS = 50_000
# C for standardised embeddings (sklearn units); chosen: SST-2 0.003, emotion 0.01, TREC 0.03, banking77 0.1.
# Noisy labels want stronger regularisation: SST-2 with 20% flipped labels chose 0.0003.
EMBED_CS = (0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3)
# Clean sets chose 3e-6 (20news) to 3e-5 (SST-2, TREC); with 20% flipped labels 1e-4 to 3e-4.
# Searched outward from the middle value, not exhaustively (see _fit_fold_sparse).
TFIDF_ALPHAS = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3)
# SGD epochs: choosing alpha needs only the ranking (3 epochs), the fit that scores gets 10. With 5 epochs for
# the search, out-of-fold accuracy moved by +-0.2 point on the four benchmark sets, the TF-IDF view's time by a third.
TFIDF_EPOCHS = (3, 10)
# ... but a fold whose alpha came from the search continues the search's fit at that alpha (3 epochs on three
# quarters of the part) over the whole part for about this many sample updates (continue_epochs), instead of 10
# epochs from zero: 3 epochs on the benchmark sets' 4,000-8,000 training rows, quick out-of-fold accuracy equal
# within 0.1 point on SST-2, TREC, banking77 and 20news and the TF-IDF view's first pass a quarter faster
# (BENCHMARKS.md, "Quick-scan speed"); small parts keep 10 epochs, which cost nothing there and steady the refit.
TFIDF_CONTINUE_UPDATES = 24_000
# ... but on large sets the scoring fit stops at this many sample updates (at least the search's 3 epochs): SGD
# needs updates, not passes. 10 epochs up to 15,000 training rows, so the benchmark sets (<= 8,000 per fold) are
# unchanged; 38,375 texts of 91 classes (30,700 per fold): 5 epochs instead of 10, out-of-fold accuracy 0.8864 vs
# 0.8867, cross-validation 192 s instead of 273 s (BENCHMARKS.md, "Quick mode on a large, many-class set").
TFIDF_UPDATES = 150_000
# Finetune mode's fold fine-tunes, unless the caller sets these fields: one epoch at 1e-4. Longer fine-tunes fit
# the wrong labels they train on and rank them worse: SST-2 with 10% flipped labels, self-confidence AUROC 0.935
# after one epoch vs 0.894 after three (quick mode: 0.908; BENCHMARKS.md, "finetune-mode probabilities").
FINETUNE_DEFAULTS = {"epochs": 1.0, "learning_rate": 1e-4}
#: The pooling's largest temperature (:func:`pool_views`).
MAX_TEMPERATURE = 100.0
# Part of the TF-IDF cache key: change it when _tfidf_features changes.
TFIDF_VERSION = "word1-2+char_wb3-5/v1"  # unchanged by leaving out a part with no terms


@dataclass(repr=False)
class OutOfFold(BriefRepr):
    """Out-of-fold probabilities and how they were made.

    Attributes
    ----------
    pred_probs : numpy.ndarray
        ``(n_items, n_classes)`` float64; rows sum to 1; column ``j`` is ``classes[j]``.
    classes : list of str
    labels : numpy.ndarray
        ``(n_items,)`` int, the given labels as indices into ``classes``.
    views : dict of str to numpy.ndarray
        Each view's own out-of-fold probabilities, same shape as ``pred_probs``.
    params : dict
        Folds, seed, the regularisation chosen per view and fold, pooling weights.
    """

    pred_probs: np.ndarray
    classes: list[str]
    labels: np.ndarray
    views: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def accuracy(self) -> float:
        """Share of items whose given label is the most probable class."""
        return float((self.pred_probs.argmax(1) == self.labels).mean())


def encode_labels(labels: Sequence[str], classes: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Map string labels to indices into ``classes`` (sorted labels when not given).

    Raises
    ------
    DataError
        For a missing label or one outside ``classes``.
    """
    values = list(labels)
    for i, v in enumerate(values):
        if not isinstance(v, str):
            raise DataError(f"item {i} has no label ({v!r}); out-of-fold probabilities need a label on every item")
    cls = list(classes) if classes is not None else sorted(set(values))
    index = {c: j for j, c in enumerate(cls)}
    out = np.empty(len(values), dtype=np.int64)
    for i, v in enumerate(values):
        if v not in index:
            raise DataError(f"item {i} has the label {v!r}, which is not among the classes {cls}")
        out[i] = index[v]
    return out, cls


def check_folds(y: np.ndarray, classes: Sequence[str], folds: int) -> int:
    """The number of folds to use, or a clear error for data that cannot be cross-validated.

    A class with a single item, a single class, or fewer items than folds is an error. A class smaller than
    the folds keeps the folds: stratification puts its items in different folds, so every fold's model still
    learns from at least one of them. Lowering the folds for one small class cost every other item
    accuracy (2 folds instead of 5: SST-2 out-of-fold accuracy 0.838 vs 0.850, TREC 0.895 vs 0.905). Only
    when even the largest class has fewer items than folds are the folds lowered to its size (stratified
    folds need a class that reaches every fold).
    """
    n = len(y)
    if folds < 2:
        raise DataError(f"folds must be at least 2, got {folds}")
    if n < folds:
        raise DataError(f"{n} items cannot be split into {folds} folds; label more items or lower folds")
    counts = np.bincount(y, minlength=len(classes))
    present = [c for c, k in zip(classes, counts) if k > 0]
    if len(present) < 2:
        raise DataError(f"all items have the label {present[0]!r}; finding label errors needs at least two classes"
                        if present else "no labelled items")
    single = single_item_classes(y, classes)
    if single:
        raise DataError(f"the class(es) {single} have a single item, which no other fold can learn from; label more "
                        f"examples of them, merge them into another class, or drop them before scanning"
                        f"{spelling_hints(y, classes, single)}")
    return min(folds, int(counts.max()))


def spelling_hints(y: np.ndarray, classes: Sequence[str], names: Sequence[str]) -> str:
    """``"; 'Bug' looks like 'bug' spelled another way"`` for each of ``names`` that is a rarer spelling of another
    class of ``y`` ``(n,)`` (case, spacing, separators); "" when none is."""
    counts = np.bincount(y, minlength=len(classes))
    canonical = canonical_spellings({c: int(n) for c, n in zip(classes, counts) if n})
    return "".join(f"; {c!r} looks like {canonical[c]!r} spelled another way" for c in names if c in canonical)


def single_item_classes(y: np.ndarray, classes: Sequence[str]) -> list[str]:
    """The classes that exactly one item of ``y`` ``(n,)`` has: no model that leaves it out can learn them."""
    counts = np.bincount(y, minlength=len(classes))
    return [c for c, k in zip(classes, counts) if k == 1]


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` index pairs of ``folds`` stratified folds of ``y`` ``(n,)``, shuffled by ``seed``."""
    sklearn_ms = require("sklearn.model_selection", extra="train", purpose="out-of-fold probabilities")
    splitter = sklearn_ms.StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)  # type: ignore[attr-defined]
    with warnings.catch_warnings():  # "the least populated class has only 2 members": intended (check_folds)
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(np.zeros(len(y)), y))


def out_of_fold_probs(texts: Sequence[str], labels: Sequence[str], *, classes: Sequence[str] | None = None,
                      mode: str = "quick", folds: int = 5, seed: int = 0, embeddings: np.ndarray | None = None,
                      views: Sequence[str] | None = None, embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                      progress: bool = True, cache_dir: str | os.PathLike[str] | None = None,
                      refit_clean: bool = True, stop: threading.Event | None = None,
                      token_states: Sequence[np.ndarray] | None = None, head_precision: str = "auto",
                      **finetune: Any) -> OutOfFold:
    """Out-of-fold class probabilities for every item.

    Parameters
    ----------
    texts : sequence of str
        ``(n_items,)``
    labels : sequence of str
        ``(n_items,)`` the given (possibly wrong) labels.
    classes : sequence of str, optional
        Column order of the result; default the sorted labels.
    mode : {"quick", "finetune"}
    folds : int
        Outer stratified folds (a class with fewer items than folds has them in different folds).
    seed : int
    embeddings : numpy.ndarray, optional
        ``(n_items, d)`` precomputed features for the ``embedding`` view (sentence embeddings, or several
        layers' pooled states, :data:`workbench.embed.TOP_LAYERS`).
    views : sequence of {"embedding", "tfidf", "attention"}, optional
        Default :func:`default_views`: all three where the attention view's token vectors are at hand (given as
        ``token_states``, or computed with the packaged model when neither ``embeddings`` nor ``embed`` names another
        encoder) and fit in memory, else the first two. The attention view (:mod:`workbench.attention_view`) lifts
        SST-2 1.6 points and TREC 2 for about a quarter of a second of training per thousand short texts on every
        scan. Views named here are used as asked: a shortage of memory for the attention view is then an error.
    embed : callable, optional
        Computes embeddings when they are not given (default :func:`workbench.embed.embed_texts`).
    cache_dir : path, optional
        Where the TF-IDF features are cached between scans of the same texts; None: not cached.
    refit_clean : bool
        ``quick`` mode only: a second pass whose fold models leave out the items the first pass flagged
        (confident learning), each fold keeping the regularisation it chose in the first pass. Wrong labels
        then pull the models less: synthetic-noise AUROC rose 0.4-2 points (BENCHMARKS.md) for about a
        third more time. An item's own label still never reaches the model that scores it.
    stop : threading.Event, optional
        ``finetune`` mode: set from another thread to cancel the fold fine-tune under way and raise
        :class:`~workbench.errors.Cancelled`.
    token_states : sequence of numpy.ndarray, optional
        ``(n_tokens_i, hidden)`` per item for the ``attention`` view (:meth:`workbench.embed.Encoder.token_states`);
        computed with the packaged model when that view is asked for without them.
    head_precision : {"auto", "bf16", "fp32"}
        ``quick`` mode: the matrix products of the embedding and attention heads (not the encoder's). ``auto``: bf16
        on a CPU with native bf16 (:func:`workbench.embed.products_in_bf16`), where they took half the time or less
        at the same accuracy (BENCHMARKS.md); ``fp32`` keeps them float32, as on CPUs without bf16.

    Returns
    -------
    OutOfFold
    """
    if mode not in MODES:
        raise DataError(f"unknown mode {mode!r}; use one of {list(MODES)}")
    if len(texts) != len(labels):
        raise DataError(f"{len(texts)} texts but {len(labels)} labels")
    y, cls = encode_labels(labels, classes)
    k = check_folds(y, cls, folds)
    from workbench.embed import products_in_bf16

    # an unknown name fails now, not after the embedding
    products_in_bf16(head_precision, owner="the quick views' heads")
    if mode == "finetune":
        return _finetune(texts, y, cls, folds=k, seed=seed, progress=progress, stop=stop, **finetune)
    asked = views is not None
    # why a default scan goes without the attention view; the token vectors this call computes itself are estimated
    # before their forward pass
    views, left_out = plan_views(views, n_items=len(texts), precision=head_precision,
                                 tokens=token_states is not None or (embeddings is None and embed is None),
                                 embedded=list(texts) if token_states is None else None)
    splits = stratified_folds(y, k, seed)
    if "attention" in views and token_states is None:
        from workbench.embed import embed_with_tokens

        if "embedding" in views and embeddings is None and embed is None:  # one forward pass for both views
            embeddings, token_states = embed_with_tokens(list(texts), progress=progress, stop=stop)
        else:
            token_states = embed_with_tokens(list(texts), layers=(), progress=progress, stop=stop)[1]
    features: dict[str, Any] = {}
    for view in views:
        if view == "attention":
            continue  # its token vectors are read below, by a head of its own
        if view == "embedding":
            if embeddings is None:
                from workbench.embed import embed_texts

                embeddings = (embed or (lambda t: embed_texts(t, progress=progress)))(list(texts))
            if len(embeddings) != len(y):
                raise DataError(f"embeddings have {len(embeddings)} rows for {len(y)} items")
            features[view] = np.asarray(embeddings)
        else:
            features[view] = cached_sparse("tfidf", corpus_key(list(texts), TFIDF_VERSION),
                                           lambda: _tfidf_features(texts), cache_dir=cache_dir)
    # One step per fitted fold task (each TF-IDF fold, the embedding head's folds together), per pass: on a
    # warm cache cross-validation is the whole scan, minutes for tens of thousands of items and many classes.
    tqdm = require("tqdm.auto", extra="train", purpose="progress bars").tqdm  # type: ignore[attr-defined]
    tasks = (len(splits) if "tfidf" in features else 0) + ("embedding" in features)
    attention = None
    if "attention" in views and token_states is not None and not asked:
        from workbench.attention_view import memory_shortage

        left_out = memory_shortage(token_states, precision=head_precision)
        if left_out is not None:  # a default scan goes on with the other views and says why
            views = _leave_attention_out(views, left_out)
    if "attention" in views and token_states is not None:
        from workbench.attention_view import fit_attention_oof

        # fitted once: the refit pass keeps its probabilities (trained without the flagged items it read no
        # better on SST-2, BENCHMARKS.md)
        attention = _smooth(fit_attention_oof(token_states, y, len(cls), splits, seed=seed, stop=stop,
                                              precision=head_precision))
    with tqdm(total=tasks * (2 if refit_clean else 1), desc="cross-validation", unit="fit", disable=not progress,
              leave=False) as bar:
        per_view, chosen, models = _fit_views(features, y, len(cls), splits, seed, tick=bar.update,
                                              precision=head_precision)
        if attention is not None:
            per_view["attention"] = attention
        pooled, mix, temperature = pool_views(list(per_view.values()), y)
        params: dict[str, Any] = {"mode": mode, "folds": k, "folds_asked": folds, "seed": seed, "C": chosen,
                                  "pool_weights": dict(zip(per_view, mix)), "temperature": temperature,
                                  "views": list(views),
                                  **({"attention_left_out": left_out} if left_out else {})}
        if refit_clean:
            from workbench.quality import find_label_issues

            flagged = find_label_issues(y, pooled, filter_by="confident_learning")
            if flagged.any():
                kept = [(_without_flagged(train, flagged, y), test) for train, test in splits]
                # each fold keeps its regularisation and starts from its first-pass model (the TF-IDF folds then
                # need half the SGD epochs): a third more time, not double
                per_view, _, _ = _fit_views(features, y, len(cls), kept, seed, fixed=chosen, warm=models,
                                            tick=bar.update, precision=head_precision)
                if attention is not None:
                    per_view["attention"] = attention
                pooled, mix, temperature = pool_views(list(per_view.values()), y)
                params.update(pool_weights=dict(zip(per_view, mix)), temperature=temperature)
            params["refit_left_out"] = int(flagged.sum())
    return OutOfFold(pooled, cls, y, per_view, params)


def plan_views(views: Sequence[str] | None, *, n_items: int, tokens: bool = True,
               embedded: Sequence[str] | None = None, model: str | os.PathLike[str] | None = None,
               max_length: int = 128, precision: str = "auto") -> tuple[tuple[str, ...], str | None]:
    """Quick mode's views, decided before any forward pass, and why a default scan goes without the attention view.

    Parameters
    ----------
    views : sequence of str, optional
        The views asked for by name (checked, and used as asked), or None for :func:`default_views`.
    n_items : int
        The labelled texts to score.
    tokens : bool
        Whether the encoder's token vectors can be had (see :func:`default_views`).
    embedded : sequence of str, optional
        The texts whose token vectors a forward pass would compute for the attention view: their memory is estimated
        first (:func:`workbench.attention_view.expected_shortage`), an error for a view asked for by name, a view
        left out (with a warning) for a default scan. None: the vectors are at hand, and the view's own exact check
        (:func:`workbench.attention_view.memory_shortage`) is the one that counts.
    model, max_length
        The encoder that would compute them.
    precision : {"auto", "bf16", "fp32"}
        The attention head's products (``out_of_fold_probs``'s ``head_precision``): its copy of the vectors is bf16
        where they are.

    Returns
    -------
    views : tuple of str
    left_out : str or None
        Why a default scan leaves the attention view out (past :data:`ATTENTION_DEFAULT_MAX_ITEMS`, or short of
        memory), for ``oof.params["attention_left_out"]``.
    """
    if views is not None:
        unknown = [v for v in views if v not in VIEWS]
        if unknown or not views:
            raise DataError(f"unknown view(s) {unknown}; use some of {list(VIEWS)}")
    chosen = default_views(n_items, tokens=tokens) if views is None else tuple(views)
    if views is None and n_items > ATTENTION_DEFAULT_MAX_ITEMS:
        return chosen, (f"a default scan of more than {ATTENTION_DEFAULT_MAX_ITEMS:,} labelled texts goes without "
                        "it (its token vectors would take gigabytes); views=('embedding', 'tfidf', 'attention') "
                        "asks for it")
    if "attention" not in chosen or embedded is None:
        return chosen, None
    from workbench.attention_view import expected_shortage

    short = expected_shortage(embedded, model=model, max_length=max_length, precision=precision)
    if short is None:
        return chosen, None
    if views is not None:  # asked for by name: an error now, not after the forward pass
        raise DataError(short)
    return _leave_attention_out(chosen, short), short


def _leave_attention_out(views: Sequence[str], why: str) -> tuple[str, ...]:
    """``views`` without the attention view, with a warning that says why (the first clause of ``why``)."""
    warnings.warn(f"{why.split(':')[0]}: this scan leaves the attention view out", stacklevel=3)
    return tuple(v for v in views if v != "attention")


def default_views(n_items: int, *, tokens: bool = True) -> tuple[str, ...]:
    """Quick mode's views when none are asked for: :data:`VIEWS` up to :data:`ATTENTION_DEFAULT_MAX_ITEMS` texts
    (and where the encoder's token vectors can be had, ``tokens``), else :data:`BASE_VIEWS`."""
    return VIEWS if tokens and n_items <= ATTENTION_DEFAULT_MAX_ITEMS else BASE_VIEWS


def _without_flagged(train: np.ndarray, flagged: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A fold's training rows less the flagged ones, unless that would take a class out of it entirely (on a few
    items per class every one can be flagged; an empty training part crashed the refit)."""
    kept = train[~flagged[train]]
    return kept if set(np.unique(y[kept])) == set(np.unique(y[train])) else train


def _fit_views(features: dict[str, Any], y: np.ndarray, n_classes: int,
               splits: list[tuple[np.ndarray, np.ndarray]], seed: int, fixed: dict[str, list[float]] | None = None,
               warm: dict[str, Any] | None = None, tick: Callable[[], Any] | None = None, precision: str = "auto"
               ) -> tuple[dict[str, np.ndarray], dict[str, list[float]], dict[str, Any]]:
    """Each view's out-of-fold probabilities.

    ``fixed``: per view, each fold's regularisation (no search); ``warm``: per view, the fold models to start
    from (a previous call's third result); ``tick``: called as each task (a TF-IDF fold, the embedding head)
    finishes; ``precision``: the embedding head's products (:func:`_oof_embedding`). Returns the probabilities, the
    regularisation chosen, and the fold models.
    """
    warm = warm or {}
    def grids(view: str) -> list[Sequence[float]]:
        if fixed:
            return [[c] for c in fixed[view]]
        return [EMBED_CS if view == "embedding" else TFIDF_ALPHAS] * len(splits)

    per_view: dict[str, np.ndarray] = {}
    chosen: dict[str, list[float]] = {}
    models: dict[str, Any] = {}
    # One pool of threads runs the embedding head (the longest task, so first) beside the TF-IDF folds: torch
    # and SGD both release the GIL, and shipping the sparse matrix to worker processes cost as much as the
    # parallelism gained. torch gets the cores the TF-IDF folds leave (on 2 cores: one); one view after the
    # other, the odd TF-IDF fold left a core idle (10,000 texts: cross-validation 6.2 s -> 5.3 s; BENCHMARKS.md,
    # quick-scan speed).
    cores = os.cpu_count() or 1
    workers = min(len(splits) + 1, cores)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        torch_threads = max(1, cores - (len(splits) if "tfidf" in features else 0))
        head = (pool.submit(_with_torch_threads, torch_threads, _oof_embedding, features["embedding"], y, n_classes,
                            splits, grids("embedding"), seed, inits=warm.get("embedding"), precision=precision)
                if "embedding" in features else None)
        inits = warm.get("tfidf") or [None] * len(splits)
        sparse = ([pool.submit(_fit_fold_sparse, features["tfidf"][train], y[train], features["tfidf"][test], grid,
                               seed, init) for (train, test), grid, init in zip(splits, grids("tfidf"), inits)]
                  if "tfidf" in features else None)
        for _ in as_completed([f for f in [head, *(sparse or [])] if f is not None]):
            if tick is not None:
                tick()
        if sparse is not None:
            fitted = [f.result() for f in sparse]
            per_view["tfidf"], chosen["tfidf"] = _gather_sparse(fitted, splits, len(y), n_classes)
            models["tfidf"] = [fit[3] for fit in fitted]
        if head is not None:
            per_view["embedding"], chosen["embedding"], models["embedding"] = head.result()
    return {v: per_view[v] for v in features}, {v: chosen[v] for v in features}, models


def _with_torch_threads(n: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with torch's CPU kernels on ``n`` threads, in the calling thread only.

    The thread count torch's CPU kernels use is OpenMP's, kept per thread: set in a pool's worker it leaves
    the kernel's other threads (a cell, another scan) as they were.
    """
    torch: Any = require("torch", extra="train", purpose="the logistic-regression heads")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(before)


def _tfidf_features(texts: Sequence[str]) -> Any:
    """Word 1-2 grams and character 3-5 grams (of the first 1,500 characters), sublinear tf, float32.

    Two-character grams were a quarter of a row's terms (SST-2) and added nothing measurable: without them quick
    out-of-fold accuracy on SST-2, TREC, banking77 and 20news moved by 0.05 point or less, and the TF-IDF view
    fitted a sixth faster (BENCHMARKS.md, "Quick-scan speed").

    Fitted on all texts without their labels, so no label leaks across folds. A part that finds no terms
    (texts of single characters or emoji have no two-letter words; n-grams seen only once fall below
    ``min_df``) is left out; with neither part, one constant column (the view then predicts the class shares).
    """
    text_mod = require("sklearn.feature_extraction.text", extra="train", purpose="TF-IDF features")
    sparse = require("scipy.sparse", extra="train", purpose="TF-IDF features")
    tfidf = text_mod.TfidfVectorizer  # type: ignore[attr-defined]
    parts = [
        tfidf(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=100_000, dtype=np.float32),
        # Long documents add little past their start but cost a lot of character n-grams.
        tfidf(analyzer="char_wb", ngram_range=(3, 5), min_df=2, sublinear_tf=True, max_features=100_000,
              dtype=np.float32, preprocessor=_head_lower),
    ]
    blocks = []
    for vectorizer in parts:
        try:
            blocks.append(vectorizer.fit_transform(list(texts)))
        except ValueError as exc:  # "empty vocabulary; perhaps the documents only contain stop words", or all
            if "vocabulary" not in str(exc) and "no terms remain" not in str(exc):  # pruned by min_df
                raise
    if not blocks:
        return sparse.csr_matrix(np.ones((len(texts), 1), dtype=np.float32))  # type: ignore[attr-defined]
    return sparse.hstack(blocks, format="csr")  # type: ignore[attr-defined]


def _head_lower(text: str) -> str:
    return text[:1500].lower()


def _inner_split(y_train: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A stratified hold-out of a quarter of a fold's training part, or None when too few items repeat a class.

    A class with a single item here (a small class spread over the folds) stays in the fitting part; the
    hold-out is stratified over the others.
    """
    counts = np.bincount(y_train)
    single = np.isin(y_train, np.flatnonzero(counts == 1))
    rest = np.flatnonzero(~single)
    if len(np.unique(y_train[rest])) < 2:
        return None
    ms = require("sklearn.model_selection", extra="train", purpose="out-of-fold probabilities")
    split = ms.StratifiedShuffleSplit(n_splits=1, test_size=0.25, random_state=seed)  # type: ignore[attr-defined]
    try:
        fit_idx, val_idx = next(split.split(np.zeros(len(rest)), y_train[rest]))
    except ValueError:  # a hold-out too small to hold every class once
        return None
    return np.sort(np.concatenate([rest[fit_idx], np.flatnonzero(single)])), rest[val_idx]


def _log_loss(y: np.ndarray, probs: np.ndarray) -> float:
    return -float(np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None))))


def _oof_embedding(x: np.ndarray, y: np.ndarray, n_classes: int, splits: list[tuple[np.ndarray, np.ndarray]],
                   grids: Sequence[Sequence[float]], seed: int, inits: Any | None = None,
                   precision: str = "auto") -> tuple[np.ndarray, list[float], Any]:
    """Each outer fold's C chosen on its inner split (:func:`_search_cs`), then every fold refitted on its whole
    training part with its C, all folds in one run, warm from the chosen inner fit.

    ``inits``: the starting weights of the folds' final models, ``(d + 1, n_folds * n_classes)`` (the refit
    pass starts from the first pass's fold models, each of which never saw its fold's test items).
    ``precision``: the fits' matrix products (:func:`workbench.linear.fit_softmax`'s ``bf16``); ``auto``: bf16 on
    a CPU with native bf16 (:func:`workbench.embed.products_in_bf16`).
    Returns the probabilities, each fold's C, and the folds' final weights.
    """
    from workbench.embed import products_in_bf16
    from workbench.linear import fit_softmax, predict_softmax, standardize

    bf16 = products_in_bf16(precision, owner="the embedding head")
    z = standardize(x)
    inner = [_inner_split(y[train], seed) if len(cs) > 1 else None for (train, _), cs in zip(splits, grids)]
    best = [len(cs) // 2 for cs in grids]
    init = inits
    if any(part is not None for part in inner):
        best, blocks = _search_cs(z, y, n_classes, splits, inner, grids, bf16=bf16)
        if all(block is not None for block in blocks):
            init = _cat_columns(blocks)
    chosen = [float(cs[b]) for cs, b in zip(grids, best)]
    # warm-started from the inner fits: 25 iterations reach the same validation loss
    finals = fit_softmax(z, y, n_classes=n_classes, cs=[[c] for c in chosen], rows=[train for train, _ in splits],
                         init=init, max_iter=25 if init is not None else 60, bf16=bf16)
    out = np.zeros((len(y), n_classes))
    for f, (_, test) in enumerate(splits):
        out[test] = predict_softmax(z[test], finals[:, f * n_classes:(f + 1) * n_classes], n_classes=n_classes)[:, 0]
    return _smooth(out), chosen, finals


def _search_cs(z: np.ndarray, y: np.ndarray, n_classes: int, splits: list[tuple[np.ndarray, np.ndarray]],
               inner: list[tuple[np.ndarray, np.ndarray] | None],
               grids: Sequence[Sequence[float]], *, bf16: bool = False) -> tuple[list[int], list[Any]]:
    """Each fold's C by inner validation loss, walking out from the middle of its grid.

    The first round fits the middle C and its two neighbours for every fold, all in one run; a fold whose best
    is the last one tried on a side gets the next C that way in the following round (warm from that best), until
    every fold's best has a worse C on both sides or is at the grid's end. The loss is close to unimodal in
    log C. Against fitting all seven Cs in one run (BENCHMARKS.md, "the embedding head's C walk"): the same C in
    23 of 25 folds of five sets (one TREC and one banking77 fold one step over: the joint fits are inexact either
    way), out-of-fold accuracy and the label-error benchmark rows within 0.001, the head 5-35% faster.

    ``bf16``: the fits' matrix products in bf16 (:func:`workbench.linear.fit_softmax`).

    Returns each fold's index of the chosen C (the grid's middle for a fold without an inner split) and the
    weights of its inner fit at that C (None for such a fold).
    """
    from workbench.linear import fit_softmax, predict_softmax

    losses: list[dict[int, float]] = [{} for _ in splits]
    weights: list[dict[int, Any]] = [{} for _ in splits]
    todo = {f: sorted({max(0, len(cs) // 2 - 1), len(cs) // 2, min(len(cs) - 1, len(cs) // 2 + 1)})
            for f, (cs, part) in enumerate(zip(grids, inner)) if part is not None}
    def best_of(fold_losses: dict[int, float]) -> int:
        return min(fold_losses, key=lambda i: (fold_losses[i], i))  # ties: the stronger regularisation

    while todo:
        folds = sorted(todo)
        starts = [_nearest_fit(weights[f], todo[f]) for f in folds]
        init = (_cat_columns([w for f, w in zip(folds, starts) for _ in todo[f]])
                if all(w is not None for w in starts) else None)
        fitted = fit_softmax(z, y, n_classes=n_classes, cs=[[grids[f][j] for j in todo[f]] for f in folds],
                             rows=[splits[f][0][inner[f][0]] for f in folds],  # type: ignore[index]
                             init=init, max_iter=30, bf16=bf16)
        offset = 0  # column block of the fold's first model in this round
        for f in folds:
            val = splits[f][0][inner[f][1]]  # type: ignore[index]
            block = fitted[:, offset * n_classes:(offset + len(todo[f])) * n_classes]
            probs = predict_softmax(z[val], block, n_classes=n_classes)  # (n_val, len(todo[f]), K)
            for k, j in enumerate(todo[f]):
                losses[f][j] = _log_loss(y[val], probs[:, k])
                weights[f][j] = block[:, k * n_classes:(k + 1) * n_classes]
            offset += len(todo[f])
        todo = {}
        for f in folds:
            j = best_of(losses[f])
            step = -1 if j == min(losses[f]) else 1 if j == max(losses[f]) else 0
            if step and 0 <= j + step < len(grids[f]) and j + step not in losses[f]:
                todo[f] = [j + step]
    best = [best_of(lf) if lf else len(cs) // 2 for lf, cs in zip(losses, grids)]
    return best, [w.get(b) for w, b in zip(weights, best)]


def _nearest_fit(fits: dict[int, Any], wanted: Sequence[int]) -> Any | None:
    """The inner fit at the C next to the first wanted one (a warm start for it), or None in the first round."""
    if not fits:
        return None
    return fits[min(fits, key=lambda i: abs(i - wanted[0]))]


def _cat_columns(blocks: list[Any]) -> Any:
    torch: Any = require("torch", extra="train", purpose="the logistic-regression heads")
    return torch.cat(blocks, 1)


def _gather_sparse(fitted: list[tuple[np.ndarray, np.ndarray, float, Any]], splits: list[tuple[np.ndarray, np.ndarray]],
                   n_items: int, n_classes: int) -> tuple[np.ndarray, list[float]]:
    """The TF-IDF folds' test probabilities in one ``(n_items, n_classes)`` array, and each fold's alpha."""
    out = np.zeros((n_items, n_classes))
    chosen = []
    for (_, test), (classes_, probs, c, _) in zip(splits, fitted):
        # a class missing from this fold's training part gets no column: it stays 0 before smoothing
        out[np.ix_(test, classes_)] = probs
        chosen.append(c)
    return _smooth(out), chosen


def _fit_fold_sparse(x_train: Any, y_train: np.ndarray, x_test: Any, alphas: Sequence[float], seed: int,
                     init: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, float, Any]:
    """Logistic loss by SGD (fast on wide sparse features); alpha chosen on an inner stratified hold-out.

    Full-batch solvers took minutes per fold on long documents (20news) here; SGD with a
    fixed number of epochs reached the same accuracy in seconds. The fit that scores continues the search's fit at
    the chosen alpha (:func:`continue_epochs`), or starts from zero (:func:`scoring_epochs`) where nothing was
    searched. ``init``: the fold's first-pass weights (coefficients, intercepts) for the refit pass, which then runs
    :func:`refit_epochs`. Returns the classes, the test part's probabilities, the alpha, and the fitted weights.
    """
    lm = require("sklearn.linear_model", extra="train", purpose="out-of-fold probabilities")

    def model(alpha: float, epochs: int) -> Any:
        return lm.SGDClassifier(loss="log_loss", alpha=alpha, max_iter=epochs, tol=None,  # type: ignore[attr-defined]
                                random_state=seed)

    start = len(alphas) // 2
    best = alphas[start]
    start_from: tuple[np.ndarray, np.ndarray] | None = None  # the weights the scoring fit starts from
    inner = _inner_split(y_train, seed)
    if len(alphas) > 1 and inner is not None:
        fit_idx, val_idx = inner
        k = int(y_train.max()) + 1
        losses: dict[int, float] = {}
        fits: dict[int, Any] = {}

        def loss(j: int) -> float:
            if j not in losses:
                fits[j] = model(alphas[j], TFIDF_EPOCHS[0]).fit(x_train[fit_idx], y_train[fit_idx])
                probs = _smooth(_full(fits[j].predict_proba(x_train[val_idx]), fits[j].classes_, k))
                losses[j] = _log_loss(y_train[val_idx], probs)
            return losses[j]

        # The validation loss is close to unimodal in log(alpha): walk from the middle towards the
        # better neighbour while it improves (3-4 fits instead of 7).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            j = start
            step = -1 if j > 0 and loss(j - 1) < loss(j) else 1
            while 0 <= j + step < len(alphas) and loss(j + step) < loss(j):
                j += step
        best = alphas[j]
        # the search's fit lacks a class only when every item of it is in the hold-out; then start from zero
        if init is None and np.array_equal(fits[j].classes_, np.unique(y_train)):
            start_from, epochs = (fits[j].coef_, fits[j].intercept_), continue_epochs(x_train.shape[0])
    if start_from is None:
        epochs = scoring_epochs(x_train.shape[0])
        if init is not None:
            start_from, epochs = init, refit_epochs(epochs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if start_from is None:
            final = model(best, epochs).fit(x_train, y_train)
        else:
            final = model(best, epochs).fit(x_train, y_train, coef_init=start_from[0], intercept_init=start_from[1])
    return final.classes_, final.predict_proba(x_test), float(best), (final.coef_, final.intercept_)


def scoring_epochs(n_rows: int) -> int:
    """SGD epochs of the TF-IDF fit that scores a fold: :data:`TFIDF_EPOCHS` ``[1]``, fewer on large training parts
    (about :data:`TFIDF_UPDATES` sample updates, never fewer than the search's epochs)."""
    return max(TFIDF_EPOCHS[0], min(TFIDF_EPOCHS[1], math.ceil(TFIDF_UPDATES / max(n_rows, 1))))


def continue_epochs(n_rows: int) -> int:
    """SGD epochs of the TF-IDF fit that scores a fold when it continues the search's fit: about
    :data:`TFIDF_CONTINUE_UPDATES` sample updates, between the search's epochs and :func:`scoring_epochs`'s."""
    return max(TFIDF_EPOCHS[0], min(scoring_epochs(n_rows), math.ceil(TFIDF_CONTINUE_UPDATES / max(n_rows, 1))))


def refit_epochs(epochs: int) -> int:
    """SGD epochs of the refit pass's TF-IDF fit, which starts from the fold's first-pass model: half the first
    pass's, at least the search's. From zero with all ten, out-of-fold accuracy was no higher (BENCHMARKS.md)."""
    return max(TFIDF_EPOCHS[0], math.ceil(epochs / 2))


def _full(probs: np.ndarray, classes_: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(probs), k))
    out[:, classes_] = probs
    return out


def _smooth(p: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(p, eps, None)
    return p / p.sum(1, keepdims=True)


def pool_views(views: list[np.ndarray], y: np.ndarray) -> tuple[np.ndarray, list[float], float]:
    """Log-linear pooling ``softmax(sum_v w_v log p_v / T)`` with ``w`` on the simplex and ``T`` fitted by OOF log loss.

    The log loss is convex in the coefficients ``a_v = w_v / T``, so they are fitted exactly, each at least 0
    (L-BFGS-B, about ten evaluations), and reported as ``w = a / sum(a)``, ``T = 1 / sum(a)``. Against the 0.1 grid
    over the simplex and seven temperatures it replaced: the same weights within 0.05, a log loss 0.001-0.002 lower
    and out-of-fold accuracy within 0.05 point on SST-2, TREC, banking77 and emotion, in a tenth of the time (0.18 s
    per pooling of 10,000 items and three views before, twice per scan; BENCHMARKS.md, "Quick-scan speed").

    Returns
    -------
    pooled : numpy.ndarray
        ``(n_items, n_classes)``
    weights : list of float
    temperature : float
        At most :data:`MAX_TEMPERATURE`: views that predict no better than the class shares pool to nearly uniform.
    """
    if len(views) == 1:
        return views[0], [1.0], 1.0
    optimize = require("scipy.optimize", extra="train", purpose="pooling the views")
    logs = np.stack([np.log(v) for v in views])  # (V, n, C)
    rows = np.arange(len(y))
    given = logs[:, rows, y].mean(1)  # (V,)

    def loss_and_gradient(a: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.tensordot(a, logs, axes=1)
        z -= z.max(1, keepdims=True)  # each row's largest 0, so exp cannot overflow
        e = np.exp(z)
        total = e.sum(1)
        loss = float(np.mean(np.log(total) - z[rows, y]))
        # d/da_v: the view's log probability expected under the pooled distribution, less the given class's
        expected = np.einsum("vnc,nc->v", logs, e / total[:, None]) / len(y)
        return loss, expected - given

    found = optimize.minimize(loss_and_gradient, np.full(len(views), 1 / len(views)),  # type: ignore[attr-defined]
                              jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * len(views))
    a = np.asarray(found.x, dtype=float)
    if a.sum() < 1 / MAX_TEMPERATURE:
        a = np.full(len(views), 1 / (MAX_TEMPERATURE * len(views)))
    return _softmax(np.tensordot(a, logs, axes=1)), [float(v) for v in a / a.sum()], float(1 / a.sum())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(1, keepdims=True))


def _finetune(texts: Sequence[str], y: np.ndarray, classes: list[str], *, folds: int, seed: int,
              runs_dir: str | os.PathLike[str] | None = None, progress: bool = True,
              stop: threading.Event | None = None, **config: Any) -> OutOfFold:
    """k fine-tunes, each trained on k-1 folds (with its own validation split) and predicting the held-out fold.

    ``config``: :class:`workbench.config.FineTuneConfig` fields over :data:`FINETUNE_DEFAULTS`.
    """
    import shutil
    import tempfile

    import pandas as pd

    from workbench.config import FineTuneConfig
    from workbench.launch import train_for_caller

    # every fold trains with the same config; a bad one fails here, before a scratch folder exists
    config = {**FINETUNE_DEFAULTS, **config}
    cfg = FineTuneConfig.from_dict({"seed": seed, **config, "labels": classes, "predict_splits": ["test"]})
    root = runs_dir or tempfile.mkdtemp(prefix="workbench-oof-")
    probs = np.zeros((len(y), len(classes)))
    ids = [f"oof-{i}" for i in range(len(y))]
    try:
        for fold, (_, test) in enumerate(stratified_folds(y, folds, seed)):
            split = np.full(len(y), "train", dtype=object)
            split[test] = "test"
            frame = pd.DataFrame({"item_id": ids, "text": list(texts), "label": [classes[i] for i in y],
                                  "split": split})
            run = train_for_caller(cfg, data=frame, runs_dir=root, run_id=f"fold-{fold}-{os.getpid()}-{seed}",
                                   what=f"the fine-tune of fold {fold}", progress=progress, stop=stop)
            pred = run.predictions("test")
            rows = [int(i.split("-")[1]) for i in pred["item_id"]]
            probs[rows] = pred[[f"prob_{c}" for c in classes]].to_numpy()
    except (KeyboardInterrupt, SystemExit, Cancelled):
        if runs_dir is None:  # an interrupted scan's scratch runs hold nothing anyone will read
            shutil.rmtree(root, ignore_errors=True)
        raise
    if runs_dir is None:
        # Scratch fold runs (a model each): only their predictions are kept. A failed fold's folder stays,
        # since the error above points at its log.
        shutil.rmtree(root, ignore_errors=True)
    return OutOfFold(_smooth(probs), classes, y, {"finetune": probs},
                     {"mode": "finetune", "folds": folds, "seed": seed,
                      "runs_dir": None if runs_dir is None else str(root), **config})
