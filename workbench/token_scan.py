"""Label issues in token classification (NER): cross-fitted taggers, token and sentence scores, into the store.

Text classification gets out-of-fold probabilities from frozen embeddings in seconds; tags need a
tagger. :func:`scan_tokens` splits the sentences to check into ``folds`` parts, fine-tunes one tagger
per part on everything else (each in its own background process, one after the other), and so gets
token probabilities from models that never saw the sentence. Each sentence then gets a score (a soft
minimum of its tokens' self-confidence), a suggested tag sequence (the predicted tags, made BIO-valid)
and the issue ``label`` when some token's given tag is not the most probable one.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from workbench.bio import decode_tags
from workbench.brief import BriefRepr
from workbench.config import FineTuneConfig
from workbench.errors import DataError, require
from workbench.quality import sentence_scores, token_issues, token_scores
from workbench.splits import in_split
from workbench.store import LabelStore, takes_store_path
from workbench.tag_consistency import SPAN_COLUMNS, apply_readings, inconsistent_spans

HELD_OUT = "heldout"  # the split name a fold's sentences get in its run


@dataclass(repr=False)
class TokenScan(BriefRepr):
    """What :func:`scan_tokens` found.

    Attributes
    ----------
    sentences : pandas.DataFrame
        One row per scanned sentence, worst first: item_id, score, suggested_label (tag list),
        suggested_prob (the least probable changed tag), n_suspect_tokens, issues.
    tokens : pandas.DataFrame
        One row per suspect token: item_id, token, given_tag, suggested_tag, score, suggested_prob.
    runs : list of str
        The fold runs' folders.
    inconsistent : pandas.DataFrame
        The scanned sentences' spans tagged unlike the same words elsewhere in the store
        (:func:`workbench.tag_consistency.inconsistent_spans`); their sentences carry the issue
        ``inconsistent_tag``.
    unknown_tokens : dict, optional
        The taggers' ``unknown_tokens`` (a fold run's status, or the given tagger's): how much of their training
        sentences the model's vocabulary could not read, when that matters (:mod:`workbench.vocab`).
    """

    scan_id: str
    sentences: pd.DataFrame
    tokens: pd.DataFrame
    runs: list[str]
    seconds: float
    inconsistent: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SPAN_COLUMNS))
    unknown_tokens: dict[str, Any] | None = None


#: The fold taggers' settings unless the caller gives a config: on the 300-sentence demo data they flag the planted
#: errors at sentence AUROC 0.96 in about 20 s.
TAGGER_DEFAULTS = {"epochs": 3, "learning_rate": 3e-4, "batch_size": 16, "max_length": 128}


def tagger_config(**overrides: object) -> FineTuneConfig:
    """The fold taggers' default :class:`FineTuneConfig` (:data:`TAGGER_DEFAULTS`), with ``overrides``."""
    return FineTuneConfig.from_dict({**TAGGER_DEFAULTS, **overrides, "task": "token-classification"})


