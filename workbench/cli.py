"""The ``workbench`` command: import, export, info, history, sample, scan, migrate, annotations, agreement, notebooks,
and (from :mod:`workbench.cli_runs`) train, runs, cancel, resume, logs, predict, report."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.crossval import ATTENTION_DEFAULT_MAX_ITEMS
from workbench.errors import DataError, WorkbenchError
from workbench.export import FORMATS as EXPORT_FORMATS
from workbench.quality import FILTERS, SCORES

if TYPE_CHECKING:
    import pandas as pd

    from workbench.store import LabelStore


def _cmd_import(args: argparse.Namespace) -> int:
    from workbench.data import load_dataset, looks_like_class_id
    from workbench.store import LabelStore

    if args.store and args.store_option and args.store != args.store_option:
        raise DataError(f"two stores given, {args.store} and --store {args.store_option}; give one")
    args.store = args.store or args.store_option
    if not args.store:
        swallowed = next((f"; {words[-1]!r} was read as the last of {flag}, which takes every word after it: put "
                          f"the store before {flag}, or give it as --store {words[-1]}"
                          for flag, words in (("--labels", args.labels), ("--label-names", args.label_names))
                          if words and (words[-1].endswith((".db", ".sqlite", ".sqlite3")) or "://" in words[-1])),
                         "")
        raise DataError(f"which store? workbench import {args.data} labels.db (a SQLite file, created if missing, or a "
                        f"postgresql:// URL){swallowed}")
    table = load_dataset(args.data, repair_bio=args.repair_bio, split=args.split, **reading_options(args))
    with LabelStore.open(args.store) as store:
        before = set(store.labels)
        stats = store.import_dataset(table, on_conflict=args.on_conflict, author=args.author)
        info = store.info()
        variants = _spelling_variants(store, info.labels)
    print(f"imported {args.data} into {args.store}: {stats['added']} added, {stats['unchanged']} unchanged, "
          f"{stats['updated']} updated, {stats['skipped']} skipped; the store holds {info.n_items} items, "
          f"{len(info.labels)} labels")
    say_how_read(table, args.data, imported=True)
    if stats["replaced_corrections"]:
        print(f"{stats['replaced_corrections']} of the updated items had a label corrected in this store since they "
              "were imported; the file's label replaced it. The log keeps both (workbench history "
              f"{args.store} --author {args.author}); to put back every label this import changed: "
              f"workbench undo {args.store} --author {args.author}")
    if stats["unchanged"] and stats["added"] and args.id_column is None and table["split"].isna().all():
        # ids come from the content, so a row equal to a stored item is that item: right for a re-import of a
        # grown file, wrong for a second split's file (its rows that also occur in train would vanish from it).
        # "unchanged" rows are stored items, so the store was not empty before.
        print(f"{stats['unchanged']} row(s) of {args.data} have the same content as items already in the store and "
              "were not added again. If this file is another split of the data (a dev or test file), import it with "
              "--split NAME instead, so that every row stays an item of its own")
    unlabelled = int(table["label"].isna().sum()) if "label" in table.columns else 0
    if unlabelled and not args.labels and not before:
        # a pool: its classes are read off its few labelled rows, and a class none of them shows is unknown to
        # the store, so labelling an item with it later (active learning, the browser) is refused
        from workbench.report import first_few

        print(f"{unlabelled} item(s) without a label (a pool); the store's classes are the {len(info.labels)} its "
              f"labelled rows show ({first_few(map(repr, info.labels))}). Any other class must be declared first: "
              "import again with --labels A B C, or store.set_label_set([...])")
    if variants:
        # the file itself spells a class two ways (`Billing`, `billing `): caught here, before a scan splits the
        # class in two or a fine-tune learns two classes from one
        print("label(s) that look like another class spelled another way: "
              + "; ".join(f"{lab!r} ({n} item{'s' * (n != 1)}) -> {main!r} ({m})" for lab, n, main, m in variants)
              + f". If so, fold each into the common spelling: workbench merge-labels {args.store} "
              f"{variants[0][0]!r} --into {variants[0][2]!r}")
    named = {v[0] for v in variants}
    new = [label for label in info.labels if label not in before and label not in named]
    if before and new:
        # a store that had its classes gains one: often a typo in a reviewed file, so say it where it shows
        print(f"new label(s) added to the store: {', '.join(map(repr, new))}. If one is a misspelling of an existing "
              f"class, fold it in: workbench merge-labels {args.store} {new[0]!r} --into RIGHT_NAME")
    ids = sorted((lab for lab in info.labels if lab not in before and looks_like_class_id(lab)), key=float)
    if ids and len(ids) == len(info.labels) and not args.label_names:
        # a 0/1 column from an ML export: every report, suggestion and metric would say "1" where the user thinks
        # "positive", and renaming after the fact (merge-labels) logs every item as a correction
        print(f"the classes are integer ids ({', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}). If they stand "
              f"for names, import into a new store with --label-names, id 0 first: --label-names "
              f"{' '.join(f'NAME{i}' for i in ids[:3])}{' ...' if len(ids) > 3 else ''}")
    return 0


def _spelling_variants(store: LabelStore, labels: Sequence[str]) -> list[tuple[str, int, str, int]]:
    """The store's labels that differ from another of its labels only in case, spacing or separators, as
    ``(label, items, common spelling, its items)``, rarer spellings first by name; [] when none."""
    from workbench.normalize import canonical_spellings, label_key

    keys = [label_key(lab) for lab in labels]
    twins = [lab for lab, key in zip(labels, keys) if keys.count(key) > 1]
    if not twins:
        return []
    counts = {lab: store.count({"label": lab}) for lab in twins}  # items per label, only for labels with a twin
    return [(lab, counts[lab], main, counts[main]) for lab, main in sorted(canonical_spellings(counts).items())]


def _cmd_export(args: argparse.Namespace) -> int:
    from workbench.store import LabelStore

    names = {"from_name": args.control, "to_name": args.to_name, "data_field": args.data_field}
    if any(names.values()) and args.format != "label-studio":
        raise DataError("--control, --to-name and --data-field name a Label Studio project's parts; they go with "
                        "--format label-studio")
    with LabelStore.open(args.store, create=False) as store:
        paths = store.export(args.out, format=args.format, keep_original=args.keep_original,
                             with_log=not args.no_log, split=args.split, names=names)
    for p in paths:
        print(p)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from workbench.report import scan_note
    from workbench.store import LabelStore

    with LabelStore.open(args.store, create=False) as store:
        summary = store.summary()
        tool = store.tool_names("label_studio")
    info = summary["info"]
    print(f"{info.url}: {(info.task or 'empty, nothing imported yet').replace('-', ' ')}, {info.n_items} items")
    splits = summary["splits"]
    if list(splits) == [None]:
        print("splits: none given (scans and fine-tunes take every item as train)")
    elif splits:
        print("splits: " + " · ".join(f"{name if name is not None else '(none: train)'} {n}"
                                       for name, n in splits.items()))
    if info.task == "token-classification":
        types = sorted({lab[2:] for lab in info.labels if lab[:2] in ("B-", "I-")})
        entities = _largest_and_smallest(summary["classes"], set(types), none="no entities")
        print(f"entities ({len(types)} types): {entities}; tags "
              f"({len(info.labels)}): {' '.join(info.labels)}")
    else:
        print(f"classes ({len(info.labels)}): {_largest_and_smallest(summary['classes'], set(info.labels))}")
    if summary["unlabelled"]:
        print(f"unlabelled: {summary['unlabelled']} (a pool to label: the label browser's 'unlabelled' filter, or "
              "active learning)")
    statuses = {k: v for k, v in info.counts.items() if k != "corrected"}
    print("review: " + " · ".join(f"{n} {status}" for status, n in sorted(statuses.items(), key=lambda kv: -kv[1]))
          + f"; {info.counts.get('corrected', 0)} label(s) changed from the original")
    snapshots = summary["snapshots"]
    latest = f", the latest {snapshots['name'].iloc[-1]!r}" if len(snapshots) else ""
    print(f"log: {info.n_log} row(s) · annotations: {summary['annotations']} by {summary['annotators']} "
          f"annotator(s) · snapshots: {len(snapshots)}{latest}")
    print(f"scan: {scan_note(summary['scan'])}")
    if tool:  # what an export back writes (workbench export STORE FILE.json --format label-studio)
        on = f" on {tool['to_name']!r}" if tool.get("to_name") else ""  # a one-row-per-annotation export has none
        print(f"from Label Studio: control {tool.get('from_name')!r}{on}, text in the task "
              f"field {tool.get('data_field')!r} (export --format label-studio writes these names)")
    return 0


def _largest_and_smallest(counts: dict[str, int], label_set: set[str], *, shown: int = 12,
                          none: str = "no items") -> str:
    """``counts`` (largest first) on one line: all of them, or past ``shown`` the largest and the smallest; classes of
    the label set that no item carries now (merged away, or not labelled yet) said apart."""
    parts = [f"{name} {n}" for name, n in counts.items()]
    if len(parts) > shown:
        parts = [*parts[: shown - 4], f"... {len(parts) - shown + 1} more ...", *parts[-3:]]
    empty = sorted(label_set - set(counts))
    return " · ".join(parts) + (f"; {none}: {', '.join(empty)}" if empty else "")


def _cmd_history(args: argparse.Namespace) -> int:
    from workbench.store import LabelStore

    with LabelStore.open(args.store, create=False) as store:
        frame = store.history(args.item, author=args.author, limit=args.limit)
        if frame.empty and args.item is not None:
            store.get(args.item)  # a mistyped id says so instead of "no changes"
    if frame.empty:
        print("no changes logged")
        return 0
    _print_log(frame)
    return 0


def _print_log(frame: pd.DataFrame) -> None:
    cols = ["id", "time", "item_id", "field", "old_value", "new_value", "author", "source", "note"]
    frame = frame[cols].rename(columns={"time": "time (UTC)"})
    frame["time (UTC)"] = frame["time (UTC)"].dt.strftime("%Y-%m-%d %H:%M:%S")
    print(frame.to_string(index=False, max_colwidth=40))


def _cmd_undo(args: argparse.Namespace) -> int:
    from workbench.errors import NothingToUndoError
    from workbench.store import LabelStore

    with LabelStore.open(args.store, create=False) as store:
        try:
            written = store.undo(author=args.author)
        except NothingToUndoError as exc:
            log = store.history()
            authors = sorted(set(log["author"]) - {args.author})
            others = f"; other authors with changes: {', '.join(authors)} (give --author NAME)" if authors else ""
            # an import that only added items wrote no log rows: adding is not an action undo takes back
            raise DataError(f"{exc} (items an import added are not removed){others}") from None
        frame = store.history(author=args.author, limit=len(written))
    print(f"undid the latest action by {args.author!r} ({len(written)} change(s)); run again to go further back")
    _print_log(frame)
    return 0


def _cmd_merge_labels(args: argparse.Namespace) -> int:
    from workbench.store import LabelStore

    with LabelStore.open(args.store, create=False) as store:
        written = store.merge_labels(args.labels, args.into, author=args.author)
        labels = store.labels
    print(f"relabelled {len(written)} item(s) as {args.into!r}; the label set is now {labels} "
          f"(undo: workbench undo {args.store} --author {args.author})")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from workbench.sample import write_samples

    for kind, path in write_samples(args.out, seed=args.seed).items():
        print(f"{kind}: {path}")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    import pandas as pd

    from workbench.cache_upkeep import cache_root, describe_cache, parse_size, prune_cache

    root = cache_root(args.dir)
    if args.older_than is not None or args.max_size is not None:
        removed = prune_cache(root, older_than_days=args.older_than,
                              max_bytes=parse_size(args.max_size) if args.max_size is not None else None,
                              dry_run=args.dry_run)
        verb = "would remove" if args.dry_run else "removed"
        refused = removed[removed["not_removed"].notna()]
        removed = removed[removed["not_removed"].isna()]
        used = removed["last_used"]
        print(f"{verb} {len(removed)} file(s), {removed['mb'].sum():.1f} MB"
              + (f", last used {used.min():%Y-%m-%d %H:%M} to {used.max():%Y-%m-%d %H:%M}" if len(removed) else ""))
        if len(refused):
            first = refused.iloc[0]
            print(f"could not remove {len(refused)} file(s) ({first['part']}/{first['file']}: {first['not_removed']}): "
                  "the cache's owner can prune them", file=sys.stderr)
    table = describe_cache(root)
    print(f"{root}: {table['mb'].sum():.1f} MB in {int(table['files'].sum())} file(s)"
          + ("" if len(table) else " (empty)"))
    for row in table.to_dict("records"):
        what = (f"{row['holds']} of {row['model']} (max_length={row['max_length']}, {row['precision']})"
                if row["model"] else row["holds"])
        texts = "" if pd.isna(row["texts"]) else f", {row['texts']:,} texts"
        print(f"  {row['mb']:9.1f} MB  {what}: {row['files']} file(s){texts}, last used "
              f"{row['last_used']:%Y-%m-%d %H:%M}  [{row['part']}]")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from workbench.migrate import copy_store

    result = copy_store(args.source, args.destination)
    rows = ", ".join(f"{name} {n}" for name, n in result["tables"].items())
    print(f"copied {result['source']} into {result['destination']}: {rows}; labels hash "
          f"{result['snapshot_hash'][:12]} on both sides")
    return 0


def _cmd_import_annotations(args: argparse.Namespace) -> int:
    from workbench.annotations import import_annotations
    from workbench.store import LabelStore

    columns: list[str] | str | None = args.annotator_columns
    if args.annotator_prefix:
        columns = args.annotator_prefix
    with LabelStore.open(args.store) as store:
        s = import_annotations(store, args.data, layout=args.layout, item_column=args.item_column,
                               text_column=args.text_column, annotator_column=args.annotator_column,
                               label_column=args.label_column, annotator_columns=columns, consensus=args.consensus,
                               repeats=args.repeats, encoding=args.encoding)
    print(f"imported {s['annotations']} labels from {s['annotators']} annotators on {s['items']} items "
          f"({s['added']} items new to the store); {s['disagreements']} items where annotators disagree; consensus "
          f"({args.consensus}) written as scan {s['scan_id']}")
    if s["unrated"]:
        print(f"{s['unrated']} item(s) no annotator labelled (e.g. {s['unrated_example']!r}) were stored without a "
              "label, to label in the browser ('unlabelled' filter)")
    return 0


def _cmd_agreement(args: argparse.Namespace) -> int:
    import json

    from workbench.agreement import agreement_report
    from workbench.annotations import store_annotations
    from workbench.store import LabelStore

    if args.json:
        check_output(args.json, flag="--json")
    with LabelStore.open(args.store, create=False) as store:
        report = agreement_report(store_annotations(store), min_pair_items=args.min_pair_items)
    print(f"{report.n_items} items, {report.n_annotators} annotators, {report.n_labels} labels")
    for name, value in report.summary.items():
        print(f"  {name:<20} {value:.4f}")
    print(report.per_class.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_dict(), indent=1))
    return 0


def _cmd_scan(args: argparse.Namespace) -> int:
    import tempfile

    from workbench.report import check_gate
    from workbench.scan import scan
    from workbench.store import LabelStore

    # outputs are checked before minutes of scanning, not after
    if args.items:
        check_output(args.items, flag="--items", suffixes=ITEM_SUFFIXES)
    if args.json:
        check_output(args.json, flag="--json")
    if args.html:
        check_output(args.html, flag="--html", suffixes=[".html"])
    if args.top < 0:
        raise DataError(f"--top {args.top}: give how many flagged items to print (0 or more)")
    limits = issue_limits(args.max_issues)
    check_gate(max_noise_rate=args.max_noise_rate, max_issues=limits)
    finetune = config_fields(args.finetune_set, flag="--finetune-set")
    if finetune and args.mode == "quick":
        raise DataError("--finetune-set sets the fold fine-tunes, and --mode quick trains none; use --mode finetune")
    pred_probs = None
    if args.pred_probs:
        from workbench.given_probs import read_pred_probs

        if args.mode or finetune or args.no_refit or args.folds is not None:
            raise DataError("--pred-probs replaces the scan's own cross-validation; drop --mode, --finetune-set, "
                            "--folds and --no-refit")
        pred_probs = read_pred_probs(args.pred_probs)
    options = {"folds": 5 if args.folds is None else args.folds, "seed": args.seed, "model": args.model,
               "score": args.score, "filter_by": args.filter_by, "classifier_layers": args.classifier_layers,
               "refit_clean": not args.no_refit, "progress": not args.no_progress, "mode": args.mode or "quick",
               "finetune": finetune if args.mode == "finetune" else None, "pred_probs": pred_probs,
               "split": args.split, "max_length": 128 if args.max_length is None else args.max_length,
               "views": None if args.views is None else tuple(args.views), "precision": args.precision or "auto"}
    table, in_memory = read_data_source(args)
    if table is not None and table.attrs["workbench"]["task"] == "text-classification":
        _refuse_tagger(args)
    if table is not None and in_memory:  # scanned as it is: nothing is written but --items / --json
        if table.attrs["workbench"]["task"] == "token-classification":
            # the fold taggers train from a store: a temporary one, gone with their runs after the scan
            with tempfile.TemporaryDirectory() as tmp, LabelStore.open(Path(tmp) / "scan.db") as store:
                store.import_dataset(table)
                return _scan_tokens(store, args, runs_dir=Path(tmp) / "runs", in_memory=True)
        result = scan(table, **options)
    else:
        with open_data_store(args, table) as store:
            if store.task == "token-classification":
                return _scan_tokens(store, args, runs_dir=Path(args.runs_dir), in_memory=False)
            _refuse_tagger(args)
            result = scan(store, **options)
    # files first: a reader that stops early (`| head`) must not cost the user the scan's outputs
    written = _write_scan_outputs(args, result.items, result.report.to_dict())
    if args.html:
        from workbench.scan_report import write_scan_report

        written.append(f"html report: {write_scan_report(result, args.html, top=max(args.top, 50))}")
    print(result.report)
    flagged = result.label_issues()
    if flagged.empty:
        print(f"\nno label flagged as a likely error (filter {args.filter_by})")
    else:
        print(f"\nworst labels by {args.score} (of {len(flagged)} flagged):")
        cols = ["item_id", "given_label", "suggested_label", "suggested_prob", "score", "text"]
        print(flagged[cols].head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=60))
    print("\nseconds: " + ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()))
    print(*written, sep="\n")
    if in_memory:
        _scanned_as_a_file_note(args)
    failures = result.report.gate(max_noise_rate=args.max_noise_rate, max_issues=limits)
    for failure in failures:
        print(f"quality gate: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _refuse_tagger(args: argparse.Namespace) -> None:
    """``--tagger`` on text classification: a DataError saying what to use instead."""
    if args.tagger:
        raise DataError(f"--tagger scores tagged sentences; {args.data} holds text classification (a classifier's "
                        "held-out probabilities come in with workbench predict, then --pred-probs)")


def _scan_tokens(store: LabelStore, args: argparse.Namespace, *, runs_dir: Path, in_memory: bool) -> int:
    """The token-classification scan: fold taggers that did not see a sentence score its tags (``--mode quick``:
    the model-free tag-consistency check alone)."""
    from workbench.token_scan import check_tag_consistency, scan_tokens, tagger_config

    if args.html:
        raise DataError(f"--html writes a text-classification scan's report; {args.data} holds token-classification "
                        "data: write the sentences' scores with --items (and the summary with --json)")
    if args.pred_probs:
        raise DataError(f"{args.data} holds token-classification data; --pred-probs gives one probability row per "
                        "text, for text classification (a tagger's run scores sentences: --tagger RUN)")
    if args.max_length is not None:
        raise DataError(f"--max-length sets how much of each text the embedding reads; {args.data} holds "
                        "token-classification data, whose fold taggers take theirs from --finetune-set max_length=N")
    if args.views is not None:
        raise DataError(f"--views chooses a text scan's views; {args.data} holds token-classification data, scored "
                        "by fold taggers (or --mode quick, the tag-consistency check): drop --views")
    if args.precision is not None:
        raise DataError(f"--precision sets a text scan's embedding and heads; {args.data} holds token-classification "
                        "data, whose fold taggers take theirs from --finetune-set precision=...")
    fold_options = args.folds is not None or bool(args.finetune_set) or bool(args.model)  # what sets fold taggers
    if args.tagger and fold_options:
        raise DataError("--tagger scores with a trained tagger; --folds, --finetune-set and --model set the fold "
                        "taggers it replaces: drop them")

    if args.mode == "quick" and (args.tagger or fold_options):
        raise DataError("--mode quick on token-classification data compares each sentence's tags with the rest of the "
                        "data, with no model: drop --tagger, --folds, --finetune-set and --model (or drop --mode "
                        "quick to score with taggers)")
    if args.max_noise_rate is not None or args.max_issues:
        raise DataError("the quality gate (--max-noise-rate, --max-issues) reads a text classification scan's report; "
                        f"{args.data} holds token-classification data: drop those options")
    if args.split and (args.mode == "quick" or args.tagger):
        raise DataError("--split chooses the sentences fold taggers score; " + (
            "--tagger scores every sentence its run did not train on" if args.tagger else
            "--mode quick compares each sentence's tags with the whole store") + ": drop --split")
    folds = 2 if args.folds is None else args.folds
    if args.mode == "quick":
        print("token classification, quick: each tagged span against the same words elsewhere (no model)", flush=True)
        result = check_tag_consistency(store, write=not in_memory)
    elif args.tagger:
        print(f"token classification: run {args.tagger} scores the sentences it did not train on", flush=True)
        result = scan_tokens(store, tagger=args.tagger, write=not in_memory, progress=not args.no_progress)
    else:
        config = tagger_config(seed=args.seed, **({"model": args.model} if args.model else {}),
                               **config_fields(args.finetune_set, flag="--finetune-set"))
        print(f"token classification: {folds} fold taggers, each fine-tuned on the sentences the other folds hold "
              f"(minutes on a CPU for thousands of sentences)", flush=True)
        result = scan_tokens(store, folds=folds, config=config, runs_dir=runs_dir, write=not in_memory,
                             progress=not args.no_progress, split=args.split or "train")
    sentences = result.sentences
    texts = store.to_pandas().set_index("item_id")["tokens"]
    suspect = int((sentences["n_suspect_tokens"] > 0).sum())
    summary = {"task": "token-classification", "scan_id": result.scan_id, "sentences": len(sentences),
               "with_suspect_tag": suspect, "suspect_tags": len(result.tokens),
               "inconsistent_spans": len(result.inconsistent),
               **({"mode": "quick"} if args.mode == "quick" else {"tagger": args.tagger} if args.tagger
                  else {"folds": folds}),
               "seconds": result.seconds, "runs": [] if in_memory else result.runs}
    written = _write_scan_outputs(args, sentences, summary)
    print(f"{len(sentences)} sentences scored in {result.seconds:.0f} s; {suspect} with a suspect tag, "
          f"{len(result.tokens)} suspect tags")
    if result.unknown_tokens:
        from workbench.runs import unknown_tokens_note

        print(unknown_tokens_note(result.unknown_tokens, remedy="workbench scan --model PATH"))
    if suspect:
        print(f"\nworst sentences (of {suspect} with a suspect tag):")
        worst = sentences.head(args.top).assign(text=lambda f: [" ".join(texts[i]) for i in f["item_id"]])
        print(worst[["item_id", "score", "n_suspect_tokens", "suggested_prob", "text"]].to_string(
            index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=60))
        print("\nsuspect tags (position: the token's index in its sentence):")
        tokens = result.tokens.head(args.top).rename(columns={"token": "position"})
        tokens.insert(2, "word", [texts[i][k] for i, k in zip(tokens["item_id"], tokens["position"], strict=True)])
        print(tokens.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    else:
        print("\nno sentence has a suspect tag")
    spans = result.inconsistent
    print(f"\n{len(spans)} span(s) tagged unlike the same words elsewhere (given: its reading, O = untagged; "
          "share: of the words' occurrences)" + (":" if len(spans) else ""))
    if len(spans):
        print(spans.head(args.top).to_string(index=False, float_format=lambda v: f"{v:.3f}", max_colwidth=40))
    print(*written, sep="\n")
    if in_memory:
        _scanned_as_a_file_note(args)
    return 0


def _write_scan_outputs(args: argparse.Namespace, items: pd.DataFrame, report: dict[str, object]) -> list[str]:
    """Write ``--items`` and ``--json``; returns the lines that name them, printed last."""
    import json

    lines = []
    if args.items:
        lines.append(f"items: {write_items(items, args.items)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
        lines.append(f"report: {args.json}")
    return lines


def _scanned_as_a_file_note(args: argparse.Namespace) -> None:
    print(f"\nnote: {args.data} was scanned as a file; no store holds these scores"
          f"{'' if args.items else ' (--items FILE writes them)'}. To fix labels in the workbench: "
          f"workbench scan {args.data} --store labels.db")


#: File types ``--items`` writes.
ITEM_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def check_output(path: str | Path, *, flag: str, suffixes: Sequence[str] | None = None) -> Path:
    """``path`` as a Path, or a DataError when a file cannot be written there (unknown type, missing folder,
    a folder in the way)."""
    out = Path(path).expanduser()
    if suffixes is not None and out.suffix.lower() not in suffixes:
        raise DataError(f"{flag} {out}: unknown file type {out.suffix!r}; use {', '.join(suffixes)}")
    folder = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        example = out / ("scan" + (suffixes or [".json"])[0])
        raise DataError(f"{flag} {out} is a folder; give a file name, e.g. {example}")
    if not folder.is_dir():
        raise DataError(f"{flag} {out}: the folder {folder} does not exist; create it or pick another path")
    return out


def write_items(items: pd.DataFrame, path: str | Path) -> Path:
    """Write a scan's per-item table as CSV, TSV, JSONL or Parquet (from the suffix); returns the path.

    CSV and TSV get each item's issue types joined by ``;``.
    """
    out = check_output(path, flag="--items", suffixes=ITEM_SUFFIXES)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        items.to_parquet(out, index=False)
    elif suffix == ".jsonl":
        items.to_json(out, orient="records", lines=True, force_ascii=False)
    else:
        # list cells as text: issue types joined by ';', tag sequences (and per-word numbers) by spaces
        def joined(col: str) -> pd.Series:
            sep = ";" if col == "issues" else " "
            return items[col].map(lambda v: sep.join(map(str, v)) if isinstance(v, list) else v)

        flat = items.assign(**{col: joined(col) for col in items.columns
                               if items[col].map(lambda v: isinstance(v, list)).any()})
        flat.to_csv(out, index=False, sep="," if suffix == ".csv" else "\t")
    return out


def _cmd_check_regression(args: argparse.Namespace) -> int:
    from workbench.metrics import check_regression

    comp = check_regression(args.base, args.new, max_drop=args.max_drop, metric=args.metric, classes=args.classes,
                            split=args.split, n_resamples=args.resamples, seed=args.seed)
    for note in comp.notes:
        print(f"note: {note}")
    print(f"{comp.metric} per {comp.table.index.name}, {comp.run_b} vs {comp.run_a}, {comp.n_items} items, "
          f"gold: {comp.gold}")
    # the two runs' scores as they are, the differences and their interval with a sign
    floats = [c for c in comp.table.columns if comp.table[c].dtype.kind == "f"]
    print(comp.table.to_string(formatters={c: (lambda v: f"{v:+.3f}") if c.startswith("delta") else "{:.3f}".format
                                           for c in floats}))
    if comp.regressed:
        print(f"\nregressed beyond {args.max_drop} and beyond noise: {', '.join(comp.regressed)}")
        return 1
    print(f"\nno {comp.table.index.name} regressed")
    return 0


def _cmd_run_notebook(args: argparse.Namespace) -> int:
    from workbench.notebooks import parse_value, run_notebook

    params = {key: parse_value(value) for key, value in args.param}
    # `-p OUTPUT_DIR x` is the notebook's own name for --out: taken as it, not overridden by --out's default
    out = args.out or params.get("OUTPUT_DIR") or "build/notebooks"
    results = run_notebook(args.name, out_dir=out, parameters=params, timeout=args.timeout)
    print(f"executed notebook: {results['executed_notebook']}")
    for key in ("report", "export", "review_queue", "label_queue"):
        if results.get(key):
            print(f"{key.replace('_', ' ')}: {results[key]}")
    print(f"results: {Path(out).resolve() / 'results.json'}")
    return 0


def issue_limits(items: Sequence[str]) -> dict[str, int]:
    """``--max-issues TYPE=COUNT`` arguments, checked before a scan, not after it."""
    from workbench.report import issue_types

    limits: dict[str, int] = {}
    for item in items:
        name, _, count = item.partition("=")
        if not count.strip().isdigit():
            raise DataError(f"--max-issues {item!r}: write TYPE=COUNT, e.g. --max-issues exact_duplicate=0")
        if name not in issue_types():
            raise DataError(f"--max-issues {item!r}: unknown issue type {name!r}; issue types are {issue_types()}")
        limits[name] = int(count)
    return limits


def config_fields(items: Sequence[str], *, flag: str) -> dict[str, Any]:
    """``FIELD=VALUE`` arguments as FineTuneConfig fields; a VALUE is JSON when it parses, else text."""
    from workbench.notebooks import parse_value

    fields: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise DataError(f"{flag} {item!r}: write FIELD=VALUE, e.g. {flag} epochs=3")
        fields[name.strip()] = parse_value(value)
    return fields


def read_data_source(args: argparse.Namespace) -> tuple[pd.DataFrame | None, bool]:
    """DATA and ``--store`` (:func:`add_data_source`): the table read from DATA when it is a dataset file (None
    when DATA names a store), and whether the table is used as it is, with no store."""
    from workbench.data import load_dataset
    from workbench.store import is_store

    in_memory = not args.store and not is_store(args.data)
    # DATA is a dataset file unless it names a store; read before any store is created, so bad data leaves none
    table = load_dataset(args.data, **reading_options(args)) if args.store or in_memory else None
    if table is not None:
        say_how_read(table, args.data)
    return table, in_memory


@contextmanager
def open_data_store(args: argparse.Namespace, table: pd.DataFrame | None) -> Iterator[LabelStore]:
    """The store DATA names (it must exist), or ``--store`` (created if missing) with ``table`` imported into it."""
    from workbench.store import LabelStore

    with LabelStore.open(args.store or args.data, create=bool(args.store)) as store:
        if table is not None:
            store.import_dataset(table, on_conflict="skip")
        yield store


def add_data_source(p: argparse.ArgumentParser, *, verb: str, verbed: str) -> None:
    """DATA (a store or a dataset file), ``--store`` and the reading options, for commands that take either."""
    p.add_argument("data", help=f"a store (SQLite file or URL), or a dataset file (CSV, TSV, JSONL, JSON, Parquet, "
                                f"Excel, CoNLL; also .gz, .bz2, .xz or a .zip of one file): {verbed} as it is unless "
                                "--store is given")
    p.add_argument("--store", help=f"import DATA into this store (created if missing), then {verb} the store")
    add_reading_options(p)


def add_reading_options(p: argparse.ArgumentParser) -> None:
    """How a dataset file is read and validated: the same options wherever a command reads one."""
    group = p.add_argument_group("reading the dataset file")
    group.add_argument("--task", default="auto", choices=["auto", "text-classification", "token-classification"],
                       help="default auto: token classification when the file has a tokens column of lists and "
                            "no text column")
    group.add_argument("--text-column", help="column of the text (token classification: the token lists)")
    # "--label intent" meant the column: argparse's prefix match found it ambiguous (--label-column or --labels)
    group.add_argument("--label-column", "--label", dest="label_column",
                       help="column of the label (token classification: the tag lists)")
    group.add_argument("--id-column", help="column of unique item ids (default: ids derived from the content)")
    group.add_argument("--split-column", help="column naming each item's split")
    group.add_argument("--encoding", default="utf-8",
                       help="text encoding of the file (default utf-8; a UTF-16 or UTF-8 byte-order mark is "
                            "followed)")
    group.add_argument("--labels", nargs="+", metavar="LABEL",
                       help="the classes (tags) allowed; needed for a pool with no labels yet")
    group.add_argument("--label-names", nargs="+", metavar="NAME",
                       help="names for integer class ids, id 0 first (a 0/1 label column: --label-names negative "
                            "positive); a Parquet file written by datasets names its ids itself")
    group.add_argument("--sheet", metavar="NAME",
                       help="the sheet of an Excel workbook to read (default: the first; workbench import --split "
                            "NAME reads the sheet of that name where there is one)")
    group.add_argument("--allow-missing-labels", action="store_true", help="keep unlabelled items as a pool")
    group.add_argument("--drop-empty-texts", action="store_true", help="drop empty texts instead of failing")
    group.add_argument("--tag-scheme", default="auto", choices=["auto", "io"],
                       help="how tags are written: auto (IOB2, or BIOES / BILOU, read as IOB2) or io (entity types "
                            "alone: each run of one type is one entity)")


def reading_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"task": args.task, "text_column": args.text_column, "label_column": args.label_column,
            "id_column": args.id_column, "split_column": args.split_column, "encoding": args.encoding,
            "allow_missing_labels": args.allow_missing_labels, "drop_empty_texts": args.drop_empty_texts,
            "labels": args.labels, "label_names": args.label_names, "sheet": args.sheet,
            "tag_scheme": args.tag_scheme}


def say_how_read(table: pd.DataFrame, data: str, *, imported: bool = False) -> None:
    """Name the sheet of a workbook that was read when it has others (:func:`workbench.data.sheet_note`), and what
    else reading chose (:func:`workbench.data.reading_notes`)."""
    from workbench.data import reading_notes, sheet_note

    note = sheet_note(table, data)
    if note:
        also = (" (with --split NAME when it holds another split of the data: train, validation, test)"
                if imported else "")
        print(f"{note}: --sheet NAME reads another{also}")
    for line in reading_notes(table):
        print(line)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``workbench`` command."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="label-workbench: find wrong labels, fix them, fine-tune and measure, from the shell or "
                    "a notebook.",
    )
    from workbench import __version__

    parser.add_argument("--version", action="version", version=f"label-workbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("import", help="load a dataset file and add its items to a label store",
                       description="Validate a dataset (CSV, TSV, JSONL, JSON, Parquet, Excel, CoNLL, also compressed "
                                   "as .gz, .bz2, .xz or a .zip of one file, or a datasets.save_to_disk folder; NER "
                                   "as token and tag lists, CoNLL, or texts with character-offset entity spans as "
                                   "span tools export them) and add its items to a store, created if missing. "
                                   "Example: workbench import train.csv labels.db --label-column intent")
    p.add_argument("data", help="dataset file or folder")
    p.add_argument("store", nargs="?", metavar="STORE",
                   help="SQLite file (created if missing) or postgresql:// URL; or give it as --store STORE")
    p.add_argument("--store", dest="store_option", metavar="STORE", help="the store, as the option")
    add_reading_options(p)
    p.add_argument("--split", metavar="NAME",
                   help="the split this file holds (train, validation, test): every row gets it when the file has "
                        "no split column; with one, only that split's rows are imported")
    p.add_argument("--repair-bio", action="store_true", help="turn stray I- tags into B- instead of failing")
    p.add_argument("--on-conflict", default="error", choices=["error", "skip", "update"],
                   help="an id already stored with other content or label: fail (default), keep it, or update it "
                        "(a reviewed queue: its filled-in labels are taken, rows left blank change nothing)")
    p.add_argument("--author", default="import", help="who the log records for labels an update changes")
    p.set_defaults(func=_cmd_import)

    p = sub.add_parser("export", help="write the corrected dataset and its correction log",
                       description="Write the store's current labels as Parquet, CSV, TSV, JSONL, Excel, CoNLL, "
                                   "NER spans (--format spans: JSONL of texts with character-offset entities), a "
                                   "datasets folder or Label Studio tasks (--format label-studio: a JSON list with "
                                   "the labels as annotations and the last scan's other suggestions as predictions, "
                                   "named as the Label Studio export the store came from named them), or Prodigy "
                                   "tasks (--format prodigy: JSONL as textcat.manual / ner.manual write it, for "
                                   "prodigy db-in or a recipe's input; the scan's score and suggestion in meta), or "
                                   "Doccano's import JSONL (--format doccano: label lists, [start, end, type] for NER) "
                                   "(format from "
                                   "the suffix or --format; .txt: CoNLL for NER, else TSV; a text format compressed "
                                   "when the name ends .gz, .bz2 or .xz), and the log as <name>.log.jsonl beside it "
                                   "(not for - , standard output). "
                                   "Example: workbench export labels.db clean.parquet --keep-original")
    p.add_argument("store", help="the store (SQLite file or URL)")
    p.add_argument("out", help="file to write (a folder for --format hf; - for standard output, with --format)")
    p.add_argument("--format", choices=list(EXPORT_FORMATS))
    p.add_argument("--keep-original", action="store_true", help="keep the original label in its own column")
    p.add_argument("--no-log", action="store_true", help="do not write the log file")
    p.add_argument("--split", metavar="NAME", help="only this split's items (e.g. train and dev to files of their own)")
    p.add_argument("--control", metavar="NAME", help="label-studio: the Choices/Labels control's name (from_name); "
                   "default: as the imported export named it, else 'label'")
    p.add_argument("--to-name", metavar="NAME", help="label-studio: the Text object the control labels (toName); "
                   "default: as imported, else 'text'")
    p.add_argument("--data-field", metavar="NAME", help="label-studio: the task field holding the text ($text in "
                   "the config); default: as imported, else 'text'")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("info", help="what a store holds: items, splits, classes, review progress, the last scan",
                       description="Print a store's task, items per split, items per class, unlabelled items, review "
                                   "statuses and corrections, the log, annotations, snapshots and which scan its "
                                   "scores come from. Example: workbench info labels.db")
    p.add_argument("store", help="the store (SQLite file or URL)")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("history", help="print the correction log",
                       description="Print logged label and review-status changes, oldest first. "
                                   "Example: workbench history labels.db --item msg-00012")
    p.add_argument("store")
    p.add_argument("--item", help="only this item id")
    p.add_argument("--author", help="only changes by this author")
    p.add_argument("--limit", type=int, help="only the newest N rows")
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser("undo", help="undo an author's latest action (new log rows; nothing is deleted)",
                       description="Revert AUTHOR's latest action that is not yet undone (a correction, a batch of "
                                   "accepted suggestions, a merge of labels) by writing new log rows; run it again to "
                                   "walk further back. Imports are not undone. Example: workbench undo labels.db "
                                   "--author ana")
    p.add_argument("store")
    p.add_argument("--author", default=os.environ.get("USER") or "cli",
                   help="whose action to undo (default: $USER, as merge-labels records)")
    p.set_defaults(func=_cmd_undo)

    p = sub.add_parser("merge-labels", help="fold labels into one (a class spelled two ways)",
                       description="Relabel every item labelled with one of LABELS as --into, in one logged undo "
                                   "step, and drop LABELS from the label set. Example: workbench merge-labels "
                                   "labels.db Refund refund --into refund_request")
    p.add_argument("store")
    p.add_argument("labels", nargs="+", help="the labels to fold away")
    p.add_argument("--into", required=True, help="the label they become (added to the label set when new)")
    p.add_argument("--author", default=os.environ.get("USER") or "cli", help="written on every change")
    p.set_defaults(func=_cmd_merge_labels)

    p = sub.add_parser("sample", help="write the embedded demo datasets as Parquet",
                       description="Write support_messages.parquet (3,000 support messages, 8 intents, about 6% "
                                   "planted label errors in train, true labels in 'true_label') and "
                                   "ner_sentences.parquet (300 tagged sentences with planted tag errors).")
    p.add_argument("--out", required=True, type=Path, help="folder to write into (created if missing)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser("cache", help="what the scan's disk cache holds; remove the parts used longest ago",
                       description="A scan keeps embeddings (token vectors too, for the attention view), TF-IDF "
                                   "features and neighbour lists on disk so that a re-scan is fast; nothing there is "
                                   "labels, and a removed file is computed again by the next scan that needs it. "
                                   "Without options: list what the cache holds. Examples: workbench cache; "
                                   "workbench cache --older-than 30; workbench cache --max-size 2G --dry-run")
    p.add_argument("--dir", type=Path, help="the cache (default: $WORKBENCH_CACHE or ~/.cache/label-workbench)")
    p.add_argument("--older-than", type=float, metavar="DAYS", help="remove every file not used for DAYS days")
    p.add_argument("--max-size", metavar="SIZE",
                   help="then remove the files used longest ago until the cache takes at most SIZE (e.g. 500M, 2G; "
                        "0 empties it)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(func=_cmd_cache)

    p = sub.add_parser("scan", help="find likely wrong labels, duplicates, outliers and junk; print the report",
                       description="Quick scan: embedding, TF-IDF and attention views under 5-fold cross-validation "
                                   "give every item out-of-fold probabilities; confident learning flags likely label "
                                   "errors; registered checks find duplicates, conflicts, outliers and junk. Scores "
                                   "and suggestions are written into the store. Examples: workbench scan labels.db; "
                                   "workbench scan train.csv --store labels.db; workbench scan train.csv --items "
                                   "scores.csv (no store); in CI: workbench scan train.csv --max-noise-rate 0.05 "
                                   "--max-issues conflicting_duplicate=0. Exit 0; 1 when a quality gate fails; 2 on "
                                   "a usage error")
    add_data_source(p, verb="scan", verbed="scanned")
    p.add_argument("--mode", choices=["quick", "finetune"],
                   help="quick (default): embedding, TF-IDF and attention views, seconds; finetune: one short "
                        "fine-tune per fold, minutes on a CPU, ranks subtle errors better. Token classification: "
                        "fold taggers by default; quick compares each sentence's tags with the same words "
                        "elsewhere, no model")
    p.add_argument("--finetune-set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a FineTuneConfig field of the fold fine-tunes (--mode finetune, and token classification's "
                        "taggers), e.g. --finetune-set epochs=2")
    p.add_argument("--pred-probs", metavar="FILE",
                   help="out-of-fold probabilities from your own model instead of the scan's cross-validation: a "
                        "table with item_id and prob_<class> columns (.csv, .tsv, .jsonl, .parquet), or a .npy "
                        "array (items in the data's order, classes sorted). Each item's row must come from a model "
                        "that did not train on it")
    p.add_argument("--tagger", metavar="RUN",
                   help="token classification: a finished tagger run scores the sentences it did not train on "
                        "(e.g. a store's test split), instead of training fold taggers")
    p.add_argument("--model", help="encoder for the embeddings (default: the packaged all-MiniLM-L6-v2)")
    p.add_argument("--folds", type=int, help="cross-validation folds (default 5); token classification: fold "
                                             "taggers (default 2)")
    p.add_argument("--runs-dir", default="runs",
                   help="token classification: where the fold taggers' runs go (default runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--classifier-layers", type=int, nargs="+", metavar="LAYER", default=[-1],
                   help="hidden states the classifier view reads (default -1: the sentence embedding; "
                        "-4 -3 -2 -1, the top four, rank wrong labels a little better for more time)")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"],
                   help="the encoder's precision (default auto: bf16 on a CPU with native bf16, and the quick "
                        "views' heads' products too); fp32 keeps the encoder and the heads in float32, as on a "
                        "machine without bf16: a quality gate in CI then does not move with the machine's bf16")
    p.add_argument("--views", nargs="+", metavar="VIEW",
                   help="quick mode's views (default embedding tfidf attention; a scan of more than "
                        f"{ATTENTION_DEFAULT_MAX_ITEMS:,} labelled texts, or one short of memory for it, goes without "
                        "attention). attention, a head per fold over the model's token vectors, adds SST-2 +1.6 and "
                        "TREC +2 points of out-of-fold accuracy for a quarter of a second of training per thousand "
                        "texts on every scan and ten times the embedding cache; --views embedding tfidf leaves it out")
    p.add_argument("--max-length", type=int, metavar="TOKENS",
                   help="tokens of each text the embedding reads (default 128; the report says how many texts run "
                        "past it): more reads more of long texts, for more time")
    p.add_argument("--no-refit", action="store_true",
                   help="skip the second cross-validation pass without the items the first one flagged "
                        "(faster, ranks wrong labels less well)")
    p.add_argument("--score", default="combined", choices=list(SCORES),
                   help="the label-quality score flagged items are sorted by (default: combined)")
    p.add_argument("--filter-by", default="prune_by_noise_rate", choices=list(FILTERS))
    p.add_argument("--split", metavar="NAME",
                   help="scan only this split's items (train includes items with no split): e.g. the test labels "
                        "apart from the training data. Default: every item (token classification's fold taggers: "
                        "train)")
    p.add_argument("--top", type=int, default=20, help="how many flagged items to print")
    p.add_argument("--json", help="also write the report as JSON here")
    p.add_argument("--html", help="also write the report, the worst labels, every issue's items with why, and the "
                                  "duplicate groups as one self-contained HTML file")
    p.add_argument("--items", help="also write every item's scores, suggestion and issues here (.csv, .tsv, "
                                   ".jsonl or .parquet)")
    p.add_argument("--max-noise-rate", type=float, metavar="RATE",
                   help="quality gate: exit 1 when the estimated share of wrong labels is above RATE")
    p.add_argument("--max-issues", action="append", default=[], metavar="TYPE=COUNT",
                   help="quality gate: exit 1 when more than COUNT items have this issue (label, exact_duplicate, "
                        "conflicting_duplicate, junk_text, ...), e.g. --max-issues conflicting_duplicate=0")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_scan)

    from workbench.cli_runs import add_run_commands

    add_run_commands(sub)

    p = sub.add_parser("check-regression", help="fail (exit 1) when a class got worse between two runs",
                       description="Compare NEW_RUN with BASE_RUN class by class on the same evaluation items "
                                   "(paired bootstrap intervals); exit 1 when a class drops by more than --max-drop "
                                   "and beyond its interval, 0 otherwise, 2 on a usage error. Example: workbench "
                                   "check-regression runs/base runs/new --max-drop 0.01 --metric f1")
    p.add_argument("base", help="the baseline run folder")
    p.add_argument("new", help="the new run folder")
    p.add_argument("--max-drop", type=float, default=0.01)
    p.add_argument("--metric", default="f1", choices=["precision", "recall", "f1"])
    p.add_argument("--classes", nargs="+", help="only these classes")
    p.add_argument("--split", help="evaluation split (default: test, else validation)")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_check_regression)

    p = sub.add_parser("migrate", help="copy a whole store (e.g. a SQLite file) into another database",
                       description="Copy every item, label, log row, annotation, scan and snapshot of SOURCE into "
                                   "the empty store DESTINATION, ids included, and check the copy. Example: "
                                   "workbench migrate labels.db postgresql://me@dbhost/labels")
    p.add_argument("source", help="the store to copy (a .db path or a database URL)")
    p.add_argument("destination", help="an empty database URL (or a new .db path)")
    p.set_defaults(func=_cmd_migrate)

    p = sub.add_parser("import-annotations", help="add items labelled by several annotators (long or wide table)",
                       description="Long: one row per item, annotator and label. Wide: one row per item and one "
                                   "column per annotator (--annotator-prefix rater_ or --annotator-columns a b c). "
                                   "Each item's label becomes the consensus; annotators' labels are kept apart.")
    p.add_argument("data", help="CSV / TSV / JSONL / JSON / Parquet / Excel, also .gz, .bz2, .xz or a .zip of one")
    p.add_argument("store", help="label store: a .db path or a database URL")
    p.add_argument("--layout", choices=["long", "wide"], default="long")
    p.add_argument("--item-column", default="item_id")
    p.add_argument("--text-column", default="text")
    p.add_argument("--annotator-column", default="annotator")
    p.add_argument("--label-column", "--label", dest="label_column", default="label")
    p.add_argument("--annotator-columns", nargs="+", help="wide layout: the annotators' columns")
    p.add_argument("--annotator-prefix", help="wide layout: the prefix the annotators' columns share")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the file (default utf-8)")
    p.add_argument("--consensus", choices=["dawid_skene", "majority"], default="dawid_skene")
    p.add_argument("--repeats", choices=["error", "first", "last"], default="error",
                   help="an annotator who labelled an item twice: refuse, or keep the first / last label")
    p.set_defaults(func=_cmd_import_annotations)

    p = sub.add_parser("agreement", help="inter-annotator agreement of a store's annotations",
                       description="Percent agreement, consistency, Fleiss' kappa, Krippendorff's alpha, "
                                   "per-class agreement (and pairwise Cohen's kappa in --json).")
    p.add_argument("store")
    p.add_argument("--min-pair-items", type=int, default=5, help="pairs need this many shared items for a kappa")
    p.add_argument("--json", help="also write the report as JSON here")
    p.set_defaults(func=_cmd_agreement)

    p = sub.add_parser("run-notebook", help="execute a workbench notebook headless with papermill",
                       description="Run a notebook of notebooks/ (or a path) with parameters, INTERACTIVE=False "
                                   "and OUTPUT_DIR=--out; print the executed notebook and the reports it wrote. "
                                   "Example: workbench run-notebook 00_quickstart -p DATA_PATH data.csv "
                                   "-p LABEL_COLUMN intent --out build/qs")
    p.add_argument("name", help="notebook name (e.g. 00_quickstart) or path")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                   help="a parameter; VALUE is read as JSON when it parses (numbers, true, null), else as text")
    p.add_argument("--out", help="output folder (default: -p OUTPUT_DIR if given, else build/notebooks)")
    p.add_argument("--timeout", type=int, default=1200, help="seconds any one cell may run")
    p.set_defaults(func=_cmd_run_notebook)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; user errors print one line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:  # Ctrl-C: a line, not a traceback; a store write cut short rolls back (a transaction)
        print(f"\nworkbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `workbench history ... | head`: the reader has what it wanted; no traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except WorkbenchError as exc:
        message = as_flags(str(exc), [k for k in vars(args) if k not in ("func", "command")])
        print(f"workbench {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:
            raise
        # a path the system refused (no permission, no such folder, disk full): the user's to fix, not a bug
        print(f"workbench {args.command}: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2


def as_flags(message: str, options: Sequence[str]) -> str:
    """A library message in the command's words: ``allow_missing_labels=True`` -> ``--allow-missing-labels``,
    ``text_column=...`` -> ``--text-column ...``, for the options this command has (``options``: argparse dests).

    The library's errors name keyword arguments, which is right in a notebook and wrong in a shell.
    """

    for name in options:
        flag = "--" + name.replace("_", "-")
        message = re.sub(rf"\b{name}=True\b", flag, message)
        message = re.sub(rf"\b{name}='([^']*)'", partial(_flag_with_value, flag), message)
        message = re.sub(rf"\b{name}=\.\.\.", flag + " ...", message)
        message = re.sub(rf"\b{name}=(?=\s)", flag, message)
        message = re.sub(rf"\b{name}=(?=\[)", flag + " ", message)  # labels=['x', 'y'] -> --labels ['x', 'y']
        # max_noise_rate=5 -> --max-noise-rate 5, but not a config's field (FineTuneConfig.seed=-1)
        message = re.sub(rf"(?<![.\w]){name}=(?=-?\.?\d)", flag + " ", message)
    return message


def _flag_with_value(flag: str, match: re.Match[str]) -> str:
    """``--flag value`` for a matched ``name='value'``, the value quoted when it is empty or holds a space (as a
    shell needs it)."""
    value = match[1]
    return f"{flag} {value}" if value and not any(ch.isspace() for ch in value) else f"{flag} '{value}'"


if __name__ == "__main__":
    sys.exit(main())
