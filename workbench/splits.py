"""Deterministic splits: stratified train/validation/test, stratified k-fold, group-aware, temporal."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from workbench.errors import DataError

if TYPE_CHECKING:
    from workbench.config import FineTuneConfig


def _check(labels: Sequence[Any], fractions: Sequence[float]) -> None:
    if not len(labels):
        raise DataError("nothing to split: no items")
    if any(f < 0 for f in fractions) or not 0 < sum(fractions) < 1:
        raise DataError(f"split fractions {list(fractions)} must be non-negative and sum to less than 1")


def stratified_split(labels: Sequence[Any], *, validation: float = 0.1, test: float = 0.0,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """Indices of train / validation / test with each class spread in proportion.

    Every class with at least 2 items keeps one in train; small classes are rounded
    toward train. Returns ``{"train": idx, "validation": idx, "test": idx}`` (sorted int arrays).
    """
    _check(labels, [validation, test])
    rng = np.random.default_rng(seed)
    names = np.array([str(v) for v in labels], dtype=object)  # once, not once per class
    out: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
    for cls in sorted(set(names)):
        idx = np.flatnonzero(names == cls)
        rng.shuffle(idx)
        n = len(idx)
        n_val = int(np.floor(n * validation + rng.random())) if n > 1 else 0
        n_test = int(np.floor(n * test + rng.random())) if n > 2 else 0
        n_val = min(n_val, max(0, n - 1 - n_test))
        out["validation"] += idx[:n_val].tolist()
        out["test"] += idx[n_val:n_val + n_test].tolist()
        out["train"] += idx[n_val + n_test:].tolist()
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in out.items()}


def stratified_kfold(labels: Sequence[Any], *, folds: int = 5,
                     seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` for each of ``folds`` stratified folds."""
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray([str(v) for v in labels])
    counts = {c: int((y == c).sum()) for c in set(y)}
    if min(counts.values()) < folds:
        small = sorted(c for c, n in counts.items() if n < folds)
        raise DataError(f"class(es) {small} have fewer than {folds} items; use fewer folds or label more")
    yield from StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)