@takes_store_path("scan_tokens")
def scan_tokens(store: LabelStore, *, folds: int = 2, split: str | None = "train",
                config: FineTuneConfig | None = None, runs_dir: str | os.PathLike[str] = "runs",
                tagger: str | os.PathLike[str] | None = None, write: bool = True,
                progress: bool = False, stop: threading.Event | None = None) -> TokenScan:
    """Score every sentence of ``split`` (None: all; ``train`` includes sentences with no split) with taggers
    that did not see it.

    Parameters
    ----------
    store : LabelStore or its path
        Token classification.
    folds : int
        Taggers trained (at least 2).
    config : FineTuneConfig, optional
        For the fold taggers (default: :func:`tagger_config`).
    tagger : path, optional
        A finished tagger run instead of fold taggers: it scores the store's sentences it did not train on
        (``split`` is then ignored), e.g. the test split with the tagger trained on the train split. Sentences
        it trained on are left out (its tags agree with what it learnt, wrong tags included); none left is an error.
    progress : bool
        A progress bar over the fold taggers (each one a fine-tune: minutes on a CPU for thousands of sentences).
    stop : threading.Event, optional
        Set from another thread (a panel's Cancel) to cancel the fold tagger under way and raise
        :class:`~workbench.errors.Cancelled`; nothing is written.

    Returns
    -------
    TokenScan
    """
    if store.task != "token-classification":
        raise DataError(f"{store.url} holds {store.task} items; scan_tokens is for token classification "
                        "(use workbench.scan.scan for texts)")
    started, labels_read = time.perf_counter(), time.time()  # corrections from now on are "changed since"
    table = store.to_pandas()
    scan_id = f"tokens-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    params: dict[str, Any]
    if tagger is not None:
        if config is not None:
            raise DataError("config sets the fold taggers; with tagger=... no tagger is trained: drop config")
        chosen, probs, tag_names = _given_tagger(table, tagger, progress=progress)
        runs: list[str] = []
        model, params = str(tagger), {"tagger": str(tagger)}
    else:
        if folds < 2:
            raise DataError(f"folds must be at least 2 (each tagger needs sentences it did not see), got {folds}")
        chosen = table.index if split is None else table.index[in_split(table["split"], split)]
        if len(chosen) < folds:
            splits = sorted({str(v) for v in table["split"].dropna()})
            other = (f"; {store.url} has the split(s) {splits}: scan one of them with split=NAME (workbench scan "
                     "--split NAME)" if splits and split not in splits else "")
            raise DataError(f"only {len(chosen)} sentences in split {split!r}; need at least {folds}{other}")
        base = config or tagger_config()
        if base.task != "token-classification":
            raise DataError("the fold taggers' config must have task='token-classification'")
        probs, tag_names, runs = _fold_taggers(table, chosen, folds=folds, config=base, runs_dir=Path(runs_dir),
                                               scan_id=scan_id, progress=progress, stop=stop)
        model, params = base.model or "all-MiniLM-L6-v2", {"folds": folds, "split": split, "runs": runs}
    from workbench.runs import RunView

    # every fold trains on most of the same sentences: the first one's count speaks for them
    unknown = RunView(Path(runs[0] if runs else str(tagger))).status().get("unknown_tokens")
    sentences, tokens = _score_sentences(table, chosen, probs, tag_names)
    inconsistent = _corpus_inconsistencies(table, chosen)
    why = _consistency_details(inconsistent)
    sentences["issues"] = [[*issues, "inconsistent_tag"] if i in why else issues
                           for i, issues in zip(sentences["item_id"], sentences["issues"], strict=True)]
    sentences["issue_details"] = [
        " | ".join(([f"label: {n} tag(s) the taggers would change"] if n else []) + ([why[i]] if i in why else []))
        or None for i, n in zip(sentences["item_id"], sentences["n_suspect_tokens"], strict=True)]
    if write:
        store.write_scores(scan_id, sentences, model=model, params=params, labels_as_of=labels_read)
    return TokenScan(scan_id, sentences, tokens, runs, time.perf_counter() - started, inconsistent, unknown)


@takes_store_path("check_tag_consistency")
def check_tag_consistency(store: LabelStore, *, max_share: float = 0.2, min_count: int = 3,
                          write: bool = True) -> TokenScan:
    """The model-free scan: every tagged sentence against the rest of the store (seconds, no tagger).

    Each sentence with a span tagged unlike the same words elsewhere (see
    :func:`workbench.tag_consistency.inconsistent_spans`) gets the issue ``inconsistent_tag``, a score (the share
    of its rarest reading, at most ``max_share``; 1 for a consistent sentence, so flagged sentences sort first) and
    a suggestion (its tags with those spans read as the majority reads them).

    Returns
    -------
    TokenScan
        ``tokens`` lists each word of a flagged span (given and suggested tag, ``score`` and ``suggested_prob``:
        the shares of the two readings); ``runs`` is empty.
    """
    if store.task != "token-classification":
        raise DataError(f"{store.url} holds {store.task} items; tag consistency is for token classification")
    started, labels_read = time.perf_counter(), time.time()  # corrections from now on are "changed since"
    table = store.to_pandas()
    tagged = table.index[table["tags"].notna()]
    if not len(tagged):
        raise DataError(f"{store.url} has no tagged sentence to compare")
    found = _corpus_inconsistencies(table, max_share=max_share, min_count=min_count)
    by_item = {str(k): g for k, g in found.groupby("item_id")}
    why = _consistency_details(found)
    rows, token_rows = [], []
    for item_id, tags in zip(table.loc[tagged, "item_id"].astype(str), table.loc[tagged, "tags"], strict=True):
        spans_here = by_item.get(item_id)
        if spans_here is None:
            rows.append({"item_id": item_id, "score": 1.0, "suggested_label": list(tags), "suggested_prob": 1.0,
                         "n_suspect_tokens": 0, "issues": [], "issue_details": None})
            continue
        suggested = apply_readings(tags, spans_here)
        # each word's shares, from the spans covering it: the reading it has, and (the least of) the one suggested
        given_at: dict[int, float] = {}
        suggested_at: dict[int, float] = {}
        for start, end, given_share, suggested_share in zip(
                spans_here["start"].tolist(), spans_here["end"].tolist(), spans_here["given_share"].tolist(),
                spans_here["suggested_share"].tolist(), strict=True):
            for j in range(start, end):
                given_at[j] = given_share
                suggested_at[j] = min(suggested_at.get(j, suggested_share), suggested_share)
        least_given = float(spans_here["given_share"].min())
        changed = [j for j, (a, b) in enumerate(zip(tags, suggested, strict=True)) if a != b]
        # a word retagged only to keep IOB2 valid (after a removed entity) is covered by no span
        token_rows += [{"item_id": item_id, "token": j, "given_tag": tags[j], "suggested_tag": suggested[j],
                        "score": given_at.get(j, least_given), "suggested_prob": suggested_at.get(j, 1.0)}
                       for j in changed]
        rows.append({"item_id": item_id, "score": least_given, "suggested_label": suggested,
                     "suggested_prob": float(spans_here["suggested_share"].min()),
                     "n_suspect_tokens": len(changed), "issues": ["inconsistent_tag"], "issue_details": why[item_id]})
    sentences = pd.DataFrame(rows).sort_values("score", kind="stable").reset_index(drop=True)
    tokens = pd.DataFrame(token_rows, columns=["item_id", "token", "given_tag", "suggested_tag", "score",
                                               "suggested_prob"]).sort_values("score", kind="stable")
    scan_id = f"consistency-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    if write:
        store.write_scores(scan_id, sentences, model="tag consistency",
                           params={"max_share": max_share, "min_count": min_count}, labels_as_of=labels_read)
    return TokenScan(scan_id, sentences, tokens.reset_index(drop=True), [], time.perf_counter() - started, found)


