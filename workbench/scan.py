"""A scan: embeddings -> out-of-fold probabilities -> label-issue scores -> data checks -> report -> store.

``scan(store)`` is the one call behind the CLI's ``workbench scan`` and the quality panel.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.brief import BriefRepr
from workbench.checks import CheckContext, CheckResult, duplicate_groups, run_checks
from workbench.crossval import (
    OutOfFold,
    check_folds,
    encode_labels,
    out_of_fold_probs,
    plan_views,
    single_item_classes,
    spelling_hints,
)
from workbench.data import as_dataset
from workbench.errors import Cancelled, DataError
from workbench.models import resolve_model
from workbench.quality import (
    agreement_from_neighbors,
    combine_scores,
    confidence_weighted_entropy,
    confident_joint,
    find_label_issues,
    label_posterior,
    nearest_neighbors,
    normalized_margin,
    self_confidence,
    suggest_labels,
    unit_rows,
)
from workbench.report import QualityReport, build_report, count_long_texts
from workbench.splits import in_split
from workbench.store import LabelStore
from workbench.vocab import count_unknown_tokens

SCORE_COLUMNS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy", "label_posterior",
                 "neighbor_agreement", "combined")


@dataclass(repr=False)
class ScanResult(BriefRepr):
    """Everything a scan computed.

    Attributes
    ----------
    scan_id : str
    items : pandas.DataFrame
        One row per item, worst label first: item_id, text, given_label, score, suggested_label,
        suggested_prob, is_label_issue, issues (list of issue types), issue_details (why, per issue type;
        None without issues), each score column, and duplicate_group (items the duplicate checks linked
        share it; NaN for the rest).
    report : QualityReport
    oof : OutOfFold or None
        None when fewer than two classes were labelled.
    checks : dict of str to CheckResult
    seconds : dict of str to float
        Time per stage.
    """

    scan_id: str
    items: pd.DataFrame
    report: QualityReport
    oof: OutOfFold | None
    checks: dict[str, CheckResult]
    seconds: dict[str, float]

    def label_issues(self) -> pd.DataFrame:
        """Only the items flagged as label issues, worst first."""
        return self.items[self.items["is_label_issue"]].reset_index(drop=True)


def scan(data: LabelStore | pd.DataFrame | str | os.PathLike[str], *, mode: str = "quick", folds: int = 5,
         seed: int = 0,
         model: str | os.PathLike[str] | None = None, score: str = "combined",
         filter_by: str = "prune_by_noise_rate", checks: Sequence[str] | None = None,
         embeddings: np.ndarray | None = None, cache_dir: str | os.PathLike[str] | None = None,
         precision: str = "auto", classifier_layers: Sequence[int] = (-1,), refit_clean: bool = True,
         finetune: Mapping[str, Any] | None = None, pred_probs: np.ndarray | pd.DataFrame | None = None,
         progress: bool = True, scan_id: str | None = None, write: bool = True,
         split: str | None = None, max_length: int = 128, stop: threading.Event | None = None,
         views: Sequence[str] | None = None) -> ScanResult:
    """Scan a store (or a table from :func:`workbench.data.load_dataset`) for label issues and data problems.

    Parameters
    ----------
    data : LabelStore, pandas.DataFrame, or a path
        A store's path (or URL) is opened for the scan; a dataset file's, or a table not from :func:`load_dataset`
        (``text`` and ``label`` columns of one's own), is read by :func:`load_dataset` with its defaults and
        scanned as it is.
    mode : {"quick", "finetune"}
        How the out-of-fold probabilities are made (see :mod:`workbench.crossval`).
    folds : int
        Outer cross-validation folds; every item is scored by models that did not see it.
    seed : int
        The folds' assignment and the heads' initialisation: the same data and seed give the same scan.
    model : path or str, optional
        The encoder (a local folder, or a name in the Hugging Face cache); default the packaged all-MiniLM-L6-v2.
    score : str
        The label-quality score pages sort by (see :func:`workbench.quality.label_quality_scores`);
        ``combined`` (the default) lets the embedding neighbours' labels move the classifier's margin.
    filter_by : str
        Which items are flagged as label issues (see :func:`workbench.quality.find_label_issues`).
    checks : sequence of str, optional
        Data checks to run (default all registered ones).
    embeddings : numpy.ndarray, optional
        ``(n_items, d)`` (the items scanned: with ``split``, that split's), to skip embedding: then they serve both
        the classifier view and the neighbours.
        Without them, one forward pass gives ``classifier_layers`` to the classifier and the last layer,
        the sentence embedding, to the neighbours.
    precision : {"auto", "bf16", "fp16", "fp32"}
        The encoder's forward pass (:func:`workbench.embed.choose_precision`): ``auto`` is bf16 autocast on a CPU with
        native bf16 or a GPU that supports it (fp16 on other GPUs), else fp32. Cached vectors are kept per precision.
        ``fp32`` also keeps the quick views' heads in float32; otherwise their products are bf16 where the CPU has
        native bf16 (:func:`workbench.crossval.out_of_fold_probs`'s ``head_precision``).
    classifier_layers : sequence of int
        Hidden states the classifier view reads: default the sentence embedding; :data:`workbench.embed.TOP_LAYERS`
        (the top four) ranks wrong labels a little better for more cross-validation time: twice as much with
        float32 heads, a fifth more with bf16 ones (BENCHMARKS.md).
    refit_clean : bool
        Quick mode's second pass without the items the first pass flagged (see
        :func:`workbench.crossval.out_of_fold_probs`); False saves about a third of the cross-validation time.
    finetune : mapping, optional
        ``mode="finetune"`` only: :class:`workbench.config.FineTuneConfig` fields for the fold fine-tunes, e.g.
        ``{"epochs": 2, "max_length": 64}``; their model is the scan's ``model`` unless this names another.
    pred_probs : numpy.ndarray or pandas.DataFrame, optional
        Out-of-fold probabilities from elsewhere (your own model's cross-validation) instead of the scan's own:
        ``(n_items, n_classes)`` in the data's item order (with ``split``, that split's) and its sorted classes, or
        a table with ``item_id`` and ``prob_<class>`` columns (see :func:`workbench.given_probs.align_pred_probs`).
        The scan still embeds the texts for the neighbour score and the checks. A class with one item is scored too.
    cache_dir : path, optional
        Embeddings, TF-IDF features and neighbour lists are cached here between scans
        (default :func:`workbench.embed.default_cache_dir`), so a re-scan after label fixes
        recomputes only what reads the labels.
    progress : bool
        Progress bars for the embedding and the cross-validation.
    scan_id : str, optional
        The id the store files this scan's results under; default ``scan-<date>-<time>-<random>``.
    write : bool
        Write scores, suggestions and issue types into the store (stores only).
    split : str, optional
        Scan only the items of this split (``train`` includes items with no split): their labels are cross-validated
        and checked among themselves, and the store's other items are left unscored by this scan. Default: all.
    max_length : int
        Tokens of each text the embedding reads (the rest is cut off; the TF-IDF view reads every text whole). The
        report says how many texts run past it. Longer reads more of long texts (e-mails, tickets) for more time.
    views : sequence of str, optional
        Quick mode's views (:func:`workbench.crossval.out_of_fold_probs`): by default the sentence embedding, TF-IDF
        and the attention view, a head per fold over the model's token vectors (quick out-of-fold accuracy +1.6
        points on SST-2 and +2 on TREC; planted SST-2 label errors ranked better, AUROC +0.01, TREC's a little
        worse, -0.001 to -0.005). Its token vectors come from the same forward pass as the embeddings and are cached
        with them (about ten times their bytes); its training runs on every scan. A default scan of more than
        :data:`~workbench.crossval.ATTENTION_DEFAULT_MAX_ITEMS` labelled texts, or one whose token vectors would not
        fit in memory (estimated before the forward pass from a sample's token counts, checked exactly after it), goes
        without it and says so (``oof.params["attention_left_out"]``); named here, a shortage is an error, before the
        forward pass where the estimate foresees it. ``("embedding", "tfidf")`` leaves it out always.
    stop : threading.Event, optional
        Set from another thread (a panel's Cancel) to stop the scan with :class:`~workbench.errors.Cancelled`: the
        embedding stops between two batches (what it embedded stays cached), a fold fine-tune is cancelled, and
        nothing is written to the store.

    Returns
    -------
    ScanResult
    """
    if isinstance(data, (str, os.PathLike)):  # a store's path (opened for this scan), or a dataset file's
        options = dict(locals())  # first thing done: the parameters alone
        del options["data"]
        from workbench.store import is_store

        if not is_store(data):
            from workbench.data import load_dataset

            return scan(load_dataset(data), **options)
        with LabelStore.open(data, create=False) as opened:  # a typo'd path is refused, not a new empty store
            return scan(opened, **options)
    seconds: dict[str, float] = {}
    store = data if isinstance(data, LabelStore) else None
    labels_read = time.time()  # the scan's time: labels corrected from now on are "changed since" it
    table: pd.DataFrame = store.to_pandas() if store is not None else as_dataset(data)  # type: ignore[arg-type]
    if split is not None:
        table = _only_split(table, split, where=f"the store {store.url}" if store is not None else "the data")
    if "text" not in table.columns:
        raise DataError("quick scans read texts; this data is token classification. Scan it with fold taggers: "
                        "workbench.token_scan.scan_tokens(store) (or `workbench scan` on the command line)")
    item_ids = table["item_id"].astype(str).tolist()
    texts = table["text"].tolist()
    labels = [v if isinstance(v, str) else None for v in table["label"].tolist()]
    classes: list[str] = list(table.attrs.get("workbench", {}).get("labels")
                              or sorted({v for v in labels if v is not None}))
    normalization = table.attrs.get("workbench", {}).get("normalization", "NFC+whitespace")

    if finetune is not None and mode != "finetune":
        raise DataError(f"finetune={dict(finetune)!r} sets the fold fine-tunes of mode='finetune', but this scan's "
                        f"mode is {mode!r}; pass mode='finetune' or drop finetune")
    if views is not None and (mode != "quick" or pred_probs is not None):
        raise DataError(f"views={list(views)} choose quick mode's own views; this scan makes its probabilities "
                        f"{'with fine-tunes' if mode == 'finetune' else 'from pred_probs'}: drop views")
    if pred_probs is not None and (mode != "quick" or finetune is not None):
        raise DataError(f"pred_probs replaces the scan's own out-of-fold models, so mode={mode!r} and finetune have "
                        "nothing to do; drop them, or drop pred_probs")
    fold_config: dict[str, Any] = {}
    if mode == "finetune":
        fold_config = {**({"model": str(model)} if model is not None else {}), **(finetune or {})}
    # Data that cannot be cross-validated fails here, before minutes of embedding.
    labelled_values = [v for v in labels if v is not None]
    if not labelled_values:
        where = f"the store {store.url}" if store is not None else "the data"
        raise DataError(f"{where} holds no items; add a dataset first (workbench import DATA --store ..., or "
                        "LabelStore.import_dataset)" if not texts else
                        f"none of the {len(texts)} items in {where} has a label; a scan checks given labels, so "
                        "label some (the label browser) or import labelled data")
    # A class with one item cannot be learnt by a model that leaves that item out: its items are left unscored
    # (like unlabelled ones) and named in the report, so a long-tailed label set still gets scanned.
    given_probs = None
    if pred_probs is not None:  # nothing to cross-validate: every labelled item is scored
        from workbench.given_probs import align_pred_probs

        given_probs, classes = align_pred_probs(pred_probs, item_ids=item_ids, labels=labels, classes=classes)
        singles: list[str] = []
        unscored: set[str] = set()
    else:
        given_y = encode_labels(labelled_values, classes)[0]
        singles = single_item_classes(given_y, classes)
        unscored = set(singles)
        scored_y = given_y[[v not in unscored for v in labelled_values]]
        # too little left to scan (fewer than two classes): the plain error on all labels, which names the classes
        if not singles or len(np.unique(scored_y)) < 2:
            check_folds(given_y if singles else scored_y, classes, folds)
        else:
            try:
                check_folds(scored_y, classes, folds)
            except DataError as exc:  # say what was set aside, or "4 items" reads wrong against a file of 7
                raise DataError(f"{exc} ({len(given_y) - len(scored_y)} more items, of the class(es) with a single "
                                f"item {singles}, are left out of a scan{spelling_hints(given_y, classes, singles)})"
                                ) from exc
    labelled = np.array([v is not None and v not in unscored for v in labels])  # the items scored
    lab_idx = np.flatnonzero(labelled)
    # quick mode's views, known before the forward pass: the attention view's token vectors come from it
    quick_views: tuple[str, ...] = ()
    left_out = None  # why a default scan goes without the attention view, when known before the forward pass
    # fp32 asked for: the quick heads too, so a scan can be compared across machines
    head_precision = "fp32" if precision == "fp32" else "auto"
    if mode == "quick" and pred_probs is None:
        # the forward pass computes token vectors for every text; given embeddings, for the scored texts alone
        embedded = texts if embeddings is None else [texts[i] for i in lab_idx]
        quick_views, left_out = plan_views(views, n_items=len(lab_idx), embedded=embedded, model=model,
                                           max_length=max_length, precision=head_precision)
    from workbench.embed import default_cache_dir

    cache = cache_dir if cache_dir is not None else default_cache_dir()
    t = time.perf_counter()
    embeddings_read = embeddings is None
    encoding: dict[str, Any] = dict(model=model, cache_dir=cache, precision=precision, progress=progress,
                                    max_length=max_length, stop=stop)
    all_token_states: list[np.ndarray] | None = None
    if embeddings is None:
        from workbench.embed import embed_views, embed_views_with_tokens

        if "attention" in quick_views:  # one forward pass, both cached
            features, embeddings, all_token_states = embed_views_with_tokens(
                texts, classifier_layers=classifier_layers, **encoding)
        else:
            features, embeddings = embed_views(texts, classifier_layers=classifier_layers, **encoding)
    elif len(embeddings) != len(texts):
        raise DataError(f"embeddings have {len(embeddings)} rows for {len(texts)} items")
    else:
        features = embeddings
    seconds["embed"] = time.perf_counter() - t

    t = time.perf_counter()
    given = [str(labels[i]) for i in lab_idx]
    if given_probs is not None:
        oof = OutOfFold(given_probs[lab_idx], list(classes), encode_labels(given, classes)[0],
                        params={"mode": "given"})
    else:
        scored_texts = [texts[i] for i in lab_idx]
        token_states = None
        if all_token_states is not None:
            token_states = [all_token_states[i] for i in lab_idx]
        elif "attention" in quick_views:  # the caller gave the embeddings: the scored texts' token vectors alone
            from workbench.embed import embed_with_tokens

            token_states = embed_with_tokens(scored_texts, layers=(), **encoding)[1]
        oof = out_of_fold_probs(scored_texts, given, classes=classes, mode=mode,
                                folds=folds, seed=seed, embeddings=features[lab_idx], progress=progress,
                                cache_dir=cache, refit_clean=refit_clean, stop=stop,
                                views=quick_views if left_out else views, token_states=token_states,
                                head_precision=head_precision, **fold_config)
        if left_out:
            oof.params["attention_left_out"] = left_out
        seconds["crossval"] = time.perf_counter() - t

    t = time.perf_counter()
    y, p = oof.labels, oof.pred_probs
    names = np.asarray(classes, dtype=object)
    columns: dict[str, np.ndarray] = {
        "self_confidence": self_confidence(y, p),
        "normalized_margin": normalized_margin(y, p),
        "confidence_weighted_entropy": confidence_weighted_entropy(y, p),
        "label_posterior": label_posterior(y, p),
    }
    ctx = CheckContext(item_ids=item_ids, texts=texts, labels=labels, normalization=normalization,
                       embeddings=embeddings, cache_dir=cache)
    # One neighbour search serves the neighbourhood score and the checks.
    knn_idx, _ = ctx.neighbors(10)
    if not labelled.all():  # neighbours among the scored items only: their labels are what is compared
        knn_idx = nearest_neighbors(unit_rows(embeddings[lab_idx]), k=10)[0]
    columns["neighbor_agreement"] = agreement_from_neighbors(y, knn_idx)
    columns["combined"] = combine_scores(y, p, knn_idx)
    if score not in columns:
        raise DataError(f"unknown score {score!r}; use one of {list(columns)}")
    flagged = find_label_issues(y, p, filter_by=filter_by)
    best, prob = suggest_labels(p)
    seconds["scores"] = time.perf_counter() - t

    t = time.perf_counter()
    results = run_checks(ctx, names=checks)
    seconds["checks"] = time.perf_counter() - t

    issue_rows = [r.issues[["item_id", "issue"]] for r in results.values() if len(r.issues)]
    issue_rows.append(pd.DataFrame({"item_id": [item_ids[i] for i in lab_idx[flagged]], "issue": "label"}))
    all_issues = pd.concat(issue_rows, ignore_index=True).drop_duplicates()
    by_item = all_issues.groupby("item_id")["issue"].agg(lambda s: sorted(set(s))).to_dict()

    items = pd.DataFrame({"item_id": item_ids, "text": texts, "given_label": labels})
    items["score"] = np.nan
    items.loc[lab_idx, "score"] = columns[score]
    items["suggested_label"] = None
    items.loc[lab_idx, "suggested_label"] = names[best]
    items["suggested_prob"] = np.nan
    items.loc[lab_idx, "suggested_prob"] = prob
    items["is_label_issue"] = False
    items.loc[lab_idx, "is_label_issue"] = flagged
    items["issues"] = [by_item.get(i, []) for i in item_ids]
    items["issue_details"] = _issue_details(results, flagged_ids=[item_ids[i] for i in lab_idx[flagged]],
                                            given_prob=columns["self_confidence"][flagged],
                                            given=names[y[flagged]], suggested=names[best][flagged],
                                            suggested_prob=prob[flagged],
                                            neighbours=names[y[knn_idx[flagged]]], item_ids=item_ids)
    # which items are duplicates of which: the browser's "d" key and the --items table show an item's twins
    items["duplicate_group"] = duplicate_groups(item_ids, results)
    for name in SCORE_COLUMNS:
        items[name] = np.nan
        items.loc[lab_idx, name] = columns[name]
    items = items.sort_values("score", kind="stable", na_position="last").reset_index(drop=True)

    annotations = store.annotations() if store is not None else None
    report = build_report(item_ids=item_ids, labels=labels, classes=classes, issues=all_issues, checks=results,
                          joint=confident_joint(y, p), annotations=annotations, unscored_classes=singles,
                          # the user's own model's probabilities: how it learnt each class is not the scan's to judge
                          judge_thin_classes=given_probs is None,
                          # embeddings given by the caller were not cut at this scan's max_length
                          long_texts=count_long_texts(texts, max_length) if embeddings_read else None,
                          unknown_tokens=count_unknown_tokens(texts, resolve_model(model)) if embeddings_read else None,
                          views_left_out=({"attention": oof.params["attention_left_out"]}
                                          if "attention_left_out" in oof.params else None),
                          suggested=items.set_index("item_id")["suggested_label"].reindex(item_ids).tolist())
    scan_id = scan_id or f"scan-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    if stop is not None and stop.is_set():  # stopped during the seconds of the quick views: nothing written
        raise Cancelled("the scan was stopped; the store keeps its last scan")
    if store is not None and write:
        t = time.perf_counter()
        source = "given probabilities" if given_probs is not None else str(model) if model else "all-MiniLM-L6-v2"
        store.write_scores(scan_id, items.drop(columns=["text", "given_label", "is_label_issue"]), model=source,
                           params=_scan_params(oof, score=score, filter_by=filter_by,
                                               **({"split": split} if split is not None else {}),
                                               **({"max_length": max_length} if max_length != 128 else {})),
                           labels_as_of=labels_read)
        seconds["write"] = time.perf_counter() - t
    return ScanResult(scan_id, items, report, oof, results, seconds)


def _issue_details(results: dict[str, CheckResult], *, flagged_ids: list[str], given_prob: np.ndarray,
                   given: np.ndarray, suggested: np.ndarray, suggested_prob: np.ndarray, neighbours: np.ndarray,
                   item_ids: list[str]) -> list[str | None]:
    """Why each item was flagged, one ``issue: reason`` per issue type joined by `` | `` (None: no issue): the
    checks' own details, and for a likely wrong label the probabilities the model gave it and its suggestion, and
    how many of its nearest neighbours carry the suggestion (``neighbours``: ``(n_flagged, k)`` their labels)."""
    parts: dict[str, dict[str, str]] = {}
    for result in results.values():
        for item_id, issue, detail in zip(result.issues["item_id"], result.issues["issue"], result.issues["detail"],
                                          strict=True):
            parts.setdefault(str(item_id), {}).setdefault(str(issue), str(detail))
    # the given label is named: once the analyst corrects it, the reason still says which label it judged
    for item_id, p_given, was, label, p_label, near in zip(flagged_ids, given_prob, given, suggested, suggested_prob,
                                                           neighbours, strict=True):
        parts.setdefault(item_id, {})["label"] = (f"out-of-fold probability of the given label {str(was)!r} "
                                                  f"{p_given:.2f}, of {str(label)!r} {p_label:.2f}; "
                                                  f"{int((near == label).sum())} of its {len(near)} nearest neighbours "
                                                  f"are labelled {str(label)!r}")
    return [" | ".join(f"{k}: {v}" for k, v in sorted(parts[i].items())) if i in parts else None for i in item_ids]


def _only_split(table: pd.DataFrame, split: str, *, where: str) -> pd.DataFrame:
    """The rows of ``table`` in ``split`` (its ``attrs`` kept), or a DataError naming the splits there are."""
    keep = in_split(table["split"], split).to_numpy() if "split" in table.columns else np.zeros(len(table), bool)
    if not keep.any():
        named = sorted({str(s) for s in table.get("split", pd.Series(dtype=object)).dropna()})
        there = (f"its splits are {named}" + (" (and items with none, which count as train)"
                                              if len(named) and table["split"].isna().any() else "")
                 if named else "its items carry no split, so all of them are train")
        raise DataError(f"no items of split {split!r} in {where}; {there}")
    out = table[keep].reset_index(drop=True)
    out.attrs = dict(table.attrs)
    return out


def _scan_params(oof: OutOfFold, **extra: Any) -> dict[str, Any]:
    """What a scan records beside its scores: how its probabilities were made (``oof.params``, whose ``mode`` is
    quick, finetune or given) and ``extra``."""
    return {"mode": oof.params["mode"], **extra, **oof.params}