def group_split(labels: Sequence[Any], groups: Sequence[Any], *, validation: float = 0.1, test: float = 0.0,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Like :func:`stratified_split`, but items that share a group (a duplicate group, a document) stay together.

    Groups are assigned whole, largest first, to the split furthest below its target share.
    """
    _check(labels, [validation, test])
    if len(groups) != len(labels):
        raise DataError(f"{len(groups)} groups for {len(labels)} items")
    rng = np.random.default_rng(seed)
    g = np.asarray([str(v) for v in groups])
    names, inverse = np.unique(g, return_inverse=True)
    order = rng.permutation(len(names))
    sizes = np.bincount(inverse)
    order = order[np.argsort(-sizes[order], kind="stable")]
    target = {"validation": validation, "test": test, "train": 1 - validation - test}
    filled = {k: 0 for k in target}
    assign = np.empty(len(names), dtype=object)
    total = len(g)
    for gi in order:
        name = min(target, key=lambda k: (filled[k] / total - target[k]) if target[k] > 0 else np.inf)
        assign[gi] = name
        filled[name] += sizes[gi]
    split_of = assign[inverse]
    return {k: np.flatnonzero(split_of == k) for k in ("train", "validation", "test")}


def temporal_split(timestamps: Sequence[Any], *, validation: float = 0.1, test: float = 0.0) -> dict[str, np.ndarray]:
    """Oldest items train, then validation, newest test (ties keep input order)."""
    _check(timestamps, [validation, test])
    import pandas as pd

    t = pd.to_datetime(pd.Series(list(timestamps)), errors="coerce", utc=True)
    if t.isna().any():
        raise DataError(f"timestamp of item {int(t.isna().to_numpy().argmax())} cannot be read as a date/time")
    order = np.argsort(t.to_numpy(), kind="stable")
    n = len(order)
    n_test = int(round(n * test))
    n_val = int(round(n * validation))
    train_end = n - n_test - n_val
    return {"train": np.sort(order[:train_end]), "validation": np.sort(order[train_end:train_end + n_val]),
            "test": np.sort(order[train_end + n_val:])}


def in_split(split_column: pd.Series, split: str) -> pd.Series:
    """Which rows belong to ``split`` ``(n,) -> (n,) bool``: those that name it, and for ``train`` also those that name
    none (data without splits is all training data, as a fine-tune reads it)."""
    named = split_column.astype(object)
    return named.eq(split) | (named.isna() if split == "train" else False)


def has_label(values: Iterable[Any]) -> np.ndarray:
    """``(n,)`` bool: which of a run's label cells hold a label (a class name or a tag list), not None or NaN."""
    # pandas' own test, one pass in C: launch() asks it of every item in the kernel, where a loop cost ~0.3 s per
    # 300,000 items
    column = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return column.notna().to_numpy(dtype=bool)


def prepare_splits(frame: pd.DataFrame, config: FineTuneConfig) -> pd.DataFrame:
    """Give every row of a run's data a split; hold out ``validation_fraction`` of train when there is no eval split.

    The fine-tune worker trains on what this returns, and :meth:`workbench.runs.RunView.trained_item_ids` calls it
    again on the run's saved data to tell which items the run trained on: deterministic by the config's seed.
    """
    frame = frame.copy()
    if "split" not in frame.columns or frame["split"].isna().all():
        frame["split"] = config.train_split
    frame["split"] = frame["split"].fillna(config.train_split).astype(str)
    train = np.flatnonzero(frame["split"].to_numpy() == config.train_split)
    has = has_label(frame["label"])  # read once: a Python test per item, and three checks below ask it
    labelled = train[has[train]]
    if not has.any():
        raise DataError(f"none of the {len(frame)} items has a label; nothing to train on: label some first (the label "
                        "browser, active learning) or import labelled data")
    if not len(labelled):
        splits = sorted(frame["split"].unique())
        other = [sp for sp in splits if sp != config.train_split]
        raise DataError(f"the split {config.train_split!r} has no labelled items; nothing to train on (splits in the "
                        f"data: {splits})" + (f"; to train on another, set train_split (FineTuneConfig(train_split="
                                              f"{other[0]!r}), workbench train --set train_split={other[0]})"
                                              if other else ""))
    if not (frame["split"] == config.eval_split).any():  # vectorised: launch() runs this in the kernel
        keys = [str(v) if isinstance(v, str) else str(v[0]) for v in frame["label"].iloc[labelled].tolist()]
        held = stratified_split(keys, validation=config.validation_fraction, seed=config.seed)["validation"]
        frame.loc[frame.index[labelled[held]], "split"] = config.eval_split
    _check_eval_split(frame, config, labelled=has)
    return frame


def _check_eval_split(frame: pd.DataFrame, config: FineTuneConfig, *, labelled: np.ndarray) -> None:
    """Refuse a run with nothing labelled to evaluate on, saying why: the data's own split is unlabelled, or too few
    items carry a label to hold some out. ``labelled``: :func:`has_label` of every row."""
    in_eval = (frame["split"] == config.eval_split).to_numpy()
    if (in_eval & labelled).any():
        return
    if in_eval.any():  # the data's own split, none of it labelled
        raise DataError(f"the evaluation split {config.eval_split!r} is empty: none of its {int(in_eval.sum())} items "
                        "has a label; label some of them, or name another split in eval_split")
    what = "tags" if config.task == "token-classification" else "a label"
    raise DataError(f"the evaluation split {config.eval_split!r} is empty: {int(labelled.sum())} of the {len(frame)} "
                    f"items carry {what}, too few to hold some out. Label more, or give the data a "
                    f"{config.eval_split!r} split of labelled items")