def _consistency_details(found: pd.DataFrame) -> dict[str, str]:
    """Per sentence, why its spans were flagged: ``inconsistent_tag: 'Barcelona' LOC here, ORG in 22 of 24``."""
    out: dict[str, list[str]] = {}
    for item_id, surface, given, suggested, share, n in zip(
            found["item_id"], found["surface"], found["given"], found["suggested"], found["suggested_share"],
            found["occurrences"], strict=True):
        out.setdefault(str(item_id), []).append(f"{surface!r} {given} here, {suggested} in {round(share * n)} of {n}")
    return {k: "inconsistent_tag: " + "; ".join(v) for k, v in out.items()}


def _corpus_inconsistencies(table: pd.DataFrame, chosen: pd.Index | None = None, **options: Any) -> pd.DataFrame:
    """The chosen sentences' (None: all) spans tagged unlike the same words anywhere in the store (all sentences are
    evidence); ``options`` go to :func:`workbench.tag_consistency.inconsistent_spans`."""
    flag = None if chosen is None else table.index.isin(chosen).tolist()
    return inconsistent_spans(table["tokens"].tolist(), table["tags"].tolist(),
                              item_ids=table["item_id"].astype(str).tolist(), flag=flag, **options)


def _fold_taggers(table: pd.DataFrame, chosen: pd.Index, *, folds: int, config: FineTuneConfig, runs_dir: Path,
                  scan_id: str, progress: bool,
                  stop: threading.Event | None = None) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Each chosen sentence's ``(n_words, n_tags)`` probabilities from the fold tagger that did not see it, the tag
    order, and the fold runs' folders."""
    from workbench.launch import train_for_caller
    from workbench.runs import RunView

    rng = np.random.default_rng(0)
    fold_of = pd.Series(-1, index=table.index)
    fold_of[chosen] = rng.permutation(len(chosen)) % folds
    probs: dict[str, np.ndarray] = {}
    runs = []
    tag_names: list[str] = []
    tqdm = require("tqdm.auto", extra="train", purpose="progress bars").tqdm  # type: ignore[attr-defined]
    for fold in tqdm(range(folds), desc="fold taggers", unit="tagger", disable=not progress, leave=False):
        data = table.copy()
        data["split"] = np.where(fold_of == fold, HELD_OUT, np.where(data["split"].eq("test"), "test", "train"))
        data.attrs = table.attrs
        fold_config = FineTuneConfig.from_dict({**config.to_dict(), "predict_splits": [HELD_OUT]})
        # each tagger is minutes on a CPU: a bar over its steps, as finetune mode's fold fine-tunes show
        run = train_for_caller(fold_config, data=data, runs_dir=runs_dir, run_id=f"{scan_id}-fold{fold}",
                               what=f"fold tagger {fold}", progress=progress, stop=stop)
        runs.append(str(run.path))
        predicted = RunView(run.path).predictions(HELD_OUT)
        for item, rows in zip(predicted["item_id"].astype(str).tolist(), predicted["token_probs"].tolist(),
                              strict=True):
            probs[item] = _normalised(np.asarray([np.asarray(v, dtype=np.float64) for v in rows]))
        tag_names = RunView(run.path).labels()
    return probs, tag_names, runs


def _given_tagger(table: pd.DataFrame, tagger: str | os.PathLike[str], *,
                  progress: bool) -> tuple[pd.Index, dict[str, np.ndarray], list[str]]:
    """The sentences a finished tagger run did not train on, its probabilities for them, and its tag order."""
    from workbench.predict import load_run
    from workbench.runs import open_run

    view = open_run(tagger)
    if view.task() != "token-classification":
        raise DataError(f"run {view.run_id} is {view.task()}; tagger=... needs a token-classification run")
    if view.status().get("state") != "finished":
        raise DataError(f"run {view.run_id} is {view.status().get('state')}, not finished; only a finished run has "
                        "a tagger to score with")
    # what it trained on: its data's training split, less what the worker held out of it (an evaluation split the
    # data did not have is cut from the training rows; the run's predictions name those items)
    trained_on: set[str] = set()
    snapshot = view.path / "data.parquet"
    if snapshot.exists():
        data = pd.read_parquet(snapshot, columns=["item_id", "split"])
        train_split = view.config().get("train_split") or "train"
        trained_on = set(data.loc[data["split"].fillna(train_split).eq(train_split), "item_id"].astype(str))
        for split in view.splits():
            if split != train_split:
                trained_on -= set(view.predictions(split)["item_id"].astype(str))
    ids = table["item_id"].astype(str)
    chosen = table.index[~ids.isin(trained_on) & table["tags"].notna()]
    if not len(chosen):
        raise DataError(f"run {view.run_id} trained on every sentence of this store, so its tags for them are not "
                        "out-of-sample; scan with fold taggers (no tagger=...) or with a run trained on other "
                        "sentences")
    tag_names = view.labels()
    unknown = sorted({t for tags in table.loc[chosen, "tags"] if tags is not None for t in tags} - set(tag_names))
    if unknown:
        raise DataError(f"the store has tag(s) {unknown[:5]} that run {view.run_id} does not know ({tag_names}); "
                        "scan with a tagger trained on the same tag set")
    predicted = load_run(view.path).predict(table.loc[chosen, ["item_id", "tokens"]], progress=progress)
    probs = {str(i): _normalised(np.asarray(p, dtype=np.float64))
             for i, p in zip(predicted["item_id"], predicted["token_probs"], strict=True)}
    return chosen, probs, tag_names


def _normalised(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)


def _score_sentences(table: pd.DataFrame, chosen: pd.Index, probs: dict[str, np.ndarray],
                     tag_names: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sentence rows (worst first) and suspect-token rows from each chosen sentence's tag probabilities."""
    ids = [str(i) for i in table.loc[chosen, "item_id"]]
    index = {t: k for k, t in enumerate(tag_names)}
    all_tags = table["tags"].tolist()
    positions = [table.index.get_loc(i) for i in chosen]
    tag_lists: list[list[str]] = [list(all_tags[j]) for j in positions]
    given = [[index[t] for t in tags] for tags in tag_lists]
    token_probs = [probs[i] for i in ids]
    per_token = token_scores(given, token_probs)
    tokens = token_issues(given, token_probs, tag_names=tag_names, item_ids=ids)
    suspects: dict[str, tuple[int, float]] = {}  # item -> (suspect tokens, least probable suggested tag)
    for item, prob in zip(tokens["item_id"].astype(str).tolist(), tokens["suggested_prob"].astype(float).tolist(),
                          strict=True):
        n, least = suspects.get(item, (0, 1.0))
        suspects[item] = (n + 1, min(least, prob))
    suggested = [decode_tags(p, tag_names) for p in token_probs]
    sentences = pd.DataFrame({
        "item_id": ids, "score": sentence_scores(per_token, method="softmin"), "suggested_label": suggested,
        "suggested_prob": [suspects[i][1] if i in suspects else float(p.max(axis=1).min())
                           for i, p in zip(ids, token_probs, strict=True)],
        "n_suspect_tokens": [suspects[i][0] if i in suspects else 0 for i in ids]})
    sentences["issues"] = [["label"] if n else [] for n in sentences["n_suspect_tokens"]]
    return sentences.sort_values("score", kind="stable").reset_index(drop=True), tokens
